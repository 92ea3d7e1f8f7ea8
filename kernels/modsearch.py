"""Modular search, the seed program of question 2, exactly, in 32-bit integer arithmetic.

The program (ties go to the smallest k because only a strictly larger residue replaces the best)::

    K = floor(n ** 0.7)            # exactly: the largest K with K**10 <= n**7
    k = 0
    for i in 1..K:
        if i*i mod n > k*k mod n: k = i
    return k, k*k mod n

Integer bounds (everything here runs without ``jax_enable_x64``, on CPU, GPU and TPU alike):
  * n is in [1, N_MAX] with N_MAX = 2**30, so K <= 2**21 and i*i < 2**42 does not fit 32 bits.
  * ``sqmod(i, n)`` therefore never forms i*i exactly. It estimates the band b = floor(i*i / n) in float32
    (|error| < 2**-9 for i <= 2**22, n <= 2**30, b < 2**13, see the proof in ``sqmod``) and recovers the residue
    r = i*i - b*n in uint32 wrap-around arithmetic, which is exact because the true r lies in [0, n) and the
    estimate is off by at most one band, so the wrapped value lies in (-n, 2n) and is corrected once.
  * ``kmax`` compares K**10 with n**7 (numbers up to 2**220) as 16-bit limbs held in uint32, so K is exact even
    at perfect 10th powers, where float pow is wrong (n = 1024 gives 127.99... in float64, K = 128).

Structure used by ``algorithm="banded"``: within a band q*n <= k*k < (q+1)*n the residue k*k - q*n rises
strictly with k, so every maximizer is a band top (the largest k <= K of its band). There are
floor(K*K / n) + 1 <= n**0.4 + 1 bands (4,097 at n = 2**30) against K = n**0.7 candidates (2,097,152).
"""
from __future__ import annotations

import functools

import jax
from jax.experimental import pallas as pl
import jax.numpy as jnp
import numpy as np

from mesabench.kernels import _backend
from mesabench.kernels import _checks

N_MAX = 2**30
"""Largest n the exact 32-bit arithmetic supports (the seed's bound)."""

K_MAX = 2**21
"""kmax(N_MAX): the largest loop bound, 2**21 exactly (2**30 is (2**3)**10, so K = (2**3)**7)."""

ALGORITHMS = ("banded", "brute")

_LIMB = 16
_LIMB_MASK = (1 << _LIMB) - 1
_NUM_LIMBS = 15  # 2**240 > 2**220 >= (2**22)**10 and (2**31)**7.


def floor_root(n: int, num: int, den: int) -> int:
  """The largest integer x >= 0 with x**den <= n**num (i.e. floor(n**(num/den))), in Python integers, exactly."""
  x = int(round(n ** (num / den)))
  while (x + 1) ** den <= n**num:
    x += 1
  while x > 0 and x**den > n**num:
    x -= 1
  return x


def kmax_int(n: int) -> int:
  """K = floor(n**0.7) for one Python int n >= 1, exactly (host-side twin of ``kmax``; usable while tracing)."""
  return floor_root(int(n), 7, 10)


def validate_n(n, name: str = "n") -> None:
  """Raises ValueError unless every (concrete) element of ``n`` is an integer in [1, 2**30]."""
  _checks.check_int_range(name, n, 1, N_MAX)


# ----------------------------------------------------------------------------------------------- exact integer pow


def _bignum(x):
  """x (uint32, < 2**32) as little-endian 16-bit limbs, shape x.shape + (_NUM_LIMBS,)."""
  limbs = [x & _LIMB_MASK, x >> _LIMB] + [jnp.zeros_like(x)] * (_NUM_LIMBS - 2)
  return limbs


def _bignum_mul_small(limbs, y):
  """limbs * y for y < 2**16 (uint32). Each step: limb*y + carry <= (2**16-1)**2 + 2**16-1 < 2**32."""
  out, carry = [], jnp.zeros_like(y)
  for limb in limbs:
    t = limb * y + carry
    out.append(t & _LIMB_MASK)
    carry = t >> _LIMB
  return out  # the final carry is zero as long as the product stays below 2**(16*_NUM_LIMBS).


