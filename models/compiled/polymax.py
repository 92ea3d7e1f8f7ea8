"""PolyMax compiled into a network of affine-then-ReLU layers and named multiplicative (Mul) units.

The program: x0 = the first maximizer of P over the grid x_g = g / (G - 1), g = 0..G-1; then ``refine_steps``
times: zoom into the window of +-one previous grid spacing around the winner (its centre clamped into [h, 1 - h]
so that the window stays in [0, 1]), lay a grid of 2 * zoom + 1 points with ``zoom`` times finer spacing over it,
and take its first maximizer. Ties go to the smaller x within every stage. Coefficients are in ascending powers
(c[j] multiplies x**j), degree d.

The network (``polymax_net``):
  * stage 0: ONE affine layer evaluates the grid: v_g = sum_j x_g**j c_j + C (weights x_g**j, bias C, a constant
    offset that makes every v_g positive), then an argmax tournament (``gadgets.tournament``: max(a, b) =
    b + relu(a - b), and the winner's grid index carried alongside by 0/1 ReLU steps, ties to the smaller index).
  * each refinement stage: the winner's index k is clamped by two ReLUs (c = 1 + relu(k - 1) - relu(k - N + 1)),
    its centre x_c = c / N is raised to the powers x_c**2..x_c**d by Mul units (repeated squaring, ceil(log2 d)
    layers), Mul units form the products c_j * x_c**m (1 <= m <= j <= d; c_j enters as relu(c_j) - relu(-c_j)),
    and then again ONE affine layer evaluates the zoomed grid: P(x_c + delta_k) = sum_{j, m} C(j, m) delta_k**(j-m)
    c_j x_c**m is linear in those products, with fixed weights C(j, m) delta_k**(j - m); then a tournament.
  * the read-out: x = k / N_R (the final grid index over its grid size N_R = (G-1) zoom**R) and the value P(x)
    as the network computed it.
Mul units are the only multiplications of two activations; they have no parameters, are counted apart
(``num_mul_units``, ``mul_flops_per_query``) and live in their own layers (``ir.Layer.is_mul``).

Number format, and why the comparisons are exact. Everything runs in float64. Let 2**e be the power of two with
8 * coeff_bound <= 2**e < 16 * coeff_bound and C = 1.25 * 2**e. Since |P| <= S = sum_j |c_j| <= coeff_bound on
[0, 1], every computed value v = P(z) + C lies in [2**e, 1.5 * 2**e) (the rounding error eta below is far smaller
than the margin 2**(e-3)), a single binade, where float64 numbers are exactly the multiples of 2**(e-52). So
y = 2**(52-e) v - 2**52 is an integer in [2**49, 2**51), computed exactly (a power-of-two scaling and an exact
difference), and the tournament compares integers: 1[yL >= yR] = relu(yL - yR + 1) - relu(yL - yR) holds exactly.
The network therefore returns exactly the first maximizer of its own computed values, with no blending of two
candidates: a ReLU network is a continuous function of real inputs, while the argmax jumps; here the jump sits
between neighbouring float64 values.

Error bound (value regret; S = sum_j |c_j|, M2 = sum_j j (j-1) |c_j| >= max over [0, 1] of |P''|, h_0 = 1/(G-1),
h_r = h_0 / zoom**r, x* a maximizer of P on [0, 1], x_r the winner of stage r, eta as below):
  (a) always: max P - P(x_R) <= M2 h_0**2 / 8 + 2 (R + 1) eta
      <= d (d - 1) S h_0**2 / 8 + 2 (R + 1) eta.
      Stage 0: some grid point lies within h_0/2 of x*; if x* is interior, P'(x*) = 0 and Taylor's theorem gives
      P(x_g) >= max - M2 (h_0/2)**2 / 2; if x* is 0 or 1 it is a grid point. The network's winner has the
      largest computed value, so its true value is within 2 eta of that grid point's. Every later grid contains
      the previous winner, so a refinement stage loses at most 2 eta.
  (b) if x* lies in the window of stage r (it does when |x* - x_{r-1}| <= h_{r-1}, i.e. the previous winner is a
      grid neighbour of x*): after stage r the regret is <= M2 h_r**2 / 8 + 2 eta, and later stages add at most
      2 eta each. So max P - P(x_R) <= M2 h_r**2 / 8 + 2 (R - r + 1) eta for the last such r: each refinement
      that keeps the maximizer in its window divides the bound by zoom**2. Nothing better holds in the worst
      case: two peaks whose heights differ by less than the stage-0 bound can send the zoom to the lower one.
  eta = ((d + 1)(d + 2)/2 + 3 d + 8) 2**-53 (S + 2**(e+1)): the float64 rounding of one computed value (at most
      (d+1)(d+2)/2 + 1 terms with rounded weights, powers and products), plus that of the reported x. For degree
      6 and S <= 729 it is below 1e-10.
``error_bound(coeffs, ...)`` evaluates (a) and (b) per polynomial; the tests check them against the exact
float32 oracle ``mesabench.tasks.polymax.solve``.

Valid inputs: coefficients with sum_j |c_j| <= coeff_bound (default 2 * 3**d, which covers every PolyMax-v0
instance of degree d: Bernstein instances have S <= 3**d, uniform ones S <= d + 1).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from fractions import Fraction
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mesabench.models.compiled import analysis
from mesabench.models.compiled import gadgets
from mesabench.models.compiled import ir
from mesabench.models.compiled import jax_engine
from mesabench.models.compiled import numpy_engine
from mesabench.models.compiled import validate
from mesabench.models.compiled.ir import Expr

MAX_DEGREE = 32
MAX_GRID_POINTS = 2**20 + 1
MAX_REFINE_STEPS = 16
MAX_ZOOM = 64
MAX_INDEX = 2**50
"""Largest final grid size (G - 1) * zoom**R: grid indices and the big-M selects stay exact far below 2**52."""
UNIT_ROUNDOFF = 2.0**-53


def _is_int(v) -> bool:
  return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def default_coeff_bound(degree: int) -> float:
  """2 * 3**degree: twice the largest sum_j |c_j| of a PolyMax-v0 instance of this degree."""
  return 2.0 * 3.0**degree


def eta(degree: int, s, exponent: int) -> np.ndarray:
  """The rounding bound eta of the module docstring for S = s (broadcast) and offset exponent e."""
  d = degree
  return ((d + 1) * (d + 2) / 2 + 3 * d + 8) * UNIT_ROUNDOFF * (np.asarray(s, np.float64) + 2.0**(exponent + 1))


@dataclasses.dataclass(eq=False)
class PolyMaxNet:
  """A compiled PolyMax network (see the module docstring for what it computes and its error bound).

  ``apply(coeffs) -> x``; ``params`` (an ordinary pytree: a list of {"w", "b"} per layer, empty for Mul
  layers), ``layers``, ``num_params`` (= costs.param_count(params)), ``num_connections`` (nonzero affine
  weights), ``num_units``, ``num_mul_units``, ``depth``, ``flops_per_query``, ``mul_flops_per_query``.
  """
  grid_points: int
  degree: int
  refine_steps: int
  zoom: int
  coeff_bound: float
  exponent: int
  layers: list
  params: list
  stage_layers: tuple[int, ...]
  """Index of the layer whose group "k" holds stage r's winning grid index, for r = 0..R-1."""
  stages: tuple = ()
  """The named stages (``Stage``: "grid", "zoom 1", ..., "readout") and the layers each occupies."""

  @property
  def offset(self) -> float:
    """C = 1.25 * 2**e, added to every value."""
    return 1.25 * 2.0**self.exponent

  def spacing(self, stage: int) -> float:
    """h_r = 1 / ((G - 1) zoom**r), the grid spacing of stage r."""
    return 1.0 / self.grid_size(stage)

  def grid_size(self, stage: int) -> int:
    """N_r = (G - 1) zoom**r: stage r's grid indices run over 0..N_r (x = index / N_r)."""
    return (self.grid_points - 1) * self.zoom**stage

  @functools.cached_property
  def _sizes(self) -> dict[str, int]:
    return analysis.stack_sizes(self.layers)

  @property
  def num_params(self) -> int:
    return self._sizes["num_params"]

  @property
  def num_connections(self) -> int:
    return self._sizes["num_connections"]

  @property
  def num_units(self) -> int:
    return self._sizes["num_units"]

  @property
  def num_mul_units(self) -> int:
    return self._sizes["num_mul_units"]

  @property
  def depth(self) -> int:
    return self._sizes["depth"]

  def flops_per_query(self, coeffs=None) -> int:
    """FLOPs of one query, the same for every polynomial (``coeffs`` is accepted for a uniform interface and
    ignored): 2 per connection, 1 per bias, 1 per ReLU, 1 per Mul unit."""
    del coeffs
    return analysis.stack_flops(self.layers)

  def mul_flops_per_query(self) -> int:
    """The Mul units' share of ``flops_per_query`` (one multiplication each)."""
    return analysis.stack_flops(self.layers, mul_only=True)

  # ---------------------------------------------------------------------------------------------- bounds

  def error_bound(self, coeffs, stage: int = 0) -> np.ndarray:
    """The regret bound M2 h_r**2 / 8 + 2 (R - r + 1) eta per polynomial (coeffs [..., d+1]): for stage 0 the
    unconditional bound (a); for stage r >= 1 bound (b), valid when the maximizer lies in stage r's window."""
    if not _is_int(stage) or not 0 <= stage <= self.refine_steps:
      raise ValueError(f"stage must be an integer in [0, {self.refine_steps}], got {stage!r}")
    c = np.abs(np.asarray(coeffs, np.float64))
    j = np.arange(self.degree + 1, dtype=np.float64)
    m2 = np.sum(c * j * (j - 1), axis=-1)
    h = self.spacing(stage)
    return m2 * h * h / 8 + 2 * (self.refine_steps - stage + 1) * eta(self.degree, c.sum(-1), self.exponent)

  # -------------------------------------------------------------------------------------------- validation

  @property
  def contract(self) -> validate.Contract:
    """The rules this network keeps: affine + ReLU layers and Mul layers, a linear read-out, weights below 2**52,
    big-M selects (in the tournaments) gated by 0/1 units. Values are not integers (only their codes are)."""
    return validate.Contract(integer=False, allow_mul=True, linear_last=True, big_m=None)

  def violations(self, coeffs=None) -> list[validate.Violation]:
    """Every violation of ``validate``'s rules: the static ones, and, given ``coeffs`` [..., d+1], the select
    gates' 0/1 values on the activations of those polynomials. An empty list: nothing found."""
    out = validate.static_violations(self.layers, self.params, self.contract)
    if coeffs is not None:
      x, _ = self.inputs(coeffs)
      out += validate.activation_violations(self.layers, self.params, self.contract, x,
                                            numpy_engine.trace(self.layers, self.params, x))
    return out

  # -------------------------------------------------------------------------------------------- execution

  def inputs(self, coeffs) -> tuple[np.ndarray, tuple[int, ...]]:
    """The input matrix [d+1, batch] (float64) of coeffs [..., d+1], and the batch shape. ValueError unless the
    last axis has d+1 entries, all finite, with sum_j |c_j| <= coeff_bound."""
    c = np.asarray(coeffs, np.float64)
    if c.ndim < 1 or c.shape[-1] != self.degree + 1:
      raise ValueError(f"coeffs must have shape [..., {self.degree + 1}] (degree {self.degree}), got {c.shape}")
    if not np.all(np.isfinite(c)):
      raise ValueError("coeffs must be finite")
    s = np.abs(c).sum(-1)
    if s.size and float(s.max()) > self.coeff_bound:
      raise ValueError(f"coeffs must have sum_j |c_j| in [0, {self.coeff_bound:g}] (coeff_bound), "
                       f"got {float(s.max()):g}")
    return c.reshape(-1, self.degree + 1).T.copy(), c.shape[:-1]

  def forward(self, params, x):
    """Outputs [2 (x, value), batch] from inputs [d+1, batch]; pure jnp (affine maps, ReLU, Mul units)."""
    return jax_engine.stack_forward(self.layers, params, x)

  @functools.cached_property
  def _jitted(self):
    return jax.jit(self.forward)

  def apply_with_value(self, coeffs, engine: str = "numpy") -> tuple[np.ndarray, np.ndarray]:
    """(x, value) for coeffs [..., d+1]: the argmax estimate x in [0, 1] and P(x) as the network computed it
    (within eta of the true P(x)); float64 arrays of the batch shape.

    engine: "numpy" (``numpy_engine.forward``, no compilation) or "jax" (``forward`` jitted in float64
    under a scoped ``jax.enable_x64(True)``). The two sum in different orders, so values may differ by eta;
    winners differ only when two candidates' values lie within about eta of each other.
    """
    if engine not in ("numpy", "jax"):
      raise ValueError(f"engine must be one of ('numpy', 'jax'), got {engine!r}")
    x, shape = self.inputs(coeffs)
    if engine == "numpy":
      out = numpy_engine.forward(self.layers, self.params, x)
    else:
      with jax.enable_x64(True):
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), self.params)
        out = np.asarray(self._jitted(params, jnp.asarray(x)))
    return out[0].reshape(shape), out[1].reshape(shape)

  def apply(self, coeffs, engine: str = "numpy") -> np.ndarray:
    """x = the network's argmax estimate in [0, 1] for coeffs [..., d+1]; float64 array of the batch shape."""
    return self.apply_with_value(coeffs, engine)[0]

  def stage_winners(self, coeffs) -> list[np.ndarray]:
    """[x_0, ..., x_R]: every stage's winner (x_R = ``apply(coeffs)``), from the activations of the numpy engine."""
    x, shape = self.inputs(coeffs)
    acts = numpy_engine.trace(self.layers, self.params, x)
    out = []
    for r, li in enumerate(self.stage_layers):
      g = self.layers[li].group("k")
      out.append(acts[li][g.start] / self.grid_size(r))
    out.append(acts[-1][0])
    return [a.reshape(shape) for a in out]


