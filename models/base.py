"""The model interface of the zoo, the task heads and the registry of model ids.

A model is bound to a task's ``Spec`` (never to task code): it maps ``Batch.inputs`` (float32 [B, *input_shape]) to
the task's answer. Every model, trained or not, exposes the same pure functions, so the harness treats them alike:

    model = mesabench.models.make("mlp", task.spec, width=64)
    params = model.init(key)                       # pytree of arrays
    params = model.fit(params, pool.inputs, pool.targets)   # baselines memorize/prepare; identity for nets
    loss = model.loss(params, batch.inputs, batch.targets)  # scalar training surrogate (nets only)
    prediction = model.predict(params, batch.inputs)        # what ``task.score`` takes: x [B] or k [B]

Heads (what a network's last layer means; ``HEAD_KINDS``, one ``Head`` per ``Spec.output_kind``):
  * "interval" outputs (PolyMax): ``bins`` scores over equal bins of [0, 1] plus one offset per bin; the prediction
    is x = (b + sigmoid(offset_b)) / bins at the best bin b, so x is always in [0, 1]. Training loss: cross-entropy
    of the target's bin plus the squared error of the offset within the target bin (both in [0, inf)).
  * "integer" outputs (ModSearch), ``head="classes"`` (default): logits over [0, num_classes); prediction argmax;
    loss cross-entropy of k. ``head="bits"``: one logit per bit of k (spec.output_bits, LSB first); prediction the
    thresholded bits read as an integer (may exceed the legal range, which the task scores as the worst answer);
    loss binary cross-entropy of ``targets["k_bits"]``.
  * "cells" outputs (Maze): one logit per grid cell, H = prod(spec.input_shape[:-1]) (S * S); prediction the
    thresholded logits (logit > 0) as int32 [..., S, S] with S = isqrt(H), so a convolutional model run on a larger
    grid predicts that grid; loss the mean binary cross-entropy over cells of ``targets["path"]`` (flattened).
Iterative models (``looped``, ``memory``) return head outputs for every iteration, [T, B, H]; their ``predict``
returns the last iteration's answer and ``predict_iterations`` all of them, [T, B].
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mesabench.kernels._checks import check_int
from mesabench.models import costs
from mesabench.tasks.core import Spec

HEADS = ("classes", "bits")
MAX_BINS = 4096


# ------------------------------------------------------------------------------------------------- config checks


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
  if not isinstance(value, str) or value not in choices:  # never an element-wise array compare
    raise ValueError(f"{name} must be one of {choices}, got {value!r}")
  return value


# ------------------------------------------------------------------------------------------------------- heads


@dataclasses.dataclass(frozen=True)
class Head:
  """What a network's last layer means for one ``Spec.output_kind`` (see the module docstring).

  Attributes:
    size: (spec, head, bins) -> H, the width of the last layer.
    loss: (spec, head, bins, out [B, H], targets) -> per-example training loss [B] (float32, >= 0).
    predict: (spec, head, bins, out [..., H]) -> predictions [...] (what ``task.score`` takes).
  """
  size: Callable[[Spec, str, int], int]
  loss: Callable[[Spec, str, int, jax.Array, Mapping[str, jax.Array]], jax.Array]
  predict: Callable[[Spec, str, int, jax.Array], jax.Array]


def _interval_loss(spec, head, bins, out, targets):
  del spec, head
  x = jnp.clip(targets["x"].astype(jnp.float32), 0.0, 1.0)
  scaled = x * bins
  b = jnp.clip(jnp.floor(scaled).astype(jnp.int32), 0, bins - 1)
  frac = scaled - b.astype(jnp.float32)
  ce = optax.softmax_cross_entropy_with_integer_labels(out[:, :bins], b)
  off = jax.nn.sigmoid(jnp.take_along_axis(out[:, bins:], b[:, None], axis=1)[:, 0])
  return ce + (off - frac) ** 2


def _interval_predict(spec, head, bins, out):
  del spec, head
  b = jax.lax.argmax(out[..., :bins], out.ndim - 1, jnp.int32)  # int32 index also under x64
  off = jax.nn.sigmoid(jnp.take_along_axis(out[..., bins:], b[..., None], axis=-1)[..., 0])
  return jnp.clip((b.astype(jnp.float32) + off) / bins, 0.0, 1.0)


def _integer_loss(spec, head, bins, out, targets):
  del spec, bins
  if head == "classes":
    k = jnp.clip(targets["k"].astype(jnp.int32), 0, out.shape[-1] - 1)
    return optax.softmax_cross_entropy_with_integer_labels(out, k)
  return jnp.mean(optax.sigmoid_binary_cross_entropy(out, targets["k_bits"].astype(jnp.float32)), axis=-1)


def _integer_predict(spec, head, bins, out):
  del spec, bins
  if head == "classes":
    return jax.lax.argmax(out, out.ndim - 1, jnp.int32)  # int32 index also under x64 (same op count)
  bits = (out > 0).astype(jnp.int32)
  return jnp.sum(bits << jnp.arange(out.shape[-1], dtype=jnp.int32), axis=-1, dtype=jnp.int32)  # also x64


def _cells_size(spec, head, bins):
  del head, bins
  return int(np.prod(spec.input_shape[:-1]))


def _cells_loss(spec, head, bins, out, targets):
  del spec, head, bins
  labels = targets["path"].reshape(out.shape[0], -1).astype(jnp.float32)
  return jnp.mean(optax.sigmoid_binary_cross_entropy(out, labels), axis=-1)


def _cells_predict(spec, head, bins, out):
  del spec, head, bins
  side = math.isqrt(out.shape[-1])
  if side * side != out.shape[-1]:
    raise ValueError(f"cells head outputs must number a square of cells, got {out.shape[-1]}")
  return (out > 0).astype(jnp.int32).reshape(out.shape[:-1] + (side, side))


HEAD_KINDS: dict[str, Head] = {
    "interval": Head(size=lambda spec, head, bins: 2 * bins, loss=_interval_loss, predict=_interval_predict),
    "integer": Head(size=lambda spec, head, bins: int(spec.num_classes) if head == "classes"
                    else int(spec.output_bits), loss=_integer_loss, predict=_integer_predict),
    "cells": Head(size=_cells_size, loss=_cells_loss, predict=_cells_predict),
}
"""The heads by ``Spec.output_kind``: a task with a new output kind registers its head here."""


def head_of(spec: Spec) -> Head:
  """The head of ``spec.output_kind``; ValueError naming the known kinds."""
  if spec.output_kind not in HEAD_KINDS:
    raise ValueError(f"spec.output_kind must be one of {sorted(HEAD_KINDS)}, got {spec.output_kind!r}")
  return HEAD_KINDS[spec.output_kind]


def head_size(spec: Spec, head: str, bins: int) -> int:
  """Width H of the last layer for ``spec``'s output kind (see the module docstring)."""
  return head_of(spec).size(spec, head, bins)