def _bignum_mul(limbs, x):
  """limbs * x for x < 2**32 (uint32): two small multiplications, the high one shifted by one limb."""
  lo = _bignum_mul_small(limbs, x & _LIMB_MASK)
  hi = _bignum_mul_small(limbs, x >> _LIMB)
  hi = [jnp.zeros_like(x)] + hi[:-1]
  out, carry = [], jnp.zeros_like(x)
  for a, b in zip(lo, hi):
    t = a + b + carry  # < 3 * 2**16
    out.append(t & _LIMB_MASK)
    carry = t >> _LIMB
  return out


def _bignum_pow(x, e: int):
  """x**e as limbs; a rolled loop so the multiplication is compiled once."""
  one = _bignum(jnp.ones_like(x))
  return list(jax.lax.fori_loop(0, e, lambda _, acc: tuple(_bignum_mul(list(acc), x)), tuple(one)))


def _bignum_le(a, b):
  """a <= b for two limb lists, compared from the most significant limb down."""
  le = jnp.ones(a[0].shape, bool)
  decided = jnp.zeros(a[0].shape, bool)
  for x, y in zip(reversed(a), reversed(b)):
    le = jnp.where(decided, le, x < y)
    decided = decided | (x != y)
  return jnp.where(decided, le, True)


@jax.jit
def _kmax(n):
  n = n.astype(jnp.uint32)
  # float32 estimate of n**0.7: n rounds with relative error 2**-24, so the estimate is within 0.2 of the truth
  # for K <= 2**21; the four candidates est-2 .. est+1 cover the truth's range [est-3, est+1] with margin, and
  # exact comparisons of c**10 with n**7 pick it. Candidates ride on a leading axis so one power loop serves all.
  est = jnp.floor(jnp.power(n.astype(jnp.float32), jnp.float32(0.7))).astype(jnp.int32)
  cands = est[None] + jnp.arange(-2, 2, dtype=jnp.int32).reshape((4,) + (1,) * n.ndim)
  c10 = _bignum_pow(jnp.maximum(cands, 0).astype(jnp.uint32), 10)
  n7 = [limb[None] for limb in _bignum_pow(n, 7)]
  ok = (cands < 0) | _bignum_le(c10, n7)
  # c <= K holds for exactly the candidates est-2 .. K, so K = est - 3 + (number of candidates that hold).
  return est - 3 + jnp.sum(ok, axis=0, dtype=jnp.int32)  # dtype: under x64 a plain sum promotes to int64


def kmax(n):
  """K = floor(n**0.7) exactly (the largest K >= 0 with K**10 <= n**7), elementwise; int32 array.

  n: integer array (any shape) with values in [1, 2**30]; concrete values outside raise ValueError.
  Exact for every n in range, including perfect 10th powers m**10 where K = m**7.
  """
  validate_n(n)
  n = jnp.asarray(n)
  return _kmax(n)


# --------------------------------------------------------------------------------------------- exact square mod n


def sqmod(i, n):
  """(band, residue): band = floor(i*i / n) and residue = i*i mod n, exactly; both int32.

  Domain: 0 <= i <= 2**22, 1 <= n <= 2**30 and i*i / n < 2**20 (callers here have i <= kmax(n) + 1024, so
  i*i/n <= n**0.4 + 1 < 2**13, or i <= 1024). Proof: f = fl(fl(i*i) / fl(n)) in float32 has relative error below
  3 * 2**-24 (three roundings; i is exact in float32), so |f - i*i/n| < 2**20 * 2**-22 = 1/4 and b0 = floor(f) is
  the true band or one off.
  r0 = i*i - b0*n is computed in uint32, which wraps modulo 2**32; its true value lies in (-n, 2n), which maps to
  [0, 2**31) when non-negative (2n <= 2**31) and to [2**32 - n, 2**32) ⊂ [3 * 2**30, 2**32) when negative, so one
  comparison with 2**31 and one with n correct b0 and r0.
  """
  iu = i.astype(jnp.uint32)
  nu = n.astype(jnp.uint32)
  f = (i.astype(jnp.float32) * i.astype(jnp.float32)) / n.astype(jnp.float32)
  b = jnp.floor(f).astype(jnp.int32)
  r = iu * iu - b.astype(jnp.uint32) * nu  # wraps mod 2**32
  neg = r >= jnp.uint32(2**31)
  b = jnp.where(neg, b - 1, b)
  r = jnp.where(neg, r + nu, r)
  over = r >= nu
  b = jnp.where(over, b + 1, b)
  r = jnp.where(over, r - nu, r)
  return b, r.astype(jnp.int32)


