"""The task interface: Batch, Spec, the Task base class and the registry of versioned task ids.

A task is an immutable dataclass of parameters (hashable, so it can be a static argument of ``jax.jit``). Its
methods are pure functions of a ``jax.random`` key: the same key gives the same batch, bit for bit, on the same
backend. Models see only ``task.spec``; the harness is the only place where tasks and models meet.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from mesabench.kernels import _backend
from mesabench.kernels import _checks

MAX_BATCH = 2**24
"""Largest batch or pool a task method accepts (int32 indices with room to spare). Memory is checked separately:
a batch whose ``Task.memory_bytes`` estimate exceeds ``memory_limit_bytes()`` is refused up front."""


COMPILE_BYTES = 2**28
"""Fixed allowance of ``Task.memory_bytes`` for compiling and running the chunk programs (measured 100-150 MiB)."""


def memory_limit_bytes() -> int:
  """Bytes a task batch may take on this machine: the default device's memory limit when jax reports one (GPU,
  TPU), else the host's physical memory (CPU)."""
  stats = jax.local_devices()[0].memory_stats() or {}  # local: in a multi-process job devices()[0] may not be ours
  if stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


@flax.struct.dataclass
class Batch:
  """A batch of task instances; every array has the batch size B as its leading axis.

  Attributes:
    inputs: what a model sees, float32 [B, *spec.input_shape].
    targets: the oracle's answers (task-specific names, documented per task).
    info: everything else: the raw instance (``"n"`` or ``"coeffs"``), ``"difficulty"`` (a dict of per-example
      features) and ``"strata"`` (a dict mapping each stratum name to a bool [B] membership mask).
  """
  inputs: jax.Array
  targets: dict[str, jax.Array]
  info: dict[str, Any]

  @property
  def size(self) -> int:
    return int(self.inputs.shape[0])

  def take(self, index) -> "Batch":
    """The sub-batch at ``index`` (an index array or a boolean mask over the batch axis)."""
    return jax.tree_util.tree_map(lambda a: a[index], self)


def concatenate(batches: list[Batch]) -> Batch:
  """One batch made of ``batches`` in order (they must come from the same task)."""
  return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=0), *batches)


@dataclasses.dataclass(frozen=True)
class Spec:
  """What a model needs to know about a task, and nothing about how the task is solved.

  Attributes:
    task_id: registry id of the task ("PolyMax-v0").
    input_shape: per-example shape of ``Batch.inputs``.
    input_kind: "real" (real-valued features) or "bits" (0/1 floats).
    output_kind: "interval" (predict x in [0, 1]) or "integer" (predict an integer in [0, num_classes)).
    num_classes: for "integer" outputs, the number of classes (answers are 0 .. num_classes - 1).
    output_bits: for "integer" outputs, bits needed to write any answer (LSB first in targets["k_bits"]).
    meta: task parameters a decoder may need (encoding formats), as sorted (name, value) pairs.
    task_params: the task's constructor parameters as sorted (name, value) pairs: ``from_spec`` rebuilds the
      task from them (baselines that call the task's own algorithm use that; trained models never do).
  """
  task_id: str
  input_shape: tuple[int, ...]
  input_kind: str
  output_kind: str
  num_classes: int | None = None
  output_bits: int | None = None
  meta: tuple[tuple[str, Any], ...] = ()
  task_params: tuple[tuple[str, Any], ...] = ()

  def get(self, name: str, default: Any = None) -> Any:
    return dict(self.meta).get(name, default)

  @property
  def input_size(self) -> int:
    return int(np.prod(self.input_shape))