def head_loss(spec: Spec, head: str, bins: int, out: jax.Array, targets: Mapping[str, jax.Array]) -> jax.Array:
  """Per-example training loss [B] (float32, >= 0) of head outputs ``out`` [B, H] against the task's targets."""
  return head_of(spec).loss(spec, head, bins, out, targets)


def head_predict(spec: Spec, head: str, bins: int, out: jax.Array) -> jax.Array:
  """Predictions from head outputs [..., H]: x float32 in [0, 1] (interval) or k int32 (integer), shape [...]."""
  return head_of(spec).predict(spec, head, bins, out)


def tokens(spec: Spec, inputs: jax.Array) -> jax.Array:
  """Inputs [B, *input_shape] as a token sequence [B, L, F]: a 1-D input is L scalar tokens (coefficients or
  bits, F = 1); a 2-D input [L, F] is L tokens of F features (e.g. the bits of one coefficient)."""
  b = inputs.shape[0]
  if len(spec.input_shape) == 1:
    return inputs.reshape(b, spec.input_shape[0], 1)
  return inputs.reshape(b, spec.input_shape[0], int(np.prod(spec.input_shape[1:])))


# ------------------------------------------------------------------------------------------------------ models


@dataclasses.dataclass(frozen=True)
class Model:
  """A zoo model bound to a task spec. Hashable (usable as a static jit argument); methods are pure.

  Attributes:
    model_id: registry id ("mlp", "transformer", "looped", "memory", "lookup", "search").
    spec: the task's spec.
    config: the full model config (defaults filled in) as sorted (name, value) pairs.
  """
  model_id: str
  spec: Spec
  config: tuple[tuple[str, Any], ...]

  trainable = True
  iterative = False
  accepts_any_input_shape = False
  """True when the model runs on inputs of another shape than ``spec.input_shape`` (a convolution over a grid of
  any size); False for models whose parameters or stored rows have the training shape. ``answers_larger`` needs it
  when the larger split's inputs have another shape (Maze-v0)."""
  shares_weights_across_positions = False
  """True when every weight applies to every input position (token-wise embeddings and blocks), so inputs that
  set positions constant in training (ModSearch's high bits on ``task.larger()``) reach only trained weights.
  False for models with a weight per input position (mlp, looped: a Dense over the flattened input, whose weights
  for an always-zero input never get a gradient). Baselines without trained weights are True (a rule or a
  stored table reads every position)."""

  @property
  def options(self) -> dict[str, Any]:
    return dict(self.config)

  def config_dict(self) -> dict[str, Any]:
    """The config as a JSON-able dict (what result files record and ``make`` accepts back)."""
    return json.loads(json.dumps(self.options))

  def init(self, key: jax.Array) -> Any:
    raise NotImplementedError

  def fit(self, params: Any, inputs: jax.Array, targets: Mapping[str, jax.Array]) -> Any:
    """Parameters after seeing the training pool (``inputs`` [N, ...], its targets); nets return ``params``."""
    del inputs, targets
    return params

  def loss(self, params: Any, inputs: jax.Array, targets: Mapping[str, jax.Array]) -> jax.Array:
    raise NotImplementedError

  def predict(self, params: Any, inputs: jax.Array, **kwargs) -> jax.Array:
    raise NotImplementedError

  def param_count(self, params: Any) -> int:
    """Scalars in ``params`` (for ``lookup``: the stored pool, its memory)."""
    return costs.param_count(params)

  def flops_per_example(self, params: Any, inputs: jax.Array) -> float:
    """FLOPs of one example's ``predict`` by XLA's cost analysis, measured on the batch ``inputs``."""
    return costs.flops_per_example(lambda p, x: self.predict(p, x), params, inputs, batch_size=inputs.shape[0])


