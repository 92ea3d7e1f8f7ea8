"""Weight-tied iterative networks: one block applied T times with the input re-injected every step
(DeepThinking-style recall); the head reads the state after every iteration, so one forward pass gives the whole
test-time compute curve.

``looped`` (a Dense block over the flattened input):

    e = Dense_w(flatten(inputs));  h_0 = 0  (recall)  or  h_0 = e  (no recall)
    h_t = LayerNorm(h_{t-1} + Dense_w(gelu(Dense_w([h_{t-1}, e]))))     t = 1 .. T (the same weights every step)
    out_t = head(h_t)

Parameters (recall): in*w + w + (2w*w + w) + (w*w + w) + 2w + w*H + H (in = prod(input_shape), H the head width);
without recall the mixing layer reads h alone (w*w + w instead of 2w*w + w).

``looped_transformer`` (weight shared across input positions, so it can answer ``task.larger()`` even when that
split sets input positions that are constant in training, as ModSearch's high bits are):

    e = Dense_w(token_i) + sin/cos position features (a fixed function of the position: no weight per position)
    h_0 = 0;  h_t = Block([h_{t-1}, e])  (Dense 2w -> w, then a pre-LayerNorm self-attention + GELU MLP block)
    out_t = head(mean_i LayerNorm(h_t))

T is ``iterations`` at training time and any T >= 1 at test time (``predict(..., iterations=T)``).

The iterative-module interface (what ``models.base.IterativeNetModel.recipe_loss`` uses):
``__call__(inputs, iterations=None, detach_before=None, return_states=False)`` returns head outputs for every
iteration, [T, B, H]. ``detach_before`` (None or a traced int32 n in [0, T]) stops the gradient through the states
of iterations 1..n, so the parameters get gradient only through iterations n+1..T (the progressive loss of Bansal
et al. 2022). ``return_states=True`` returns (outputs, states [T, B, ...]) for probes.
``loss_on``: "all" (default; the mean of every iteration's loss) or "last"; a ``TrainConfig`` recipe
(``progressive_alpha``, ``iterations_range``) replaces it.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mesabench.models import base

MAX_ITERATIONS = 1024


class _Block(nn.Module):
  width: int
  recall: bool

  @nn.compact
  def __call__(self, carry, e, detach_before):
    h, t = carry
    z = nn.gelu(nn.Dense(self.width, name="mix")(jnp.concatenate([h, e], axis=-1) if self.recall else h))
    h = nn.LayerNorm(name="norm")(h + nn.Dense(self.width, name="update")(z))
    t = t + 1
    h = base.detach(h, t, detach_before)
    return (h, t), h


class LoopedNet(nn.Module):
  """Inputs [B, ...] -> head outputs [T, B, out_size] (one per iteration)."""
  width: int
  out_size: int
  iterations: int
  recall: bool = True

  @nn.compact
  def __call__(self, inputs, iterations=None, detach_before=None, return_states=False):
    t = self.iterations if iterations is None else iterations
    e = nn.Dense(self.width, name="embed")(inputs.reshape(inputs.shape[0], -1).astype(jnp.float32))
    loop = nn.scan(_Block, variable_broadcast="params", split_rngs={"params": False},
                   in_axes=(nn.broadcast, nn.broadcast), length=t)
    h0 = jnp.zeros_like(e) if self.recall else e
    _, hs = loop(self.width, self.recall, name="block")((h0, jnp.int32(0)), e, detach_before)
    out = nn.Dense(self.out_size, name="head")(hs)
    return (out, hs) if return_states else out


def positions(length: int, width: int) -> jax.Array:
  """Fixed sinusoidal position features [length, width] (float32; any length, no parameters)."""
  pos = np.arange(length, dtype=np.float64)[:, None]
  freq = np.exp(-np.log(1e4) * (np.arange(0, width, 2, dtype=np.float64) / max(width, 1)))
  ang = pos * freq[None, :]
  out = np.zeros((length, width), np.float64)
  out[:, 0::2] = np.sin(ang)
  out[:, 1::2] = np.cos(ang)[:, : width // 2]
  return jnp.asarray(out, jnp.float32)


class _TokenBlock(nn.Module):
  width: int
  heads: int
  mlp_ratio: int

  @nn.compact
  def __call__(self, carry, e, detach_before):
    h, t = carry
    h = nn.Dense(self.width, name="recall")(jnp.concatenate([h, e], axis=-1))
    a = nn.LayerNorm(name="ln_attn")(h)
    h = h + nn.MultiHeadDotProductAttention(num_heads=self.heads, name="attn")(a, a)
    m = nn.LayerNorm(name="ln_mlp")(h)
    h = h + nn.Dense(self.width, name="mlp_out")(nn.gelu(nn.Dense(self.mlp_ratio * self.width, name="mlp_in")(m)))
    t = t + 1
    h = base.detach(h, t, detach_before)
    return (h, t), h


class LoopedTransformerNet(nn.Module):
  """Tokens [B, L, F] -> head outputs [T, B, out_size] (one per iteration)."""
  width: int
  heads: int
  mlp_ratio: int
  out_size: int
  iterations: int
  spec: object

  @nn.compact
  def __call__(self, inputs, iterations=None, detach_before=None, return_states=False):
    t = self.iterations if iterations is None else iterations
    toks = base.tokens(self.spec, inputs) if inputs.ndim <= 3 else inputs.reshape(inputs.shape[:2] + (-1,))
    e = nn.Dense(self.width, name="embed")(toks.astype(jnp.float32)) + positions(toks.shape[1], self.width)
    loop = nn.scan(_TokenBlock, variable_broadcast="params", split_rngs={"params": False},
                   in_axes=(nn.broadcast, nn.broadcast), length=t)
    _, hs = loop(self.width, self.heads, self.mlp_ratio, name="block")((jnp.zeros_like(e), jnp.int32(0)), e,
                                                                       detach_before)
    pooled = jnp.mean(nn.LayerNorm(name="ln_final")(hs), axis=2)  # [T, B, w]
    out = nn.Dense(self.out_size, name="head")(pooled)
    return (out, hs) if return_states else out


@dataclasses.dataclass(frozen=True)
class Looped(base.IterativeNetModel):
  """Config: width (1..4096, default 128), iterations (training T, 1..1024, default 8), recall (default True),
  loss_on, head, bins."""

  max_iterations = MAX_ITERATIONS
  supports_recipe = True

  def module(self):
    return LoopedNet(width=self.options["width"], out_size=self.out_size, iterations=self.options["iterations"],
                     recall=self.options.get("recall", True))


@dataclasses.dataclass(frozen=True)
class LoopedTransformer(base.IterativeNetModel):
  """Config: width (1..1024, default 64; a multiple of heads), heads (1..16, default 4), mlp_ratio (1..8,
  default 2), iterations (training T, 1..1024, default 8), loss_on, head, bins."""

  max_iterations = MAX_ITERATIONS
  supports_recipe = True
  shares_weights_across_positions = True  # token-wise Dense layers, attention and fixed position features
  accepts_any_input_shape = True

  def module(self):
    o = self.options
    return LoopedTransformerNet(width=o["width"], heads=o["heads"], mlp_ratio=o["mlp_ratio"],
                                out_size=self.out_size, iterations=o["iterations"], spec=self.spec)


def _common(config, loss_on_default):
  return {"iterations": base.check_int("iterations", config.get("iterations", 8), 1, MAX_ITERATIONS),
          "loss_on": base.check_choice("loss_on", config.get("loss_on", loss_on_default), ("all", "last"))}


def make(spec, **config) -> Looped:
  recall = config.get("recall", True)
  if not isinstance(recall, bool):
    raise ValueError(f"recall must be True or False, got {recall!r}")
  filled = {"width": base.check_int("width", config.get("width", 128), 1, 4096), "recall": recall,
            **_common(config, "all"), **base.head_defaults(spec, config)}
  if recall:  # the default config stays what it was before the option existed (entry ids do not change)
    filled.pop("recall")
    config = {k: v for k, v in config.items() if k != "recall"}
  model = Looped("looped", spec, base.finish_config("looped", config, filled))
  return model


def make_transformer(spec, **config) -> LoopedTransformer:
  width = base.check_int("width", config.get("width", 64), 1, 1024)
  heads = base.check_int("heads", config.get("heads", 4), 1, 16)
  if width % heads:
    raise ValueError(f"width must be a multiple of heads={heads}, got {width}")
  filled = {"width": width, "heads": heads, "mlp_ratio": base.check_int("mlp_ratio", config.get("mlp_ratio", 2), 1, 8),
            **_common(config, "all"), **base.head_defaults(spec, config)}
  return LoopedTransformer("looped_transformer", spec, base.finish_config("looped_transformer", config, filled))


base.register("looped", make)
base.register("looped_transformer", make_transformer)
