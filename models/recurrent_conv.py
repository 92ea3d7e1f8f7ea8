"""``recurrent_conv``: the deep-thinking "recall" network (Bansal et al. 2022) for grid tasks, scaled to the CPU.

Inputs [B, S, S, C] (a grid of cells with C feature channels, e.g. Maze-v0's walls, start and goal). Every layer
is a convolution with zero padding (3x3; the residual blocks' kernel k is ``block_kernel``, 3 as published or 1),
without bias as published unless ``bias`` is set, so every weight applies to every cell and the same parameters
run on a grid of any size:

    h_0 = min(relu(conv_{C->w}(x)), bound)                                          (projection)
    u = conv_{w+C->w}([h_{t-1}, x])   (recall: the raw input re-injected;  without recall: conv_{w->w}(h_{t-1}))
    u = relu(u + convk_{w->w}(relu(convk_{w->w}(u))))    repeated ``blocks`` times  (residual blocks, k x k)
    h_t = min(u, bound)                                      t = 1 .. T (the same weights every iteration)
    out_t = conv_{w/2->1}(relu(conv_{w->w/2}(h_t)))           one logit per cell, flattened to [B, S * S]
                                                (the head's convs are 3x3 as published, or 1x1: ``head_kernel``)
    (``monotone``: the recall conv reads [h_{t-1}, sigmoid(out_{t-1}), x] and out_t = min(out_{t-1}, head(h_t));
     without ``memory`` it reads [sigmoid(out_{t-1}), x] only)

With ``block_kernel=1`` an iteration is a neural cellular automaton (Mordvintsev et al. 2020): one 3x3 look at the
neighbours and a per-cell update, so the state of a cell after an iteration depends on its 3x3 neighbourhood only
and a rule learned on small grids sees, in every cell away from the border, the same local situations a larger
grid has. With 3x3 blocks one iteration reaches 1 + 2 * blocks cells, so on a 5x5 training grid every cell's
neighbourhood touches the border (the results in harness/maze_study.py compare the two).

``state_bound`` (None as published: no ceiling) caps every state at a constant. An unbounded relu recurrence can
have a mode that grows without limit in a local situation its training grids never held long enough to matter:
the maze study's unbounded CA step, trained on 5x5 mazes, keeps its states below 6 there for 240 iterations, but on
10x10 and 20x20 mazes a few cells grow from ~4 at t = 60 to 1e12 and more by t = 240 and wreck their neighbours
(harness/maze_study.py). With the ceiling a state can saturate but never run away.

``monotone`` (False as published) makes the answer an erase-only channel: out_t = min(out_{t-1}, head(h_t)) from
out_0 = ``MONOTONE_START`` (every cell "on the path"), and the recall conv also reads sigmoid(out_{t-1}), so an
iteration sees which neighbours are still in. A cell, once ruled out, stays out however long the network runs;
more iterations can only remove cells. This is the shape of dead-end filling (each round removes every remaining
cell other than the ends with at most one passage to a remaining cell; the survivors are the path), but what
removes a cell, and when, is learned. ``memory=False`` (needs ``monotone`` and ``recall``) drops the hidden state
from the recurrence: the recall conv reads only [sigmoid(out_{t-1}), x], there is no projection, and the answer
channel is all an iteration passes to the next, so the rule cannot count iterations. Why (harness/maze_study.py,
preset "erase"): in the pilots with an erase-only answer and the hidden state kept, the trained network's answer
stops changing at about its training T whatever the maze (a clock in its state); without the state it keeps
pruning beyond T on larger mazes.

``head_kernel`` (3 as published, or 1) sets the head's two convs. With 1x1 blocks and a 1x1 head an iteration
reads a cell's 3x3 neighbourhood once (the recall conv) and nothing further: the rule cannot take in a wider window
in one look, which on a 5x5 training maze is nearly the whole maze (the 3x3 head's 7x7 window lets an erase-only
network make a one-shot guess at iteration 1 that the minimum then locks in; harness/maze_study.py, preset "erase").

``min_temperature`` (None: the minimum's own gradient; needs ``monotone``) keeps the forward pass exactly
min(out_{t-1}, head(h_t)) but gives it the gradient of the soft minimum -tau log(e^(-a/tau) + e^(-b/tau)): the head
gets sigmoid((a - b) / tau) of the incoming gradient and the carried answer the rest (a straight-through estimator;
the answer still never rises). The hard minimum passes the whole gradient to whichever iteration set the cell's
answer, so a cell in a dead end whose rule fires too late never learns that it should have fired; with the soft
gradient every iteration whose head came near the minimum is told. Why (preset "erase_local"): with a 1x1 head
the hard minimum does not learn (0.08-0.14 exact match on the training size), the soft one at tau = 0.5 or 1 does.

The module returns the head outputs of every iteration, [T, B, S * S] (the "cells" head of ``models.base``
thresholds them at 0 and reshapes to [..., S, S]); T is the configured training ``iterations`` or any T >= 1 at
test time. One iteration moves information at most 1 + 2 * blocks cells (its receptive field grows by that much).

Parameters (h = max(w // 2, 1), m = 1 with ``monotone`` else 0, j = ``head_kernel``):  9 C w  +  9 (w + m + C) w
(recall; 9 (w + m) w without)  +  blocks * 2 * k^2 w w  +  j^2 (w h + h), and with ``bias`` (2 + 2 blocks) w
+ h + 1 more; without ``memory`` the projection (9 C w, and its w biases) and the recall conv's 9 w w state weights
are gone.

The iterative-module interface (``models.base.IterativeNetModel.recipe_loss`` and the probes use it):
``__call__(inputs, iterations=None, detach_before=None, return_states=False)``; ``detach_before`` (None or an
int32 n in [0, T], may be traced) stops the gradient through the states (and, with ``monotone``, the answers) of
iterations 1..n, so the parameters get
gradient only through iterations n+1..T; ``return_states=True`` returns (outputs, states [T, B, S, S, w]).
"""
from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from mesabench.models import base

