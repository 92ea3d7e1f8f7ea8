"""One linear self-attention layer (no softmax, one head) and its gradient-descent construction (von Oswald et al.
2023, "Transformers learn in-context by gradient descent", Prop. 1).

Tokens are rows e_j in R^(d+1) (``tasks.linreg.query_tokens``: e_i = (x_i, y_i), the query (x_query, 0)). With
weights W_Q, W_K, W_V, W_P in R^((d+1) x (d+1)) (row-vector convention, as a Dense layer: q_j = e_j W_Q), every
token is updated with linear attention over the N context tokens (keys and values leave the query token out, as
the authors' ``include_query = False``; no normalization):

    e_j <- e_j + sum_{i<=N} (q_j . k_i) v_i W_P = e_j + e_j W_KQ (sum_{i<=N} e_i^T e_i) W_PV,
    W_KQ = W_Q W_K^T,  W_PV = W_V W_P,

so the layer's function depends on its weights only through the products W_KQ and W_PV (``products``). The
prediction of y_query is minus the last (y) coordinate of the updated query token, whose y entry starts at 0 (the
authors' read-out, ``preds[:, -1, -1] * -1``).

GD construction (``gd_params``): W_Q = W_K = diag(1_d, 0), W_V = diag(0_d, -1), W_P = (eta / N) diag(0_d, 1)
gives W_KQ = diag(1_d, 0), W_PV = diag(0_d, -eta / N) and the prediction (eta / N) sum_i y_i (x_i . x_query): one
gradient-descent step from w = 0 on 1/(2N) sum_i (w . x_i - y_i)^2 (``tasks.linreg.gd_step_predictions``).
Parameters: 4 (d + 1)^2.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from mesabench.kernels._checks import check_int

NAMES = ("query", "key", "value", "proj")
_HI = jax.lax.Precision.HIGHEST


def init(key: jax.Array, dim: int, init_scale: float = 0.002) -> dict[str, jax.Array]:
  """Weights {"query", "key", "value", "proj"}, each float32 [dim + 1, dim + 1], truncated normal with variance
  ``init_scale`` / (dim + 1) (haiku's VarianceScaling(init_scale), the authors' initializer); dim in [1, 1024],
  init_scale in (0, inf)."""
  dim = check_int("dim", dim, 1, 1024)
  if isinstance(init_scale, bool) or not isinstance(init_scale, (int, float)) or not init_scale > 0:
    raise ValueError(f"init_scale must be in (0, inf), got {init_scale!r}")
  draw = jax.nn.initializers.variance_scaling(float(init_scale), "fan_in", "truncated_normal")
  keys = jax.random.split(key, len(NAMES))
  return {n: draw(k, (dim + 1, dim + 1), jnp.float32) for n, k in zip(NAMES, keys)}


def products(params: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
  """(W_KQ, W_PV) = (W_Q W_K^T, W_V W_P), each [d + 1, d + 1]: all the layer's function depends on."""
  kq = jnp.matmul(params["query"], params["key"].T, precision=_HI)
  pv = jnp.matmul(params["value"], params["proj"], precision=_HI)
  return kq, pv


def apply(params: dict[str, jax.Array], tokens: jax.Array) -> jax.Array:
  """The updated tokens [B, N + 1, d + 1] (module docstring) of tokens [B, N + 1, d + 1]."""
  kq, pv = products(params)
  ctx = tokens[:, :-1]
  gram = jnp.einsum("bni,bnj->bij", ctx, ctx, precision=_HI)
  delta = jnp.einsum("bti,ij,bjk,kl->btl", tokens, kq, gram, pv, precision=_HI)
  return tokens + delta


def predict(params: dict[str, jax.Array], tokens: jax.Array) -> jax.Array:
  """Predictions of y_query [B]: minus the y coordinate of the updated query (last) token (only that token's
  update is computed)."""
  kq, pv = products(params)
  ctx = tokens[:, :-1]
  gram = jnp.einsum("bni,bnj->bij", ctx, ctx, precision=_HI)
  query = jnp.einsum("bi,ij->bj", tokens[:, -1], kq, precision=_HI)
  return -(tokens[:, -1, -1] + jnp.einsum("bi,bij,j->b", query, gram, pv[:, -1], precision=_HI))


def gd_params(dim: int, context: int, eta: float, dtype=jnp.float32) -> dict[str, jax.Array]:
  """The GD construction's weights (module docstring) for step ``eta`` over ``context`` = N examples."""
  dim = check_int("dim", dim, 1, 1024)
  context = check_int("context", context, 1, 1 << 20)
  x_block = jnp.diag(jnp.concatenate([jnp.ones(dim, dtype), jnp.zeros(1, dtype)]))
  y_block = jnp.diag(jnp.concatenate([jnp.zeros(dim, dtype), jnp.ones(1, dtype)]))
  return {"query": x_block, "key": x_block, "value": -y_block, "proj": y_block * jnp.asarray(eta / context, dtype)}