def _isqrt_below(m_hi_band, n):
  """Largest t with t*t < (q+1)*n for q = m_hi_band - 1, i.e. the top of band q ignoring the K cap; int32."""
  q1 = m_hi_band
  est = jnp.floor(jnp.sqrt(q1.astype(jnp.float32) * n.astype(jnp.float32))).astype(jnp.int32)
  # est is within one of the truth (relative error of sqrt(float32) ~ 2**-24 on values <= 2**22); count the
  # candidates est-2 .. est+1 whose band is below q1 (band is monotone in t).
  count = jnp.zeros(est.shape, jnp.int32)
  for d in (-2, -1, 0, 1):
    c = est + d
    band, _ = sqmod(jnp.maximum(c, 0), n)
    count = count + ((c < 0) | (band < q1)).astype(jnp.int32)
  return est - 3 + count


# ------------------------------------------------------------------------------------------------------ references


def _better(r_new, r_best):
  return r_new > r_best  # strict: ties keep the earlier (smaller) k, as the seed program does.


@functools.partial(jax.jit, static_argnames=("block",))
def _brute_reference(n, block: int = 1024):
  shape = n.shape
  n = n.reshape(-1).astype(jnp.int32)
  kk = _kmax(n)
  steps = (jnp.max(kk) + block - 1) // block
  offs = jnp.arange(1, block + 1, dtype=jnp.int32)

  def body(j, carry):
    best_k, best_r = carry
    i = j * block + offs[None, :]  # [B, block]
    _, r = sqmod(i, n[:, None])
    r = jnp.where(i <= kk[:, None], r, -1)
    blk_arg = jnp.argmax(r, axis=1)  # first maximum in the block: the smallest i
    blk_r = jnp.take_along_axis(r, blk_arg[:, None], axis=1)[:, 0]
    blk_k = j * block + 1 + blk_arg.astype(jnp.int32)
    take = _better(blk_r, best_r)
    return jnp.where(take, blk_k, best_k), jnp.where(take, blk_r, best_r)

  zeros = jnp.zeros_like(n)
  k, r = jax.lax.fori_loop(0, steps, body, (zeros, zeros))
  return k.reshape(shape), r.reshape(shape)


@jax.jit
def _banded_reference(n):
  shape = n.shape
  n = n.reshape(-1).astype(jnp.int32)
  kk = _kmax(n)
  q_last, _ = sqmod(kk, n)  # floor(K*K / n): the last (possibly partial) band

  def body(q, carry):
    best_k, best_r = carry
    top = jnp.minimum(_isqrt_below(jnp.full_like(n, q + 1), n), kk)
    _, r = sqmod(top, n)
    take = (q <= q_last) & _better(r, best_r)
    return jnp.where(take, top, best_k), jnp.where(take, r, best_r)

  zeros = jnp.zeros_like(n)
  k, r = jax.lax.fori_loop(0, jnp.max(q_last) + 1, body, (zeros, zeros))
  return k.reshape(shape), r.reshape(shape)


def search_reference(n, algorithm: str = "banded"):
  """(k, r) of the seed program for every element of ``n`` (int32 arrays of n's shape); pure jnp, jitted.

  algorithm: "banded" loops over the n**0.4 band tops (one shared loop bound: the largest band count in the batch);
  "brute" evaluates every i <= K in blocks of 1024 (loop bound: the largest K in the batch). Both are exact for
  n in [1, 2**30]; ties go to the smallest k.
  """
  _checks.check_choice("algorithm", algorithm, ALGORITHMS)
  validate_n(n)
  n = jnp.asarray(n)
  if algorithm == "banded":
    return _banded_reference(n)
  return _brute_reference(n)


