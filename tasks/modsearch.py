"""ModSearch-v0: the seed program of question 2 as a task: given n, find k <= n**0.7 maximizing k*k mod n.

Instances: n uniform in [1, 2**bits - 1]. Inputs: n as ``width`` bits, LSB first (float32 0/1), width >= bits, so
a model trained at small ``bits`` can be tested on larger n of the same width (``larger()``).

Targets: ``k`` (int32, the seed program's answer: the smallest maximizer), ``r`` = k*k mod n (int32), ``k_bits``
(k as ``spec.output_bits`` bits, LSB first, float32). ``spec.num_classes`` = kmax(2**width - 1) + 1, so every answer
of every n of that width is a class.

Score of a predicted k̂: ``accuracy`` = 1[k̂ = k]; ``regret`` = (r - (k̂*k̂ mod n)) / n in [0, 1); ``loss`` =
regret. Predictions (``tasks.core.integer_prediction``, the rule of every integer-answer task): integers of any
dtype and integer-valued floats (3.0) are answers; a k̂ outside [0, K] (K = kmax(n)) is not a legal answer, and
neither is NaN, +-inf, a non-integer float (3.7 is not truncated to 3) or an integer outside int32 (k + 2**32 does
not wrap to k): each scores the worst value, regret 1.0 and accuracy 0.

Difficulty: ``bit_length`` of n; ``search_space`` = K, the seed loop's iteration count (about n**0.7);
``num_bands`` = floor(K*K / n) + 1, the candidates of the banded search (about n**0.4).
Strata (a partition, defined by where the cheap answers fail): "hard": neither the non-search heuristic "isqrt"
nor the best of the 2 highest band tops (searcher "bands", budget 2) reaches the maximum residue r; "easy": the
rest (one of them is optimal). ``sample(key, size, stratum)`` returns DISTINCT n of the stratum: it walks a keyed
permutation of [1, 2**bits - 1] and keeps the members in order, so a stratum with fewer than ``size`` members is a
ValueError (bits 10: 665 hard and 358 easy n, so the easy stratum cannot give 512 distinct instances; bits 16:
57,807 hard, 7,728 easy). Measured over every n of the range (regret = the loss, then accuracy):

  rule        bits 10: hard       easy         all         bits 16: hard      easy         all
  isqrt                0.039/0.00  0.012/0.82   0.030/0.29           0.0066/0.00 0.0012/0.90  0.0059/0.11
  top_band             0.158/0.00  0.154/0.11   0.157/0.04           0.050/0.00  0.053/0.07   0.050/0.01

Hard is harder for the best heuristic (isqrt: 3.3x the regret at bits 10, 5.5x at bits 16) and has accuracy 0 for
both rules by construction; top_band's regret does not depend on the stratum (its answer, a top of one of the two
highest bands, is one of the candidates the definition checks, but how far it falls short is independent of it).

Ground truth (``heuristic_rules``, ``search_strategies``; the zoo's ``heuristic`` and ``search`` models call
them): heuristics, which never evaluate k*k mod n: "isqrt" k = isqrt(n - 1) (the top of band 0, clipped to
[0, K]); "top_band" the top of the highest complete band (the largest band top t with t <= K and (t+1)**2 >=
(q+1) n; K itself when no band below K is complete). Searchers with a budget of B candidates: "seed" the seed
loop over i = 1 .. min(K, B) (first strict maximum; B >= K is the oracle); "random" B candidates drawn uniformly
from [0, K] with ``jax.random.randint(fold_in(key(seed), n), (B,), 0, K + 1)``, the best residue (ties to the
smallest k); "bands" the best of the B highest band tops (K first, then the tops of bands q_last - 1, q_last - 2,
...; B >= num_bands is the oracle's banded algorithm). The equivalent-search-budget family is "seed".
Answer table: ``table_bits()`` = sum over n in [1, 2**bits - 1] of log2(K(n) + 1) (bits 10: 6,149; bits 16:
667,880; bits 20: 1.36e7; bits 24: 2.65e8): at bits 10 a model of ~1,540 parameters (x 4 bits each) could hold the
whole table, so studies of memorization against search use bits >= 16 (a 27k-parameter model holds 108k bits, 1/6
of the bits-16 table); bits 10 is a quick smoke preset.
Extrapolation: ``larger()`` sets bits = width: n with high bits that are 0 throughout training, so only models
whose weights are shared across bit positions can answer it (``larger_requires_shared_weights()``).

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
SEARCH_BLOCK = 512
"""Candidates per step of the "seed" searcher's rolled loop (fewer when the budget is smaller)."""
MAX_RANDOM_BUDGET = 2**16
"""Largest budget of the "random" searcher (it materializes [B, budget] candidates)."""


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
  return jnp.sum((bits > 0.5).astype(jnp.int32) * weights, axis=-1, dtype=jnp.int32)  # int32 also under x64


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

  def larger(self) -> "ModSearch | None":
    """bits = width (larger n, the same input width); None when bits already equals width."""
    if self.bits == self.width:
      return None
    return dataclasses.replace(self, bits=self.width)

  def larger_requires_shared_weights(self) -> bool:
    """True: larger n set input bits that are 0 throughout training (see the module docstring)."""
    return True

  def table_bits(self) -> float:
    """sum over n in [1, 2**bits - 1] of log2(K(n) + 1), exactly up to float64 rounding of the sum."""
    return _table_bits(self.n_max)

  # ------------------------------------------------------------------ ground truth
  def heuristic_rules(self) -> tuple[str, ...]:
    return ("isqrt", "top_band")

  def heuristic(self, rule: str, inputs: jax.Array, state=None) -> jax.Array:
    """k [B] int32 of the rule (see the module docstring); no state."""
    del state
    self._check_rule(rule)
    n = _n_of(inputs)
    return isqrt_rule(n) if rule == "isqrt" else top_band_rule(n)

  def search_strategies(self) -> tuple[str, ...]:
    return ("seed", "random", "bands")

  def full_search(self) -> tuple[str, int]:
    """("seed", K of the widest n): the seed loop over every candidate of every n the input width carries."""
    return "seed", self._widest_k

  def search_budget_range(self, strategy: str) -> tuple[int, int]:
    self._check_strategy(strategy)
    return 1, {"seed": _kernel.K_MAX * 2, "random": MAX_RANDOM_BUDGET, "bands": _kernel.Q_MAX + 1}[strategy]

  def search_budgets(self, strategy: str) -> tuple[int, ...]:
    """Powers of two from 1 up to the first that covers every n of ``bits`` (then the search is exact, except
    "random")."""
    self._check_strategy(strategy)
    top = _kernel.kmax_int(self.n_max)
    if strategy == "bands":
      top = top * top // self.n_max + 1
    return tuple(2**j for j in range(max(1, top - 1).bit_length() + 1))

  def search(self, strategy: str, budget: int, inputs: jax.Array, seed: int = 0) -> jax.Array:
    """k [B] int32 of ``strategy`` with ``budget`` candidates (see the module docstring)."""
    self._check_strategy(strategy)
    budget = self._check_budget(strategy, budget)
    n = _n_of(inputs)
    if strategy == "seed":
      return seed_search(n, budget)
    if strategy == "random":
      return random_search(n, budget, seed)
    return bands_search(n, budget)

  def search_loop_trips(self, strategy: str, budget: int) -> int:
    self._check_strategy(strategy)
    if strategy == "seed":
      return -(-budget // min(SEARCH_BLOCK, budget))
    return budget if strategy == "bands" else 1

  def search_family(self) -> core.SearchFamily:
    return core.SearchFamily("seed", self.search_budgets("seed"))

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

  def describe(self, batch, i: int) -> str:
    """n, the bound K, the answer k and k^2 mod n."""
    return (f"n={int(batch.info['n'][i]):>10d}  K={int(batch.info['kmax'][i]):>7d}  ->  k={int(batch.targets['k'][i])}"
            f"  (k^2 mod n = {int(batch.targets['r'][i])})")

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

  chunk_rows = 2**16
  work_bytes_per_row = 2048
  """Measured peak working bytes per row of one chunk (CPU, jax 0.10.2: about 1 KB; the exact integer root's
  bignum limbs and the search dominate), rounded up."""

  def _from_n(self, n):
    size = n.shape[0]
    if size > self.chunk_rows:  # bounded working memory: the oracle and the features run one chunk at a time
      return core.concatenate([self._from_n(n[i:i + self.chunk_rows]) for i in range(0, size, self.chunk_rows)])
    n = core.pad_rows(n, core.bucket(size), 1)
    k, r = solve(n)  # outside jit: the kernel dispatch may sort and pad concrete batches
    return self._assemble(n, k, r).take(jnp.arange(size))

  @functools.partial(jax.jit, static_argnums=0)
  def _assemble(self, n, k, r):
    big_k = kmax(n)
    length = bit_length(n)
    bands, _ = _kernel.sqmod(big_k, n)
    _, r_isqrt = _kernel.sqmod(isqrt_rule(n), n)
    _, r_bands = _kernel.sqmod(bands_search(n, 2), n)
    hard = (r_isqrt < r) & (r_bands < r)
    return core.Batch(
        inputs=to_bits(n, self.width),
        targets={"k": k, "r": r, "k_bits": to_bits(k, self.spec.output_bits)},
        info={"n": n, "kmax": big_k,
              "difficulty": {"bit_length": length, "search_space": big_k, "num_bands": bands + 1},
              "strata": {"easy": ~hard, "hard": hard}})

  @functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
  def _draw_n(self, key, batch_size, lo, hi):
    return jax.random.randint(key, (batch_size,), lo, hi + 1, dtype=jnp.int32)

  def sample(self, key, batch_size, stratum=None) -> core.Batch:
    """``batch_size`` instances with n uniform in [1, 2**bits - 1] (i.i.d., repeats possible); with ``stratum``,
    ``batch_size`` DISTINCT n drawn uniformly without replacement from the stratum (ValueError when it has fewer)."""
    batch_size = self._check_batch_size(batch_size)
    self._check_stratum(stratum)
    if stratum is not None:
      return self._walk_stratum(key, batch_size, stratum, None)
    return self._from_n(self._draw_n(key, batch_size, 1, self.n_max))

  def _walk_stratum(self, key, batch_size, stratum, exclude) -> core.Batch:
    """The first ``batch_size`` members of ``stratum`` (not in ``exclude``) along a keyed permutation of
    [1, n_max]: distinct, uniform without replacement."""
    chunk = min(core.bucket(max(2 * batch_size, 256)), self.n_max)
    got, count, start = [], 0, 0
    while count < batch_size and start < self.n_max:
      m = min(chunk, self.n_max - start)
      n = np.asarray(core.permute_index(key, jnp.arange(start, start + m, dtype=jnp.int32), self.n_max)) + 1
      start += m
      if exclude is not None:
        n = n[~np.isin(n, exclude)]
      if n.size == 0:
        continue
      cand = self._from_n(jnp.asarray(n, jnp.int32))
      idx = np.nonzero(np.asarray(cand.info["strata"][stratum]))[0][: batch_size - count]
      if idx.size:
        got.append(cand.take(jnp.asarray(idx)))
        count += idx.size
    if count < batch_size:
      where = "" if exclude is None else " outside the pool"
      raise ValueError(f"batch_size must be at most {count} (the distinct n of stratum {stratum!r}{where} of "
                       f"{self.task_id} with {self.params()}), got {batch_size}")
    return core.concatenate(got) if len(got) > 1 else got[0]

  def pool(self, key, size) -> core.Batch:
    """``size`` distinct n: the first ``size`` values of a keyed pseudo-random permutation of [1, 2**bits - 1].

    Distinct by construction (a bijection); ``size`` above 2**bits - 1 is a ValueError.
    """
    size = self._check_pool_size(size)
    idx = core.permute_index(key, jnp.arange(size, dtype=jnp.int32), self.n_max)
    return self._from_n(idx + 1)

  def sample_outside(self, key, batch_size, pool, stratum=None) -> core.Batch:
    """``batch_size`` n drawn uniformly from [1, 2**bits - 1] minus the pool's n (exact, no rejection); with
    ``stratum``, DISTINCT n of the stratum outside the pool (as ``sample``)."""
    batch_size = self._check_batch_size(batch_size)
    self._check_stratum(stratum)
    if stratum is not None:
      return self._walk_stratum(key, batch_size, stratum, np.unique(np.asarray(pool.info["n"])))
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
    """Per-example ``loss`` (= regret), ``regret`` and ``accuracy`` (float32 [B]) of predicted k̂ (int32 [B])."""
    return _score(batch, prediction)


# ------------------------------------------------------------------------------------------------ ground truth


def _n_of(inputs):
  """n [B] int32 from model inputs (bits, LSB first); 0 (no bit set) reads as 1."""
  return jnp.maximum(from_bits(inputs), 1)


def isqrt_rule(n):
  """Heuristic "isqrt": k = isqrt(n - 1), the top of band 0, clipped to [0, K]; int32, n's shape."""
  t, _ = _kernel.band_top(jnp.zeros_like(n), n)
  return jnp.minimum(t, kmax(n))


def top_band_rule(n):
  """Heuristic "top_band": the top of the highest complete band below K (K when band q_last = floor(K*K/n) is
  complete or when there is no lower band); int32, n's shape."""
  big_k = kmax(n)
  q_last, _ = _kernel.sqmod(big_k, n)
  t_last, _ = _kernel.band_top(q_last, n)
  below, _ = _kernel.band_top(jnp.maximum(q_last - 1, 0), n)
  return jnp.where((t_last <= big_k) | (q_last == 0), big_k, below)


def seed_search(n, budget: int):
  """Searcher "seed": the seed loop over i = 1 .. min(K, budget), first strict maximum (k = 0 when none beats
  residue 0); int32 [B]. ``budget`` is static."""
  block = min(SEARCH_BLOCK, budget)
  limit = jnp.minimum(kmax(n), budget)

  def body(j, carry):
    best_k, best_r = carry
    i = 1 + jnp.asarray(j, jnp.int32) * block + jnp.arange(block, dtype=jnp.int32)  # int32 also under x64
    _, r = _kernel.sqmod(jnp.broadcast_to(i, n.shape + (block,)), n[:, None])
    r = jnp.where(i[None, :] <= limit[:, None], r, -1)
    pos = jnp.argmax(r, axis=1)
    r_blk = jnp.take_along_axis(r, pos[:, None], axis=1)[:, 0]
    take = r_blk > best_r
    return jnp.where(take, i[pos], best_k), jnp.where(take, r_blk, best_r)

  zeros = jnp.zeros(n.shape, jnp.int32)
  k, _ = jax.lax.fori_loop(0, -(-budget // block), body, (zeros, zeros))
  return k


def random_candidates(n, budget: int, seed: int):
  """The "random" searcher's candidates [B, budget] int32: randint(fold_in(key(seed), n), (budget,), 0, K + 1)."""
  base = jax.random.key(seed)
  big_k = kmax(n)
  draw = lambda m, kk: jax.random.randint(jax.random.fold_in(base, m), (budget,), 0, kk + 1, dtype=jnp.int32)
  return jax.vmap(draw)(n, big_k)


def random_search(n, budget: int, seed: int):
  """Searcher "random": the best residue among ``random_candidates`` (ties to the smallest k); int32 [B]."""
  cand = random_candidates(n, budget, seed)
  _, r = _kernel.sqmod(cand, n[:, None])
  best = jnp.max(r, axis=1, keepdims=True)
  return jnp.min(jnp.where(r == best, cand, jnp.iinfo(jnp.int32).max), axis=1)


def bands_search(n, budget: int):
  """Searcher "bands": the best residue among the ``budget`` highest band tops (K, then the tops of bands
  q_last - 1, q_last - 2, ... >= 0); ties to the smallest k; int32 [B]. ``budget`` is static."""
  big_k = kmax(n)
  q_last, r_k = _kernel.sqmod(big_k, n)

  def body(j, carry):
    best_k, best_r = carry
    q = q_last - jnp.asarray(j, jnp.int32)  # int32 also under x64
    t, r = _kernel.band_top(jnp.maximum(q, 0), n)
    t, r = jnp.where(j == 0, big_k, t), jnp.where(j == 0, r_k, r)
    take = (q >= 0) & (r >= best_r)  # lower bands have smaller tops: >= sends ties to the smaller k
    return jnp.where(take, t, best_k), jnp.where(take, r, best_r)

  init = (jnp.zeros(n.shape, jnp.int32), jnp.full(n.shape, -1, jnp.int32))
  k, _ = jax.lax.fori_loop(0, budget, body, init)
  return k


@functools.lru_cache(maxsize=64)
def _table_bits(n_max: int) -> float:
  """sum_{n=1}^{n_max} log2(kmax(n) + 1): n grouped by K; the first n with K(n) >= k is ceil(k**(10/7)), exact
  (float64, checked with Python integers where k**(10/7) is within 1e-6 of an integer)."""
  top = _kernel.kmax_int(n_max)
  k = np.arange(1, top + 2, dtype=np.float64)
  x = k ** (10.0 / 7.0)
  first = np.ceil(x)
  for i in np.nonzero(np.abs(x - np.round(x)) < 1e-6)[0]:
    kk, m = int(k[i]), int(np.round(x[i]))
    while m**7 >= kk**10:
      m -= 1
    while m**7 < kk**10:
      m += 1
    first[i] = m
  first = np.minimum(first, n_max + 1)  # K(n) = k for n in [first[k-1], first[k] - 1]
  counts = np.diff(first)  # counts[k-1] = #{n <= n_max : K(n) = k}
  return float(np.sum(counts * np.log2(k[:-1] + 1.0)))


@jax.jit
def _uniform_below(key, hi, draws_like):
  u = jax.random.uniform(key, draws_like.shape + hi.shape, jnp.float32)  # float32 also under x64: same draws
  return jnp.minimum(jnp.floor(u * (hi + 1).astype(jnp.float32)).astype(jnp.int32), hi)


@jax.jit
def _score(batch, prediction):
  n, big_k = batch.info["n"], batch.info["kmax"]
  k_hat = core.integer_prediction(prediction)  # already int32 from ``score``; the rule again for direct callers
  legal = (k_hat >= 0) & (k_hat <= big_k)
  _, r_hat = _kernel.sqmod(jnp.where(legal, k_hat, 0), n)
  regret = jnp.where(legal, (batch.targets["r"] - r_hat).astype(jnp.float32) / n.astype(jnp.float32), 1.0)
  accuracy = legal & (k_hat == batch.targets["k"])
  return {"loss": regret, "regret": regret, "accuracy": accuracy.astype(jnp.float32)}


core.register(ModSearch.task_id, ModSearch)