def _validate(grid_points, degree, refine_steps, zoom, coeff_bound) -> float:
  if not _is_int(grid_points) or not 3 <= grid_points <= MAX_GRID_POINTS:
    raise ValueError(f"grid_points must be an integer in [3, {MAX_GRID_POINTS}], got {grid_points!r}")
  if not _is_int(degree) or not 1 <= degree <= MAX_DEGREE:
    raise ValueError(f"degree must be an integer in [1, {MAX_DEGREE}], got {degree!r}")
  if not _is_int(refine_steps) or not 0 <= refine_steps <= MAX_REFINE_STEPS:
    raise ValueError(f"refine_steps must be an integer in [0, {MAX_REFINE_STEPS}], got {refine_steps!r}")
  if not _is_int(zoom) or not 2 <= zoom <= MAX_ZOOM:
    raise ValueError(f"zoom must be an integer in [2, {MAX_ZOOM}], got {zoom!r}")
  if (grid_points - 1) * zoom**refine_steps > MAX_INDEX:
    raise ValueError(f"refine_steps must keep (grid_points - 1) * zoom**refine_steps <= 2**50, got "
                     f"({grid_points} - 1) * {zoom}**{refine_steps}")
  if coeff_bound is None:
    coeff_bound = default_coeff_bound(degree)
  if isinstance(coeff_bound, bool) or not isinstance(coeff_bound, (int, float, np.integer, np.floating)) or \
      not 2.0**-40 <= float(coeff_bound) <= 2.0**60:
    raise ValueError(f"coeff_bound must be a number in [2**-40, 2**60], got {coeff_bound!r}")
  return float(coeff_bound)


