"""The numpy engine: the same map as ``jax_engine`` in numpy float64, without compilation (which suits the one-pass
networks with many layers), and the per-layer trace that ``explain`` and ``validate`` read.

Exact for the same reason as the jax engine (integers below 2**52 throughout; identity units are copied, which is
exact). The batch runs in chunks of columns so that activations stay in cache.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mesabench.models.compiled.ir import Layer


def _runs(dst: np.ndarray, src: np.ndarray | None = None) -> list[tuple[int, int, int]]:
  """Maximal runs (dst_start, src_start, length) where dst and src (default: 0, 1, 2, ...) both step by 1."""
  if dst.size == 0:
    return []
  src = np.arange(dst.size) if src is None else src
  brk = np.flatnonzero((np.diff(dst) != 1) | (np.diff(src) != 1)) + 1
  starts = np.concatenate([[0], brk])
  ends = np.concatenate([brk, [dst.size]])
  return [(int(dst[s]), int(src[s]), int(e - s)) for s, e in zip(starts, ends)]


class _Plan:
  """How ``forward`` runs one affine layer: identity units (one weight 1, bias 0, and a non-negative input or no
  ReLU, so relu(x) = x exactly) become slice copies; every other unit u gets b[u] + sum_e w[e] x[cols[e]] by passes
  over the e-th entry of each row (no row holds a duplicate within a pass), then the ReLU."""

  def __init__(self, layer: Layer, p: dict[str, Any], input_nonneg: bool):
    w = np.asarray(p["w"], np.float64)
    b = np.asarray(p["b"], np.float64)
    rows, cols = np.asarray(layer.rows, np.int64), np.asarray(layer.cols, np.int64)
    counts = np.bincount(rows, minlength=layer.out_dim)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    single = counts == 1
    first_w = np.where(single, w[np.minimum(first, max(w.size - 1, 0))] if w.size else 0.0, 0.0)
    copy = single & (first_w == 1.0) & (b == 0.0) & (input_nonneg or not layer.relu)
    copy_rows = np.flatnonzero(copy)
    self.copies = _runs(copy_rows, cols[first[copy_rows]])
    other = np.flatnonzero(~copy)
    self.other_runs = _runs(other)
    self.bias = b[other][:, None]
    self.relu = layer.relu
    # Entries of the computed rows, by position within their row.
    compact = np.full(layer.out_dim, -1, np.int64)
    compact[other] = np.arange(other.size)
    keep = compact[rows] >= 0
    e_rows, e_cols, e_w = compact[rows[keep]], cols[keep], w[keep]
    pos = np.arange(rows.size)[keep] - first[rows[keep]]
    self.passes = []
    for q in range(int(pos.max()) + 1 if pos.size else 0):
      sel = pos == q
      r = e_rows[sel]
      whole = r.size == other.size  # then r is 0..n-1 in order (rows are sorted)
      self.passes.append((None if whole else r, e_cols[sel], e_w[sel][:, None]))
    self.out_dim = layer.out_dim

  def __call__(self, x: np.ndarray) -> np.ndarray:
    y = np.empty((self.out_dim, x.shape[1]))
    for d, s, n in self.copies:
      y[d:d + n] = x[s:s + n]
    if self.other_runs:
      z = np.repeat(self.bias, x.shape[1], axis=1)
      for r, c, w in self.passes:
        t = x[c]
        t *= w
        if r is None:
          z += t
        else:
          z[r] += t
      if self.relu:
        np.maximum(z, 0.0, out=z)
      for d, s, n in self.other_runs:
        y[d:d + n] = z[s:s + n]
    return y


def _mul(layer: Layer, x: np.ndarray) -> np.ndarray:
  y = x[layer.left]
  prod = np.flatnonzero(layer.right >= 0)
  y[prod] *= x[layer.right[prod]]
  return y


def forward(layers: Sequence[Layer], params: Sequence[dict], x: np.ndarray, input_nonneg: bool = False,
            chunk: int = 1024) -> np.ndarray:
  """The output activations [out_dim, batch] of the stack on x [in_dim, batch] (float64), in chunks of ``chunk``
  columns. input_nonneg: the caller promises x >= 0 (then identity units of the first layer are copies)."""
  x = np.asarray(x, np.float64)
  plans, nonneg = [], bool(input_nonneg)
  for layer, p in zip(layers, params):
    plans.append(None if layer.is_mul else _Plan(layer, p, nonneg))
    nonneg = layer.relu and not layer.is_mul
  outs = []
  for s in range(0, max(x.shape[1], 1), chunk):
    h = x[:, s:s + chunk]
    for layer, plan in zip(layers, plans):
      h = _mul(layer, h) if plan is None else plan(h)
    outs.append(h)
  return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=1)


def trace(layers: Sequence[Layer], params: Sequence[dict], x) -> list[np.ndarray]:
  """The activations [out_dim, batch] of every layer, in order (float64)."""
  out = []
  x = np.asarray(x, np.float64)
  for i, (layer, p) in enumerate(zip(layers, params)):
    nonneg = i > 0 and layers[i - 1].relu and not layers[i - 1].is_mul
    x = forward([layer], [p], x, input_nonneg=nonneg)
    out.append(x)
  return out
