"""models.onelayer: the last-position computation equals a full-sequence causal transformer (numpy float64)."""
import jax
import numpy as np

from mesabench.models import onelayer


def _reference(params, toks, heads):
  """The authors' architecture over the whole sequence (causal mask), in float64; logits at every position."""
  P = {k: np.asarray(v, np.float64) for k, v in params.items()}
  x = P["W_E"][toks] + P["W_pos"][: toks.shape[1]]                      # [B, L, d]
  b, L, d = x.shape
  out = np.zeros_like(x)
  for h in range(heads):
    q, k, v = x @ P["W_Q"][h], x @ P["W_K"][h], x @ P["W_V"][h]          # [B, L, e]
    s = np.einsum("bqe,bke->bqk", q, k) / np.sqrt(d // heads)
    s = np.where(np.tril(np.ones((L, L), bool)), s, -np.inf)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    out += np.einsum("bqk,bke->bqe", a, v) @ P["W_O"][h]
  x = x + out
  neurons = np.maximum(x @ P["W_in"] + P["b_in"], 0.0)
  x = x + neurons @ P["W_out"] + P["b_out"]
  return x @ P["W_U"], neurons


def test_last_position_matches_full_causal_reference():
  p, heads = 7, 2
  model = onelayer.OneLayerTransformer(vocab=p + 1, d_model=8, heads=heads, d_mlp=12)
  rng = np.random.default_rng(0)
  toks = np.concatenate([rng.integers(0, p, (20, 2)), np.full((20, 1), p)], axis=1).astype(np.int32)
  params = model.init(jax.random.key(3), toks[:1])["params"]
  params = jax.tree_util.tree_map(lambda a: a + 0.3 * jax.random.normal(jax.random.key(4), a.shape), params)
  logits, neurons = model.apply({"params": params}, toks, return_neurons=True)
  ref_logits, ref_neurons = _reference(params, toks, heads)
  np.testing.assert_allclose(np.asarray(logits), ref_logits[:, -1], rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(np.asarray(neurons), ref_neurons[:, -1], rtol=1e-4, atol=1e-4)
  assert logits.shape == (20, p + 1) and logits.dtype == np.float32


def test_param_count_and_init_scale():
  model = onelayer.OneLayerTransformer(vocab=114)
  params = model.init(jax.random.key(0), np.zeros((1, 3), np.int32))["params"]
  assert sum(a.size for a in jax.tree_util.tree_leaves(params)) == onelayer.num_params(114, 128, 512) == 226_816
  assert abs(float(np.std(params["W_E"])) - 1 / np.sqrt(128)) < 0.005          # the authors' N(0, 1/d)
  assert abs(float(np.std(params["W_U"])) - 1 / np.sqrt(114)) < 0.005
  assert float(np.abs(params["b_in"]).max()) == 0.0
