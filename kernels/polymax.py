"""Polynomial maximization on [0, 1], the seed task of question 1: exact maxima of batched polynomials in float32.

Coefficients are in ascending powers, as numpy.polynomial: ``coeffs[..., j]`` multiplies x**j; the degree is
``coeffs.shape[-1] - 1``; leading axes are batch axes.

The maximum is found as a person would: evaluate P on a uniform grid of G points including 0 and 1, cut the grid
into ``SEGMENTS`` = 128 segments of ceil(G / 128) consecutive points, keep each segment's best grid local maximum
and the ``num_candidates(D)`` best of those (so that a near-tie between two separate peaks is not lost), refine
each by bisection on P' inside its two neighbouring grid cells, add both endpoints, re-evaluate every candidate
with a compensated Horner scheme (about twice float32's precision), and pick the best; candidates within
``tie_tolerance`` of the best count as tied and the smallest x wins.

Error bound (value): |max_returned - max_[0,1] P| <= 1e-6 * max(1, sum_j |c_j|). Why: (1) the grid's largest value
(first index on ties) is a grid local maximum, the best of its segment and so the first candidate: keeping one
local maximum per segment never drops it. In exact arithmetic it is within d(d-1)/8 * h**2 * sum|c| of the maximum
(P'' <= d(d-1) sum|c| on [0,1] and the maximum is at most h/2 from a grid point), and ``default_grid_points``
picks h so that this is <= 2.5e-7 * sum|c|; refinement only moves a candidate to a better point. The grid values
themselves are float32 Horner sums (error <= 2d * 2**-24 * sum|c| each), which can reorder two peaks whose heights
differ by less than twice that. Two such peaks in different segments are both kept (``num_candidates(D)`` exceeds
the d//2 + 2 peaks a degree-d polynomial has, endpoints included) and compared by (2) after refinement, unless
rounding noise on a flat stretch fills the list; within one segment (closer than S grid cells) only the one that
looks higher is kept, which gives up at most that rounding gap. The float64 tests check the bound. (2) Compensated
Horner evaluates P with error <= 2**-24 |P| + 2 (2d * 2**-24)**2 sum|c|, below 1e-7 * sum|c| for d <= 32. (3) Ties:
at most ``tie_tolerance`` = 2**-22 * max(1, sum|c|) ~ 2.4e-7 * scale is given up to prefer the smaller x. The
returned value is P(argmax) evaluated by (2), so P(argmax) matches it to the same bound.
"""
from __future__ import annotations

import functools
import math

import jax
from jax.experimental import pallas as pl
import jax.numpy as jnp
import numpy as np

from mesabench.kernels import _backend
from mesabench.kernels import _checks

MAX_DEGREE = 32
"""Largest degree the error analysis above covers."""

TIE_RELATIVE = 2.0**-22
"""Candidates within TIE_RELATIVE * max(1, sum|c|) of the best value are ties; the smallest x wins."""

BISECTION_STEPS = 24
"""Bisection steps on P' inside a bracket of two grid cells: 2h / 2**24 is below float32 resolution on [0, 1]."""

MAX_GRID_POINTS = 2**24 + 1
"""Largest grid: indices g <= 2**24 are exact in float32, so every grid point x_g = g * h is placed exactly once."""


def default_grid_points(degree: int) -> int:
  """Smallest G = 2**m + 1 >= 1025 whose grid bound d(d-1)/8 h**2 (h = 1/(G-1)) is <= 2.5e-7 (relative to sum|c|)."""
  if degree < 0 or degree > MAX_DEGREE:
    raise ValueError(f"degree must be in [0, {MAX_DEGREE}], got {degree}")
  need = math.sqrt(max(degree * (degree - 1), 1) / 8.0 / 2.5e-7)
  return 2 ** max(10, math.ceil(math.log2(need))) + 1


def num_candidates(degree: int) -> int:
  """How many grid local maxima are refined: a degree-d polynomial has at most d//2 interior local maxima."""
  return degree // 2 + 3


