"""PolyMax-v0: the seed task of question 1: given a polynomial P, output the x in [0, 1] that maximizes it.

Instances. A polynomial of degree ``degree`` whose coefficients (ascending powers, ``c[j]`` multiplies x**j) are
fixed-point numbers with ``frac_bits`` fraction bits and ``int_bits`` integer bits, so both encodings are exact and
instances are distinct exactly when their integer coefficient words differ. ``distribution``:
  * "bernstein" (default): P = sum_k b_k B_{k,d}(x) with b_k ~ U[-1, 1] i.i.d. in the Bernstein basis, then
    converted to powers and rounded to the fixed-point grid. P stays within [-1, 1] on [0, 1] (up to rounding)
    and random b_k give one or several local maxima, interior or at the ends. Monomial coefficients grow like
    C(d, j) 2**j, so int_bits grows with the degree and, at 23 significant bits, frac_bits shrinks: degree <= 10
    keeps frac_bits >= 9.
  * "uniform": c_j ~ U[-1, 1] i.i.d. in the power basis, rounded to the grid.
The defaults pick int_bits as the fewest bits holding the largest possible |c_j| and frac_bits = 23 - int_bits, so
every coefficient is exact in float32.

Encodings (``encoding``): "float": inputs [max_degree + 1] float32 coefficients, zero above the degree;
"binary": inputs [max_degree + 1, 1 + int_bits + frac_bits] bits per coefficient: sign first, then the magnitude
in units of 2**-frac_bits, least significant bit first (the seed's "coefficients represented in binary").

Targets: ``x`` (the argmax; the smallest x among ties) and ``value`` (the maximum), from ``solve``. Info also
holds ``coeffs`` and ``min_value`` (the minimum of P on [0, 1], used for normalized regret).

Score of a predicted x̂ (``interval_prediction``): ``loss`` = (P(x̃) - max)**2 (the seed's loss); ``regret`` =
(max - P(x̃)) / (max - min) in [0, 1] (0 when P is constant); ``hit`` = 1[0 <= x̂ <= 1 and |x̃ - argmax| <= 1e-3],
with x̃ = x̂ clipped to [0, 1]. So an x̂ outside [0, 1] is scored at the clipped point for loss and regret but is
never a hit (x̂ = -0.1 is not a hit even when the argmax is 0); "outside" is decided in x̂'s own dtype (a float64
1 + 1e-12 is outside although it rounds to 1.0 in float32). A non-finite x̂ (NaN, +-inf) scores as the minimizer:
the worst loss, regret 1 (0 when P is constant), no hit.

Difficulty: ``num_maxima`` (local maxima in [0, 1], endpoints included, from the oracle's refined candidates on
a grid of 1,025 points, merged within 3 cells), ``gap`` = (best - second best local maximum) / (max - min) in
[0, 1] (1 when there is one local maximum), ``boundary`` (1 when the argmax is 0 or 1).
``grid_regret_8`` and ``grid_regret_16``: the normalized regret of the best point of the G-point grid
x_g = g / (G - 1) (searcher "grid" at budget G).
Strata (a partition, defined by where a small-budget search fails): "hard": the maximum is interior (0 < x < 1)
and the G = 8 grid's regret exceeds HARD_GRID_REGRET = 0.01 (1 % of max - min; about 15 % of degree-4 draws);
"easy": the rest. ``sample(key, size, stratum)`` returns DISTINCT instances (rejection sampling; a draw whose
coefficient words hash like an earlier kept draw is rejected). Measured at degree 4 / max_degree 6 (the default
suite's task) on 2,048 distinct instances per stratum and split outside a pool of 4,096 (4,096 for held-out); loss
(P(x̂) - max)**2, then hit rate:

  model                hard (15 %)      easy             held-out         harder
  ridge (pool 4,096)   0.028  / 0.004   0.149  / 0.18   0.127  / 0.15    0.034  / 0.001
  quadratic            0.013  / 0.006   0.014  / 0.55   0.015  / 0.45    0.014  / 0.006
  cubic                5.0e-4 / 0.065   3.0e-4 / 0.67   3.1e-4 / 0.57    8.0e-4 / 0.067
  grid G = 2           0.139  / 0.000   0.049  / 0.69   0.070  / 0.59    0.135  / 0.000
  grid G = 4           2.4e-3 / 0.008   7.7e-4 / 0.69   1.0e-3 / 0.59    3.2e-3 / 0.000
  grid G = 8           2.8e-4 / 0.000   5.1e-6 / 0.70   4.4e-5 / 0.59    1.1e-4 / 0.010
  random B = 8         5.0e-3 / 0.019   0.068  / 0.012  0.057  / 0.012   4.1e-3 / 0.019
  lookup (pool 4,096)  0.055  / 0.008   0.048  / 0.51   0.049  / 0.43    0.048  / 0.008

Hard is harder for every rule by hit rate (0.004-0.065 against 0.18-0.67), and by loss for the cubic rule (the
best heuristic, 1.6x) and the grids; NOT by loss for ridge (0.028 against 0.149: ridge regresses toward the mean
x and fails worst on the boundary maxima, all of which are "easy") and random search (boundary maxima are never
drawn exactly); by normalized regret quadratic is 1.8x worse on hard (0.119 against 0.066), cubic 2.5x.

Ground truth (``heuristic_rules``, ``search_strategies``; the zoo's ``heuristic`` and ``search`` models call
them). Heuristics never evaluate P on candidates:
  * "ridge": x̂ = clip(w . [1, c], 0, 1), w fitted by ridge regression (penalty RIDGE_PENALTY on every weight but
    the intercept) from the pool's coefficients to its argmax ("fit" in the zoo's calling convention);
  * "quadratic", "cubic": the least-squares (L2 on [0, 1]) approximation q of P of degree 2 or 3 (a fixed linear
    map of the coefficients: the Hilbert-matrix normal equations), and x̂ = the argmax of q on [0, 1] in closed form
    (vertex or roots of q', and the endpoints, compared on q). "cubic" is the best non-search rule found: its
    held-out loss (3.1e-4) lies between the G = 4 and G = 8 grids' (equivalent grid budget about 5).
Searchers with a budget of B points (P evaluated by compensated Horner; ties to the first point, for "grid" the
smallest x):
  * "grid": the best of x_g = g / (B - 1), g = 0 .. B - 1 (B >= 2), no refinement; B = 2 compares P(0) and P(1)
    (the "better endpoint" rule). The equivalent-search-budget family, B in (2, 3, 4, 8, 16, 32, 64).
  * "random": the best of B points uniform in [0, 1] keyed by jax.random.fold_in(key(seed), h), h the 32-bit hash of
    the instance's coefficient words (the same instance always gets the same points).
  * "refined": the oracle's algorithm with a grid of B >= 3 points (``kernels.polymax.maximize``); B =
    default_grid_points(max_degree) is the oracle itself and the default of model ``search``.
Extrapolation: ``larger()`` is the "harder" split at the SAME degree and coefficient scale (every input slot was
trained on): ``PolyMaxHarder`` draws only instances whose maximum is interior and missed by the G = 16 grid by more
than HARDER_GRID_REGRET = 0.003 of max - min (about 11 % of degree-4 draws): narrow peaks that coarse grids miss.
Inputs above ``degree`` (``max_degree`` > ``degree``) stay zero in every split.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from mesabench.kernels import _checks
from mesabench.kernels import polymax as _kernel
from mesabench.tasks import core

DISTRIBUTIONS = ("bernstein", "uniform")
ENCODINGS = ("float", "binary")
SIGNIFICANT_BITS = 23
"""int_bits + frac_bits: float32 holds 24-bit integers exactly, one bit of which we keep as margin."""
HIT_RADIUS = 1e-3
FEATURE_GRID_POINTS = 1025
"""Grid of the difficulty features: local maxima closer than 3 cells (about 0.003) count as one."""
HARD_GRID_POINTS = 8
HARD_GRID_REGRET = 0.01
"""Stratum "hard": interior maximum and the HARD_GRID_POINTS grid's normalized regret above this."""
HARDER_GRID_POINTS = 16
HARDER_GRID_REGRET = 0.003
"""Split "harder" (``larger()``): interior maximum and the HARDER_GRID_POINTS grid's normalized regret above this."""
RIDGE_PENALTY = 1.0
"""Ridge penalty lambda of heuristic "ridge" (on the sum of squared weights, intercept excluded)."""
MAX_SEARCH_BUDGET = 2**22


