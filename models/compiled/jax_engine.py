"""The jax engine: a layer stack's forward pass as traceable jnp (sparse gather, multiply, segment sum, ReLU).

Exact in float64 for the integer networks (``ir`` says why); callers run it inside ``jax.enable_x64(True)``
(without x64, JAX silently makes float64 arrays float32, where 2**24 + 1 is already inexact).
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mesabench.models.compiled.ir import Layer

ALLOWED_PRIMITIVES = frozenset({
    # x[cols] * w, summed into rows, plus b, then max(., 0): the affine map and the ReLU of a sparse layer.
    "gather", "mul", "scatter-add", "scatter_add", "add", "max", "broadcast_in_dim", "reshape", "squeeze",
    "expand_dims", "convert_element_type", "concatenate", "slice", "dynamic_slice", "copy", "copy_p",
    "pjit", "jit", "closed_call", "scan",
})
"""Primitives a compiled network's forward pass may contain: the sparse affine map, ReLU (max with 0), data
movement, and the scan that applies a cell repeatedly. No comparison, select, floor, division or while loop.
"mul" also serves the Mul units of multiplicative layers; which layers are multiplicative is read off the
``Layer`` objects (``Layer.is_mul``), so a check combines this set with a per-layer check (``validate``)."""


def _gather_rows(x, idx: np.ndarray):
  # A plain gather (indices are in range by construction; jnp indexing would add negative-index selects).
  dims = jax.lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,))
  return jax.lax.gather(x, np.asarray(idx, np.int32)[:, None], dims, (1, x.shape[1]),
                        mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS)


def layer_forward(layer: Layer, p: dict[str, Any], x):
  """relu(A x + b) (or A x + b; or the products of a multiplicative layer) for activations x [in_dim, batch]."""
  if layer.is_mul:
    ones = jnp.ones((1, x.shape[1]), x.dtype)
    ext = jnp.concatenate([x, ones], axis=0)  # index in_dim holds 1: a copy is x[left] * 1
    right = np.where(layer.right < 0, layer.in_dim, layer.right)
    return _gather_rows(ext, layer.left) * _gather_rows(ext, right)
  picked = _gather_rows(x, layer.cols)
  contrib = picked * p["w"][:, None]
  y = jax.ops.segment_sum(contrib, layer.rows, num_segments=layer.out_dim, indices_are_sorted=True)
  y = y + p["b"][:, None]
  return jnp.maximum(y, 0.0) if layer.relu else y


def stack_forward(layers: Sequence[Layer], params: Sequence[dict], x):
  """The layers applied in order to x [in_dim, batch]."""
  for layer, p in zip(layers, params):
    x = layer_forward(layer, p, x)
  return x