def validate_coeffs(coeffs, name: str = "coeffs") -> None:
  """Shape [..., D+1] with 0 <= D <= MAX_DEGREE, a float dtype, and (when concrete) finite values."""
  shape = np.shape(coeffs)
  if len(shape) < 1 or shape[-1] < 1:
    raise ValueError(f"{name} must have shape [..., degree+1] with degree >= 0, got shape {shape}")
  if shape[-1] - 1 > MAX_DEGREE:
    raise ValueError(f"{name}: degree must be in [0, {MAX_DEGREE}], got {shape[-1] - 1}")
  dtype = coeffs.dtype if hasattr(coeffs, "dtype") else np.asarray(coeffs).dtype
  if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
    raise ValueError(f"{name} must hold real numbers (a float or integer dtype), got dtype {dtype}")
  _checks.check_finite(name, coeffs)


# ----------------------------------------------------------------------------------------------- evaluation


def horner(coeffs, x):
  """P(x) by Horner in the dtype of the inputs; coeffs [..., D+1] broadcast against x [..., M] as [..., 1, D+1]."""
  c = coeffs[..., None, :]
  acc = jnp.broadcast_to(c[..., -1], jnp.broadcast_shapes(c.shape[:-1], x.shape)).astype(x.dtype)
  for j in range(coeffs.shape[-1] - 2, -1, -1):
    acc = acc * x + c[..., j]
  return acc


def derivative(coeffs):
  """Coefficients of P' (ascending powers), shape [..., max(D, 1)]; degree 0 gives the zero polynomial."""
  d = coeffs.shape[-1] - 1
  if d == 0:
    return jnp.zeros_like(coeffs)
  return coeffs[..., 1:] * jnp.arange(1, d + 1, dtype=coeffs.dtype)


def _split(a):
  """a = hi + lo exactly, hi keeping the top 12 significand bits (bit mask, so FMA contraction cannot break it)."""
  bits = jax.lax.bitcast_convert_type(a, jnp.uint32) & jnp.uint32(0xFFFFF000)
  hi = jax.lax.bitcast_convert_type(bits, jnp.float32)
  return hi, a - hi


def _two_prod(a, b):
  """p + e = a * b exactly (Dekker's product; every partial product is exact, so contraction is harmless)."""
  p = a * b
  ah, al = _split(a)
  bh, bl = _split(b)
  e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
  return p, e


def _two_sum(a, b):
  """s + e = a + b exactly (Knuth's TwoSum)."""
  s = a + b
  bb = s - a
  e = (a - (s - bb)) + (b - bb)
  return s, e


def horner_compensated(coeffs, x):
  """P(x) with compensated Horner (Graillat, Langlois, Louvet 2005): about twice float32's precision.

  Error <= 2**-24 |P(x)| + 2 (2d 2**-24)**2 sum_j |c_j| |x|**j. float32 in and out; same broadcasting as ``horner``.
  """
  coeffs = coeffs.astype(jnp.float32)
  x = x.astype(jnp.float32)
  c = coeffs[..., None, :]
  shape = jnp.broadcast_shapes(c.shape[:-1], x.shape)
  s = jnp.broadcast_to(c[..., -1], shape)
  e = jnp.zeros(shape, jnp.float32)
  for j in range(coeffs.shape[-1] - 2, -1, -1):
    p, pe = _two_prod(s, x)
    s, se = _two_sum(p, c[..., j])
    e = e * x + (pe + se)
  return s + e


def evaluate_reference(coeffs, xs):
  """P(xs) for coeffs [..., D+1] and xs [..., M] (float32, plain Horner): the unfused reference of ``evaluate``."""
  validate_coeffs(coeffs)
  return jax.jit(horner)(jnp.asarray(coeffs, jnp.float32), jnp.asarray(xs, jnp.float32))


# ----------------------------------------------------------------------------------------------- maximization


def _refine(dcoeffs, lo, hi):
  """Bisection for a + to - sign change of P' in [lo, hi]; returns (x, bracketed) with x the midpoint at the end."""
  d_lo = horner(dcoeffs, lo)
  d_hi = horner(dcoeffs, hi)
  bracketed = (d_lo > 0) & (d_hi < 0)

  def body(_, carry):
    a, b = carry
    mid = 0.5 * (a + b)
    up = horner(dcoeffs, mid) > 0
    return jnp.where(up, mid, a), jnp.where(up, b, mid)

  a, b = jax.lax.fori_loop(0, BISECTION_STEPS, body, (lo, hi))
  return 0.5 * (a + b), bracketed


