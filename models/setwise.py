"""Set models over explicitly given candidates (Select-v0): permutation-equivariant scorers with an argmax readout.

Inputs are [B, K, d + 1]: one row per candidate, its d features then a validity flag (``spec.meta``
"candidate_mask"; padding rows have flag 0). Every model here outputs one logit per candidate, [B, K], with
padding at ``PAD_LOGIT``; the prediction is the argmax (ties to the smallest index), the training loss the
cross-entropy of the best candidate's index (``models.base`` "classes" head over the K candidates). None uses
positional information, so permuting the candidates permutes the logits the same way, and K may differ from the
training K (the "more candidates" split).

  * ``set_transformer``: a Dense embedding of each candidate's features, ``layers`` pre-LayerNorm blocks of
    masked multi-head self-attention (``heads`` heads, width ``width``; padded candidates are masked out as keys)
    and a GELU MLP (``mlp_ratio * width``), each residual; a final LayerNorm and a Dense(1) score per candidate.
    The zoo's ``transformer`` adds a learned position embedding and mean-pools into a fixed-width head, so it
    is neither equivariant nor able to take another K: this is the same encoder without those two parts.
  * ``set_scorer``: a per-candidate MLP (``depth`` GELU layers of ``width``) and a Dense(1) score. With
    ``pooling="none"`` (default) the score of a candidate depends on its own features only: the model IS a
    learned utility U_m(c) plus an argmax, the seed's mesa-optimizer in its barest form. ``pooling="mean"`` (deep
    sets) concatenates the masked mean of the candidates' hidden vectors to each one before a last GELU layer.
  * ``select_search`` (baseline, not trained): the exact argmax of a task objective over the candidates, through
    the task's hook ``objective(name, features)`` (the task is rebuilt from the spec): ``objective="utility"``
    is U (perfectly aligned, equals the oracle), ``objective="proxy"`` the proxy objective U_p (known
    misaligned). The zoo's ``search`` dispatches on PolyMax/ModSearch output kinds and cannot serve Select-v0,
    hence a distinct id. The memorizer is the zoo's ``lookup`` (nearest stored instance), which applies to
    Select-v0 unchanged at the training K.

All of them also expose ``scores(params, inputs)`` -> [B, K] (the per-candidate logits or objective values,
``PAD_LOGIT`` on padding), what ``harness.align.recover_objective`` takes as ``scores``.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from mesabench.models import base
from mesabench.tasks import core as task_core

PAD_LOGIT = -1e9
"""The logit of a padding row: finite (no NaN in the cross-entropy), below any real logit."""
POOLINGS = ("none", "mean")
OBJECTIVES = ("utility", "proxy")


def check_set_spec(model_id: str, spec: task_core.Spec) -> None:
  """ValueError unless ``spec`` describes candidate sets (inputs [K, d + 1] with the validity flag last)."""
  if not spec.get("candidate_mask", False) or len(spec.input_shape) != 2 or spec.output_kind != "integer":
    raise ValueError(f"spec must describe candidate sets (meta candidate_mask, inputs [K, d + 1], integer "
                     f"answers) for model {model_id!r}; got {spec.task_id} with inputs {spec.input_shape}")


def split_inputs(inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(features [B, K, d] float32, mask bool [B, K]) of set inputs [B, K, d + 1]."""
  inputs = jnp.asarray(inputs, jnp.float32)
  return inputs[..., :-1], inputs[..., -1] > 0.5


def masked_argmax(scores: jax.Array, mask: jax.Array) -> jax.Array:
  """The index of the best valid candidate, ties to the smallest index: int32 [B]."""
  return jnp.argmax(jnp.where(mask, scores, -jnp.inf), axis=-1).astype(jnp.int32)


class SetTransformerNet(nn.Module):
  """Set inputs [B, K, d + 1] -> logits [B, K]."""
  width: int
  layers: int
  heads: int
  mlp_ratio: int

  @nn.compact
  def __call__(self, inputs):
    feats, mask = split_inputs(inputs)
    h = nn.Dense(self.width, name="embed")(feats)
    attn_mask = nn.make_attention_mask(mask, mask)
    for i in range(self.layers):
      a = nn.LayerNorm(name=f"ln_attn_{i}")(h)
      h = h + nn.MultiHeadDotProductAttention(num_heads=self.heads, name=f"attn_{i}")(a, a, mask=attn_mask)
      m = nn.LayerNorm(name=f"ln_mlp_{i}")(h)
      m = nn.gelu(nn.Dense(self.mlp_ratio * self.width, name=f"mlp_in_{i}")(m))
      h = h + nn.Dense(self.width, name=f"mlp_out_{i}")(m)
    h = nn.LayerNorm(name="ln_final")(h)
    logits = nn.Dense(1, name="score")(h)[..., 0]
    return jnp.where(mask, logits, PAD_LOGIT)