def solve(coeffs, **kernel_options):
  """(max_value, argmax) of P on [0, 1] for coeffs [..., D+1] (ascending powers), float32, batched.

  Error <= 1e-6 * max(1, sum_j |c_j|) in the value, and P(argmax) equals the returned value to the same
  tolerance; ties go to the smallest x (see ``mesabench.kernels.polymax``). Routes through
  ``mesabench.kernels.polymax.maximize`` (keyword options go there).
  """
  maximize = getattr(_kernel, "maximize", None)
  if maximize is None:
    return _kernel.maximize_reference(coeffs, **kernel_options)
  return maximize(coeffs, **kernel_options)


def bernstein_to_power(degree: int) -> np.ndarray:
  """M [d+1, d+1] float64 with c = M @ b: power coefficients of sum_k b_k C(d,k) x**k (1-x)**(d-k)."""
  m = np.zeros((degree + 1, degree + 1))
  for k in range(degree + 1):
    for j in range(k, degree + 1):
      m[j, k] = math.comb(degree, j) * math.comb(j, k) * (-1) ** (j - k)
  return m


def _coefficient_bound(distribution: str, degree: int) -> float:
  if distribution == "uniform":
    return 1.0
  return float(np.max(np.abs(bernstein_to_power(degree)).sum(axis=1)))


