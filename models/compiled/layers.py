"""Sparse affine-then-ReLU layers with weights set by construction, and the exact float64 executor they run on.

A compiled network is a list of ``Layer`` s. Layer l maps the activation vector of layer l-1 (layer 0 is the
input vector) to ``relu(A x + b)`` (or ``A x + b`` when ``relu`` is False, used only for read-out layers), where
the sparse matrix A has ``len(rows)`` nonzero entries at (rows[e], cols[e]). The sparsity pattern (rows, cols) is
architecture and lives in the ``Layer``; the values (w, b) are the parameters and live in an ordinary pytree
``{"w": float64[E], "b": float64[U]}`` per layer, so ``mesabench.models.costs.param_count`` counts exactly the
weights and biases (E + U per layer) and nothing else.

Number format and exactness. Every weight, bias, input and activation of the integer networks is an integer, and
the constructions keep every one of them, and every partial sum of every dot product, below 2**52 in magnitude.
Integers below 2**53 are exact in IEEE float64 and the sum or product of two such integers, when the result is
again below 2**53, is computed exactly; so A x + b is exact whatever order XLA sums in (fused or not), and the
networks compute the same integers as the integer program they encode. Execution therefore runs in float64
inside a scoped ``jax.enable_x64(True)`` (without x64, JAX silently makes float64 arrays float32, where 2**24 + 1
is already inexact); ``check_exact_range`` re-verifies the bound on the activations actually seen.

Comparisons are ReLU steps on integers: for an integer x, 1[x >= 0] = relu(x + 1) - relu(x). Selecting between two
non-negative values by a 0/1 unit g uses a big constant M above both values: g ? a : b = relu(a - M (1 - g)) +
relu(b - M g). M only ever multiplies a 0/1 unit, so M * g stays exact.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

EXACT_LIMIT = 2.0**52
"""Bound kept by every activation and partial sum of the integer networks (float64 is exact below 2**53)."""

ALLOWED_PRIMITIVES = frozenset({
    # x[cols] * w, summed into rows, plus b, then max(., 0): the affine map and the ReLU of a sparse layer.
    "gather", "mul", "scatter-add", "scatter_add", "add", "max", "broadcast_in_dim", "reshape", "squeeze",
    "expand_dims", "convert_element_type", "concatenate", "slice", "dynamic_slice", "copy", "copy_p",
    "pjit", "jit", "closed_call", "scan",
})
"""Primitives a compiled network's forward pass may contain: the sparse affine map, ReLU (max with 0), data
movement, and the scan that applies a cell repeatedly. No comparison, select, floor, division or while loop."""


@dataclasses.dataclass(frozen=True)
class Group:
  """A block of ``count`` consecutive units of a layer computing the same formula (for ``explain``)."""
  name: str
  start: int
  count: int
  meaning: str


@dataclasses.dataclass(frozen=True, eq=False)
class Layer:
  """Sparsity pattern and unit labels of one affine(-then-ReLU) layer; the values live in the params pytree."""
  rows: np.ndarray
  cols: np.ndarray
  in_dim: int
  out_dim: int
  relu: bool
  groups: tuple[Group, ...]
  counted_connections: int = -1

  @property
  def num_connections(self) -> int:
    return int(self.rows.size) if self.counted_connections < 0 else self.counted_connections

  def group(self, name: str) -> Group:
    for g in self.groups:
      if g.name == name:
        return g
    raise KeyError(f"layer has no unit group {name!r}; groups: {[g.name for g in self.groups]}")


class Expr:
  """A vector of ``count`` affine expressions over the previous layer's unit groups.

  value[u] = const[u] + sum over terms (group, idx, coeff) of coeff[u] * prev[group][idx[u]].
  """

  __array_ufunc__ = None  # numpy arrays on the left defer to Expr's reflected operators

  def __init__(self, count: int, terms=(), const=0.0):
    self.count = int(count)
    self.terms = [(g, np.broadcast_to(np.asarray(i, np.int64), (self.count,)),
                   np.broadcast_to(np.asarray(c, np.float64), (self.count,))) for g, i, c in terms]
    self.const = np.broadcast_to(np.asarray(const, np.float64), (self.count,)).copy()

  @staticmethod
  def unit(group: str, count: int, idx=None) -> "Expr":
    """prev[group][idx] (idx defaults to 0..count-1)."""
    return Expr(count, [(group, np.arange(count) if idx is None else idx, 1.0)])

  @staticmethod
  def constant(count: int, value) -> "Expr":
    return Expr(count, [], value)

  def __add__(self, other):
    if isinstance(other, Expr):
      if other.count != self.count:
        raise ValueError(f"cannot add expressions of {self.count} and {other.count} units")
      return Expr(self.count, self.terms + other.terms, self.const + other.const)
    return Expr(self.count, self.terms, self.const + np.asarray(other, np.float64))

  __radd__ = __add__

  def __neg__(self):
    return self * -1.0

  def __sub__(self, other):
    return self + (-other)

  def __rsub__(self, other):
    return (-self) + other

  def __mul__(self, scale):
    s = np.asarray(scale, np.float64)
    return Expr(self.count, [(g, i, c * s) for g, i, c in self.terms], self.const * s)

  __rmul__ = __mul__

  def take(self, idx) -> "Expr":
    """The expressions at positions ``idx`` (an int array)."""
    idx = np.asarray(idx, np.int64)
    return Expr(idx.size, [(g, i[idx], c[idx]) for g, i, c in self.terms], self.const[idx])

  @staticmethod
  def concat(parts: Sequence["Expr"]) -> "Expr":
    count = sum(p.count for p in parts)
    terms, offset = [], 0
    for p in parts:
      for g, i, c in p.terms:
        full_i = np.zeros(count, np.int64)
        full_c = np.zeros(count, np.float64)
        full_i[offset:offset + p.count] = i
        full_c[offset:offset + p.count] = c
        terms.append((g, full_i, full_c))
      offset += p.count
    return Expr(count, terms, np.concatenate([p.const for p in parts]) if parts else np.zeros(0))


class LayerBuilder:
  """Collects unit groups of one layer as ``Expr`` s over the previous layer's groups; ``build`` makes the layer.

  prev: {group name: (start, count)} of the previous layer (or of the input vector).
  """

  def __init__(self, prev: dict[str, tuple[int, int]], relu: bool = True):
    self.prev = prev
    self.relu = relu
    self.items: list[tuple[str, Expr, str]] = []

  def add(self, name: str, expr: Expr, meaning: str) -> None:
    if any(n == name for n, _, _ in self.items):
      raise ValueError(f"unit group {name!r} added twice")
    self.items.append((name, expr, meaning))

  def carry(self, *names: str) -> None:
    """Identity units relu(x) = x for non-negative groups of the previous layer that later layers still read."""
    for name in names:
      _, count = self.prev[name]
      self.add(name, Expr.unit(name, count), f"{name} (carried; non-negative, so relu(x) = x)")

  def build(self) -> tuple[Layer, dict[str, np.ndarray], dict[str, tuple[int, int]]]:
    """(layer, {"w", "b"}, layout of this layer's groups). Zero coefficients are dropped; duplicates summed."""
    rows, cols, vals, biases, groups, layout = [], [], [], [], [], {}
    start = 0
    for name, expr, meaning in self.items:
      for g, idx, coeff in expr.terms:
        if g not in self.prev:
          raise KeyError(f"group {name!r} reads {g!r}, which the previous layer lacks ({sorted(self.prev)})")
        g_start, g_count = self.prev[g]
        if idx.size and (idx.min() < 0 or idx.max() >= g_count):
          raise IndexError(f"group {name!r} reads {g!r}[{idx.min()}..{idx.max()}] of {g_count} units")
        keep = coeff != 0
        rows.append(start + np.nonzero(keep)[0])
        cols.append(g_start + idx[keep])
        vals.append(coeff[keep])
      biases.append(expr.const)
      groups.append(Group(name, start, expr.count, meaning))
      layout[name] = (start, expr.count)
      start += expr.count
    in_dim = sum(c for _, c in self.prev.values())
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    v = np.concatenate(vals) if vals else np.zeros(0)
    # Sum duplicate (row, col) entries and sort by (row, col).
    key = r * max(in_dim, 1) + c
    uniq, inverse = np.unique(key, return_inverse=True)
    w = np.zeros(uniq.size)
    np.add.at(w, inverse, v)
    keep = w != 0
    uniq, w = uniq[keep], w[keep]
    layer = Layer(rows=(uniq // max(in_dim, 1)).astype(np.int32), cols=(uniq % max(in_dim, 1)).astype(np.int32),
                  in_dim=in_dim, out_dim=start, relu=self.relu, groups=tuple(groups))
    b = np.concatenate(biases) if biases else np.zeros(0)
    return layer, {"w": w, "b": b}, layout


def build_stack(input_layout: dict[str, tuple[int, int]], steps, counts_only: bool = False
                ) -> tuple[list[Layer], list[dict], dict]:
  """Builds consecutive layers: ``steps`` is a list of callables LayerBuilder -> None (one per layer).

  counts_only: keep each layer's sizes only (a ``Layer`` with empty rows/cols and ``counted_connections`` set,
  params None), so that very large networks can be counted exactly without being held in memory.
  """
  layers, params, layout = [], [], input_layout
  for step in steps:
    lb = LayerBuilder(layout)
    step(lb)
    layer, p, layout = lb.build()
    if counts_only:
      layer = Layer(rows=np.zeros(0, np.int32), cols=np.zeros(0, np.int32), in_dim=layer.in_dim,
                    out_dim=layer.out_dim, relu=layer.relu, groups=layer.groups,
                    counted_connections=layer.num_connections)
      p = None
    layers.append(layer)
    params.append(p)
  return layers, params, layout


def layer_forward(layer: Layer, p: dict[str, Any], x):
  """relu(A x + b) (or A x + b) for activations x [in_dim, batch]; jnp, traceable; exact as the module says."""
  # A plain gather (indices are in range by construction; jnp indexing would add negative-index selects).
  dims = jax.lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,))
  picked = jax.lax.gather(x, np.asarray(layer.cols, np.int32)[:, None], dims, (1, x.shape[1]),
                          mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS)
  contrib = picked * p["w"][:, None]
  y = jax.ops.segment_sum(contrib, layer.rows, num_segments=layer.out_dim, indices_are_sorted=True)
  y = y + p["b"][:, None]
  return jnp.maximum(y, 0.0) if layer.relu else y


