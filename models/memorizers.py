"""Memorizers, the ground truth of pure memorization: nearest neighbour over the training pool.

``lookup``: ``fit`` stores the pool (its inputs and the oracle's answers); ``predict`` returns the answer of the
nearest stored INPUT in Euclidean distance (Hamming distance for bit inputs; ties to the earliest row). Exact on
the pool (distinct inputs are at distance > 0).

``lookup_instance``: the same over the DECODED instances (``task.instance_vector``): ModSearch by |n - n'|,
PolyMax by the L2 distance of the coefficient vectors; ties to the earliest row. Differences are taken in the
instance dtype (int32 for n, exact) and squared in float32, so the nearest neighbour is exact while its distance
is below 2**24 (every ModSearch pool of more than 2**-24 of [1, 2**30] qualifies). Maze-v0 by the instance vector
of its walls and end coordinates (see ``tasks.maze``).

Answers are whatever one example's ``targets[task.answer_key]`` is: a scalar (k, x) or an array (Maze's [S, S]
path map); ``predict`` returns [B, *answer shape]. Both are "parameters" = the stored numbers (N * row size + N *
answer size). Neither evaluates the task's objective.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mesabench import tasks
from mesabench.models import base

QUERY_BLOCK = 128
"""Queries per step of ``lookup_instance``'s distance computation (working memory QUERY_BLOCK * N * F), fewer (a
power of two, at least 1) when QUERY_BLOCK * N * F exceeds BLOCK_ELEMENTS."""
BLOCK_ELEMENTS = 2**25
"""Most difference entries one step of ``nearest_rows`` holds (128 MiB of float32); the block size does not change
the answers."""


def _answer_dtype(task):
  return task.dummy_targets(1)[task.answer_key].dtype


def _answers(task, targets):
  return targets[task.answer_key].astype(_answer_dtype(task))


def _no_answers(task):
  """The stored answers before ``fit``: one zero answer, [1, *answer shape]."""
  return jnp.zeros_like(task.dummy_targets(1)[task.answer_key])


@dataclasses.dataclass(frozen=True)
class Lookup(base.Model):
  """Nearest stored input. Config: none. ``fit`` must be called before ``predict``."""

  trainable = False
  shares_weights_across_positions = True

  def init(self, key):
    del key
    return {"keys": jnp.zeros((1, self.spec.input_size), jnp.float32),
            "answers": _no_answers(tasks.from_spec(self.spec))}

  def fit(self, params, inputs, targets):
    """Stores ``inputs`` [N, ...] (flattened) and the oracle's answers [N, *answer shape]."""
    del params
    return {"keys": inputs.reshape(inputs.shape[0], -1).astype(jnp.float32),
            "answers": _answers(tasks.from_spec(self.spec), targets)}

  def predict(self, params, inputs):
    """The stored answer of the nearest stored input, [B, *answer shape]."""
    q = inputs.reshape(inputs.shape[0], -1).astype(jnp.float32)
    keys = params["keys"]
    d = jnp.sum(q * q, axis=1)[:, None] - 2.0 * q @ keys.T + jnp.sum(keys * keys, axis=1)[None, :]
    return params["answers"][jnp.argmin(d, axis=1)]


def nearest_rows(queries, keys):
  """Index [B] int32 of the nearest row of ``keys`` [N, F] to each row of ``queries`` [B, F] (squared Euclidean
  distance of the differences taken in the input dtype, squared in float32; ties to the earliest row)."""
  b = queries.shape[0]
  rows = QUERY_BLOCK
  while rows > 1 and rows * keys.shape[0] * keys.shape[1] > BLOCK_ELEMENTS:
    rows //= 2
  pad = (-b) % rows
  q = jnp.concatenate([queries, jnp.zeros((pad,) + queries.shape[1:], queries.dtype)], axis=0)
  q = q.reshape(-1, rows, queries.shape[1])

  def block(qb):
    diff = (qb[:, None, :] - keys[None, :, :]).astype(jnp.float32)
    return jax.lax.argmin(jnp.sum(diff * diff, axis=-1), 1, jnp.int32)

  return jax.lax.map(block, q).reshape(-1)[:b]


@dataclasses.dataclass(frozen=True)
class LookupInstance(base.Model):
  """Nearest stored instance (``task.instance_vector``). Config: none. ``fit`` before ``predict``."""

  trainable = False
  shares_weights_across_positions = True

  def _vector(self, inputs):
    return tasks.from_spec(self.spec).instance_vector(inputs)

  def init(self, key):
    del key
    task = tasks.from_spec(self.spec)
    row = self._vector(jnp.zeros((1,) + tuple(self.spec.input_shape), jnp.float32))
    return {"keys": jnp.zeros_like(row), "answers": _no_answers(task)}

  def fit(self, params, inputs, targets):
    """Stores the pool's instances [N, F] and the oracle's answers [N, *answer shape]."""
    del params
    return {"keys": self._vector(inputs), "answers": _answers(tasks.from_spec(self.spec), targets)}

  def predict(self, params, inputs):
    """The stored answer of the nearest stored instance, [B, *answer shape]."""
    return params["answers"][nearest_rows(self._vector(inputs), params["keys"])]


def make_lookup(spec, **config) -> Lookup:
  return Lookup("lookup", spec, base.finish_config("lookup", config, {}))


def make_lookup_instance(spec, **config) -> LookupInstance:
  return LookupInstance("lookup_instance", spec, base.finish_config("lookup_instance", config, {}))


base.register("lookup", make_lookup)
base.register("lookup_instance", make_lookup_instance)