@dataclasses.dataclass(frozen=True)
class PolyMax(core.Task):
  """PolyMax-v0. Parameters: degree (0..32), max_degree (>= degree; input slots - 1), encoding, distribution,
  int_bits and frac_bits of the fixed-point coefficients (defaults: see the module docstring)."""
  degree: int = 6
  max_degree: int | None = None
  encoding: str = "float"
  distribution: str = "bernstein"
  int_bits: int | None = None
  frac_bits: int | None = None

  task_id = "PolyMax-v0"
  answer_key = "x"

  def __post_init__(self):
    def is_int(v):
      return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
    if not is_int(self.degree) or not 0 <= self.degree <= _kernel.MAX_DEGREE:
      raise ValueError(f"degree must be an integer in [0, {_kernel.MAX_DEGREE}], got {self.degree!r}")
    if self.max_degree is None:
      object.__setattr__(self, "max_degree", int(self.degree))
    if not is_int(self.max_degree) or not self.degree <= self.max_degree <= _kernel.MAX_DEGREE:
      raise ValueError(f"max_degree must be an integer in [degree={self.degree}, {_kernel.MAX_DEGREE}], "
                       f"got {self.max_degree!r}")
    if not isinstance(self.encoding, str) or self.encoding not in ENCODINGS:
      raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
    if not isinstance(self.distribution, str) or self.distribution not in DISTRIBUTIONS:
      raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
    # The fixed-point format is sized for max_degree so that larger() keeps the same encoding (the same spec).
    need = _coefficient_bound(self.distribution, self.max_degree)
    if math.floor(math.log2(need)) + 1 > SIGNIFICANT_BITS - 1:
      # No int_bits can hold these coefficients: the degree is what must change, so name it.
      top = max(d for d in range(_kernel.MAX_DEGREE + 1)
                if math.floor(math.log2(_coefficient_bound(self.distribution, d))) + 1 <= SIGNIFICANT_BITS - 1)
      name = "max_degree" if self.max_degree != self.degree else "degree"
      raise ValueError(f"{name} must be at most {top} with distribution={self.distribution!r} (its power-basis "
                       f"coefficients reach {need:.3g} at degree {self.max_degree}, beyond the "
                       f"{SIGNIFICANT_BITS - 1} integer bits of a float32-exact fixed-point word; "
                       f"distribution='uniform' allows degrees up to {_kernel.MAX_DEGREE}), got {self.max_degree}")
    if self.int_bits is None:
      object.__setattr__(self, "int_bits", math.floor(math.log2(need)) + 1)
    if not is_int(self.int_bits) or not 1 <= self.int_bits <= SIGNIFICANT_BITS - 1:
      raise ValueError(f"int_bits must be an integer in [1, {SIGNIFICANT_BITS - 1}], got {self.int_bits!r}")
    if 2**self.int_bits <= need:
      raise ValueError(f"int_bits must be at least {math.floor(math.log2(need)) + 1} to hold coefficients up to "
                       f"{need:g} ({self.distribution}, degree {self.max_degree}), got {self.int_bits}")
    if self.frac_bits is None:
      object.__setattr__(self, "frac_bits", SIGNIFICANT_BITS - self.int_bits)
    if not is_int(self.frac_bits) or not 1 <= self.frac_bits <= SIGNIFICANT_BITS - self.int_bits:
      raise ValueError(f"frac_bits must be an integer in [1, {SIGNIFICANT_BITS - self.int_bits}] "
                       f"(int_bits + frac_bits <= {SIGNIFICANT_BITS}), got {self.frac_bits!r}")

  # ------------------------------------------------------------------ description
  @property
  def word_bits(self) -> int:
    return 1 + self.int_bits + self.frac_bits

  @property
  def space_size(self) -> int:
    """Fixed-point coefficient vectors the sampler can reach: exact for "uniform" (each |c_j| <= 1), an upper
    bound for "bernstein" (each |c_j| <= sum_k |M_jk|; not every combination is reachable)."""
    if self.distribution == "uniform":
      bounds = np.ones(self.degree + 1)
    else:
      bounds = np.abs(bernstein_to_power(self.degree)).sum(axis=1)
    words = np.minimum(np.floor(bounds * 2.0**self.frac_bits), 2.0 ** (self.int_bits + self.frac_bits) - 1)
    return math.prod(2 * int(w) + 1 for w in words)

  @property
  def spec(self) -> core.Spec:
    shape = (self.max_degree + 1,) if self.encoding == "float" else (self.max_degree + 1, self.word_bits)
    return core.Spec(
        task_id=self.task_id, input_shape=shape, input_kind="real" if self.encoding == "float" else "bits",
        output_kind="interval",
        meta=(("degree", self.degree), ("encoding", self.encoding), ("frac_bits", self.frac_bits),
              ("int_bits", self.int_bits), ("max_degree", self.max_degree)),
        task_params=tuple(sorted(self.params().items())))

  @property
  def strata(self) -> tuple[str, ...]:
    return ("easy", "hard")

  def larger(self) -> "PolyMax | None":
    """The "harder" split: ``PolyMaxHarder`` with the same parameters (same spec, degree and coefficient scale)."""
    return PolyMaxHarder(**self.params())

  # ------------------------------------------------------------------ ground truth
  def heuristic_rules(self) -> tuple[str, ...]:
    return ("ridge", "quadratic", "cubic")

  def heuristic_init(self, rule: str):
    """{"w": float32 [max_degree + 2]} (intercept first) for "ridge"; {} for the closed-form rules."""
    self._check_rule(rule)
    return {"w": jnp.zeros((self.max_degree + 2,), jnp.float32)} if rule == "ridge" else {}

  def heuristic_fit(self, rule: str, state, inputs, targets):
    """"ridge": w = argmin |X w - x|**2 + RIDGE_PENALTY |w[1:]|**2 with X = [1, c] over the pool; others: state."""
    self._check_rule(rule)
    if rule != "ridge":
      return state
    return {"w": ridge_fit(_features(self.decode(inputs)["coeffs"]), targets["x"].astype(jnp.float32))}

  def heuristic(self, rule: str, inputs, state):
    """x̂ [B] float32 in [0, 1] of the rule (see the module docstring)."""
    self._check_rule(rule)
    coeffs = self.decode(inputs)["coeffs"]
    if rule == "ridge":
      return jnp.clip(_features(coeffs) @ state["w"], 0.0, 1.0)
    return projection_argmax(coeffs, 2 if rule == "quadratic" else 3)

  def search_strategies(self) -> tuple[str, ...]:
    return ("grid", "random", "refined")

  def full_search(self) -> tuple[str, int]:
    """("refined", default_grid_points(max_degree)): the oracle's own algorithm."""
    return "refined", _kernel.default_grid_points(self.max_degree)

  def search_budget_range(self, strategy: str) -> tuple[int, int]:
    self._check_strategy(strategy)
    return {"grid": (2, 2**16), "random": (1, 2**16), "refined": (3, MAX_SEARCH_BUDGET)}[strategy]

  def search_budgets(self, strategy: str) -> tuple[int, ...]:
    """grid: (2, 3, 4, 8, 16, 32, 64); random: (1, 2, 4, ..., 64); refined: () (not in the calibration set)."""
    self._check_strategy(strategy)
    return {"grid": (2, 3, 4, 8, 16, 32, 64), "random": (1, 2, 4, 8, 16, 32, 64), "refined": ()}[strategy]

  def search(self, strategy: str, budget: int, inputs, seed: int = 0):
    """x̂ [B] float32 of ``strategy`` with ``budget`` points (see the module docstring)."""
    self._check_strategy(strategy)
    budget = self._check_budget(strategy, budget)
    coeffs = self.decode(inputs)["coeffs"]
    if strategy == "refined":
      return _kernel.maximize(coeffs, grid_points=budget)[1]
    xs = grid_points(budget) if strategy == "grid" else self.random_points(coeffs, budget, seed)
    return best_point(coeffs, xs)

  def random_points(self, coeffs, budget: int, seed: int):
    """The "random" searcher's points [B, budget] float32 in [0, 1) (see the module docstring)."""
    base = jax.random.key(seed)
    h = core.hash_rows(self._words(coeffs))
    return jax.vmap(lambda v: jax.random.uniform(jax.random.fold_in(base, v), (budget,), jnp.float32))(h)

  def search_family(self) -> core.SearchFamily:
    return core.SearchFamily("grid", self.search_budgets("grid"))

  # ------------------------------------------------------------------ what the task knows
  success_metric = "hit"
  metric_directions = (("hit", "higher"), ("loss", "lower"), ("regret", "lower"))

  def chance_predictions(self, batch: core.Batch, key: jax.Array, draws: int) -> jax.Array:
    """x uniform in [0, 1]: float32 [draws, B]."""
    return jax.random.uniform(key, (draws, batch.size), jnp.float32)  # float32 also under x64: same draws

  def answer_bits(self, key: jax.Array | None = None, size: int = 4096) -> float:
    """The answers the hit criterion tells apart: log2(1 / (2 * HIT_RADIUS)) (about 9 bits)."""
    del key, size
    return float(math.log2(1.0 / (2.0 * HIT_RADIUS)))

  def describe(self, batch, i: int) -> str:
    """P(x) in ascending powers, its argmax and its maximum."""
    c = np.asarray(batch.info["coeffs"][i])
    poly = " ".join(f"{v:+.4g}x^{j}" for j, v in enumerate(c) if v != 0) or "0"
    return (f"P(x) = {poly}  ->  argmax x={float(batch.targets['x'][i]):.6f}, "
            f"max={float(batch.targets['value'][i]):.6g}")

  def decode(self, inputs: jax.Array) -> dict[str, jax.Array]:
    """{"coeffs": float32 [B, max_degree + 1]} from inputs (float or sign-magnitude binary fixed point)."""
    if self.encoding == "float":
      return {"coeffs": jnp.asarray(inputs, jnp.float32)}
    bits = (inputs[..., 1:] > 0.5).astype(jnp.int32)
    mag = jnp.sum(bits << jnp.arange(bits.shape[-1], dtype=jnp.int32), axis=-1, dtype=jnp.int32)
    sign = jnp.where(inputs[..., 0] > 0.5, -1, 1)
    return {"coeffs": (sign * mag).astype(jnp.float32) / 2.0**self.frac_bits}

  def dummy_targets(self, batch_size: int) -> dict[str, jax.Array]:
    return {"x": jnp.zeros((batch_size,), jnp.float32), "value": jnp.zeros((batch_size,), jnp.float32)}

  # ------------------------------------------------------------------ encodings
  def quantize(self, coeffs):
    """Real coefficients [..., max_degree+1] rounded to the fixed-point grid; ValueError when out of range."""
    scale = 2.0**self.frac_bits
    words = jnp.round(jnp.asarray(coeffs, jnp.float32) * scale)
    limit = 2.0 ** (self.int_bits + self.frac_bits) - 1
    if core._checks.is_concrete(words) and bool(jnp.any(jnp.abs(words) > limit)):
      raise ValueError(f"coeffs must lie within +-{limit / scale:g} (int_bits={self.int_bits})")
    return words / scale

  def encode(self, coeffs):
    """Inputs for coefficients [B, max_degree+1] on the fixed-point grid (see the module docstring)."""
    if self.encoding == "float":
      return jnp.asarray(coeffs, jnp.float32)
    words = jnp.round(coeffs * 2.0**self.frac_bits).astype(jnp.int32)
    mag = jnp.abs(words)
    shifts = jnp.arange(self.int_bits + self.frac_bits, dtype=jnp.int32)
    bits = ((mag[..., None] >> shifts) & 1).astype(jnp.float32)
    sign = (words < 0).astype(jnp.float32)[..., None]
    return jnp.concatenate([sign, bits], axis=-1)

  # ------------------------------------------------------------------ instances
  @functools.partial(jax.jit, static_argnums=(0, 2))
  def _draw_coeffs(self, key, batch_size):
    d = self.degree
    u = jax.random.uniform(key, (batch_size, d + 1), jnp.float32, -1.0, 1.0)
    if self.distribution == "bernstein":
      u = u @ jnp.asarray(bernstein_to_power(d).T, jnp.float32)
    scale = 2.0**self.frac_bits
    limit = 2.0 ** (self.int_bits + self.frac_bits) - 1
    words = jnp.clip(jnp.round(u * scale), -limit, limit)
    pad = jnp.zeros((batch_size, self.max_degree - d), jnp.float32)
    return jnp.concatenate([words / scale, pad], axis=1)

  def from_coeffs(self, coeffs) -> core.Batch:
    """The batch of the given coefficients [B, max_degree+1] (rounded to the fixed-point grid)."""
    coeffs = jnp.asarray(coeffs, jnp.float32)
    if coeffs.ndim != 2 or coeffs.shape[1] != self.max_degree + 1:
      raise ValueError(f"coeffs must have shape [B, {self.max_degree + 1}], got {coeffs.shape}")
    _checks.check_finite("coeffs", coeffs)
    return self._from_coeffs(self.quantize(coeffs))

  chunk_rows = 2**13
  work_bytes_per_row = 16384
  """Measured peak working bytes per row of one chunk (CPU, jax 0.10.2: about 13 KB at degree 6 to 32, float and
  binary encodings alike; the [rows, 1025] feature grid and its neighbour comparisons dominate), rounded up."""

  def _from_coeffs(self, coeffs):
    size = coeffs.shape[0]
    if size > self.chunk_rows:  # bounded working memory: oracle and feature grid run one chunk at a time
      return core.concatenate([self._from_coeffs(coeffs[i:i + self.chunk_rows])
                               for i in range(0, size, self.chunk_rows)])
    coeffs = core.pad_rows(coeffs, core.bucket(size), 0.0)
    value, x = solve(coeffs)  # outside jit: the kernel dispatch may pad concrete batches
    low, _ = solve(-coeffs)
    # P on the feature grid in a jit of its own: inside one fused program XLA may recompute P for each neighbour
    # comparison with a different rounding (FMA contraction), which can make a flat peak vanish.
    values = _feature_grid_values(coeffs)
    return self._assemble(coeffs, values, value, x, -low).take(jnp.arange(size))

  @functools.partial(jax.jit, static_argnums=0)
  def _assemble(self, coeffs, grid_values, value, x, min_value):
    g = FEATURE_GRID_POINTS
    xs, vals, ok = _kernel.candidates_from_grid(coeffs, grid_values, g, _kernel.num_candidates(self.max_degree))
    num_maxima, second = _count_maxima(coeffs, xs, vals, ok, 1.0 / (g - 1), value)
    spread = value - min_value
    gap = jnp.where(num_maxima > 1, jnp.clip((value - second) / jnp.where(spread > 0, spread, 1.0), 0.0, 1.0), 1.0)
    boundary = (x == 0.0) | (x == 1.0)
    regret8 = grid_regret(coeffs, value, min_value, HARD_GRID_POINTS)
    regret16 = grid_regret(coeffs, value, min_value, HARDER_GRID_POINTS)
    hard = ~boundary & (regret8 > HARD_GRID_REGRET)
    return core.Batch(
        inputs=self.encode(coeffs),
        targets={"x": x, "value": value},
        info={"coeffs": coeffs, "min_value": min_value,
              "difficulty": {"num_maxima": num_maxima, "gap": gap, "boundary": boundary.astype(jnp.int32),
                             "grid_regret_8": regret8, "grid_regret_16": regret16},
              "strata": {"easy": ~hard, "hard": hard}})

  def sample(self, key, batch_size, stratum=None) -> core.Batch:
    """``batch_size`` instances from ``distribution`` (i.i.d.); with ``stratum``, DISTINCT instances of the
    stratum (rejection sampling, see the module docstring)."""
    batch_size = self._check_batch_size(batch_size)
    self._check_stratum(stratum)
    if stratum is not None:
      return self._distinct(key, batch_size, stratum, None)
    return self._from_coeffs(self._draw_coeffs(key, batch_size))

  def _keep(self, batch: core.Batch, stratum: str | None) -> np.ndarray:
    """Which instances of ``batch`` the sampler may return (members of ``stratum``; every instance if None)."""
    return np.ones(batch.size, bool) if stratum is None else np.asarray(batch.info["strata"][stratum])

  def _hashes(self, batch: core.Batch) -> np.ndarray:
    return np.asarray(core.hash_rows(self._words(batch.info["coeffs"])))

  def _distinct(self, key, batch_size, stratum, exclude) -> core.Batch:
    draw = lambda k, m: self._from_coeffs(self._draw_coeffs(k, m))
    return self._sample_distinct(key, batch_size, draw, lambda b: self._keep(b, stratum), self._hashes,
                                 exclude, what=f"distinct instances of stratum {stratum!r}")

  def _words(self, coeffs):
    return jnp.round(coeffs * 2.0**self.frac_bits).astype(jnp.int32)

  def pool(self, key, size, max_rounds: int = 64) -> core.Batch:
    """``size`` distinct instances. Distinctness: rows are hashed (32-bit hash of the integer coefficient words);
    every row whose hash repeats an earlier row's is redrawn until all hashes differ, so equal rows (which hash
    equal) cannot survive. ``size`` above the number of distinct instances is a ValueError."""
    size = self._check_pool_size(size)
    coeffs = np.array(self._draw_coeffs(key, size))
    for r in range(max_rounds):
      hashes = np.asarray(core.hash_rows(self._words(jnp.asarray(coeffs))))
      _, first = np.unique(hashes, return_index=True)
      dup = np.ones(size, bool)
      dup[first] = False
      if not dup.any():
        return self._from_coeffs(jnp.asarray(coeffs))
      fresh = np.asarray(self._draw_coeffs(jax.random.fold_in(key, r + 1), size))
      coeffs[dup] = fresh[: int(dup.sum())]
    raise ValueError(f"could not draw {size} distinct instances in {max_rounds} rounds; size is too close to the "
                     f"number of distinct instances ({self.space_size})")

  def sample_outside(self, key, batch_size, pool, max_rounds: int = 64, stratum=None) -> core.Batch:
    """``batch_size`` instances none of which is in ``pool``: draws whose hash matches a pool row's hash are
    redrawn (a pool row always matches its own hash, so none can slip through; a rare non-member sharing a
    hash is redrawn too, which biases the distribution by at most |pool| / 2**32 per draw). With ``stratum``:
    DISTINCT instances of the stratum outside the pool."""
    batch_size = self._check_batch_size(batch_size)
    self._check_stratum(stratum)
    if stratum is not None:
      return self._distinct(key, batch_size, stratum, self._hashes(pool))
    pool_hashes = np.sort(np.asarray(core.hash_rows(self._words(pool.info["coeffs"]))))
    coeffs = np.array(self._draw_coeffs(key, batch_size))
    for r in range(max_rounds):
      hashes = np.asarray(core.hash_rows(self._words(jnp.asarray(coeffs))))
      pos = np.clip(np.searchsorted(pool_hashes, hashes), 0, len(pool_hashes) - 1)
      inside = pool_hashes[pos] == hashes
      if not inside.any():
        return self._from_coeffs(jnp.asarray(coeffs))
      fresh = np.asarray(self._draw_coeffs(jax.random.fold_in(key, r + 1), batch_size))
      coeffs[inside] = fresh[: int(inside.sum())]
    raise ValueError(f"could not draw {batch_size} instances outside a pool of {len(pool_hashes)} in {max_rounds} "
                     "rounds; the pool covers almost every instance")

  # ------------------------------------------------------------------ scoring
  def prediction_array(self, prediction) -> jax.Array:
    """x̂ as float32 by ``interval_prediction`` (outside [0, 1] stays outside, non-finite becomes NaN)."""
    return interval_prediction(prediction)

  def _score(self, batch: core.Batch, prediction) -> dict[str, jax.Array]:
    """Per-example ``loss``, ``regret`` and ``hit`` (float32 [B]) of predicted x̂ (floats [B])."""
    return _score(batch, prediction)