def _grid_weights(points: Sequence[Fraction], degree: int) -> np.ndarray:
  """[len(points), d+1] float64: z**j correctly rounded from exact rationals."""
  return np.asarray([[float(z**j) for j in range(degree + 1)] for z in points], np.float64)


@dataclasses.dataclass(frozen=True)
class Stage:
  """A named stage of the compiled program and the layers it occupies: layers[first:end]."""
  name: str
  first: int
  end: int


@dataclasses.dataclass(frozen=True)
class _Plan:
  """The constants every stage reads: degree d, grid points G, zoom factor, offset exponent e (C = 1.25 * 2**e)."""
  degree: int
  grid_points: int
  refine_steps: int
  zoom: int
  exponent: int

  @property
  def offset(self) -> float:
    return 1.25 * 2.0**self.exponent

  @property
  def signed(self) -> tuple[str, ...]:
    """The coefficient parts (cp, cn) that the refinement stages read; none without refinement."""
    return ("cp", "cn") if self.refine_steps > 0 else ()

  def scaled(self, expr: Expr) -> Expr:
    """y = 2**(52-e) v - 2**52: the integer code of a value v in [2**e, 1.5 * 2**e)."""
    return 2.0**(52 - self.exponent) * expr - 2.0**52

  def grid_size(self, stage: int) -> int:
    return (self.grid_points - 1) * self.zoom**stage