def stack_forward(layers: Sequence[Layer], params: Sequence[dict], x):
  for layer, p in zip(layers, params):
    x = layer_forward(layer, p, x)
  return x


def stack_forward_numpy(layers: Sequence[Layer], params: Sequence[dict], x: np.ndarray) -> np.ndarray:
  """The same map as ``stack_forward`` in numpy/scipy float64 (CSR matrix products): exact for the same reason
  (integers below 2**52 throughout), with no compilation, which suits the one-pass networks with many layers."""
  import scipy.sparse  # a dependency of jax

  x = np.asarray(x, np.float64)
  for layer, p in zip(layers, params):
    a = scipy.sparse.csr_matrix((np.asarray(p["w"], np.float64), (layer.rows, layer.cols)),
                                shape=(layer.out_dim, layer.in_dim))
    x = a @ x + np.asarray(p["b"], np.float64)[:, None]
    if layer.relu:
      np.maximum(x, 0.0, out=x)
  return x


def stack_forward_trace(layers: Sequence[Layer], params: Sequence[dict], x) -> list[np.ndarray]:
  """Activations of every layer (numpy float64, the CSR engine of ``stack_forward_numpy``), for explanations and
  exactness checks."""
  out = []
  x = np.asarray(x, np.float64)
  for layer, p in zip(layers, params):
    x = stack_forward_numpy([layer], [p], x)
    out.append(x)
  return out