@dataclasses.dataclass(frozen=True)
class PolyMaxHarder(PolyMax):
  """The "harder" split of PolyMax (``PolyMax.larger()``): the same parameters and spec, only instances whose
  maximum is interior and missed by the HARDER_GRID_POINTS grid by more than HARDER_GRID_REGRET (rejection
  sampling; ``sample``, ``pool`` and ``sample_outside`` all return distinct instances of it)."""

  def larger(self) -> None:
    return None

  def _keep(self, batch, stratum):
    diff = batch.info["difficulty"]
    harder = (np.asarray(diff["boundary"]) == 0) & (np.asarray(diff["grid_regret_16"]) > HARDER_GRID_REGRET)
    return harder & super()._keep(batch, stratum)

  def sample(self, key, batch_size, stratum=None) -> core.Batch:
    batch_size = self._check_batch_size(batch_size)
    self._check_stratum(stratum)
    return self._distinct(key, batch_size, stratum, None)

  def pool(self, key, size, max_rounds: int = 64) -> core.Batch:
    return self._distinct(key, self._check_pool_size(size), None, None)

  def sample_outside(self, key, batch_size, pool, max_rounds: int = 64, stratum=None) -> core.Batch:
    batch_size = self._check_batch_size(batch_size)
    self._check_stratum(stratum)
    return self._distinct(key, batch_size, stratum, self._hashes(pool))