class Task:
  """Base class of tasks. Subclasses are frozen dataclasses and implement the abstract methods below."""

  task_id: str = ""

  # ------------------------------------------------------------------ to implement
  @property
  def spec(self) -> Spec:
    raise NotImplementedError

  @property
  def space_size(self) -> int:
    """Number of distinct instances the sampler can produce (a Python int; may be astronomically large)."""
    raise NotImplementedError

  @property
  def strata(self) -> tuple[str, ...]:
    """Names of the difficulty strata (each a subset of instances; see the task's docs for thresholds)."""
    raise NotImplementedError

  def sample(self, key: jax.Array, batch_size: int, stratum: str | None = None) -> Batch:
    raise NotImplementedError

  def pool(self, key: jax.Array, size: int) -> Batch:
    raise NotImplementedError

  def sample_outside(self, key: jax.Array, batch_size: int, pool: Batch) -> Batch:
    raise NotImplementedError

  answer_key: str = ""
  """The targets entry a prediction answers ("k", "x"): one prediction per example, of its shape."""

  def score(self, batch: Batch, prediction) -> dict[str, jax.Array]:
    """Per-example metrics (float32 [B] each, always including ``loss``) of ``prediction`` (one per example)."""
    target = batch.targets[self.answer_key]
    if jnp.issubdtype(target.dtype, jnp.integer):  # one rule for every task whose answers are integers
      prediction = integer_prediction(prediction)
    else:
      prediction = self.prediction_array(prediction)
    want = target.shape
    if prediction.shape != want:
      raise ValueError(f"prediction must have shape {want} (one {self.answer_key} per example), "
                       f"got {prediction.shape}")
    return self._score(batch, prediction)

  def _score(self, batch: Batch, prediction: jax.Array) -> dict[str, jax.Array]:
    raise NotImplementedError

  def prediction_array(self, prediction) -> jax.Array:
    """``prediction`` as the array ``score`` checks and scores when the answers are not integers (default:
    ``jnp.asarray``). Integer answers (an integer ``targets[answer_key]``) always go through
    ``integer_prediction``, the one rule of every integer-answer task."""
    return jnp.asarray(prediction)

  def larger(self) -> "Task | None":
    """The extrapolation task: same spec (so a trained model applies), larger or harder instances; None when the
    task has none at these parameters."""
    return None

  def larger_requires_shared_weights(self) -> bool:
    """True when ``larger()`` sets input positions that are constant throughout training (e.g. ModSearch's high
    bits of n): only a model whose weights are shared across input positions can answer it by construction; for
    any other model the split is "not applicable" (see ``mesabench.models.base.answers_larger``)."""
    return False

  # ------------------------------------------------------------------ what the task knows (harness and baselines ask)
  success_metric: str = ""
  """The per-example score that is 1 on a success and 0 otherwise ("accuracy", "hit")."""

  metric_directions: tuple[tuple[str, str], ...] = ()
  """(score name, "lower" | "higher") for every score ``score`` returns: which way is better."""

  def chance_predictions(self, batch: Batch, key: jax.Array, draws: int) -> jax.Array:
    """``draws`` predictions per example of the task's chance predictor (uniform over legal answers): [draws, B]."""
    raise NotImplementedError

  def answer_bits(self, key: jax.Array | None = None, size: int = 4096) -> float:
    """Mean log2 of the number of answers the success metric tells apart, per instance."""
    raise NotImplementedError

  def describe(self, batch: Batch, i: int) -> str:
    """One readable line for instance ``i`` of ``batch``: the instance and the oracle's answer (tasks override it
    with their own notation; the default names the answer's shape and sum)."""
    answer = np.asarray(batch.targets[self.answer_key][i])
    if answer.ndim == 0:
      return f"{self.answer_key} = {answer.item()}"
    return f"{self.answer_key}: array {answer.shape}, sum {answer.sum().item()}"

  def decode(self, inputs: jax.Array) -> dict[str, jax.Array]:
    """The instances behind model inputs [B, *spec.input_shape], as the arrays ``info`` holds ("n", "coeffs")."""
    raise NotImplementedError

  def dummy_targets(self, batch_size: int) -> dict[str, jax.Array]:
    """Zero targets of the right shapes and dtypes (for shape-only tracing, e.g. FLOP counts)."""
    raise NotImplementedError

  def instance_vector(self, inputs: jax.Array) -> jax.Array:
    """The decoded instances as rows [B, F] whose Euclidean distance is the instance distance of the
    ``lookup_instance`` memorizer (ModSearch: n as int32, |n - n'|; PolyMax: coefficients, L2). Default: the one
    array ``decode`` returns, flattened per example."""
    decoded = self.decode(inputs)
    if len(decoded) != 1:
      raise NotImplementedError(f"{self.task_id} decodes to {sorted(decoded)}: override instance_vector")
    (value,) = decoded.values()
    return value.reshape(value.shape[0], -1)

  def table_bits(self) -> float:
    """Bits of the full answer table: the sum over every instance the sampler can produce of log2(number of legal
    answers the success metric tells apart). Default: ``space_size * answer_bits()`` (a float; may be huge)."""
    return float(self.space_size) * self.answer_bits()

  # ------------------------------------------------------------------ ground truth (the zoo's baselines ask)
  # Heuristics never evaluate the objective on candidates; searchers do, ``budget`` candidates per instance.
  # All predict hooks are pure and jit/vmap friendly: ``inputs`` [B, *spec.input_shape] in, answers [B] out.

  def heuristic_rules(self) -> tuple[str, ...]:
    """Names of the task's non-search heuristics (model ``heuristic`` with config {"rule": name})."""
    return ()

  def heuristic_init(self, rule: str) -> Any:
    """The rule's state before fitting (a pytree of arrays; {} for rules that need no fitting)."""
    self._check_rule(rule)
    return {}

  def heuristic_fit(self, rule: str, state: Any, inputs: jax.Array, targets: dict[str, jax.Array]) -> Any:
    """The rule's state after seeing the training pool (inputs [N, ...], the oracle's targets)."""
    del inputs, targets
    self._check_rule(rule)
    return state

  def heuristic(self, rule: str, inputs: jax.Array, state: Any) -> jax.Array:
    """The rule's answers [B] for ``inputs``."""
    raise NotImplementedError

  def search_strategies(self) -> tuple[str, ...]:
    """Names of the task's budgeted searchers (model ``search`` with config {"budget": B, "strategy": name})."""
    return ()

  def full_search(self) -> tuple[str, int]:
    """(strategy, budget) of the task's full algorithm: what model ``search`` runs with no config."""
    raise NotImplementedError

  def search_budget_range(self, strategy: str) -> tuple[int, int]:
    """The budgets [lo, hi] that ``strategy`` accepts."""
    self._check_strategy(strategy)
    return 1, 2**22

  def search_budgets(self, strategy: str) -> tuple[int, ...]:
    """The budgets of ``strategy`` in the calibration set (``ground_truth``)."""
    self._check_strategy(strategy)
    return ()

  def search(self, strategy: str, budget: int, inputs: jax.Array, seed: int = 0) -> jax.Array:
    """The answers [B] of ``strategy`` with ``budget`` candidates per instance; ``seed`` keys random strategies
    (each instance's candidates depend on the seed and the instance only, never on its batch position)."""
    raise NotImplementedError

  def search_loop_trips(self, strategy: str, budget: int) -> int:
    """How many times ``search`` runs its rolled loop body (1 when it has none): XLA's cost analysis counts a loop
    body once, so FLOP counts are scaled by this."""
    del strategy, budget
    return 1

  def search_family(self) -> "SearchFamily":
    """The budgeted-search family that defines a model's equivalent search budget."""
    raise NotImplementedError

  def ground_truth(self) -> tuple["GroundTruth", ...]:
    """The calibration set of known behaviours: memorizers (``lookup``, ``lookup_instance``), every heuristic rule,
    and every search strategy at each of its ``search_budgets``."""
    out = [GroundTruth("memorizer", "lookup", (), None), GroundTruth("memorizer", "lookup_instance", (), None)]
    out += [GroundTruth("heuristic", "heuristic", (("rule", r),), None) for r in self.heuristic_rules()]
    for s in self.search_strategies():
      out += [GroundTruth("searcher", "search", (("budget", b), ("strategy", s)), b) for b in self.search_budgets(s)]
    return tuple(out)

  def _check_rule(self, rule: str) -> None:
    if not isinstance(rule, str) or rule not in self.heuristic_rules():
      raise ValueError(f"rule must be one of {self.heuristic_rules()} for {self.task_id}, got {rule!r}")

  def _check_strategy(self, strategy: str) -> None:
    if not isinstance(strategy, str) or strategy not in self.search_strategies():
      raise ValueError(f"strategy must be one of {self.search_strategies()} for {self.task_id}, got {strategy!r}")

  def _check_budget(self, strategy: str, budget) -> int:
    lo, hi = self.search_budget_range(strategy)
    return _checks.check_int("budget", budget, lo, hi)

  # ------------------------------------------------------------------ shared
  def params(self) -> dict[str, Any]:
    """The constructor parameters, as given to ``make`` (for result files)."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

  def _check_batch_size(self, batch_size, name: str = "batch_size") -> int:
    size = _checks.check_positive_int(name, batch_size, MAX_BATCH)
    self._check_memory(name, size)
    return size

  chunk_rows = 2**14
  """Rows per chunk of the oracle and the difficulty features in ``sample`` / ``pool`` (tasks set their own):
  their working memory is ``chunk_rows * work_bytes_per_row`` whatever the batch size."""

  work_bytes_per_row = 16384
  """Peak working bytes per row of one chunk, beyond the batch itself (measured per task; see the task)."""

  def memory_bytes(self, batch_size: int) -> int:
    """Estimated peak bytes of ``sample(key, batch_size)`` or ``pool(key, batch_size)`` (an estimate, not a bound):
    the batch twice (its chunks and their concatenation; rows padded to a power of two; bytes per row measured
    on a one-row batch), one chunk's working memory (``chunk_rows * work_bytes_per_row``) and COMPILE_BYTES.
    Measured on CPU (jax 0.10.2), peak RSS growth vs estimate: PolyMax-v0 degree 6, 2**18 rows: 262 vs 429 MiB;
    ModSearch-v0 bits 20, 2**20 rows: 489 vs 716 MiB. The harness can refuse a configuration up front with it;
    ``sample`` and ``pool`` refuse sizes whose estimate exceeds ``memory_limit_bytes()``.
    """
    size = _checks.check_positive_int("batch_size", batch_size)
    rows = bucket(size)
    work = min(rows, self.chunk_rows) * self.work_bytes_per_row
    return 2 * rows * _row_bytes(self) + work + COMPILE_BYTES

  def _check_memory(self, name: str, size: int) -> None:
    if size <= self.chunk_rows:
      return
    need, limit = self.memory_bytes(size), memory_limit_bytes()
    if need <= limit:
      return
    most = self.chunk_rows
    while most * 2 <= MAX_BATCH and self.memory_bytes(most * 2) <= limit:
      most *= 2
    raise ValueError(f"{name} must be at most {most} for {self.task_id} with {self.params()} on this machine: "
                     f"{name}={size} needs about {need / 2**30:.1f} GiB (Task.memory_bytes, an estimate), more "
                     f"than the {limit / 2**30:.1f} GiB it has")

  def _check_stratum(self, stratum: str | None) -> None:
    if stratum is not None and (not isinstance(stratum, str) or stratum not in self.strata):
      raise ValueError(f"stratum must be one of {self.strata} or None, got {stratum!r}")

  def _check_pool_size(self, size) -> int:
    size = _checks.check_positive_int("size", size, MAX_BATCH)
    self._check_memory("size", size)
    if size > self.space_size:
      raise ValueError(f"size must be in [1, {self.space_size}] (the number of distinct instances of "
                       f"{self.task_id} with {self.params()}), got {size}")
    return size

  def _sample_stratum(self, key: jax.Array, batch_size: int, stratum: str,
                      draw: Callable[[jax.Array, int], Batch], max_rounds: int = 256) -> Batch:
    """Rejection sampling of a stratum: rounds of ``draw(key_r, 2 * batch_size)``, kept in order of draw (repeats
    possible; ``_sample_distinct`` gives distinct instances)."""
    got, count = [], 0
    for r in range(max_rounds):
      cand = draw(jax.random.fold_in(key, r), 2 * batch_size)
      mask = np.asarray(cand.info["strata"][stratum])
      idx = np.nonzero(mask)[0][: batch_size - count]
      if idx.size:
        got.append(cand.take(jnp.asarray(idx)))
        count += idx.size
      if count == batch_size:
        return concatenate(got) if len(got) > 1 else got[0]
    raise ValueError(f"stratum {stratum!r} of {self.task_id} with {self.params()} is too rare: found {count} of "
                     f"{batch_size} in {max_rounds} rounds; choose other task parameters")

  def _sample_distinct(self, key: jax.Array, batch_size: int, draw: Callable[[jax.Array, int], Batch],
                       keep: Callable[[Batch], np.ndarray], identity: Callable[[Batch], np.ndarray],
                       exclude: np.ndarray | None = None, what: str = "instances", max_rounds: int = 256) -> Batch:
    """``batch_size`` DISTINCT instances with ``keep`` true, by rejection: rounds of ``draw(key_r, m)`` (m =
    bucket(2 * batch_size), so one compile serves every round), kept in order of draw; a draw whose ``identity``
    (an integer per instance; equal instances have equal identities) was already kept, or lies in ``exclude``,
    is rejected. Distinct identities imply distinct instances."""
    got, count, seen = [], 0, set() if exclude is None else set(np.asarray(exclude).tolist())
    size = bucket(2 * batch_size)
    for r in range(max_rounds):
      cand = draw(jax.random.fold_in(key, r), size)
      mask, ids = np.asarray(keep(cand)), np.asarray(identity(cand))
      idx = []
      for i in np.nonzero(mask)[0]:
        if len(idx) == batch_size - count:
          break
        if int(ids[i]) not in seen:
          seen.add(int(ids[i]))
          idx.append(i)
      if idx:
        got.append(cand.take(jnp.asarray(idx)))
        count += len(idx)
      if count == batch_size:
        return concatenate(got) if len(got) > 1 else got[0]
    raise ValueError(f"{what} of {self.task_id} with {self.params()} are too rare: found {count} distinct of "
                     f"{batch_size} in {max_rounds} rounds; ask for fewer or choose other task parameters")


# ---------------------------------------------------------------------------------------------- ground truth

GROUND_TRUTH_KINDS = ("memorizer", "heuristic", "searcher")


@dataclasses.dataclass(frozen=True)
class GroundTruth:
  """One known behaviour of the calibration set: ``mesabench.models.make(model_id, spec, **config_dict)``.

  Attributes:
    kind: "memorizer", "heuristic" or "searcher".
    model_id: the zoo id ("lookup", "lookup_instance", "heuristic", "search").
    config: the model config as sorted (name, value) pairs.
    budget: candidates per instance for searchers; None otherwise.
  """
  kind: str
  model_id: str
  config: tuple[tuple[str, Any], ...]
  budget: int | None

  def __post_init__(self):
    if self.kind not in GROUND_TRUTH_KINDS:
      raise ValueError(f"kind must be one of {GROUND_TRUTH_KINDS}, got {self.kind!r}")
    object.__setattr__(self, "config", tuple(sorted(self.config)))

  @property
  def config_dict(self) -> dict[str, Any]:
    return dict(self.config)

  @property
  def label(self) -> str:
    """A short readable name, e.g. "search(strategy=grid, budget=8)"."""
    inner = ", ".join(f"{k}={v}" for k, v in sorted(self.config, key=lambda kv: kv[0] != "strategy"))
    return f"{self.model_id}({inner})" if inner else self.model_id


@dataclasses.dataclass(frozen=True)
class SearchFamily:
  """A budgeted-search family: model ``search`` with ``strategy`` at each of ``budgets`` (ascending)."""
  strategy: str
  budgets: tuple[int, ...]

  def members(self) -> tuple[GroundTruth, ...]:
    return tuple(GroundTruth("searcher", "search", (("budget", b), ("strategy", self.strategy)), b)
                 for b in self.budgets)


@functools.lru_cache(maxsize=256)
def _row_bytes(task: Task) -> int:
  """Bytes per example of ``task``'s batches, from one sampled example (cached per task)."""
  batch = task.sample(jax.random.key(0), 1)
  return int(sum(np.asarray(leaf).nbytes for leaf in jax.tree_util.tree_leaves(batch)))