@dataclasses.dataclass(frozen=True)
class NetModel(Model):
  """A Flax linen network with a task head. Subclasses implement ``module()`` (the linen module of their config)."""

  def module(self) -> nn.Module:
    raise NotImplementedError

  @property
  def head(self) -> str:
    return self.options["head"]

  @property
  def bins(self) -> int:
    return self.options["bins"]

  @property
  def out_size(self) -> int:
    return head_size(self.spec, self.head, self.bins)

  def init(self, key):
    dummy = jnp.zeros((1,) + tuple(self.spec.input_shape), jnp.float32)
    return self.module().init(key, dummy)["params"]

  def outputs(self, params, inputs, **kwargs):
    """Head outputs [B, H] (or [T, B, H] for iterative models)."""
    return self.module().apply({"params": params}, inputs, **kwargs)

  def loss(self, params, inputs, targets):
    """Mean training loss over the batch (scalar float32); iterative models average the configured iterations."""
    out = self.outputs(params, inputs)
    if out.ndim == 2:
      return jnp.mean(head_loss(self.spec, self.head, self.bins, out, targets))
    if self.options.get("loss_on", "last") == "last":
      return jnp.mean(head_loss(self.spec, self.head, self.bins, out[-1], targets))
    per = jax.vmap(lambda o: jnp.mean(head_loss(self.spec, self.head, self.bins, o, targets)))(out)
    return jnp.mean(per)

  def predict(self, params, inputs, **kwargs):
    out = self.outputs(params, inputs, **kwargs)
    if out.ndim == 3:
      out = out[-1]
    return head_predict(self.spec, self.head, self.bins, out)


def detach(h, t, detach_before):
  """The iterative-module interface's detach: ``h`` (a pytree) with its gradient stopped when iteration ``t``
  (1-based, may be traced) is <= ``detach_before`` (None: unchanged)."""
  if detach_before is None:
    return h
  return jax.tree_util.tree_map(lambda a: jnp.where(t <= detach_before, jax.lax.stop_gradient(a), a), h)