# ------------------------------------------------------------------------------------------ fused kernels (shared)
#
# Both algorithms are written once as functions of row tiles ([R, 1] int32 columns in, [R, 1] columns out) and run
# either inside a Pallas kernel (one grid step per block of ROW_BLOCK rows) or as plain XLA ops (lax.map over
# blocks). Rows are sorted by their loop bound before blocking, so each block loops only as far as its own largest
# bound; padding rows hold n = 1 (one band, K = 1) and sort to the front.

ROW_BLOCK = 8
"""Rows per Pallas grid step: the TPU sublane count; a power of two for Triton."""

XLA_ROW_BLOCK = {"brute": 16, "banded": 64}
"""Rows per block on the XLA path (CPU), per algorithm: the tile sizes measured fastest on a 2-core CPU."""

XLA_BRUTE_UNROLL = 2
"""Candidate steps per loop iteration of the brute search on the XLA path (halves XLA:CPU's loop overhead)."""

BRUTE_LANES = 256
"""Candidates per row per loop step of the brute kernel. 3 * BRUTE_LANES + 1 <= 1024 keeps the start-up
``sqmod`` calls (i <= 3 * lanes) inside sqmod's domain i*i/n < 2**20 for every n >= 1."""

BANDED_LANES = 128
"""Bands per row per loop step of the banded kernel (the TPU lane width)."""

Q_MAX = 4096
"""floor(K*K / n) at n = 2**30 (K = 2**21): the largest band index of any n in range, the banded loop's bound."""

CPU_SMALL_N = 2**16
"""Below this n the CPU auto choice is the jnp reference (see ``search``)."""

_BRUTE_OPS_PER_CANDIDATE = 12
_BANDED_OPS_PER_BAND = 70
_INT32_MAX = 2**31 - 1


def _mod_add(a, b, n):
  """(a + b) mod n for a, b in [0, n) and n <= 2**30: a + b < 2**31, so int32 never overflows."""
  s = a + b
  return jnp.where(s >= n, s - n, s)


def _mod_sub(a, b, n):
  """(a - b) mod n for a, b in [0, n): a - b lies in (-n, n), no overflow."""
  s = a - b
  return jnp.where(s < 0, s + n, s)


def _first_best(best_k, best_r):
  """Per row ([R, 1] each): the largest r over the lanes, and the smallest k among the lanes holding it."""
  r = jnp.max(best_r, axis=1, keepdims=True)
  k = jnp.min(jnp.where(best_r == r, best_k, jnp.int32(_INT32_MAX)), axis=1, keepdims=True)
  return k, r