# ---------------------------------------------------------------------------------------------- predictions

NOT_AN_ANSWER = -1
"""What ``integer_prediction`` makes of a prediction that is not an int32 integer: no task accepts -1 as an answer."""


def integer_prediction(prediction) -> jax.Array:
  """Predicted integer answers as int32, by the one rule of every task whose answers are integers.

  Accepted as that integer: any integer dtype, and integer-valued floats (3.0 is 3), when the value lies in the
  int32 range [-2**31, 2**31 - 1]. Everything else becomes ``NOT_AN_ANSWER`` (-1), which lies outside every
  task's legal answers and so scores the worst value: NaN, +-inf, non-integer floats (3.7 is NOT truncated to 3),
  and integers outside int32 (k + 2**32, which a cast would wrap to k). Concrete inputs (numpy, Python, jax
  arrays) are checked in their own dtype before any conversion, so numpy int64 / float64 predictions are exact
  with or without ``jax_enable_x64``; traced inputs (inside jit) are checked in their traced dtype. Raises
  ValueError naming ``prediction`` for dtypes that are not real numbers (bool, complex, strings, objects).
  """
  if _checks.is_concrete(prediction):
    arr = np.asarray(prediction)
    kind = arr.dtype.kind
    if kind in "iu":
      ok = (arr >= -2**31) & (arr <= 2**31 - 1)
    elif kind == "f":
      with np.errstate(invalid="ignore"):
        ok = np.isfinite(arr) & (arr == np.floor(arr)) & (arr >= -2.0**31) & (arr < 2.0**31)
    else:
      raise ValueError(f"prediction must hold real numbers (integers or integer-valued floats), got dtype "
                       f"{arr.dtype}")
    return jnp.asarray(np.where(ok, arr, NOT_AN_ANSWER).astype(np.int32))
  return _integer_prediction_traced(prediction)