def grid_local_maxima(values, num: int):
  """Indices [..., num] of the ``num`` best grid local maxima and a validity mask (fewer may exist).

  A grid point is a local maximum if it beats its left neighbour strictly and its right one weakly (so a flat
  run counts once, at its left end); the endpoints count when they beat (resp. tie) their one neighbour.
  The global top ``num`` by (value desc, index asc), two of which may lie in one segment: the difficulty features
  of the tasks and the search baseline use it; ``maximize`` and its reference keep ``segment_maxima`` instead.
  """
  left = jnp.concatenate([jnp.full_like(values[..., :1], -jnp.inf), values[..., :-1]], axis=-1)
  right = jnp.concatenate([values[..., 1:], jnp.full_like(values[..., :1], -jnp.inf)], axis=-1)
  is_max = (values > left) & (values >= right)
  masked = jnp.where(is_max, values, -jnp.inf)
  num = min(num, values.shape[-1])
  top_vals, top_idx = jax.lax.top_k(masked, num)
  return top_idx, top_vals > -jnp.inf


SEGMENTS = 128
"""Grid segments per polynomial: segment t holds the grid indices [t*S, min((t+1)*S, G)), S = ceil(G / SEGMENTS).
128 is the TPU lane width: the Pallas kernel walks one segment per lane."""