def check_exact_range(activations: Sequence[np.ndarray], what: str = "activation") -> None:
  """Raises ArithmeticError unless every value is an integer of magnitude below EXACT_LIMIT."""
  for a in activations:
    a = np.asarray(a)
    if a.size and (np.max(np.abs(a)) >= EXACT_LIMIT or not np.all(a == np.round(a))):
      raise ArithmeticError(f"{what} left the exact integer range of float64 (|x| < 2**52, integral)")


def stack_sizes(layers: Sequence[Layer]) -> dict[str, int]:
  """num_params (weights + biases), num_connections (nonzero weights), num_units, depth of a layer stack."""
  e = sum(l.num_connections for l in layers)
  u = sum(l.out_dim for l in layers)
  return {"num_params": e + u, "num_connections": e, "num_units": u, "depth": len(layers)}


def stack_flops(layers: Sequence[Layer]) -> int:
  """FLOPs of one forward pass for one example: 2 per connection (multiply, add), 1 per bias, 1 per ReLU."""
  return sum(2 * l.num_connections + l.out_dim + (l.out_dim if l.relu else 0) for l in layers)


def primitives(jaxpr) -> set[str]:
  """Names of all primitives in a (closed) jaxpr, recursing into sub-jaxprs (scan bodies, pjit calls)."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  names = set()
  for eqn in jaxpr.eqns:
    names.add(eqn.primitive.name)
    for v in eqn.params.values():
      subs = v if isinstance(v, (list, tuple)) else [v]
      for s in subs:
        if hasattr(s, "eqns") or hasattr(s, "jaxpr"):
          names |= primitives(s)
  return names