def _integer_prediction_traced(p):
  if jnp.issubdtype(p.dtype, jnp.integer):
    info = jnp.iinfo(p.dtype)
    ok = jnp.ones(p.shape, bool)
    if info.max > 2**31 - 1:
      ok = ok & (p <= 2**31 - 1)
    if info.min < -2**31:
      ok = ok & (p >= -2**31)
  elif jnp.issubdtype(p.dtype, jnp.floating):
    ok = jnp.isfinite(p) & (p == jnp.floor(p)) & (p >= -2.0**31) & (p < 2.0**31)
  else:
    raise ValueError(f"prediction must hold real numbers (integers or integer-valued floats), got dtype {p.dtype}")
  safe = jnp.where(ok, p, jnp.zeros((), p.dtype)).astype(jnp.int32)  # only in-range values are ever cast
  return jnp.where(ok, safe, jnp.int32(NOT_AN_ANSWER))


# ---------------------------------------------------------------------------------------------- keyed permutations


def _mix32(x):
  """A 32-bit avalanche mixer (the murmur3 finalizer) on uint32."""
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x85EBCA6B)
  x = x ^ (x >> 13)
  x = x * jnp.uint32(0xC2B2AE35)
  return x ^ (x >> 16)


def hash_rows(rows):
  """uint32 hash [B] of integer rows [B, M] (order-sensitive). Equal rows always hash equal."""
  rows = rows.astype(jnp.uint32)
  h = jnp.full(rows.shape[:1], 0x9E3779B9, jnp.uint32)
  for j in range(rows.shape[1]):
    h = _mix32(h ^ (rows[:, j] + jnp.uint32(0x7F4A7C15) * jnp.uint32(j + 1)))
  return h


