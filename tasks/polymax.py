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

Score of a predicted x̂: x̂ is clipped to [0, 1]; a non-finite x̂ scores as the minimizer (the worst answer).
``loss`` = (P(x̂) - max)**2 (the seed's loss); ``regret`` = (max - P(x̂)) / (max - min) in [0, 1] (0 when P is
constant); ``hit`` = 1[|x̂ - argmax| <= 1e-3].

Difficulty: ``num_maxima`` (local maxima in [0, 1], endpoints included, from the oracle's refined candidates on
a grid of 1,025 points, merged within 3 cells), ``gap`` = (best - second best local maximum) / (max - min) in
[0, 1] (1 when there is one local maximum), ``boundary`` (1 when the argmax is 0 or 1).
Strata: "easy": one local maximum; "hard": at least two local maxima with gap < 0.1.
Extrapolation: ``max_degree`` > ``degree`` pads inputs; ``larger()`` raises the degree to ``max_degree``.
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
HARD_GAP = 0.1


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
    if self.encoding not in ENCODINGS:
      raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
    if self.distribution not in DISTRIBUTIONS:
      raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
    # The fixed-point format is sized for max_degree so that larger() keeps the same encoding (the same spec).
    need = _coefficient_bound(self.distribution, self.max_degree)
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
    """degree = max_degree (the same input shape); None when degree already equals max_degree."""
    if self.degree == self.max_degree:
      return None
    return dataclasses.replace(self, degree=self.max_degree)

  # ------------------------------------------------------------------ what the task knows
  success_metric = "hit"
  metric_directions = (("hit", "higher"), ("loss", "lower"), ("regret", "lower"))

  def chance_predictions(self, batch: core.Batch, key: jax.Array, draws: int) -> jax.Array:
    """x uniform in [0, 1]: float32 [draws, B]."""
    return jax.random.uniform(key, (draws, batch.size))

  def answer_bits(self, key: jax.Array | None = None, size: int = 4096) -> float:
    """The answers the hit criterion tells apart: log2(1 / (2 * HIT_RADIUS)) (about 9 bits)."""
    del key, size
    return float(math.log2(1.0 / (2.0 * HIT_RADIUS)))

  def decode(self, inputs: jax.Array) -> dict[str, jax.Array]:
    """{"coeffs": float32 [B, max_degree + 1]} from inputs (float or sign-magnitude binary fixed point)."""
    if self.encoding == "float":
      return {"coeffs": jnp.asarray(inputs, jnp.float32)}
    bits = (inputs[..., 1:] > 0.5).astype(jnp.int32)
    mag = jnp.sum(bits << jnp.arange(bits.shape[-1], dtype=jnp.int32), axis=-1)
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

  def decode(self, inputs):
    """The inverse of ``encode``: coefficients [B, max_degree+1] float32."""
    if self.encoding == "float":
      return jnp.asarray(inputs, jnp.float32)
    bits = (inputs[..., 1:] > 0.5).astype(jnp.int32)
    mag = jnp.sum(bits << jnp.arange(bits.shape[-1], dtype=jnp.int32), axis=-1)
    sign = jnp.where(inputs[..., 0] > 0.5, -1, 1)
    return (sign * mag).astype(jnp.float32) / 2.0**self.frac_bits

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

  def _from_coeffs(self, coeffs):
    size = coeffs.shape[0]
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
    return core.Batch(
        inputs=self.encode(coeffs),
        targets={"x": x, "value": value},
        info={"coeffs": coeffs, "min_value": min_value,
              "difficulty": {"num_maxima": num_maxima, "gap": gap, "boundary": boundary.astype(jnp.int32)},
              "strata": {"easy": num_maxima == 1, "hard": (num_maxima >= 2) & (gap < HARD_GAP)}})

  def sample(self, key, batch_size, stratum=None) -> core.Batch:
    """``batch_size`` instances from ``distribution`` (rejection-sampled within ``stratum`` when given)."""
    batch_size = self._check_batch_size(batch_size)
    self._check_stratum(stratum)
    if stratum is not None:
      return self._sample_stratum(key, batch_size, stratum, self.sample)
    return self._from_coeffs(self._draw_coeffs(key, batch_size))

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

  def sample_outside(self, key, batch_size, pool, max_rounds: int = 64) -> core.Batch:
    """``batch_size`` instances none of which is in ``pool``: draws whose hash matches a pool row's hash are
    redrawn (a pool row always matches its own hash, so none can slip through; a rare non-member sharing a
    hash is redrawn too, which biases the distribution by at most |pool| / 2**32 per draw)."""
    batch_size = self._check_batch_size(batch_size)
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
  def _score(self, batch: core.Batch, prediction) -> dict[str, jax.Array]:
    """Per-example ``loss``, ``regret`` and ``hit`` (float32 [B]) of predicted x̂ (floats [B])."""
    return _score(batch, prediction)


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


@jax.jit
def _score(batch, prediction):
  coeffs = batch.info["coeffs"]
  best, low = batch.targets["value"], batch.info["min_value"]
  finite = jnp.isfinite(prediction)
  x_hat = jnp.clip(jnp.where(finite, prediction, 0.0), 0.0, 1.0).astype(jnp.float32)
  p_hat = _kernel.horner_compensated(coeffs, x_hat[:, None])[:, 0]
  p_hat = jnp.where(finite, p_hat, low)
  spread = best - low
  regret = jnp.where(spread > 0, (best - p_hat) / jnp.where(spread > 0, spread, 1.0), 0.0)
  return {"loss": (p_hat - best) ** 2, "regret": jnp.clip(regret, 0.0, 1.0),
          "hit": (finite & (jnp.abs(x_hat - batch.targets["x"]) <= HIT_RADIUS)).astype(jnp.float32)}


core.register(PolyMax.task_id, PolyMax)
