"""The one-layer transformer of Nanda et al. 2023 ("Progress measures for grokking"), for token sequences.

Architecture (the authors' ``transformers.py``): token embedding W_E [vocab, d] plus learned position embedding
W_pos [n_ctx, d]; one block of causal multi-head attention (``heads`` heads of d / heads, no biases) and a ReLU MLP
(W_in, b_in, W_out, b_out; ``d_mlp`` units), each added to the residual stream; no LayerNorm anywhere; unembedding
W_U [d, vocab] without bias. The output is the logits at the LAST position, float32 [B, vocab].

Only the last position is computed past the attention keys and values. In a one-layer model this is exact: the
last position's logits read the residual stream at that position only, whose attention (causal: it sees every
position) needs the keys and values of all positions, which depend on the embeddings alone. Tests check this
against a full-sequence causal reference.

Initialization follows the authors' code: W_E, W_pos, W_Q, W_K, W_V, W_O, W_in and W_out ~ N(0, 1) / sqrt(d);
W_U ~ N(0, 1) / sqrt(vocab); biases 0. Parameters: vocab*d + n_ctx*d + 4*d*d + 2*d*d_mlp + d_mlp + d + d*vocab.

Not a zoo entry (``models.make`` binds a model to a task ``Spec`` with a task head): the grokking study
(``harness.reproduce.grokking``) uses it directly, on ``tasks.modular`` tokens.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def _normal(scale: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.normal(key, shape, jnp.float32) * scale  # float32 also under x64
  return init


class OneLayerTransformer(nn.Module):
  """Tokens int [B, n_ctx] in [0, vocab) -> last-position logits float32 [B, vocab] (and, with
  ``return_neurons``, the last position's post-ReLU MLP activations [B, d_mlp])."""
  vocab: int
  n_ctx: int = 3
  d_model: int = 128
  heads: int = 4
  d_mlp: int = 512

  def setup(self):
    d, h = self.d_model, self.heads
    if d % h:
      raise ValueError(f"d_model must be divisible by heads={h}, got {d}")
    s = 1.0 / math.sqrt(d)
    self.W_E = self.param("W_E", _normal(s), (self.vocab, d))
    self.W_pos = self.param("W_pos", _normal(s), (self.n_ctx, d))
    self.W_Q = self.param("W_Q", _normal(s), (h, d, d // h))
    self.W_K = self.param("W_K", _normal(s), (h, d, d // h))
    self.W_V = self.param("W_V", _normal(s), (h, d, d // h))
    self.W_O = self.param("W_O", _normal(s), (h, d // h, d))
    self.W_in = self.param("W_in", _normal(s), (d, self.d_mlp))
    self.b_in = self.param("b_in", nn.initializers.zeros, (self.d_mlp,), jnp.float32)
    self.W_out = self.param("W_out", _normal(s), (self.d_mlp, d))
    self.b_out = self.param("b_out", nn.initializers.zeros, (d,), jnp.float32)
    self.W_U = self.param("W_U", _normal(1.0 / math.sqrt(self.vocab)), (d, self.vocab))

  def __call__(self, toks, return_neurons: bool = False):
    x = self.W_E[toks] + self.W_pos[: toks.shape[1]]                          # [B, L, d]
    q = jnp.einsum("bd,hde->bhe", x[:, -1], self.W_Q)                          # last position's query
    k = jnp.einsum("bld,hde->bhle", x, self.W_K)
    v = jnp.einsum("bld,hde->bhle", x, self.W_V)
    scores = jnp.einsum("bhe,bhle->bhl", q, k) / math.sqrt(self.d_model // self.heads)
    attn = jax.nn.softmax(scores, axis=-1)                                     # causal: the last sees all
    z = jnp.einsum("bhl,bhle->bhe", attn, v)
    resid = x[:, -1] + jnp.einsum("bhe,hed->bd", z, self.W_O)
    neurons = jax.nn.relu(resid @ self.W_in + self.b_in)                       # [B, d_mlp]
    resid = resid + neurons @ self.W_out + self.b_out
    logits = resid @ self.W_U
    return (logits, neurons) if return_neurons else logits


def num_params(vocab: int, d_model: int, d_mlp: int, n_ctx: int = 3) -> int:
  """Parameter count of ``OneLayerTransformer`` (the module docstring's formula)."""
  d = d_model
  return vocab * d + n_ctx * d + 4 * d * d + 2 * d * d_mlp + d_mlp + d + d * vocab