def permute_index(key: jax.Array, idx, domain: int):
  """A keyed bijection of [0, domain) applied to ``idx`` (int32): a 4-round Feistel network with cycle walking.

  domain <= 2**30. The network permutes [0, 2**b) with b even and 2**b >= domain (so 2**b < 4 * domain);
  values landing at or above ``domain`` are permuted again until they fall inside (cycle walking), which keeps
  the map a bijection of [0, domain) and takes fewer than 4 rounds on average.
  """
  if not 1 <= domain <= 2**30:
    raise ValueError(f"domain must be in [1, {2**30}], got {domain}")
  bits = max(2, int(np.ceil(np.log2(domain))))
  half = (bits + bits % 2) // 2
  return _permute(key, jnp.asarray(idx, jnp.int32), jnp.uint32(domain), jnp.uint32(half))


@jax.jit
def _permute(key, idx, domain, half):
  mask = (jnp.uint32(1) << half) - jnp.uint32(1)
  round_keys = jax.random.bits(key, (4,), jnp.uint32)

  def once(x):
    left, right = x >> half, x & mask
    for r in range(4):
      left, right = right, left ^ (_mix32(right ^ round_keys[r]) & mask)
    return (left << half) | right

  x = once(idx.astype(jnp.uint32))
  x = jax.lax.while_loop(lambda x: jnp.any(x >= domain), lambda x: jnp.where(x >= domain, once(x), x), x)
  return x.astype(jnp.int32)


