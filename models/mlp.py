"""``mlp``: a multilayer perceptron over the flattened inputs.

Layers: ``depth`` hidden Dense layers of ``width`` units with GELU, then the task head (``models.base``).
Parameters: in*w + w + (depth - 1)(w*w + w) + w*H + H, with in = prod(spec.input_shape) and H the head width.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from mesabench.models import base


class MLPNet(nn.Module):
  """Inputs [B, ...] -> head outputs [B, out_size]."""
  width: int
  depth: int
  out_size: int

  @nn.compact
  def __call__(self, inputs):
    h = inputs.reshape(inputs.shape[0], -1).astype(jnp.float32)
    for _ in range(self.depth):
      h = nn.gelu(nn.Dense(self.width)(h))
    return nn.Dense(self.out_size)(h)


@dataclasses.dataclass(frozen=True)
class MLP(base.NetModel):
  """Config: width (1..4096, default 128), depth (1..16 hidden layers, default 2), head, bins."""

  def module(self):
    return MLPNet(width=self.options["width"], depth=self.options["depth"], out_size=self.out_size)


def make(spec, **config) -> MLP:
  filled = {"width": base.check_int("width", config.get("width", 128), 1, 4096),
            "depth": base.check_int("depth", config.get("depth", 2), 1, 16),
            **base.head_defaults(spec, config)}
  return MLP("mlp", spec, base.finish_config("mlp", config, filled))


base.register("mlp", make)