MAX_ITERATIONS = 1024
MAX_WIDTH = 512
MAX_BLOCKS = 8
MAX_STATE_BOUND = 1e6
MONOTONE_START = 1e4
"""The ``monotone`` answer's logit before the first iteration (every cell on the path; sigmoid = 1 in float32)."""
MAX_MIN_TEMPERATURE = 1e3


_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
"""PyTorch's default convolution init (uniform, variance 1 / (3 fan_in)), as the published networks used: smaller
than flax's lecun_normal, which makes the unnormalized recurrence blow up over many iterations."""


def _conv(features: int, name: str, kernel: int = 3, bias: bool = False) -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), padding="SAME", use_bias=bias, kernel_init=_INIT, name=name)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _soft_grad_min(a, b, temperature: float):
  """min(a, b) exactly, with the gradient of the soft minimum -tau log(e^(-a/tau) + e^(-b/tau))
  (``min_temperature``)."""
  return jnp.minimum(a, b)


def _soft_grad_min_fwd(a, b, temperature):
  return jnp.minimum(a, b), (a, b)


def _soft_grad_min_bwd(temperature, residuals, g):
  a, b = residuals
  to_b = jax.nn.sigmoid((a - b) / temperature)  # the soft minimum's weight on b; 1 - to_b on a
  return g * (1.0 - to_b), g * to_b


_soft_grad_min.defvjp(_soft_grad_min_fwd, _soft_grad_min_bwd)


def _bound(h, bound: float | None):
  """The state's ceiling: relu states in [0, bound] (``state_bound``), or unbounded (None, as published)."""
  return h if bound is None else jnp.minimum(h, bound)