# ------------------------------------------------------------------------------------------ stage 0: the grid


def _grid_layer(lb: ir.LayerBuilder, plan: _Plan) -> None:
  """v[g] = relu(P(x_g) + C) for every grid point (weights x_g**j correctly rounded), and the coefficients' parts."""
  d, big_g = plan.degree, plan.grid_points
  w0 = _grid_weights([Fraction(g, big_g - 1) for g in range(big_g)], d)
  terms = [("c", np.full(big_g, j), w0[:, j]) for j in range(d + 1)]
  lb.add("v", Expr(big_g, terms, plan.offset),
         f"v[g] = relu(P(g/{big_g - 1}) + C) = P(x_g) + C, C = {plan.offset:g} (positive: |P| <= coeff_bound)")
  if plan.signed:
    lb.add("cp", Expr.unit("c", d + 1), "relu(c_j), the positive part of each coefficient")
    lb.add("cn", -Expr.unit("c", d + 1), "relu(-c_j), the negative part (c_j = cp_j - cn_j)")


def grid_stage(steps: list, plan: _Plan) -> tuple[Expr, Expr]:
  """Stage 0: one affine layer evaluates P + C on the G grid points, then a tournament picks the first maximizer.
  Returns (y, k) over the last layer: the winner's integer code and grid index."""
  steps.append(functools.partial(_grid_layer, plan=plan))
  big_g = plan.grid_points
  return gadgets.tournament(steps, plan.scaled(Expr.unit("v", big_g)), Expr.constant(big_g, np.arange(big_g)),
                            ir.big_m(big_g), carry=plan.signed)


