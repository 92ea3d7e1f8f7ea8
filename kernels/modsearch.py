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
import jax.numpy as jnp
import numpy as np

from mesabench.kernels import _checks

N_MAX = 2**30
"""Largest n the exact 32-bit arithmetic supports (the seed's bound)."""

K_MAX = 2**21
"""kmax(N_MAX): the largest loop bound, 2**21 exactly (2**30 is (2**3)**10, so K = (2**3)**7)."""

ALGORITHMS = ("banded", "brute")

_LIMB = 16
_LIMB_MASK = (1 << _LIMB) - 1
_NUM_LIMBS = 15  # 2**240 > 2**220 >= (2**22)**10 and (2**31)**7.


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
  return est - 3 + jnp.sum(ok.astype(jnp.int32), axis=0)


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

  Domain: 0 <= i <= 2**22, 1 <= n <= 2**30 and i*i / n < 2**20 (every caller here has i <= kmax(n) + 1024, so
  i*i/n <= n**0.4 + 1 < 2**13). Proof: f = fl(fl(i*i) / n) in float32 has relative error < 2**-23 (two roundings;
  i is exact in float32), so |f - i*i/n| < 2**20 * 2**-23 = 1/8 and b0 = floor(f) is the true band or one off.
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
  if algorithm not in ALGORITHMS:
    raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
  validate_n(n)
  n = jnp.asarray(n)
  if algorithm == "banded":
    return _banded_reference(n)
  return _brute_reference(n)