class _Step(nn.Module):
  """One iteration: recall conv, residual blocks, optional detach, and the head on the new state."""
  width: int
  blocks: int
  recall: bool
  keep_states: bool
  block_kernel: int = 3
  bias: bool = False
  state_bound: float | None = None
  monotone: bool = False
  memory: bool = True
  head_kernel: int = 3
  min_temperature: float | None = None

  @nn.compact
  def __call__(self, carry, x, detach_before):
    h, answer, t = carry
    b = self.bias
    seen = ([h] if self.memory else []) + ([jax.nn.sigmoid(answer)] if self.monotone else [])
    u = _conv(self.width, "recall", 3, b)(jnp.concatenate(seen + ([x] if self.recall else []), axis=-1))
    for i in range(self.blocks):
      z = nn.relu(_conv(self.width, f"block{i}_a", self.block_kernel, b)(u))
      u = nn.relu(u + _conv(self.width, f"block{i}_b", self.block_kernel, b)(z))
    u = _bound(u, self.state_bound)
    t = t + 1
    u = base.detach(u, t, detach_before)
    half = max(self.width // 2, 1)
    k = self.head_kernel
    logit = _conv(1, "head_b", k, b)(nn.relu(_conv(half, "head_a", k, b)(u)))
    if self.monotone:  # the answer can only fall; the carried answer is detached like the state
      low = (jnp.minimum(answer, logit) if self.min_temperature is None
             else _soft_grad_min(answer, logit, self.min_temperature))
      logit = base.detach(low, t, detach_before)
    return (u, logit, t), (logit.reshape(logit.shape[0], -1), u if self.keep_states else None)


class RecurrentConvNet(nn.Module):
  """Inputs [B, S, S, C] -> per-cell logits of every iteration, [T, B, S * S] (see the module docstring)."""
  width: int
  blocks: int
  iterations: int
  recall: bool = True
  block_kernel: int = 3
  bias: bool = False
  state_bound: float | None = None
  monotone: bool = False
  memory: bool = True
  head_kernel: int = 3
  min_temperature: float | None = None

  @nn.compact
  def __call__(self, inputs, iterations=None, detach_before=None, return_states=False):
    if inputs.ndim != 4:
      raise ValueError(f"inputs must be [B, S, S, C] grids, got shape {inputs.shape}")
    t = self.iterations if iterations is None else iterations
    x = inputs.astype(jnp.float32)
    if self.memory:
      h0 = _bound(nn.relu(_conv(self.width, "project", 3, self.bias)(x)), self.state_bound)
    else:  # no state is carried (nothing reads h0): the answer channel is the only memory
      h0 = jnp.zeros(x.shape[:-1] + (self.width,), jnp.float32)
    loop = nn.scan(_Step, variable_broadcast="params", split_rngs={"params": False},
                   in_axes=(nn.broadcast, nn.broadcast), length=t)
    step = loop(self.width, self.blocks, self.recall, return_states, self.block_kernel, self.bias,
                self.state_bound, self.monotone, self.memory, self.head_kernel, self.min_temperature, name="step")
    answer0 = jnp.full(x.shape[:-1] + (1,), MONOTONE_START, jnp.float32)
    _, (out, hs) = step((h0, answer0, jnp.int32(0)), x, detach_before)
    return (out, hs) if return_states else out


@dataclasses.dataclass(frozen=True)
class RecurrentConv(base.IterativeNetModel):
  """Config: width (1..512, default 32), blocks (residual blocks per iteration, 1..8, default 2 as published),
  iterations (training T, 1..1024, default 20), recall (default True), block_kernel (3 as published, or 1: a
  neural cellular automaton step), bias (default False as published), state_bound (None as published, or a
  ceiling in (0, 1e6] on every state), monotone (default False as published: an erase-only answer, see the
  module docstring), memory (default True as published; False: no hidden state is carried, needs monotone and
  recall), head_kernel (3 as published, or 1), min_temperature (None, or tau in (0, 1e3] with monotone: the
  minimum's gradient is the soft minimum's), loss_on ("last" default, or "all"), head,
  bins (unused by the cells head; kept so every net takes the same head options)."""

  max_iterations = MAX_ITERATIONS
  shares_weights_across_positions = True
  accepts_any_input_shape = True
  supports_recipe = True

  def module(self):
    o = self.options
    return RecurrentConvNet(width=o["width"], blocks=o["blocks"], iterations=o["iterations"], recall=o["recall"],
                            block_kernel=o["block_kernel"], bias=o["bias"], state_bound=o["state_bound"],
                            monotone=o["monotone"], memory=o["memory"], head_kernel=o["head_kernel"],
                            min_temperature=o["min_temperature"])

  def predicted_param_count(self) -> int:
    """The parameter count of the module docstring's formula."""
    o = self.options
    c, w, h = int(self.spec.input_shape[-1]), o["width"], max(o["width"] // 2, 1)
    k2 = o["block_kernel"] ** 2
    a = 1 if o["monotone"] else 0  # the answer channel the recall conv reads
    state = (9 * c * w + w * w * 9) if o["memory"] else 0  # the projection and the recall conv's state inputs
    n = state + 9 * (a + (c if o["recall"] else 0)) * w + o["blocks"] * 2 * k2 * w * w
    n += o["head_kernel"] ** 2 * (w * h + h)
    if o["bias"]:
      n += (2 + 2 * o["blocks"]) * w + h + 1 - (0 if o["memory"] else w)  # no projection bias without memory
    return n


def _check_kernel(name: str, value) -> int:
  if isinstance(value, bool) or value not in (1, 3):
    raise ValueError(f"{name} must be 1 or 3, got {value!r}")
  return int(value)


def _check_temperature(value, monotone: bool) -> float | None:
  if value is None:
    return None
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_MIN_TEMPERATURE:
    raise ValueError(f"min_temperature must be None or a number in (0, {MAX_MIN_TEMPERATURE:g}], got {value!r}")
  if not monotone:
    raise ValueError("min_temperature needs monotone=True (it shapes the gradient of the answer's minimum), "
                     f"got monotone={monotone}")
  return float(value)


def _check_bound(value) -> float | None:
  if value is None:
    return None
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_STATE_BOUND:
    raise ValueError(f"state_bound must be None or a number in (0, {MAX_STATE_BOUND:g}], got {value!r}")
  return float(value)


def make(spec, **config) -> RecurrentConv:
  if len(spec.input_shape) != 3:
    raise ValueError(f"spec.input_shape must be a grid (S, S, C) for recurrent_conv, got {spec.input_shape}")
  flags = {name: config.get(name, default) for name, default in (("recall", True), ("bias", False),
                                                                  ("monotone", False), ("memory", True))}
  for name, value in flags.items():
    if not isinstance(value, bool):
      raise ValueError(f"{name} must be True or False, got {value!r}")
  if not flags["memory"] and not (flags["monotone"] and flags["recall"]):
    raise ValueError("memory=False needs monotone=True and recall=True (the answer and the input are then all an "
                     f"iteration reads), got monotone={flags['monotone']}, recall={flags['recall']}")
  filled = {"width": base.check_int("width", config.get("width", 32), 1, MAX_WIDTH),
            "blocks": base.check_int("blocks", config.get("blocks", 2), 1, MAX_BLOCKS),
            "iterations": base.check_int("iterations", config.get("iterations", 20), 1, MAX_ITERATIONS),
            **flags,
            "block_kernel": _check_kernel("block_kernel", config.get("block_kernel", 3)),
            "head_kernel": _check_kernel("head_kernel", config.get("head_kernel", 3)),
            "min_temperature": _check_temperature(config.get("min_temperature"), flags["monotone"]),
            "state_bound": _check_bound(config.get("state_bound")),
            "loss_on": base.check_choice("loss_on", config.get("loss_on", "last"), ("all", "last")),
            **base.head_defaults(spec, config)}
  return RecurrentConv("recurrent_conv", spec, base.finish_config("recurrent_conv", config, filled))


base.register("recurrent_conv", make)