# ---------------------------------------------------------------------------------- stage r >= 1: zoom refinement


def _clamp_layer(lb: ir.LayerBuilder, k_prev: Expr, n_prev: int, r: int) -> None:
  lb.add("k", k_prev, f"k = stage {r - 1}'s winning index (x = k/{n_prev})")
  lb.add("lo", k_prev - 1, "relu(k - 1)")
  lb.add("hi", k_prev - (n_prev - 1), f"relu(k - {n_prev - 1}); centre index c = 1 + lo - hi = "
         f"clamp(k, 1, {n_prev - 1})")
  lb.carry("cp", "cn")


def _centre_layer(lb: ir.LayerBuilder, n_prev: int) -> None:
  c = 1.0 + Expr.unit("lo", 1) - Expr.unit("hi", 1)
  lb.add("xc", c * (1.0 / n_prev), f"x_c = relu((1 + lo - hi) / {n_prev}), the window's centre")
  lb.carry("lo", "hi", "cp", "cn")


def _power_layer(mb: ir.MulBuilder, have: int, first: bool, degree: int) -> None:
  """p[m-1] = x_c**m for m <= min(2 have, d): Mul units x_c**have * x_c**(m - have); the lower powers copied."""
  src = "xc" if first else "p"
  old = mb.index(src, np.arange(have))
  new = np.arange(have + 1, min(2 * have, degree) + 1)  # exponents made here: x**have * x**(m - have)
  left = np.concatenate([old, mb.index(src, np.full(new.size, have - 1))])
  right = np.concatenate([np.full(have, -1), mb.index(src, new - have - 1)])
  mb.add("p", left, right, f"p[m-1] = x_c**m for m <= {have + new.size}: Mul units p[{have}..] = "
         f"x_c**{have} * x_c**(m - {have}); the rest copied")
  mb.carry("lo", "hi", "cp", "cn")


