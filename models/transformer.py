"""``transformer``: a pre-LayerNorm Transformer encoder over the input's tokens, mean-pooled into the head.

Tokens (``models.base.tokens``): one per coefficient (PolyMax, float: a scalar; binary: its bits) or one per bit
of n (ModSearch). Each token is embedded by a Dense layer plus a learned position embedding; ``layers`` blocks of
multi-head self-attention (``heads`` heads, width ``width``) and a GELU MLP of ``mlp_ratio * width`` units, each
with a residual connection; a final LayerNorm, a mean over tokens, and the task head.
Parameters: F*w + w + L*w + layers * (4 w + 4(w*w + w) + 2 r w*w + r w + w) + 2w + w*H + H for L tokens of F
features, r = mlp_ratio, H the head width.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from mesabench.models import base


class TransformerNet(nn.Module):
  """Tokens [B, L, F] -> head outputs [B, out_size]."""
  width: int
  layers: int
  heads: int
  mlp_ratio: int
  out_size: int

  @nn.compact
  def __call__(self, toks):
    length = toks.shape[1]
    h = nn.Dense(self.width, name="embed")(toks.astype(jnp.float32))
    h = h + self.param("position", nn.initializers.normal(0.02), (length, self.width), jnp.float32)  # also x64
    for i in range(self.layers):
      a = nn.LayerNorm(name=f"ln_attn_{i}")(h)
      h = h + nn.MultiHeadDotProductAttention(num_heads=self.heads, name=f"attn_{i}")(a, a)
      m = nn.LayerNorm(name=f"ln_mlp_{i}")(h)
      m = nn.gelu(nn.Dense(self.mlp_ratio * self.width, name=f"mlp_in_{i}")(m))
      h = h + nn.Dense(self.width, name=f"mlp_out_{i}")(m)
    h = nn.LayerNorm(name="ln_final")(h)
    return nn.Dense(self.out_size, name="head")(jnp.mean(h, axis=1))


class _Wrapped(nn.Module):
  net: TransformerNet
  spec: object

  def __call__(self, inputs):
    return self.net(base.tokens(self.spec, inputs))


@dataclasses.dataclass(frozen=True)
class Transformer(base.NetModel):
  """Config: width (heads..1024, divisible by heads; default 64), layers (1..12, default 2), heads (1..16,
  default 4), mlp_ratio (1..8, default 2), head, bins."""

  shares_weights_across_positions = True  # one Dense embedding and shared blocks for every token; a learned
  # position embedding per token, which trains on every position (zero bits included)

  def module(self):
    o = self.options
    net = TransformerNet(width=o["width"], layers=o["layers"], heads=o["heads"], mlp_ratio=o["mlp_ratio"],
                         out_size=self.out_size)
    return _Wrapped(net=net, spec=self.spec)


def make(spec, **config) -> Transformer:
  heads = base.check_int("heads", config.get("heads", 4), 1, 16)
  width = base.check_int("width", config.get("width", 64), heads, 1024)
  if width % heads:
    raise ValueError(f"width must be divisible by heads={heads}, got {width}")
  filled = {"width": width, "heads": heads,
            "layers": base.check_int("layers", config.get("layers", 2), 1, 12),
            "mlp_ratio": base.check_int("mlp_ratio", config.get("mlp_ratio", 2), 1, 8),
            **base.head_defaults(spec, config)}
  return Transformer("transformer", spec, base.finish_config("transformer", config, filled))


base.register("transformer", make)