def bucket(size: int, minimum: int = 16) -> int:
  """The padded size of batches: the next power of two >= size (at least ``minimum``), so that jitted oracles
  compile once per bucket rather than once per batch size (the kernels' own rule)."""
  return _backend.bucket(size, minimum)


def pad_rows(x, size: int, fill):
  """x [B, ...] padded with ``fill`` rows to [size, ...]."""
  extra = size - x.shape[0]
  if extra == 0:
    return x
  return jnp.concatenate([x, jnp.full((extra,) + x.shape[1:], fill, x.dtype)], axis=0)


def nth_outside(sorted_pool: np.ndarray, j):
  """The j-th (0-based) element of [0, inf) that is not in ``sorted_pool`` (distinct, ascending ints), int32.

  Exact and vectorized: with p_i the pool's i-th element, p_i - i counts the non-pool values below p_i, so the
  answer is j + #{i : p_i - i <= j}.
  """
  gaps = jnp.asarray(sorted_pool, jnp.int32) - jnp.arange(len(sorted_pool), dtype=jnp.int32)
  return j + jnp.searchsorted(gaps, j, side="right").astype(jnp.int32)


# ---------------------------------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[..., Task]] = {}


def register(task_id: str, factory: Callable[..., Task]) -> None:
  """Registers ``factory`` under ``task_id`` ("Name-vN"); registering an id twice is an error."""
  if task_id in _REGISTRY:
    raise ValueError(f"task id {task_id!r} is already registered")
  if "-v" not in task_id:
    raise ValueError(f"task id must be versioned as 'Name-vN', got {task_id!r}")
  _REGISTRY[task_id] = factory


def registered() -> tuple[str, ...]:
  """The registered task ids, sorted."""
  return tuple(sorted(_REGISTRY))


def from_spec(spec: Spec) -> Task:
  """The task a spec was made by (``make(spec.task_id, **spec.task_params)``)."""
  return make(spec.task_id, **dict(spec.task_params))


def make(task_id: str, **params: Any) -> Task:
  """The task ``task_id`` with ``params``; unknown ids raise a ValueError listing the known ones."""
  if not isinstance(task_id, str) or task_id not in _REGISTRY:
    raise ValueError(f"unknown task id {task_id!r}; known ids: {', '.join(registered())}")
  factory = _REGISTRY[task_id]
  if dataclasses.is_dataclass(factory):
    known = sorted(f.name for f in dataclasses.fields(factory))
    for name in params:
      if name not in known:
        raise ValueError(f"{name} is not a parameter of {task_id}; its parameters: {', '.join(known)}")
  return factory(**params)