def _pairs(degree: int) -> list[tuple[int, int]]:
  """(j, m) for 1 <= m <= j <= d: the products c_j x_c**m a zoom stage forms."""
  return [(j, m) for j in range(1, degree + 1) for m in range(1, j + 1)]


def _product_layer(mb: ir.MulBuilder, degree: int) -> None:
  pairs = _pairs(degree)
  pj = np.asarray([j for j, _ in pairs])
  pm = np.asarray([m for _, m in pairs])
  for name, src in (("qp", "cp"), ("qn", "cn")):
    mb.product(name, (src, pj), ("p", pm - 1), f"{name}[j, m] = {src}_j * x_c**m for 1 <= m <= j <= d (Mul units)")
  mb.carry("cp", "cn", "lo", "hi")


def _zoom_layer(lb: ir.LayerBuilder, plan: _Plan, n_prev: int, keep: tuple[str, ...]) -> None:
  """v[o] = relu(P(x_c + (o - zoom) h) + C), linear in the Mul products with weights C(j, m) delta**(j - m)."""
  f, d = plan.zoom, plan.degree
  h_r = Fraction(1, n_prev * f)
  deltas = [(o - f) * h_r for o in range(2 * f + 1)]
  count = 2 * f + 1
  terms = []
  for j in range(d + 1):  # m = 0: c_j delta**j
    w = np.asarray([float(dl**j) for dl in deltas])
    terms += [("cp", np.full(count, j), w), ("cn", np.full(count, j), -w)]
  for q, (j, m) in enumerate(_pairs(d)):
    w = np.asarray([float(math.comb(j, m) * dl**(j - m)) for dl in deltas])
    terms += [("qp", np.full(count, q), w), ("qn", np.full(count, q), -w)]
  lb.add("v", Expr(count, terms, plan.offset),
         f"v[o] = relu(P(x_c + (o - {f}) h) + C), h = 1/{n_prev * f}: sum over j, m of C(j, m) "
         "(o h - f h)**(j - m) c_j x_c**m, linear in the Mul products")
  lb.carry("lo", "hi", *keep)


def zoom_stage(steps: list, plan: _Plan, r: int, k_prev: Expr) -> tuple[Expr, Expr]:
  """Stage r >= 1: clamp the previous winner's index into [1, N_{r-1} - 1] (two ReLUs), raise the centre x_c to
  the powers 2..d (Mul layers, repeated squaring), form c_j x_c**m (one Mul layer), evaluate the 2 zoom + 1 points
  of the finer grid in ONE affine layer, and run a tournament. Returns (y, k) over the last layer: the winner's
  integer code and its index on the grid of stage r (N_r = N_{r-1} zoom)."""
  n_prev = plan.grid_size(r - 1)
  keep = () if r == plan.refine_steps else plan.signed
  f, d = plan.zoom, plan.degree
  steps.append(functools.partial(_clamp_layer, k_prev=k_prev, n_prev=n_prev, r=r))
  steps.append(functools.partial(_centre_layer, n_prev=n_prev))
  have, first = 1, True
  while have < d or first:
    steps.append(ir.mul_step(functools.partial(_power_layer, have=have, first=first, degree=d)))
    have, first = min(2 * have, d), False
  steps.append(ir.mul_step(functools.partial(_product_layer, degree=d)))
  steps.append(functools.partial(_zoom_layer, plan=plan, n_prev=n_prev, keep=keep))
  count = 2 * f + 1
  k_fine = Expr(count, [("lo", np.zeros(count, np.int64), float(f)),
                        ("hi", np.zeros(count, np.int64), -float(f))], np.arange(count, dtype=np.float64))
  return gadgets.tournament(steps, plan.scaled(Expr.unit("v", count)), k_fine, ir.big_m(n_prev * f), carry=keep)


# --------------------------------------------------------------------------------------------------- read-out


def _readout_layer(lb: ir.LayerBuilder, plan: _Plan, y: Expr, k: Expr) -> None:
  n_last = plan.grid_size(plan.refine_steps)
  lb.add("x", k * (1.0 / n_last), f"x = k / {n_last}: the answer")
  lb.add("value", y * 2.0**(plan.exponent - 52) + (2.0**plan.exponent - plan.offset),
         "P(x) = v - C = 2**(e-52) y + 2**e - C, as computed by the network")