# ------------------------------------------------------------------------------------------------ ground truth


def grid_points(budget: int):
  """The "grid" searcher's points x_g = g / (budget - 1), g = 0 .. budget - 1: float32 [budget] (x_0 = 0 and
  x_{budget-1} = 1 exactly)."""
  return jnp.arange(budget, dtype=jnp.int32).astype(jnp.float32) / jnp.float32(budget - 1)


def best_point(coeffs, xs):
  """The point of ``xs`` ([M] shared, or [B, M] per instance) with the largest P (compensated Horner; ties to the
  first): float32 [B]."""
  xs = jnp.broadcast_to(xs, coeffs.shape[:1] + xs.shape[-1:])
  vals = _kernel.horner_compensated(coeffs, xs)
  return jnp.take_along_axis(xs, jnp.argmax(vals, axis=-1)[:, None], axis=-1)[:, 0]


def grid_regret(coeffs, value, min_value, budget: int):
  """Normalized regret (max - max_g P(x_g)) / (max - min), in [0, 1] (0 when P is constant), of the ``budget``-point
  grid: float32 [B]."""
  best = jnp.max(_kernel.horner_compensated(coeffs, jnp.broadcast_to(grid_points(budget),
                                                                     coeffs.shape[:1] + (budget,))), axis=-1)
  spread = value - min_value
  return jnp.clip(jnp.where(spread > 0, (value - best) / jnp.where(spread > 0, spread, 1.0), 0.0), 0.0, 1.0)