def _brute_rows(n, kk, steps, lanes: int = BRUTE_LANES, unroll: int = 1):
  """Seed program by exhaustive search for rows n [R, 1] with K = kk [R, 1]; ``steps`` * ``unroll`` * ``lanes``
  must reach max K (``steps`` loop iterations of ``unroll`` candidate steps each).

  Lane t holds candidate i = s * lanes + t + 1 at step s. Its residue is advanced by an exact recurrence that never
  forms i*i: with L = lanes,
      r_i = i*i mod n,   d_i = ((i + L)**2 - i*i) mod n = (2 i L + L*L) mod n,   e = 2 L*L mod n (a constant),
      r_{i+L} = (r_i + d_i) mod n,   d_{i+L} = (d_i + e) mod n.
  Bounds: r, d, e all lie in [0, n) with n <= 2**30, so each sum is < 2**31 (no int32 overflow) and one
  conditional subtraction (``_mod_add``; a select, since Mosaic TPU cannot lower unsigned min) reduces it. The
  candidate counter stays <= K + (unroll + 2) L < 2**22. The start values r_i, r_{i+L}, r_{i+2L} for i <= L come
  from ``sqmod`` (i <= 3L + 1 <= 1024, so i*i/n < 2**20) and d, e from their exact differences (``_mod_sub``).
  Steps past K are masked (i <= K), so rounding the step count up is harmless. Ties: a lane replaces its best
  only on a strictly larger residue and candidates rise along a lane, so each lane keeps its smallest maximizer;
  across lanes ``_first_best`` takes the smallest k. Returns (k, r) [R, 1] int32: exactly the seed program's
  answer for every row (k = 0, r = 0 when no residue beats 0, e.g. n = 1).
  """
  shape = (n.shape[0], lanes)
  n = jnp.broadcast_to(n, shape)
  kk = jnp.broadcast_to(kk, shape)
  i = jax.lax.broadcasted_iota(jnp.int32, shape, 1) + 1
  _, r = sqmod(i, n)
  _, r1 = sqmod(i + lanes, n)
  _, r2 = sqmod(i + 2 * lanes, n)
  d = _mod_sub(r1, r, n)
  e = _mod_sub(_mod_sub(r2, r1, n), d, n)

  def body(_, carry):
    i, r, d, best_k, best_r = carry
    for _ in range(unroll):
      take = (r > best_r) & (i <= kk)
      best_k = jnp.where(take, i, best_k)
      best_r = jnp.where(take, r, best_r)
      r = _mod_add(r, d, n)
      d = _mod_add(d, e, n)
      i = i + lanes
    return i, r, d, best_k, best_r

  zeros = jnp.zeros(shape, jnp.int32)
  _, _, _, best_k, best_r = jax.lax.fori_loop(0, steps, body, (i, r, d, zeros, zeros))
  return _first_best(best_k, best_r)


def band_top(q, n):
  """(t, r): t = the largest integer with t*t < (q+1)*n (the top of band q, no K cap) and r = t*t mod n; int32.

  Domain: 0 <= q <= Q_MAX + 2 * BANDED_LANES and 1 <= n <= 2**30, so (q+1)*n < 2**42.2 and t < 2**21.1.
  est = floor(sqrt(fl(q+1) * fl(n))) in float32: q+1 is exact, fl(n) and the product round once each (relative
  2**-24 each), sqrt halves that and rounds once more; the total relative error is below 2**-22.9, i.e. an
  absolute error below 0.27 on sqrt((q+1)*n) < 2**21.1 (and below 1 even if sqrt is off by 3 ulp, as
  approximate GPU/TPU square roots may be). Then est is within one of floor(sqrt((q+1)n)) and t lies in
  [est - 2, est + 1]; the four candidates are tested exactly with ``sqmod`` (band(c) <= q iff c*c < (q+1)*n,
  monotone in c) and the largest passing one is t. Candidates stay <= 2**21.1 + 2 with c*c/n < 2**13 + 2**9,
  inside sqmod's domain.
  """
  est = jnp.floor(jnp.sqrt((q + 1).astype(jnp.float32) * n.astype(jnp.float32))).astype(jnp.int32)
  t = jnp.zeros_like(est)
  r = jnp.zeros_like(est)
  for delta in (-2, -1, 0, 1):
    c = jnp.maximum(est + delta, 0)
    band, rc = sqmod(c, n)
    ok = band <= q
    t = jnp.where(ok, c, t)
    r = jnp.where(ok, rc, r)
  return t, r


def _banded_rows(n, kk, qlast, rk, steps, lanes: int = BANDED_LANES):
  """Seed program over band tops for rows n [R, 1] with K = kk, last band qlast = floor(K*K/n), rk = K*K mod n.

  Lane t holds band q = s * lanes + t at step s; ``steps`` >= floor(max qlast / lanes) + 1. For q < qlast the band
  top t_q (``band_top``) satisfies t_q*t_q < (q+1)*n <= qlast*n <= K*K, so t_q < K needs no cap; band qlast is
  capped at K itself. Band tops rise with q, and a lane replaces its best only on a strictly larger residue, so
  the smallest maximizer wins, as in the seed program. Returns (k, r) [R, 1] int32.
  """
  shape = (n.shape[0], lanes)
  n = jnp.broadcast_to(n, shape)
  kk = jnp.broadcast_to(kk, shape)
  qlast = jnp.broadcast_to(qlast, shape)
  rk = jnp.broadcast_to(rk, shape)
  q = jax.lax.broadcasted_iota(jnp.int32, shape, 1)

  def body(_, carry):
    q, best_k, best_r = carry
    top, r = band_top(q, n)
    last = q == qlast
    top = jnp.where(last, kk, top)
    r = jnp.where(last, rk, r)
    take = (q <= qlast) & (r > best_r)
    return q + lanes, jnp.where(take, top, best_k), jnp.where(take, r, best_r)

  zeros = jnp.zeros(shape, jnp.int32)
  _, best_k, best_r = jax.lax.fori_loop(0, steps, body, (q, zeros, zeros))
  return _first_best(best_k, best_r)