def readout_stage(steps: list, plan: _Plan, y: Expr, k: Expr) -> None:
  """The output layer (no ReLU): x = k / N_R and the network's value P(x)."""
  steps.append(functools.partial(_readout_layer, plan=plan, y=y, k=k))


def polymax_net(grid_points: int, degree: int, refine_steps: int = 0, zoom: int = 4,
                coeff_bound: float | None = None) -> PolyMaxNet:
  """The compiled PolyMax network: grid search over ``grid_points`` points of [0, 1] for polynomials of degree
  ``degree`` (1..32), then ``refine_steps`` zoom stages of 2 * ``zoom`` + 1 points each (the spacing shrinks by
  ``zoom`` per stage). ``coeff_bound``: the largest sum_j |c_j| the network accepts (default 2 * 3**degree).

  Stages (``PolyMaxNet.stages``): "grid" (``grid_stage``), "zoom 1" .. "zoom R" (``zoom_stage``), "readout".

  Error bound (module docstring): regret <= sum_j j (j-1) |c_j| h**2 / 8 + 2 (R + 1) eta with h = 1/(G-1)
  always, and with h = 1/((G-1) zoom**r) once stage r's window holds the maximizer. Sizes: about
  (d + 1) G weights in the grid layer plus about 22 G parameters in the tournament (parameters proportional to
  G; depth about 3 log2 G). Refinement adds O(zoom d**2) parameters per stage, plus the 2 (d + 1) coefficient
  parts carried through the stage-0 tournament (O(d log G)); each stage has ceil(log2 d) + 1 Mul layers with
  d - 1 + d (d + 1) Mul units (powers of the centre, then the products c_j x_c**m).
  """
  coeff_bound = _validate(grid_points, degree, refine_steps, zoom, coeff_bound)
  plan = _Plan(degree=degree, grid_points=grid_points, refine_steps=refine_steps, zoom=zoom,
               exponent=math.ceil(math.log2(8.0 * coeff_bound)))
  steps: list = []
  stages: list[Stage] = []
  y, k = grid_stage(steps, plan)
  stages.append(Stage("grid", 0, len(steps)))
  for r in range(1, refine_steps + 1):
    start = len(steps)
    y, k = zoom_stage(steps, plan, r, k)
    stages.append(Stage(f"zoom {r}", start, len(steps)))
  readout_stage(steps, plan, y, k)
  stages.append(Stage("readout", len(steps) - 1, len(steps)))
  layers, params, _ = ir.build_stack({"c": (0, degree + 1)}, steps)
  layers[-1] = dataclasses.replace(layers[-1], relu=False)
  return PolyMaxNet(grid_points=grid_points, degree=degree, refine_steps=refine_steps, zoom=zoom,
                    coeff_bound=coeff_bound, exponent=plan.exponent, layers=layers, params=params,
                    stage_layers=tuple(s.first for s in stages[1:-1]), stages=tuple(stages))


def reference_program(coeffs, grid_points: int, refine_steps: int = 0, zoom: int = 4) -> np.ndarray:
  """The program the network compiles, in plain numpy float64 (Horner, np.argmax = first maximizer): x_R for
  coeffs [B, d+1]. For tests; the network equals it except where two candidates' values lie within ~eta."""
  c = np.asarray(coeffs, np.float64)

  def horner(z):
    acc = np.zeros_like(z)
    for j in range(c.shape[-1] - 1, -1, -1):
      acc = acc * z + c[:, j:j + 1]
    return acc
  n = grid_points - 1
  idx = np.argmax(horner(np.broadcast_to(np.arange(n + 1) / n, (c.shape[0], n + 1))), axis=1)
  for _ in range(refine_steps):
    centre = np.clip(idx, 1, n - 1)
    n *= zoom
    cand = centre[:, None] * zoom + np.arange(-zoom, zoom + 1)[None]
    idx = cand[np.arange(c.shape[0]), np.argmax(horner(cand / n), axis=1)]
  return idx / n
