"""ModSearch-v0: the seed program of question 2 as a task: given n, find k <= n**0.7 maximizing k*k mod n.

Instances: n uniform in [1, 2**bits - 1]. Inputs: n as ``width`` bits, LSB first (float32 0/1), width >= bits, so
a model trained at small ``bits`` can be tested on larger n of the same width (``larger()``).

Targets: ``k`` (int32, the seed program's answer: the smallest maximizer), ``r`` = k*k mod n (int32), ``k_bits``
(k as ``spec.output_bits`` bits, LSB first, float32). ``spec.num_classes`` = kmax(2**width - 1) + 1, so every answer
of every n of that width is a class.

Score of a predicted k̂ (int): ``accuracy`` = 1[k̂ = k]; ``regret`` = (r - (k̂*k̂ mod n)) / n in [0, 1); a k̂
outside [0, K] (K = kmax(n)) is not a legal answer and scores the worst regret, 1.0; ``loss`` = regret.

Difficulty: ``bit_length`` of n; ``search_space`` = K, the seed loop's iteration count (about n**0.7);
``num_bands`` = floor(K*K / n) + 1, the candidates of the banded search (about n**0.4).
Strata (by bit length L of n): "easy": L <= ceil(bits / 2) (K < 2**(0.35 bits + 1)); "hard": L = bits.

Integer bounds: n <= 2**30 everywhere (kernels.modsearch); width <= 31 so inputs decode into int32.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from mesabench.kernels import _checks
from mesabench.kernels import modsearch as _kernel
from mesabench.tasks import core

MAX_BITS = 30


def kmax(n):
  """K = floor(n**0.7) exactly (largest K with K**10 <= n**7) for n in [1, 2**30]; int32, n's shape."""
  return _kernel.kmax(n)


def solve(n, **kernel_options):
  """(k, r): the seed program's answer and k*k mod n, exactly, for an integer array n in [1, 2**30].

  Batched over any shape; routes through ``mesabench.kernels.modsearch.search`` (keyword options go there).
  """
  search = getattr(_kernel, "search", None)
  if search is None:
    return _kernel.search_reference(n)
  return search(n, **kernel_options)


def to_bits(values, width: int):
  """Integers [...] (0 <= v < 2**width, width <= 31) as float32 bits [..., width], least significant first."""
  shifts = jnp.arange(width, dtype=jnp.int32)
  return ((jnp.asarray(values, jnp.int32)[..., None] >> shifts) & 1).astype(jnp.float32)


def from_bits(bits):
  """The inverse of ``to_bits``: bits [..., width] (0/1, thresholded at 0.5) as int32 [...]."""
  width = bits.shape[-1]
  weights = jnp.left_shift(jnp.int32(1), jnp.arange(width, dtype=jnp.int32))
  return jnp.sum((bits > 0.5).astype(jnp.int32) * weights, axis=-1)


def bit_length(n):
  """Number of bits of positive int32 n (1 for n = 1); int32."""
  return 32 - jax.lax.clz(jnp.asarray(n, jnp.int32))