def _brute_kernel(steps_ref, n_ref, kk_ref, k_ref, r_ref):
  steps = steps_ref[pl.program_id(0)]  # read at the top level: program_id inside a loop breaks interpret mode
  k, r = _brute_rows(n_ref[...], kk_ref[...], steps)
  k_ref[...] = k
  r_ref[...] = r


def _banded_kernel(steps_ref, n_ref, kk_ref, qlast_ref, rk_ref, k_ref, r_ref):
  steps = steps_ref[pl.program_id(0)]
  k, r = _banded_rows(n_ref[...], kk_ref[...], qlast_ref[...], rk_ref[...], steps)
  k_ref[...] = k
  r_ref[...] = r


def cost_estimate(algorithm: str, rows: int) -> pl.CostEstimate:
  """Upper-bound cost of one call on ``rows`` rows, as if every n were 2**30 (K = 2**21, 4,097 bands).

  Integer and float element operations count one each: about 12 per candidate (brute) and 70 per band (banded:
  four exact ``sqmod`` tests, one square root); bytes are the int32 columns read and written.
  """
  if algorithm == "brute":
    flops, sqrts, columns = rows * K_MAX * _BRUTE_OPS_PER_CANDIDATE, 0, 4
  else:
    flops, sqrts, columns = rows * (Q_MAX + 1) * _BANDED_OPS_PER_BAND, rows * (Q_MAX + 1), 6
  return pl.CostEstimate(flops=int(flops), transcendentals=int(sqrts), bytes_accessed=int(rows * columns * 4))


