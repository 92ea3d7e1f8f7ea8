"""The task interface: Batch, Spec, the Task base class and the registry of versioned task ids.

A task is an immutable dataclass of parameters (hashable, so it can be a static argument of ``jax.jit``). Its
methods are pure functions of a ``jax.random`` key: the same key gives the same batch, bit for bit, on the same
backend. Models see only ``task.spec``; the harness is the only place where tasks and models meet.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from mesabench.kernels import _backend
from mesabench.kernels import _checks

MAX_BATCH = 2**24
"""Largest batch or pool a task method accepts (memory, and int32 indices with room to spare)."""


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
    prediction = jnp.asarray(prediction)
    want = batch.targets[self.answer_key].shape
    if prediction.shape != want:
      raise ValueError(f"prediction must have shape {want} (one {self.answer_key} per example), "
                       f"got {prediction.shape}")
    return self._score(batch, prediction)

  def _score(self, batch: Batch, prediction: jax.Array) -> dict[str, jax.Array]:
    raise NotImplementedError

  def larger(self) -> "Task | None":
    """The extrapolation task: same spec (so a trained model applies), larger instances; None when the task has
    none at these parameters."""
    return None

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

  def decode(self, inputs: jax.Array) -> dict[str, jax.Array]:
    """The instances behind model inputs [B, *spec.input_shape], as the arrays ``info`` holds ("n", "coeffs")."""
    raise NotImplementedError

  def dummy_targets(self, batch_size: int) -> dict[str, jax.Array]:
    """Zero targets of the right shapes and dtypes (for shape-only tracing, e.g. FLOP counts)."""
    raise NotImplementedError

  # ------------------------------------------------------------------ shared
  def params(self) -> dict[str, Any]:
    """The constructor parameters, as given to ``make`` (for result files)."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

  def _check_batch_size(self, batch_size, name: str = "batch_size") -> int:
    return _checks.check_positive_int(name, batch_size, MAX_BATCH)

  def _check_stratum(self, stratum: str | None) -> None:
    if stratum is not None and stratum not in self.strata:
      raise ValueError(f"stratum must be one of {self.strata} or None, got {stratum!r}")

  def _check_pool_size(self, size) -> int:
    size = _checks.check_positive_int("size", size, MAX_BATCH)
    if size > self.space_size:
      raise ValueError(f"size must be in [1, {self.space_size}] (the number of distinct instances of "
                       f"{self.task_id} with {self.params()}), got {size}")
    return size

  def _sample_stratum(self, key: jax.Array, batch_size: int, stratum: str,
                      draw: Callable[[jax.Array, int], Batch], max_rounds: int = 256) -> Batch:
    """Rejection sampling of a stratum: rounds of ``draw(key_r, 2 * batch_size)``, kept in order of draw."""
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
  if task_id not in _REGISTRY:
    raise ValueError(f"unknown task id {task_id!r}; known ids: {', '.join(registered())}")
  return _REGISTRY[task_id](**params)
