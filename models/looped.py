"""``looped``: one weight-tied block applied T times with the input re-injected every step (DeepThinking-style
recall); the head reads the state after every iteration, so one forward pass gives the whole test-time compute curve.

    e = Dense_w(flatten(inputs));  h_0 = 0
    h_t = LayerNorm(h_{t-1} + Dense_w(gelu(Dense_w([h_{t-1}, e]))))     t = 1 .. T (the same weights every step)
    out_t = head(h_t)

T is ``iterations`` at training time and any T >= 1 at test time (``predict(..., iterations=T)``).
Parameters: in*w + w + (2w*w + w) + (w*w + w) + 2w + w*H + H (in = prod(input_shape), H the head width).
``loss_on``: "all" (default; the mean of every iteration's loss, so each iteration's answer is meaningful) or
"last".
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from mesabench.models import base

MAX_ITERATIONS = 1024


class _Block(nn.Module):
  width: int

  @nn.compact
  def __call__(self, h, e):
    z = nn.gelu(nn.Dense(self.width, name="mix")(jnp.concatenate([h, e], axis=-1)))
    h = nn.LayerNorm(name="norm")(h + nn.Dense(self.width, name="update")(z))
    return h, h


class LoopedNet(nn.Module):
  """Inputs [B, ...] -> head outputs [T, B, out_size] (one per iteration)."""
  width: int
  out_size: int
  iterations: int

  @nn.compact
  def __call__(self, inputs, iterations=None):
    t = self.iterations if iterations is None else iterations
    e = nn.Dense(self.width, name="embed")(inputs.reshape(inputs.shape[0], -1).astype(jnp.float32))
    loop = nn.scan(_Block, variable_broadcast="params", split_rngs={"params": False}, in_axes=nn.broadcast,
                   length=t)
    _, hs = loop(self.width, name="block")(jnp.zeros_like(e), e)
    return nn.Dense(self.out_size, name="head")(hs)


@dataclasses.dataclass(frozen=True)
class Looped(base.IterativeNetModel):
  """Config: width (1..4096, default 128), iterations (training T, 1..1024, default 8), loss_on, head, bins."""

  max_iterations = MAX_ITERATIONS

  def module(self):
    return LoopedNet(width=self.options["width"], out_size=self.out_size, iterations=self.options["iterations"])


def make(spec, **config) -> Looped:
  filled = {"width": base.check_int("width", config.get("width", 128), 1, 4096),
            "iterations": base.check_int("iterations", config.get("iterations", 8), 1, MAX_ITERATIONS),
            "loss_on": base.check_choice("loss_on", config.get("loss_on", "all"), ("all", "last")),
            **base.head_defaults(spec, config)}
  return Looped("looped", spec, base.finish_config("looped", config, filled))


base.register("looped", make)
