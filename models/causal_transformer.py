"""``causal_transformer``: a decoder-only (GPT-2 style) Transformer with one real output per position, for
in-context regression sequences (``tasks.linreg.interleave``; spec ``tasks.linreg.sequence_spec``).

Tokens [B, T, F] (T = 2K: x-token then y-token per example) are embedded by a Dense layer plus a learned position
embedding (normal, std 0.02); ``layers`` pre-LayerNorm blocks of causal multi-head self-attention (``heads`` heads,
width ``width``; position t attends to positions <= t) and a GELU MLP of ``mlp_ratio * width`` units, each with a
residual connection; a final LayerNorm and a Dense read-out of one scalar per position. The prediction of y_k is
the read-out at the x-token of example k (position 2k), which has seen (x_1, y_1, ..., x_k) and never y_k
(mansheej/icl-task-diversity's model). ``loss`` is the mean squared error over the batch and the K positions
against ``targets["y"]`` [B, K]; ``predict`` returns [B, K].
Parameters: F*w + w + T*w + layers * (4 w + 4(w*w + w) + 2 r w*w + r w + w) + 2w + w + 1 (r = mlp_ratio).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from mesabench.models import base
from mesabench.tasks.core import Spec

OUTPUT_KIND = "real_sequence"


class CausalNet(nn.Module):
  """Tokens [B, T, F] -> one scalar per position [B, T]."""
  width: int
  layers: int
  heads: int
  mlp_ratio: int

  @nn.compact
  def __call__(self, toks):
    length = toks.shape[1]
    h = nn.Dense(self.width, name="embed")(toks.astype(jnp.float32))
    h = h + self.param("position", nn.initializers.normal(0.02), (length, self.width), jnp.float32)
    mask = nn.make_causal_mask(jnp.ones(toks.shape[:2], jnp.int32))
    for i in range(self.layers):
      a = nn.LayerNorm(name=f"ln_attn_{i}")(h)
      h = h + nn.MultiHeadDotProductAttention(num_heads=self.heads, name=f"attn_{i}")(a, a, mask=mask)
      m = nn.LayerNorm(name=f"ln_mlp_{i}")(h)
      m = nn.gelu(nn.Dense(self.mlp_ratio * self.width, name=f"mlp_in_{i}")(m))
      h = h + nn.Dense(self.width, name=f"mlp_out_{i}")(m)
    h = nn.LayerNorm(name="ln_final")(h)
    return nn.Dense(1, name="head")(h)[..., 0]


@dataclasses.dataclass(frozen=True)
class CausalTransformer(base.Model):
  """Config: width (heads..1024, divisible by heads; default 64), layers (1..24, default 2), heads (1..16,
  default 2), mlp_ratio (1..8, default 4)."""

  shares_weights_across_positions = True

  def module(self) -> CausalNet:
    o = self.options
    return CausalNet(width=o["width"], layers=o["layers"], heads=o["heads"], mlp_ratio=o["mlp_ratio"])

  def init(self, key: jax.Array) -> Any:
    dummy = jnp.zeros((1,) + tuple(self.spec.input_shape), jnp.float32)
    return self.module().init(key, dummy)["params"]

  def outputs(self, params: Any, inputs: jax.Array) -> jax.Array:
    """The read-out at every position, [B, T]."""
    return self.module().apply({"params": params}, inputs)

  def predict(self, params: Any, inputs: jax.Array, **kwargs) -> jax.Array:
    """Predictions of y_1..y_K, [B, K]: the read-out at the x-tokens (even positions)."""
    del kwargs
    return self.outputs(params, inputs)[:, ::2]

  def loss(self, params: Any, inputs: jax.Array, targets: Mapping[str, jax.Array]) -> jax.Array:
    """Mean squared error over the batch and positions against targets["y"] [B, K] (scalar float32)."""
    return jnp.mean((self.predict(params, inputs) - targets["y"].astype(jnp.float32)) ** 2)


def make(spec: Spec, **config) -> CausalTransformer:
  if spec.output_kind != OUTPUT_KIND or len(spec.input_shape) != 2 or spec.input_shape[0] % 2:
    raise ValueError(f"spec must be a per-position regression spec (output_kind {OUTPUT_KIND!r}, input_shape "
                     f"[2K, F]; tasks.linreg.sequence_spec), got {spec.output_kind!r} {spec.input_shape}")
  heads = base.check_int("heads", config.get("heads", 2), 1, 16)
  width = base.check_int("width", config.get("width", 64), heads, 1024)
  if width % heads:
    raise ValueError(f"width must be divisible by heads={heads}, got {width}")
  filled = {"width": width, "heads": heads, "layers": base.check_int("layers", config.get("layers", 2), 1, 24),
            "mlp_ratio": base.check_int("mlp_ratio", config.get("mlp_ratio", 4), 1, 8)}
  return CausalTransformer("causal_transformer", spec, base.finish_config("causal_transformer", config, filled))


base.register("causal_transformer", make)