def _pallas_blocks(columns, steps, *, algorithm: str, platform: str):
  """Runs the Pallas kernel on sorted columns ([P, 1] int32 each, P a multiple of ROW_BLOCK)."""
  rows = columns[0].shape[0]
  spec = pl.BlockSpec((ROW_BLOCK, 1), lambda b: (b, 0))
  kernel = _brute_kernel if algorithm == "brute" else _banded_kernel
  out = jax.ShapeDtypeStruct((rows, 1), jnp.int32)
  return pl.pallas_call(
      kernel,
      out_shape=(out, out),
      grid=(rows // ROW_BLOCK,),
      in_specs=[_backend.scalar_table_spec(platform)] + [spec] * len(columns),
      out_specs=(spec, spec),
      compiler_params=_backend.compiler_params(platform),
      cost_estimate=cost_estimate(algorithm, rows),
      interpret=platform == "interpret",
      name=f"modsearch_{algorithm}",
  )(steps, *columns)


def _xla_blocks(columns, steps, *, algorithm: str, rows_per_block: int):
  """The same row-tile search as plain XLA ops: lax.map over blocks, each looping ``steps[b]`` times."""
  blocks = columns[0].shape[0] // rows_per_block
  cols = [c.reshape(blocks, rows_per_block, 1) for c in columns]

  def one(args):
    s, *c = args
    if algorithm == "brute":
      return _brute_rows(*c, s, unroll=XLA_BRUTE_UNROLL)
    return _banded_rows(*c, s)

  k, r = jax.lax.map(one, (steps, *cols))
  return k.reshape(-1, 1), r.reshape(-1, 1)


@functools.partial(jax.jit, static_argnames=("algorithm", "impl", "platform"))
def _search_padded(n, *, algorithm: str, impl: str, platform: str):
  """(k, r) for a flat int32 batch n (length a power of two >= ROW_BLOCK, values in [1, 2**30]).

  Sorts by loop bound (K for brute, the band count for banded), searches per block of rows, and unsorts.
  """
  size = n.shape[0]
  kk = _kmax(n)
  if algorithm == "brute":
    lanes, key = BRUTE_LANES, kk
  else:
    qlast, rk = sqmod(kk, n)
    lanes, key = BANDED_LANES, qlast
  order = jnp.argsort(key)
  rows = ROW_BLOCK if impl == "pallas" else min(XLA_ROW_BLOCK[algorithm], size)
  key_max = jnp.max(key[order].reshape(size // rows, rows), axis=1)
  if algorithm == "brute":
    per_step = lanes * (1 if impl == "pallas" else XLA_BRUTE_UNROLL)
    steps = (key_max + per_step - 1) // per_step
    columns = (n, kk)
  else:
    steps = key_max // lanes + 1
    columns = (n, kk, qlast, rk)
  columns = [c[order][:, None] for c in columns]
  if impl == "pallas":
    k, r = _pallas_blocks(columns, steps, algorithm=algorithm, platform=platform)
  else:
    k, r = _xla_blocks(columns, steps, algorithm=algorithm, rows_per_block=rows)
  k = jnp.zeros_like(n).at[order].set(k[:, 0])
  r = jnp.zeros_like(n).at[order].set(r[:, 0])
  return k, r


def search(n, *, impl: str | None = None, algorithm: str | None = None, interpret: bool = False):
  """(k, r) of the seed program for every element of ``n``: int32 arrays of n's shape, exact.

  n: integer array (any shape, values in [1, 2**30]); k is the smallest maximizer of i*i mod n over
  0 <= i <= floor(n**0.7) (exact K) and r = k*k mod n.
  impl: None (auto: on CPU "reference" when every n < CPU_SMALL_N, where the row-tile sorting and padding cost
  more than they save (results/kernels_bench.json: 0.44x the reference at n ~ 2**12, 1.07x at 2**20), else "xla";
  "pallas" on GPU/TPU, "pallas" in interpret mode when ``interpret``), "pallas"
  (the fused kernel; Triton on GPU, Mosaic on TPU, interpreted on CPU), "xla" (the same row-tile search as XLA
  ops), or "reference" (``search_reference``).
  algorithm: None (auto: "banded", fastest at every size measured), "banded" (n**0.4 band tops) or "brute"
  (all n**0.7 candidates: the literal search). All combinations give identical answers.
  interpret: run the Pallas kernel in interpret mode (tests on CPU).
  Batch sizes are padded to powers of two (padding rows n = 1), so jit compiles once per size bucket.
  Raises ValueError on values outside [1, 2**30] (when concrete), a non-integer dtype, or an unknown impl or
  algorithm.
  """
  _backend.check_impl(impl)
  _checks.check_choice("algorithm", algorithm, ALGORITHMS, allow_none=True)
  _checks.check_bool("interpret", interpret)
  validate_n(n)
  algorithm = algorithm or "banded"
  small = (impl is None and not interpret and _backend.default_backend() == "cpu" and _checks.is_concrete(n)
           and np.size(n) > 0 and int(np.max(n)) < CPU_SMALL_N)
  impl = "reference" if small else _backend.resolve_impl(impl, interpret)
  n = jnp.asarray(n)
  if impl == "reference":
    return search_reference(n.astype(jnp.int32), algorithm)
  shape = n.shape
  flat = n.reshape(-1).astype(jnp.int32)
  size = flat.shape[0]
  if size == 0:
    return jnp.zeros(shape, jnp.int32), jnp.zeros(shape, jnp.int32)
  padded = _backend.bucket(size, ROW_BLOCK)
  flat = jnp.pad(flat, (0, padded - size), constant_values=1)
  platform = _backend.pallas_platform(interpret) if impl == "pallas" else "xla"
  k, r = _search_padded(flat, algorithm=algorithm, impl=impl, platform=platform)
  return k[:size].reshape(shape), r[:size].reshape(shape)
