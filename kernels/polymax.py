"""Polynomial maximization on [0, 1], the seed task of question 1: exact maxima of batched polynomials in float32.

Coefficients are in ascending powers, as numpy.polynomial: ``coeffs[..., j]`` multiplies x**j; the degree is
``coeffs.shape[-1] - 1``; leading axes are batch axes.

The maximum is found as a person would: evaluate P on a uniform grid of G points including 0 and 1, keep the
grid's local maxima (the few best, so that a near-tie between two separate peaks is not lost), refine each by
bisection on P' inside its two neighbouring grid cells, add both endpoints, re-evaluate every candidate with a
compensated Horner scheme (about twice float32's precision), and pick the best; candidates within
``tie_tolerance`` of the best count as tied and the smallest x wins.

Error bound (value): |max_returned - max_[0,1] P| <= 1e-6 * max(1, sum_j |c_j|). Why: (1) the grid alone is within
d(d-1)/8 * h**2 * sum|c| of the maximum (P'' <= d(d-1) sum|c| on [0,1] and the maximum is at most h/2 from a grid
point), and ``default_grid_points`` picks h so that this is <= 2.5e-7 * sum|c|; refinement only moves a candidate
to a better point. (2) Compensated Horner evaluates P with error <= 2**-24 |P| + 2 (2d * 2**-24)**2 sum|c|, below
1e-7 * sum|c| for d <= 32. (3) Ties: at most ``tie_tolerance`` = 2**-22 * max(1, sum|c|) ~ 2.4e-7 * scale is given
up to prefer the smaller x. The returned value is P(argmax) evaluated by (2), so P(argmax) matches it to the same
bound.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from mesabench.kernels import _checks

MAX_DEGREE = 32
"""Largest degree the error analysis above covers."""

TIE_RELATIVE = 2.0**-22
"""Candidates within TIE_RELATIVE * max(1, sum|c|) of the best value are ties; the smallest x wins."""

BISECTION_STEPS = 24
"""Bisection steps on P' inside a bracket of two grid cells: 2h / 2**24 is below float32 resolution on [0, 1]."""


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
  """
  left = jnp.concatenate([jnp.full_like(values[..., :1], -jnp.inf), values[..., :-1]], axis=-1)
  right = jnp.concatenate([values[..., 1:], jnp.full_like(values[..., :1], -jnp.inf)], axis=-1)
  is_max = (values > left) & (values >= right)
  masked = jnp.where(is_max, values, -jnp.inf)
  num = min(num, values.shape[-1])
  top_vals, top_idx = jax.lax.top_k(masked, num)
  return top_idx, top_vals > -jnp.inf


def candidates_from_grid(coeffs, grid_values, grid_points: int, num: int):
  """Refined candidates (x, value, valid) [..., 2*num + 2] from the grid's ``num`` best local maxima.

  Per local maximum both the grid point and the bisection point of P' in its two neighbouring cells; then x = 0
  and x = 1. Values by compensated Horner. ``grid_values`` [..., G] is P on x_g = g / (G - 1).
  """
  h = 1.0 / (grid_points - 1)
  idx, valid = grid_local_maxima(grid_values, num)
  xg = idx.astype(jnp.float32) * jnp.float32(h)
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
def _maximize_reference(coeffs, grid_points: int):
  degree = coeffs.shape[-1] - 1
  grid = jnp.linspace(0.0, 1.0, grid_points, dtype=jnp.float32)
  values = horner(coeffs, grid)  # [..., G]: materialized, which the fused kernel avoids
  xs, vals, _ = candidates_from_grid(coeffs, values, grid_points, num_candidates(degree))
  return select(coeffs, xs, vals)


def maximize_reference(coeffs, grid_points: int | None = None):
  """(max_value, argmax) of P on [0, 1] for coeffs [..., D+1] (float32), within the module's error bound.

  grid_points: G >= 3 (default ``default_grid_points(D)``); a coarser grid than the default voids the bound.
  Unfused: materializes P on the whole grid, [..., G] floats.
  """
  validate_coeffs(coeffs)
  coeffs = jnp.asarray(coeffs, jnp.float32)
  degree = coeffs.shape[-1] - 1
  g = default_grid_points(degree) if grid_points is None else int(grid_points)
  if g < 3:
    raise ValueError(f"grid_points must be in [3, inf), got {g}")
  return _maximize_reference(coeffs, g)