def segment_length(grid_points: int) -> int:
  """S = ceil(G / SEGMENTS): grid points per segment (the last segments may be short or empty)."""
  return -(-grid_points // SEGMENTS)


def segment_maxima(values, num: int):
  """Indices [..., num] of the ``num`` best segment maxima of the grid and a validity mask (fewer may exist).

  Local maxima as ``grid_local_maxima``. A segment's maximum is its largest grid local maximum (the smallest index
  on ties; none when the segment has no local maximum); the ``num`` best of these in the order (value descending,
  index ascending) are kept. The grid's largest value (first index) is always the first one.
  ``values`` [..., G] is P on the grid; materializes [..., SEGMENTS, S] (the reference of the fused pass).
  """
  g = values.shape[-1]
  seg = segment_length(g)
  left = jnp.concatenate([jnp.full_like(values[..., :1], -jnp.inf), values[..., :-1]], axis=-1)
  right = jnp.concatenate([values[..., 1:], jnp.full_like(values[..., :1], -jnp.inf)], axis=-1)
  masked = jnp.where((values > left) & (values >= right), values, -jnp.inf)
  pad = [(0, 0)] * (values.ndim - 1) + [(0, SEGMENTS * seg - g)]
  masked = jnp.pad(masked, pad, constant_values=-jnp.inf).reshape(values.shape[:-1] + (SEGMENTS, seg))
  best = jnp.max(masked, axis=-1)
  first = jnp.argmax(masked == best[..., None], axis=-1).astype(jnp.int32)  # first index of the segment's best
  top_vals, top_seg = jax.lax.top_k(best, min(num, SEGMENTS))
  idx = top_seg * seg + jnp.take_along_axis(first, top_seg, axis=-1)
  return idx, top_vals > -jnp.inf


def grid_x(idx, grid_points: int):
  """Grid point x_g = g * h in float32 with h = fl(1 / (G - 1)), for int32 indices g in [0, G - 1].

  The reference, the fused kernel and the refinement all place grid points with this one formula, so that they
  see the same grid (x_{G-1} may round to 1 - 2**-24 instead of 1; the endpoint x = 1 is always a candidate).
  """
  return idx.astype(jnp.float32) * jnp.float32(1.0 / (grid_points - 1))


def candidates_from_grid(coeffs, grid_values, grid_points: int, num: int):
  """Refined candidates (x, value, valid) [..., 2*num + 2] from the grid's ``num`` best local maxima.

  Per local maximum both the grid point and the bisection point of P' in its two neighbouring cells; then x = 0
  and x = 1. Values by compensated Horner. ``grid_values`` [..., G] is P on x_g = ``grid_x(g)``.
  """
  idx, valid = grid_local_maxima(grid_values, num)
  return candidates_from_indices(coeffs, idx, valid, grid_points)


def candidates_from_indices(coeffs, idx, valid, grid_points: int):
  """Refined candidates (x, value, valid) [..., 2*num + 2] from grid local maxima ``idx`` [..., num] (int32).

  ``valid`` [..., num] marks real local maxima. What ``candidates_from_grid`` does after choosing the maxima; the
  fused kernel chooses them without materializing the grid and calls this.
  """
  h = 1.0 / (grid_points - 1)
  xg = grid_x(idx, grid_points)
  lo = jnp.maximum(idx - 1, 0).astype(jnp.float32) * jnp.float32(h)
  hi = jnp.minimum(idx + 1, grid_points - 1).astype(jnp.float32) * jnp.float32(h)
  xr, bracketed = _refine(derivative(coeffs), lo, hi)
  xr = jnp.where(bracketed, xr, xg)
  ends = jnp.broadcast_to(jnp.array([0.0, 1.0], jnp.float32), coeffs.shape[:-1] + (2,))
  xs = jnp.concatenate([xg, xr, ends], axis=-1)
  ok = jnp.concatenate([valid, valid & bracketed, jnp.ones(ends.shape, bool)], axis=-1)
  vals = horner_compensated(coeffs, xs)
  return xs, jnp.where(ok, vals, -jnp.inf), ok


def tie_tolerance(coeffs):
  """TIE_RELATIVE * max(1, sum_j |c_j|), per polynomial ([...])."""
  return jnp.float32(TIE_RELATIVE) * jnp.maximum(1.0, jnp.sum(jnp.abs(coeffs), axis=-1))


def select(coeffs, xs, vals):
  """(max_value, argmax) from candidates: the smallest x among those within the tie tolerance of the best."""
  best = jnp.max(vals, axis=-1)
  tied = vals >= (best - tie_tolerance(coeffs))[..., None]
  x_pick = jnp.min(jnp.where(tied, xs, jnp.inf), axis=-1)
  v_pick = horner_compensated(coeffs, x_pick[..., None])[..., 0]
  return v_pick, x_pick


@functools.partial(jax.jit, static_argnames=("grid_points",))
def _grid_values(coeffs, grid_points: int):
  return horner(coeffs, grid_x(jnp.arange(grid_points, dtype=jnp.int32), grid_points))  # [..., G]: materialized


@functools.partial(jax.jit, static_argnames=("grid_points",))
def _maximize_from_grid(coeffs, values, grid_points: int):
  degree = coeffs.shape[-1] - 1
  idx, valid = segment_maxima(values, num_candidates(degree))
  xs, vals, _ = candidates_from_indices(coeffs, idx, valid, grid_points)
  return select(coeffs, xs, vals)


def _maximize_reference(coeffs, grid_points: int):
  # Two jitted stages on purpose: fused into one program, XLA:CPU recomputes P inside the neighbour comparisons
  # with different FMA contraction (optimization_barrier does not stop it), so a flat top's centre and its
  # neighbours can disagree and the peak is lost. A jit boundary materializes the grid values once.
  return _maximize_from_grid(coeffs, _grid_values(coeffs, grid_points), grid_points)


def _checked(coeffs, grid_points):
  """(coeffs as float32, G): validated coefficients and the grid size (default ``default_grid_points(D)``)."""
  validate_coeffs(coeffs)
  coeffs = jnp.asarray(coeffs, jnp.float32)
  if grid_points is None:
    return coeffs, default_grid_points(coeffs.shape[-1] - 1)
  return coeffs, _checks.check_int("grid_points", grid_points, 3, MAX_GRID_POINTS)  # 2.9 is an error, not 2


def maximize_reference(coeffs, grid_points: int | None = None):
  """(max_value, argmax) of P on [0, 1] for coeffs [..., D+1] (float32), within the module's error bound.

  grid_points: G >= 3 (default ``default_grid_points(D)``); a coarser grid than the default voids the bound.
  Unfused: materializes P on the whole grid, [..., G] floats, and picks candidates with ``segment_maxima``.
  """
  coeffs, g = _checked(coeffs, grid_points)
  return _maximize_reference(coeffs, g)


# ------------------------------------------------------------------------------------------- fused kernels
#
# maximize: the grid's segment maxima (``segment_maxima``) without materializing P on the whole grid, then the
# reference's own refinement and selection (``candidates_from_indices``, ``select``).
#
# Pallas: one pass per block of ROW_BLOCK rows over a [rows, SEGMENTS] tile. Lane t walks segment t one point per
# step (S + 2 points: the segment and one neighbour on each side), so a point's left and right neighbours are the
# lane's previous and next values: no shifts across lanes, which neither Triton nor Mosaic does cheaply. Each lane
# keeps its best local maximum (value, first index); the ``num`` best lanes (value desc, index asc) are the answer.
# Working memory O(ROW_BLOCK * SEGMENTS) per program.
#
# XLA (CPU): ``lax.map`` over blocks of rows; a block evaluates P on a [rows, SEGMENTS, S + 2] tile (each segment
# with its two neighbours; -inf outside the grid), materialized once behind an optimization barrier so that the
# reductions read it instead of re-running Horner: the local-maximum test and a max per segment give the segment
# maxima [rows, SEGMENTS], top_k the ``num`` best segments, and the first index of the maximum is then found in
# those ``num`` segments only (a gather of [rows, num, S + 2]; half the time of a second full reduction at
# G = 65536). Working memory per block: rows_block * SEGMENTS * (S + 2) ~ rows_block * (G + 2 * SEGMENTS)
# floats, which ``xla_rows_block`` keeps at most XLA_BLOCK_POINTS when G allows (one row per block beyond); it does
# not grow with the batch. Inputs and outputs add O(B * (D + num)). Both paths place grid points with ``grid_x``
# and evaluate plain float32 Horner as the reference does (XLA:CPU contracts each step to an FMA in each context
# measured; the tests check that the fused paths pick the reference's grid indices exactly, flat and noisy tops
# included). Alternatives measured slower on XLA:CPU: one variadic (value, index) reduction or jnp.argmax per
# segment (about 7x the two plain reductions), lax.top_k over the whole masked grid (about 3x), a fori_loop over
# grid segments with dynamic slices.

ROW_BLOCK = 8
"""Rows per Pallas grid step (TPU sublanes; a power of two for Triton)."""

LANES = SEGMENTS
"""Lanes of a Pallas tile: one grid segment per lane (TPU lane width)."""

XLA_BLOCK_POINTS = 2**17
"""Target grid points per block on the XLA path (rows_block * SEGMENTS * (S + 2)): a 512 KiB tile stays in L2
(measured on the 2-core CPU: 2**15 to 2**19 time alike within the noise; fewer, larger blocks cut loop overhead)."""

EVAL_LANES = 128
"""Points per row per Pallas grid step of ``evaluate``."""

_NEG_INF = float("-inf")


def _pow2(x: int) -> int:
  return 1 << max(int(x) - 1, 0).bit_length()


def xla_rows_block(rows: int, grid_points: int) -> int:
  """Rows per block on the XLA path: the largest power of two <= ``rows`` (a power of two) whose tile of
  rows * SEGMENTS * (S + 2) points is at most XLA_BLOCK_POINTS, and at least 1."""
  tile = SEGMENTS * (segment_length(grid_points) + 2)
  block = 1
  while block * 2 <= rows and block * 2 * tile <= XLA_BLOCK_POINTS:
    block *= 2
  return block


def _columns(c):
  """Coefficient columns [R, 1] of c (an array or a Ref [R, P]); a Ref is read column by column (Triton has no
  value slices)."""
  return [c[:, pl.ds(j, 1)] if not isinstance(c, jax.Array) else c[:, j:j + 1] for j in range(c.shape[1])]


def _horner_rows(cols, x):
  """P(x) for coefficient columns cols (ascending, [R, 1] each; zero columns on top are exact) at x [R, T]."""
  acc = jnp.broadcast_to(cols[-1], x.shape)
  for col in reversed(cols[:-1]):
    acc = acc * x + col
  return acc


def _scan_lanes(cols, *, grid_points: int, lanes: int):
  """Per lane of a [R, lanes] tile: the best grid local maximum of segment ``lane`` (value, index; ties to the
  smaller index; -inf and index G when the segment has none)."""
  rows = cols[0].shape[0]
  seg = segment_length(grid_points)
  shape = (rows, lanes)
  start = jax.lax.broadcasted_iota(jnp.int32, shape, 1) * seg - 1  # g of step 0: the segment's left neighbour

  def value(g):
    v = _horner_rows(cols, grid_x(g, grid_points))
    return jnp.where((g >= 0) & (g < grid_points), v, _NEG_INF)

  def body(s, carry):
    left, mid, bv, bi = carry
    g = start + s  # the new right neighbour; the centre g - 1 is inside the lane's segment for s in [2, S + 1]
    right = value(g)
    is_max = (mid > left) & (mid >= right)  # -inf centres (outside the grid) never pass
    better = is_max & (mid > bv)  # strict: indices rise along a lane, so ties keep the smaller index
    return mid, right, jnp.where(better, mid, bv), jnp.where(better, g - 1, bi)

  init = (value(start), value(start + 1), jnp.full(shape, _NEG_INF, jnp.float32),
          jnp.full(shape, grid_points, jnp.int32))
  _, _, bv, bi = jax.lax.fori_loop(2, seg + 2, body, init)
  return bv, bi


def _top_of_lanes(bv, bi, *, grid_points: int, num: int, slots: int):
  """The ``num`` best (value desc, index asc) of the lane bests bv, bi [R, T] as (values, indices) [R, slots];
  entries past the real maxima hold (-inf, G + slot), slots >= num are unused."""
  rows = bv.shape[0]
  slot = jax.lax.broadcasted_iota(jnp.int32, (rows, slots), 1)
  lv = jnp.full((rows, slots), _NEG_INF, jnp.float32)
  li = grid_points + slot
  for k in range(num):
    v = jnp.max(bv, axis=1, keepdims=True)
    i = jnp.min(jnp.where(bv == v, bi, jnp.int32(2**31 - 1)), axis=1, keepdims=True)
    found = v > _NEG_INF
    lv = jnp.where((slot == k) & found, v, lv)
    li = jnp.where((slot == k) & found, i, li)
    bv = jnp.where(found & (bi == i), _NEG_INF, bv)
  return lv, li


def _maximize_kernel(c_ref, v_ref, i_ref, *, grid_points: int, num: int):
  bv, bi = _scan_lanes(_columns(c_ref), grid_points=grid_points, lanes=LANES)
  lv, li = _top_of_lanes(bv, bi, grid_points=grid_points, num=num, slots=v_ref.shape[1])
  v_ref[...] = lv
  i_ref[...] = li


def _segment_top_xla(coeffs, *, grid_points: int, num: int):
  """``segment_maxima`` of one block of rows, coeffs [R, D+1], as XLA ops on a [R, SEGMENTS, S + 2] tile:
  (values, indices) [R, num], -inf values where fewer exist."""
  seg = segment_length(grid_points)
  shape = (SEGMENTS, seg + 2)
  g = jax.lax.broadcasted_iota(jnp.int32, shape, 0) * seg - 1 + jax.lax.broadcasted_iota(jnp.int32, shape, 1)
  v = horner(coeffs[:, None, :], grid_x(g, grid_points)[None])
  v = jnp.where((g >= 0) & (g < grid_points), v, _NEG_INF)
  v = jax.lax.optimization_barrier(v)  # materialize the tile once: the reductions below must not re-run Horner

  def local_maxima(w):  # [..., S + 2] with neighbours -> [..., S]: the centre where it is a local maximum, else -inf
    mid = w[..., 1:-1]
    return jnp.where((mid > w[..., :-2]) & (mid >= w[..., 2:]), mid, _NEG_INF)  # -inf centres never pass

  top_vals, top_seg = jax.lax.top_k(jnp.max(local_maxima(v), axis=-1), num)
  chosen = local_maxima(jnp.take_along_axis(v, top_seg[..., None], axis=1))  # [R, num, S]: only the kept segments
  pos = jax.lax.broadcasted_iota(jnp.int32, chosen.shape, 2)
  first = jnp.min(jnp.where(chosen == top_vals[..., None], pos, seg), axis=-1)
  return top_vals, top_seg * seg + first


def maximize_cost(rows: int, degree: int, grid_points: int) -> pl.CostEstimate:
  """Cost of the grid pass on ``rows`` rows: 2 flops per Horner step per point, about 6 more per point for the
  range test, the local-maximum test and the running best; bytes: coefficients in, candidate lists out."""
  points = rows * SEGMENTS * (segment_length(grid_points) + 2)
  flops = points * (2 * degree + 6)
  return pl.CostEstimate(flops=int(flops), transcendentals=0,
                         bytes_accessed=int(4 * rows * (degree + 1 + 2 * (num_candidates(degree) + 1))))


def _grid_pass(coeffs, *, grid_points: int, num: int, impl: str, platform: str):
  """Segment maxima of coeffs [B, P] (B a multiple of ROW_BLOCK, a power of two): (indices, valid) [B, num]."""
  rows, width = coeffs.shape
  if impl == "pallas":
    slots = _pow2(num)
    out = (jax.ShapeDtypeStruct((rows, slots), jnp.float32), jax.ShapeDtypeStruct((rows, slots), jnp.int32))
    lv, li = pl.pallas_call(
        functools.partial(_maximize_kernel, grid_points=grid_points, num=num),
        out_shape=out,
        grid=(rows // ROW_BLOCK,),
        in_specs=[pl.BlockSpec((ROW_BLOCK, width), lambda b: (b, 0))],
        out_specs=(pl.BlockSpec((ROW_BLOCK, slots), lambda b: (b, 0)),) * 2,
        compiler_params=_backend.compiler_params(platform),
        cost_estimate=maximize_cost(rows, width - 1, grid_points),
        interpret=platform == "interpret",
        name="polymax_grid",
    )(coeffs)
    lv, li = lv[:, :num], li[:, :num]
  else:
    block = xla_rows_block(rows, grid_points)
    top = functools.partial(_segment_top_xla, grid_points=grid_points, num=num)
    lv, li = jax.lax.map(top, coeffs.reshape(rows // block, block, width))
    lv, li = lv.reshape(rows, num), li.reshape(rows, num)
  return li, lv > _NEG_INF


@functools.partial(jax.jit, static_argnames=("grid_points", "impl", "platform"))
def _maximize_padded(coeffs, *, grid_points: int, impl: str, platform: str):
  degree = coeffs.shape[-1] - 1
  padded = coeffs
  if impl == "pallas":  # Triton wants power-of-two shapes; zero top coefficients leave Horner unchanged
    padded = jnp.pad(coeffs, ((0, 0), (0, _pow2(degree + 1) - degree - 1)))
  idx, valid = _grid_pass(padded, grid_points=grid_points, num=num_candidates(degree), impl=impl,
                          platform=platform)
  xs, vals, _ = candidates_from_indices(coeffs, idx, valid, grid_points)
  return select(coeffs, xs, vals)


def maximize(coeffs, *, impl: str | None = None, interpret: bool = False, grid_points: int | None = None):
  """(max_value, argmax) of P on [0, 1] for coeffs [..., D+1] (float32; D <= 32), each of shape [...].

  The same answer as ``maximize_reference`` (same grid, candidates, refinement and tie rule; the module's error
  bound |max_value - max P| <= 1e-6 * max(1, sum|c|), ties within ``tie_tolerance`` to the smallest x), without
  materializing P on the grid: memory O(B * (D + num_candidates(D))) plus a bounded working tile per block of
  rows (Pallas: ROW_BLOCK x SEGMENTS floats; XLA: rows_block x (G + 2 SEGMENTS) floats, about XLA_BLOCK_POINTS,
  independent of B).
  impl: None (auto: "xla" on CPU, "pallas" on GPU/TPU and with ``interpret``), "pallas" (fused kernel: Triton
  on GPU, Mosaic on TPU, interpreted on CPU), "xla" (row blocks of XLA ops, the fastest path on CPU), "reference".
  grid_points: G >= 3 (default ``default_grid_points(D)``); a coarser grid voids the bound.
  Batch sizes are padded to powers of two, so jit compiles once per size bucket.
  Raises ValueError on bad shapes, degree > 32, NaN/inf (when concrete), G < 3, or an unknown impl.
  """
  _backend.check_impl(impl)
  _checks.check_bool("interpret", interpret)
  coeffs, g = _checked(coeffs, grid_points)
  impl = _backend.resolve_impl(impl, interpret)
  if impl == "reference":
    return maximize_reference(coeffs, g)
  batch = coeffs.shape[:-1]
  size = math.prod(batch)
  if size == 0:
    return jnp.zeros(batch, jnp.float32), jnp.zeros(batch, jnp.float32)
  flat = coeffs if coeffs.ndim == 2 else coeffs.reshape(size, coeffs.shape[-1])  # eager ops only where needed
  padded = _backend.bucket(size, ROW_BLOCK)
  if padded != size:
    flat = jnp.pad(flat, ((0, padded - size), (0, 0)))
  platform = _backend.pallas_platform(interpret) if impl == "pallas" else "xla"
  value, x = _maximize_padded(flat, grid_points=g, impl=impl, platform=platform)
  if padded != size:
    value, x = value[:size], x[:size]
  if len(batch) != 1:
    value, x = value.reshape(batch), x.reshape(batch)
  return value, x


def _evaluate_kernel(c_ref, x_ref, o_ref):
  o_ref[...] = _horner_rows(_columns(c_ref), x_ref[...])


@functools.partial(jax.jit, static_argnames=("impl", "platform"))
def _evaluate_padded(coeffs, xs, *, impl: str, platform: str):
  if impl != "pallas":
    return horner(coeffs, xs)
  rows, m = xs.shape
  width = _pow2(coeffs.shape[1])
  coeffs = jnp.pad(coeffs, ((0, 0), (0, width - coeffs.shape[1])))
  return pl.pallas_call(
      _evaluate_kernel,
      out_shape=jax.ShapeDtypeStruct((rows, m), jnp.float32),
      grid=(rows // ROW_BLOCK, m // EVAL_LANES),
      in_specs=[pl.BlockSpec((ROW_BLOCK, width), lambda b, j: (b, 0)),
                pl.BlockSpec((ROW_BLOCK, EVAL_LANES), lambda b, j: (b, j))],
      out_specs=pl.BlockSpec((ROW_BLOCK, EVAL_LANES), lambda b, j: (b, j)),
      compiler_params=_backend.compiler_params(platform) if platform != "tpu" else _tpu_params_2d(),
      cost_estimate=pl.CostEstimate(flops=int(2 * (width - 1) * rows * m), transcendentals=0,
                                    bytes_accessed=int(4 * (rows * width + 2 * rows * m))),
      interpret=platform == "interpret",
      name="polymax_evaluate",
  )(coeffs, xs)


def _tpu_params_2d():
  from jax.experimental.pallas import tpu as pltpu  # pylint: disable=g-import-not-at-top
  return pltpu.CompilerParams(dimension_semantics=("parallel", "parallel"))


def evaluate(coeffs, xs, *, impl: str | None = None, interpret: bool = False):
  """P(xs) by plain float32 Horner for coeffs [..., D+1] and xs [..., M] (leading axes broadcast); [..., M].

  The same operations as ``evaluate_reference`` (one multiply-add per degree per point; up to FMA contraction,
  results agree to float32 rounding). impl: None (auto: XLA's fused Horner on CPU, the Pallas kernel on GPU/TPU
  and with ``interpret``), "pallas", "xla" or "reference". Raises ValueError on bad shapes, degree > 32, NaN/inf
  coefficients (when concrete) or an unknown impl.
  """
  _backend.check_impl(impl)
  _checks.check_bool("interpret", interpret)
  validate_coeffs(coeffs)
  impl = _backend.resolve_impl(impl, interpret)
  if impl == "reference":
    return evaluate_reference(coeffs, xs)
  coeffs = jnp.asarray(coeffs, jnp.float32)
  xs = jnp.asarray(xs, jnp.float32)
  if xs.ndim < 1:
    raise ValueError(f"xs must have shape [..., M] with at least one axis, got shape {xs.shape}")
  batch = jnp.broadcast_shapes(coeffs.shape[:-1], xs.shape[:-1])
  m = xs.shape[-1]
  coeffs = jnp.broadcast_to(coeffs, batch + coeffs.shape[-1:]).reshape(-1, coeffs.shape[-1])
  xs = jnp.broadcast_to(xs, batch + (m,)).reshape(-1, m)
  size = xs.shape[0]
  if size == 0 or m == 0:
    return jnp.zeros(batch + (m,), jnp.float32)
  platform = _backend.pallas_platform(interpret) if impl == "pallas" else "xla"
  if impl == "pallas":
    rows = _backend.bucket(size, ROW_BLOCK)
    cols = -(-m // EVAL_LANES) * EVAL_LANES
    coeffs = jnp.pad(coeffs, ((0, rows - size), (0, 0)))
    xs = jnp.pad(xs, ((0, rows - size), (0, cols - m)))
  out = _evaluate_padded(coeffs, xs, impl=impl, platform=platform)
  return out[:size, :m].reshape(batch + (m,))