class SetScorerNet(nn.Module):
  """Set inputs [B, K, d + 1] -> logits [B, K] from a per-candidate MLP (optionally with a mean-pooled context)."""
  width: int
  depth: int
  pooling: str

  @nn.compact
  def __call__(self, inputs):
    feats, mask = split_inputs(inputs)
    h = feats
    for i in range(self.depth):
      h = nn.gelu(nn.Dense(self.width, name=f"dense_{i}")(h))
    if self.pooling == "mean":
      w = mask[..., None].astype(jnp.float32)
      ctx = jnp.sum(h * w, axis=1, keepdims=True) / jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1.0)
      h = jnp.concatenate([h, jnp.broadcast_to(ctx, h.shape)], axis=-1)
      h = nn.gelu(nn.Dense(self.width, name="context")(h))
    logits = nn.Dense(1, name="score")(h)[..., 0]
    return jnp.where(mask, logits, PAD_LOGIT)


@dataclasses.dataclass(frozen=True)
class SetNetModel(base.NetModel):
  """A trained set model: ``outputs`` are the per-candidate logits [B, K] (the "classes" head over candidates)."""

  def scores(self, params, inputs):
    """Per-candidate logits [B, K] (PAD_LOGIT on padding)."""
    return self.outputs(params, inputs)


@dataclasses.dataclass(frozen=True)
class SetTransformer(SetNetModel):
  """Config: width (heads..1024, divisible by heads; default 32), layers (1..12, default 2), heads (1..16,
  default 2), mlp_ratio (1..8, default 2)."""

  def module(self):
    o = self.options
    return SetTransformerNet(width=o["width"], layers=o["layers"], heads=o["heads"], mlp_ratio=o["mlp_ratio"])


@dataclasses.dataclass(frozen=True)
class SetScorer(SetNetModel):
  """Config: width (1..4096, default 64), depth (1..16, default 2), pooling ("none" | "mean", default "none")."""

  def module(self):
    o = self.options
    return SetScorerNet(width=o["width"], depth=o["depth"], pooling=o["pooling"])


@dataclasses.dataclass(frozen=True)
class SelectSearch(base.Model):
  """Exact argmax of the task's ``objective`` (see the module docstring). Config: objective."""

  trainable = False

  def init(self, key):
    del key
    return {}

  def scores(self, params, inputs):
    """The objective of every candidate [B, K] (PAD_LOGIT on padding)."""
    del params
    feats, mask = split_inputs(inputs)
    task = task_core.from_spec(self.spec)
    return jnp.where(mask, task.objective(self.options["objective"], feats), PAD_LOGIT)

  def predict(self, params, inputs):
    _, mask = split_inputs(inputs)
    return masked_argmax(self.scores(params, inputs), mask)


def _head(spec, config):
  filled = base.head_defaults(spec, config)
  if filled["head"] != "classes":
    raise ValueError(f"head must be 'classes' for set models (one logit per candidate), got {filled['head']!r}")
  return filled


def make_set_transformer(spec, **config) -> SetTransformer:
  check_set_spec("set_transformer", spec)
  heads = base.check_int("heads", config.get("heads", 2), 1, 16)
  width = base.check_int("width", config.get("width", 32), heads, 1024)
  if width % heads:
    raise ValueError(f"width must be divisible by heads={heads}, got {width}")
  filled = {"width": width, "heads": heads, "layers": base.check_int("layers", config.get("layers", 2), 1, 12),
            "mlp_ratio": base.check_int("mlp_ratio", config.get("mlp_ratio", 2), 1, 8), **_head(spec, config)}
  return SetTransformer("set_transformer", spec, base.finish_config("set_transformer", config, filled))


def make_set_scorer(spec, **config) -> SetScorer:
  check_set_spec("set_scorer", spec)
  filled = {"width": base.check_int("width", config.get("width", 64), 1, 4096),
            "depth": base.check_int("depth", config.get("depth", 2), 1, 16),
            "pooling": base.check_choice("pooling", config.get("pooling", "none"), POOLINGS), **_head(spec, config)}
  return SetScorer("set_scorer", spec, base.finish_config("set_scorer", config, filled))


def make_select_search(spec, **config) -> SelectSearch:
  check_set_spec("select_search", spec)
  filled = {"objective": base.check_choice("objective", config.get("objective", "utility"), OBJECTIVES)}
  if not hasattr(task_core.from_spec(spec), "objective"):
    raise ValueError(f"select_search needs a task with candidate objectives (a Task.objective hook); "
                     f"{spec.task_id} has none")
  return SelectSearch("select_search", spec, base.finish_config("select_search", config, filled))


base.register("set_transformer", make_set_transformer)
base.register("set_scorer", make_set_scorer)
base.register("select_search", make_select_search)