def _features(coeffs):
  """Ridge features [B, D + 2]: an intercept column of ones, then the coefficients."""
  return jnp.concatenate([jnp.ones(coeffs.shape[:1] + (1,), jnp.float32), coeffs.astype(jnp.float32)], axis=-1)


def ridge_fit(features, x):
  """argmin_w |F w - x|**2 + RIDGE_PENALTY |w[1:]|**2 (the intercept w[0] unpenalized): float32 [F]."""
  f = features.shape[-1]
  penalty = jnp.float32(RIDGE_PENALTY) * jnp.diag(jnp.concatenate([jnp.zeros((1,)), jnp.ones((f - 1,))]))
  gram = features.T @ features + penalty.astype(jnp.float32)
  return jnp.linalg.solve(gram, features.T @ x)


@functools.lru_cache(maxsize=None)
def projection_matrix(degree: int, to_degree: int) -> np.ndarray:
  """M [to_degree + 1, degree + 1] float64: a = M c are the coefficients of the L2([0, 1]) best approximation of
  degree ``to_degree`` to the polynomial c (normal equations with Gram matrix 1 / (i + j + 1))."""
  i = np.arange(to_degree + 1)[:, None]
  gram = 1.0 / (i + np.arange(to_degree + 1)[None, :] + 1.0)
  moments = 1.0 / (i + np.arange(degree + 1)[None, :] + 1.0)
  return np.linalg.solve(gram, moments)