@dataclasses.dataclass(frozen=True)
class ModSearch(core.Task):
  """ModSearch-v0. Parameters: bits (n in [1, 2**bits - 1], 1..30), width (input bits, bits..31; default bits)."""
  bits: int = 12
  width: int | None = None

  task_id = "ModSearch-v0"
  answer_key = "k"

  def __post_init__(self):
    if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)) or not 1 <= self.bits <= MAX_BITS:
      raise ValueError(f"bits must be an integer in [1, {MAX_BITS}], got {self.bits!r}")
    if self.width is None:
      object.__setattr__(self, "width", int(self.bits))
    if isinstance(self.width, bool) or not isinstance(self.width, (int, np.integer)) or not (
        self.bits <= self.width <= 31):
      raise ValueError(f"width must be an integer in [bits={self.bits}, 31] (too narrow for n < 2**bits "
                       f"below that), got {self.width!r}")

  # ------------------------------------------------------------------ description
  @property
  def n_max(self) -> int:
    return 2**self.bits - 1

  @property
  def space_size(self) -> int:
    return self.n_max

  @property
  def _widest_k(self) -> int:
    """kmax of the largest n the input width can carry, in Python integers (usable while tracing)."""
    return _kernel.kmax_int(min(2**self.width - 1, _kernel.N_MAX))

  @property
  def spec(self) -> core.Spec:
    return core.Spec(
        task_id=self.task_id, input_shape=(self.width,), input_kind="bits", output_kind="integer",
        num_classes=self._widest_k + 1, output_bits=max(1, self._widest_k.bit_length()),
        meta=(("bits", self.bits), ("encoding", "bits_lsb_first"), ("width", self.width)),
        task_params=tuple(sorted(self.params().items())))

  @property
  def strata(self) -> tuple[str, ...]:
    return ("easy", "hard")

  def _stratum_range(self, stratum: str) -> tuple[int, int]:
    if stratum == "easy":
      return 1, 2 ** ((self.bits + 1) // 2) - 1
    return 2 ** (self.bits - 1), self.n_max

  def larger(self) -> "ModSearch | None":
    """bits = width (larger n, the same input width); None when bits already equals width."""
    if self.bits == self.width:
      return None
    return dataclasses.replace(self, bits=self.width)

  # ------------------------------------------------------------------ what the task knows
  success_metric = "accuracy"
  metric_directions = (("accuracy", "higher"), ("loss", "lower"), ("regret", "lower"))

  def chance_predictions(self, batch: core.Batch, key: jax.Array, draws: int) -> jax.Array:
    """k uniform over the legal answers [0, K(n)] of each example: int32 [draws, B]."""
    return _uniform_below(key, jnp.asarray(batch.info["kmax"], jnp.int32), jnp.zeros((draws,), jnp.int8))

  def answer_bits(self, key: jax.Array | None = None, size: int = 4096) -> float:
    """Mean log2(K(n) + 1) over ``size`` sampled n: the bits of an answer."""
    batch = self.sample(jax.random.key(0) if key is None else key, size)
    return float(np.mean(np.log2(np.asarray(batch.info["kmax"], np.float64) + 1.0)))

  def decode(self, inputs: jax.Array) -> dict[str, jax.Array]:
    """{"n": int32 [B]} from inputs [B, width] (bits, LSB first)."""
    return {"n": from_bits(inputs)}

  def dummy_targets(self, batch_size: int) -> dict[str, jax.Array]:
    return {"k": jnp.zeros((batch_size,), jnp.int32), "r": jnp.zeros((batch_size,), jnp.int32),
            "k_bits": jnp.zeros((batch_size, self.spec.output_bits), jnp.float32)}

  # ------------------------------------------------------------------ instances
  def from_n(self, n) -> core.Batch:
    """The batch of the given n (int array [B], each in [1, 2**width - 1] and <= 2**30)."""
    _checks.check_int_range("n", n, 1, min(2**self.width - 1, _kernel.N_MAX))
    return self._from_n(jnp.asarray(n, jnp.int32))

  def _from_n(self, n):
    size = n.shape[0]
    n = core.pad_rows(n, core.bucket(size), 1)
    k, r = solve(n)  # outside jit: the kernel dispatch may sort and pad concrete batches
    return self._assemble(n, k, r).take(jnp.arange(size))

  @functools.partial(jax.jit, static_argnums=0)
  def _assemble(self, n, k, r):
    big_k = kmax(n)
    length = bit_length(n)
    bands, _ = _kernel.sqmod(big_k, n)
    lo_easy, hi_easy = self._stratum_range("easy")
    lo_hard, _ = self._stratum_range("hard")
    return core.Batch(
        inputs=to_bits(n, self.width),
        targets={"k": k, "r": r, "k_bits": to_bits(k, self.spec.output_bits)},
        info={"n": n, "kmax": big_k,
              "difficulty": {"bit_length": length, "search_space": big_k, "num_bands": bands + 1},
              "strata": {"easy": (n >= lo_easy) & (n <= hi_easy), "hard": n >= lo_hard}})

  @functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
  def _draw_n(self, key, batch_size, lo, hi):
    return jax.random.randint(key, (batch_size,), lo, hi + 1, dtype=jnp.int32)

  def sample(self, key, batch_size, stratum=None) -> core.Batch:
    """``batch_size`` instances with n uniform in [1, 2**bits - 1] (or uniform within ``stratum``'s range)."""
    batch_size = self._check_batch_size(batch_size)
    self._check_stratum(stratum)
    lo, hi = (1, self.n_max) if stratum is None else self._stratum_range(stratum)
    return self._from_n(self._draw_n(key, batch_size, lo, hi))

  def pool(self, key, size) -> core.Batch:
    """``size`` distinct n: the first ``size`` values of a keyed pseudo-random permutation of [1, 2**bits - 1].

    Distinct by construction (a bijection); ``size`` above 2**bits - 1 is a ValueError.
    """
    size = self._check_pool_size(size)
    idx = core.permute_index(key, jnp.arange(size, dtype=jnp.int32), self.n_max)
    return self._from_n(idx + 1)

  def sample_outside(self, key, batch_size, pool) -> core.Batch:
    """``batch_size`` n drawn uniformly from [1, 2**bits - 1] minus the pool's n (exact, no rejection)."""
    batch_size = self._check_batch_size(batch_size)
    members = np.unique(np.asarray(pool.info["n"])) - 1
    members = members[(members >= 0) & (members < self.n_max)]
    free = self.n_max - members.size
    if free < 1:
      raise ValueError(f"pool covers all {self.n_max} instances of {self.task_id} with {self.params()}: "
                       "nothing lies outside it")
    j = jax.random.randint(key, (batch_size,), 0, free, dtype=jnp.int32)
    return self._from_n(core.nth_outside(members, j) + 1)

  # ------------------------------------------------------------------ scoring
  def _score(self, batch: core.Batch, prediction) -> dict[str, jax.Array]:
    """Per-example ``loss`` (= regret), ``regret`` and ``accuracy`` (float32 [B]) of predicted k̂ (ints [B])."""
    return _score(batch, prediction)


@jax.jit
def _uniform_below(key, hi, draws_like):
  u = jax.random.uniform(key, draws_like.shape + hi.shape)
  return jnp.minimum(jnp.floor(u * (hi + 1).astype(jnp.float32)).astype(jnp.int32), hi)


@jax.jit
def _score(batch, prediction):
  n, big_k = batch.info["n"], batch.info["kmax"]
  k_hat = prediction.astype(jnp.int32)
  legal = (k_hat >= 0) & (k_hat <= big_k)
  _, r_hat = _kernel.sqmod(jnp.where(legal, k_hat, 0), n)
  regret = jnp.where(legal, (batch.targets["r"] - r_hat).astype(jnp.float32) / n.astype(jnp.float32), 1.0)
  return {"loss": regret, "regret": regret, "accuracy": (k_hat == batch.targets["k"]).astype(jnp.float32)}


core.register(ModSearch.task_id, ModSearch)
