"""Size and compute of a model: parameter counts and FLOPs per example from XLA's cost analysis.

Shared by every model in the zoo, trained or compiled, so that their sizes are counted the same way.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np


def param_count(params: Any) -> int:
  """Number of scalar parameters in a pytree of arrays (every leaf counts, whatever its dtype)."""
  return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))


def xla_flops(fn: Callable[..., Any], *args: Any) -> float:
  """FLOPs XLA's cost analysis assigns to ``jax.jit(fn)(*args)`` on the default backend (0.0 when it reports none).

  The count is XLA's: multiply-adds count 2, elementwise ops 1, comparisons and integer ops as XLA counts them;
  loops are counted once per body unless XLA unrolls them (so recurrent models should be measured per step).
  """
  compiled = jax.jit(fn).lower(*args).compile()
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older jax returned one dict per device
    analysis = analysis[0] if analysis else {}
  return float((analysis or {}).get("flops", 0.0))


def flops_per_example(fn: Callable[..., Any], *args: Any, batch_size: int) -> float:
  """``xla_flops(fn, *args) / batch_size``: FLOPs of one example when ``args`` hold a batch of ``batch_size``."""
  if batch_size < 1:
    raise ValueError(f"batch_size must be in [1, inf), got {batch_size}")
  return xla_flops(fn, *args) / batch_size