def projection_argmax(coeffs, to_degree: int):
  """Heuristic "quadratic" (to_degree 2) / "cubic" (3): the argmax on [0, 1] of the L2 projection q of P, from the
  closed-form stationary points of q and the endpoints compared on q (ties: x = 0 first, then the stationary
  points, then x = 1): float32 [B]."""
  m = jnp.asarray(projection_matrix(coeffs.shape[-1] - 1, to_degree), jnp.float32)
  a = coeffs.astype(jnp.float32) @ m.T  # [B, to_degree + 1]
  if to_degree == 2:
    curved = a[:, 2] < 0
    stat = jnp.where(curved, -a[:, 1] / jnp.where(curved, 2.0 * a[:, 2], 1.0), 0.0)[:, None]
    ok = curved[:, None]
  else:  # q' = a1 + 2 a2 x + 3 a3 x**2
    qa, qb, qc = 3.0 * a[:, 3], 2.0 * a[:, 2], a[:, 1]
    disc = qb * qb - 4.0 * qa * qc
    root = jnp.sqrt(jnp.maximum(disc, 0.0))
    lin = jnp.abs(qa) < 1e-12
    safe = jnp.where(lin, 1.0, 2.0 * qa)
    r1, r2 = (-qb + root) / safe, (-qb - root) / safe
    r_lin = jnp.where(jnp.abs(qb) > 0, -qc / jnp.where(jnp.abs(qb) > 0, qb, 1.0), 0.0)
    stat = jnp.stack([jnp.where(lin, r_lin, r1), jnp.where(lin, r_lin, r2)], axis=-1)
    ok = jnp.stack([(disc >= 0) | lin, (disc >= 0) | lin], axis=-1)
  ok = ok & (stat > 0.0) & (stat < 1.0)
  xs = jnp.concatenate([jnp.zeros_like(a[:, :1]), jnp.where(ok, stat, 0.0), jnp.ones_like(a[:, :1])], axis=-1)
  q = _kernel.horner(a, xs)
  q = jnp.where(jnp.concatenate([jnp.ones_like(ok[:, :1]), ok, jnp.ones_like(ok[:, :1])], axis=-1), q, -jnp.inf)
  return jnp.take_along_axis(xs, jnp.argmax(q, axis=-1)[:, None], axis=-1)[:, 0]