class IterativeNetModel(NetModel):
  """A network that predicts after every iteration (``looped``, ``memory``); T is chosen at test time.

  Subclasses set ``max_iterations`` and their linen module takes an ``iterations`` keyword (default: the
  configured training T)."""

  iterative = True
  max_iterations = 1
  supports_recipe = False
  """True when the linen module follows the iterative-module interface of ``models.looped`` (``detach_before``,
  ``return_states``), so ``recipe_loss`` (progressive loss, random T) can train it."""

  def recipe_loss(self, params, inputs, targets, key, alpha: float, lo: int, hi: int):
    """The training loss of the recurrent-network recipe (Bansal et al. 2022), a float32 scalar.

    Per call: T ~ U{lo..hi} (the iterations of this step); the *full* loss is the head loss after T iterations;
    n ~ U{0..T-1} and k ~ U{1..T-n}; the *progressive* loss is the head loss after n + k iterations with the state
    after n iterations detached (no gradient reaches the parameters through iterations 1..n). The loss is
    (1 - alpha) * full + alpha * progressive; alpha in [0, 1], 1 <= lo <= hi <= ``max_iterations`` (static).
    """
    if not self.supports_recipe:
      raise ValueError(f"model {self.model_id!r} does not support the training recipe (progressive_alpha, "
                       "iterations_range): its module has no detach_before")
    if not 0.0 <= alpha <= 1.0:
      raise ValueError(f"progressive_alpha must be in [0, 1], got {alpha!r}")
    check_int("iterations_range[1]", hi, 1, self.max_iterations)
    check_int("iterations_range[0]", lo, 1, hi)
    k_t, k_n, k_k = jax.random.split(key, 3)
    t = jax.random.randint(k_t, (), lo, hi + 1, jnp.int32)
    n = jax.random.randint(k_n, (), 0, t, jnp.int32)
    k = jax.random.randint(k_k, (), 1, t - n + 1, jnp.int32)

    def loss_at(out, index):  # mean head loss of the outputs after iteration index + 1
      o = jax.lax.dynamic_index_in_dim(out, index, axis=0, keepdims=False)
      return jnp.mean(head_loss(self.spec, self.head, self.bins, o, targets))

    total = jnp.float32(0.0)
    if alpha < 1.0:
      total = total + (1.0 - alpha) * loss_at(self.outputs(params, inputs, iterations=hi), t - 1)
    if alpha > 0.0:
      out = self.outputs(params, inputs, iterations=hi, detach_before=n)
      total = total + alpha * loss_at(out, n + k - 1)
    return total

  def states(self, params, inputs, iterations: int | None = None):
    """Hidden states after every iteration, [T, B, ...] (for probes); needs ``supports_recipe``."""
    if not self.supports_recipe:
      raise ValueError(f"model {self.model_id!r} does not expose its states (no return_states)")
    return self.outputs(params, inputs, iterations=iterations, return_states=True)[1]

  def predict_iterations(self, params, inputs, iterations: int | None = None):
    """Predictions after every iteration, [T, B] (T = ``iterations`` in [1, max_iterations], default the
    training T)."""
    if iterations is not None:
      check_int("iterations", iterations, 1, self.max_iterations)
    out = self.outputs(params, inputs, iterations=iterations)
    return head_predict(self.spec, self.head, self.bins, out)

  def predict(self, params, inputs, iterations: int | None = None):
    """The prediction after the last of ``iterations`` iterations (default the training T), [B]."""
    return self.predict_iterations(params, inputs, iterations)[-1]


def head_defaults(spec: Spec, config: dict[str, Any]) -> dict[str, Any]:
  """Checks and fills the head options: ``head`` (integer outputs: "classes" | "bits") and ``bins`` (2..4096)."""
  head = check_choice("head", config.get("head", "classes"), HEADS)
  bins = check_int("bins", config.get("bins", 64), 2, MAX_BINS)
  return {"head": head, "bins": bins}


def answers_larger(model: Model, task: Any) -> bool:
  """Whether ``model`` can answer ``task.larger()`` by construction: the task has a larger split and, when that
  split needs weights shared across input positions (``task.larger_requires_shared_weights()``), the model has
  them, and, when the larger inputs have another shape, the model accepts any input shape. False means the harness
  reports the split as "not applicable", never a number."""
  if task.larger() is None:
    return False
  if tuple(task.larger().spec.input_shape) != tuple(task.spec.input_shape) and not model.accepts_any_input_shape:
    return False  # e.g. a 2S x 2S maze for a model whose parameters or stored rows have the S x S shape
  return not task.larger_requires_shared_weights() or model.shares_weights_across_positions


# ---------------------------------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[..., Model]] = {}


def register(model_id: str, factory: Callable[..., Model]) -> None:
  """Registers ``factory(spec, **config) -> Model`` under ``model_id``; registering an id twice is an error."""
  if model_id in _REGISTRY:
    raise ValueError(f"model id {model_id!r} is already registered")
  _REGISTRY[model_id] = factory


def registered() -> tuple[str, ...]:
  """The registered model ids, sorted."""
  return tuple(sorted(_REGISTRY))


def make(model_id: str, spec: Spec, **config: Any) -> Model:
  """The model ``model_id`` for ``spec`` with ``config``; unknown ids raise a ValueError listing the known ones.

  Unknown config names raise a ValueError naming them and the accepted ones.
  """
  if model_id not in _REGISTRY:
    raise ValueError(f"unknown model id {model_id!r}; known ids: {', '.join(registered())}")
  if not isinstance(spec, Spec):
    raise ValueError(f"spec must be a mesabench.tasks.Spec (task.spec), got {type(spec).__name__}")
  return _REGISTRY[model_id](spec, **config)


def finish_config(model_id: str, given: dict[str, Any], filled: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
  """Sorted config pairs; ValueError if ``given`` holds names the model does not accept."""
  extra = sorted(set(given) - set(filled))
  if extra:
    raise ValueError(f"unknown config for model {model_id!r}: {extra}; accepted: {sorted(filled)}")
  return tuple(sorted(filled.items()))