@jax.jit
def _feature_grid_values(coeffs):
  """P on the FEATURE_GRID_POINTS grid of the difficulty features, [B, G] float32."""
  return _kernel.horner(coeffs, _kernel.grid_x(jnp.arange(FEATURE_GRID_POINTS, dtype=jnp.int32),
                                               FEATURE_GRID_POINTS))


def _count_maxima(coeffs, xs, vals, ok, h, best):
  """Local maxima among the oracle's candidates, and the best value among those away from the global argmax.

  A candidate is a local maximum if P there is >= P one grid step h to either side (inside [0, 1]); candidates
  within 3h of a better one are the same maximum (merged). Returns (count >= 1, second best value; ``best``
  when there is no other maximum)."""
  radius = 3.0 * h
  order = jnp.argsort(-jnp.where(ok, vals, -jnp.inf), axis=-1)
  xs = jnp.take_along_axis(xs, order, axis=-1)
  vals = jnp.take_along_axis(vals, order, axis=-1)
  ok = jnp.take_along_axis(ok, order, axis=-1)
  m = xs.shape[-1]
  near = jnp.abs(xs[..., :, None] - xs[..., None, :]) <= radius  # [.., m, m]
  earlier = jnp.tril(jnp.ones((m, m), bool), k=-1)  # j < i: candidate j is at least as good as i
  shadowed = jnp.any(near & earlier & ok[..., None, :], axis=-1)
  # The endpoints are candidates whether or not they are local maxima: keep one only if P falls away from it.
  left = _kernel.horner_compensated(coeffs, jnp.maximum(xs - h, 0.0))
  right = _kernel.horner_compensated(coeffs, jnp.minimum(xs + h, 1.0))
  is_max = ok & ~shadowed & (vals >= left) & (vals >= right)
  num = jnp.sum(is_max, axis=-1).astype(jnp.int32)
  lead = xs[..., :1]
  second = jnp.max(jnp.where(is_max & (jnp.abs(xs - lead) > radius), vals, -jnp.inf), axis=-1)
  return jnp.maximum(num, 1), jnp.where(jnp.isfinite(second), second, best)


_BELOW = -(2.0**-24)
"""float32 stand-in for a prediction below 0 (clips to 0, stays outside [0, 1]; a normal number, never flushed)."""
_ABOVE = 1.0 + 2.0**-23
"""float32 stand-in for a prediction above 1 (the next float32 after 1: clips to 1, stays outside)."""


def interval_prediction(prediction) -> jax.Array:
  """Predicted points x̂ as float32 for scoring, with "outside [0, 1]" and "non-finite" decided exactly.

  Concrete inputs (numpy, Python, jax arrays, any real dtype) are checked in their own dtype before the conversion
  to float32: values inside [0, 1] are rounded to float32, values below 0 become ``_BELOW`` and above 1
  ``_ABOVE`` (so that float32 rounding cannot move an outside value onto 0 or 1, nor a huge finite float64 to
  inf), NaN and +-inf become NaN. Traced inputs are converted the same way in their traced dtype. Raises
  ValueError naming ``prediction`` for dtypes that are not real numbers.
  """
  xp = np if _checks.is_concrete(prediction) else jnp
  arr = np.asarray(prediction) if xp is np else prediction
  if arr.dtype.kind not in "iuf":
    raise ValueError(f"prediction must hold real numbers (x in [0, 1]), got dtype {arr.dtype}")
  with np.errstate(invalid="ignore"):
    finite = xp.isfinite(arr) if arr.dtype.kind == "f" else xp.ones(arr.shape, bool)
    below, above = finite & (arr < 0), finite & (arr > 1)
    inside = xp.where(finite & ~below & ~above, arr, 0).astype(xp.float32)
  out = xp.where(below, xp.float32(_BELOW), xp.where(above, xp.float32(_ABOVE), inside))
  return jnp.asarray(xp.where(finite, out, xp.float32(np.nan)), jnp.float32)


@jax.jit
def _score(batch, prediction):
  coeffs = batch.info["coeffs"]
  best, low = batch.targets["value"], batch.info["min_value"]
  finite = jnp.isfinite(prediction)
  inside = (prediction >= 0) & (prediction <= 1)  # False for NaN
  x_hat = jnp.clip(jnp.where(finite, prediction, 0.0), 0.0, 1.0).astype(jnp.float32)
  p_hat = _kernel.horner_compensated(coeffs, x_hat[:, None])[:, 0]
  p_hat = jnp.where(finite, p_hat, low)
  spread = best - low
  regret = jnp.where(spread > 0, (best - p_hat) / jnp.where(spread > 0, spread, 1.0), 0.0)
  hit = finite & inside & (jnp.abs(x_hat - batch.targets["x"]) <= HIT_RADIUS)
  return {"loss": (p_hat - best) ** 2, "regret": jnp.clip(regret, 0.0, 1.0), "hit": hit.astype(jnp.float32)}


core.register(PolyMax.task_id, PolyMax)
