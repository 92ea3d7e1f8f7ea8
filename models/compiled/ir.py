"""The intermediate representation of a compiled network: sparse affine-then-ReLU layers and Mul layers, and the
builders that turn named affine expressions into them.

A compiled network is a list of ``Layer`` s. Layer l maps the activation vector of layer l-1 (layer 0 reads the
input vector) to ``relu(A x + b)`` (or ``A x + b`` when ``relu`` is False, used only for read-out layers), where
the sparse matrix A has ``len(rows)`` nonzero entries at (rows[e], cols[e]), sorted by (row, col). The sparsity
pattern (rows, cols) is architecture and lives in the ``Layer``; the values (w, b) are the parameters and live in an
ordinary pytree ``{"w": float64[E], "b": float64[U]}`` per layer, so ``mesabench.models.costs.param_count`` counts
exactly the weights and biases (E + U per layer) and nothing else.

Number format and exactness. Every weight, bias, input and activation of the integer networks is an integer, and
the constructions keep every one of them, and every partial sum of every dot product, below 2**52 in magnitude.
Integers below 2**53 are exact in IEEE float64 and the sum or product of two such integers, when the result is
again below 2**53, is computed exactly; so A x + b is exact whatever order an engine sums in (fused or not), and
the networks compute the same integers as the integer program they encode. ``validate`` checks these rules.

Comparisons are ReLU steps on integers: for an integer x, 1[x >= 0] = relu(x + 1) - relu(x). Selecting between two
non-negative values by a 0/1 unit g uses a big constant M above both values: g ? a : b = relu(a - M (1 - g)) +
relu(b - M g) (``select``). M only ever multiplies a 0/1 unit, so M * g stays exact; the entries of A that carry
such an M are marked in ``Layer.gates`` so that ``validate`` can check that their source units are 0/1.

Multiplicative layers (products of two activations, named Mul units and counted apart) serve only networks that
say so (``mesabench.models.compiled.polymax``); the ModSearch networks have none.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

EXACT_LIMIT = 2.0**52
"""Bound kept by every activation and partial sum of the integer networks (float64 is exact below 2**53)."""

Layout = dict[str, tuple[int, int]]
"""{group name: (start, count)}: where a layer's (or the input vector's) unit groups sit."""


@dataclasses.dataclass(frozen=True)
class Group:
  """A block of ``count`` consecutive units of a layer computing the same formula (``meaning`` says which)."""
  name: str
  start: int
  count: int
  meaning: str


@dataclasses.dataclass(frozen=True, eq=False)
class Layer:
  """Sparsity pattern and unit labels of one layer; the values live in the params pytree.

  An affine layer (``left`` is None) computes relu(A x + b) (or A x + b) with A's nonzeros at (rows, cols);
  ``gates`` (bool[E], or None: none) marks the entries that are big-M select weights (their source must be a 0/1
  unit). A multiplicative layer (``left`` given; rows, cols empty; params {"w": [], "b": []}) has no parameters and
  computes y[u] = x[left[u]] * x[right[u]] (a Mul unit) or, where right[u] == -1, y[u] = x[left[u]] (a copy, no
  arithmetic). Mul units are counted apart from affine units (``analysis``).
  """
  rows: np.ndarray
  cols: np.ndarray
  in_dim: int
  out_dim: int
  relu: bool
  groups: tuple[Group, ...]
  counted_connections: int = -1
  left: np.ndarray | None = None
  right: np.ndarray | None = None
  gates: np.ndarray | None = None

  @property
  def is_mul(self) -> bool:
    return self.left is not None

  @property
  def num_connections(self) -> int:
    """Nonzero weights (affine layers); 0 for multiplicative layers (see ``num_mul_units``)."""
    if self.is_mul:
      return 0
    return int(self.rows.size) if self.counted_connections < 0 else self.counted_connections

  @property
  def num_mul_units(self) -> int:
    """Units computing a product of two activations (multiplicative layers only; copies excluded)."""
    return int(np.count_nonzero(self.right >= 0)) if self.is_mul else 0

  def group(self, name: str) -> Group:
    for g in self.groups:
      if g.name == name:
        return g
    raise KeyError(f"layer has no unit group {name!r}; groups: {[g.name for g in self.groups]}")

  def unit_names(self) -> list[str]:
    """One name per unit: the group's name for a one-unit group, ``name[u]`` otherwise."""
    names = []
    for g in self.groups:
      names += [g.name] if g.count == 1 else [f"{g.name}[{u}]" for u in range(g.count)]
    return names


class Expr:
  """A vector of ``count`` affine expressions over the previous layer's unit groups.

  value[u] = const[u] + sum over terms (group, idx, coeff, gate) of coeff[u] * prev[group][idx[u]]; ``gate`` marks
  a big-M select term (made by ``select``). ``terms`` may be given as (group, idx, coeff) triples (gate False).
  """

  __array_ufunc__ = None  # numpy arrays on the left defer to Expr's reflected operators

  def __init__(self, count: int, terms=(), const=0.0):
    self.count = int(count)
    self.terms = []
    for t in terms:
      g, i, c = t[:3]
      self.terms.append((g, np.broadcast_to(np.asarray(i, np.int64), (self.count,)),
                         np.broadcast_to(np.asarray(c, np.float64), (self.count,)), bool(t[3]) if len(t) > 3 else False))
    self.const = np.broadcast_to(np.asarray(const, np.float64), (self.count,)).copy()

  @staticmethod
  def unit(group: str, count: int, idx=None) -> "Expr":
    """prev[group][idx] (idx defaults to 0..count-1)."""
    return Expr(count, [(group, np.arange(count) if idx is None else idx, 1.0)])

  @staticmethod
  def constant(count: int, value) -> "Expr":
    return Expr(count, [], value)

  def as_gate(self) -> "Expr":
    """The same expressions with every term marked as a big-M gate term (see ``select``)."""
    return Expr(self.count, [(g, i, c, True) for g, i, c, _ in self.terms], self.const)

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
    return Expr(self.count, [(g, i, c * s, t) for g, i, c, t in self.terms], self.const * s)

  __rmul__ = __mul__

  def take(self, idx) -> "Expr":
    """The expressions at positions ``idx`` (an int array)."""
    idx = np.asarray(idx, np.int64)
    return Expr(idx.size, [(g, i[idx], c[idx], t) for g, i, c, t in self.terms], self.const[idx])

  @staticmethod
  def concat(parts: Sequence["Expr"]) -> "Expr":
    count = sum(p.count for p in parts)
    terms, offset = [], 0
    for p in parts:
      for g, i, c, t in p.terms:
        full_i = np.zeros(count, np.int64)
        full_c = np.zeros(count, np.float64)
        full_i[offset:offset + p.count] = i
        full_c[offset:offset + p.count] = c
        terms.append((g, full_i, full_c, t))
      offset += p.count
    return Expr(count, terms, np.concatenate([p.const for p in parts]) if parts else np.zeros(0))


def select(value: Expr, gate: Expr, m: float, keep_when: int = 1) -> Expr:
  """The big-M select ``value - m (1 - gate)`` (keep_when=1) or ``value - m gate`` (keep_when=0): under a ReLU it
  is ``value`` where gate == keep_when and 0 otherwise, exactly, provided gate is a 0/1 unit, 0 <= value < m, and
  every number involved is an integer below 2**52. The gate's terms are marked (``Layer.gates``)."""
  if keep_when not in (0, 1):
    raise ValueError(f"keep_when must be 0 or 1, got {keep_when!r}")
  g = gate.as_gate()
  return value - m * (1 - g) if keep_when == 1 else value - m * g


class LayerBuilder:
  """Collects unit groups of one layer as ``Expr`` s over the previous layer's groups; ``build`` makes the layer.

  prev: the layout of the previous layer (or of the input vector).
  """

  def __init__(self, prev: Layout, relu: bool = True):
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

  def build(self) -> tuple[Layer, dict[str, np.ndarray], Layout]:
    """(layer, {"w", "b"}, layout of this layer's groups). Zero coefficients are dropped; duplicates summed."""
    rows, cols, vals, gates, biases, groups, layout = [], [], [], [], [], [], {}
    start = 0
    for name, expr, meaning in self.items:
      for g, idx, coeff, gate in expr.terms:
        if g not in self.prev:
          raise KeyError(f"group {name!r} reads {g!r}, which the previous layer lacks ({sorted(self.prev)})")
        g_start, g_count = self.prev[g]
        if idx.size and (idx.min() < 0 or idx.max() >= g_count):
          raise IndexError(f"group {name!r} reads {g!r}[{idx.min()}..{idx.max()}] of {g_count} units")
        keep = coeff != 0
        rows.append(start + np.nonzero(keep)[0])
        cols.append(g_start + idx[keep])
        vals.append(coeff[keep])
        gates.append(np.full(int(np.count_nonzero(keep)), gate))
      biases.append(expr.const)
      groups.append(Group(name, start, expr.count, meaning))
      layout[name] = (start, expr.count)
      start += expr.count
    in_dim = sum(c for _, c in self.prev.values())
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    v = np.concatenate(vals) if vals else np.zeros(0)
    t = np.concatenate(gates) if gates else np.zeros(0, bool)
    # Sum duplicate (row, col) entries and sort by (row, col); an entry is a gate if any of its terms is.
    key = r * max(in_dim, 1) + c
    uniq, inverse = np.unique(key, return_inverse=True)
    w = np.zeros(uniq.size)
    np.add.at(w, inverse, v)
    gate = np.zeros(uniq.size, bool)
    gate[inverse[t]] = True
    keep = w != 0
    uniq, w, gate = uniq[keep], w[keep], gate[keep]
    layer = Layer(rows=(uniq // max(in_dim, 1)).astype(np.int32), cols=(uniq % max(in_dim, 1)).astype(np.int32),
                  in_dim=in_dim, out_dim=start, relu=self.relu, groups=tuple(groups),
                  gates=gate if gate.any() else None)
    b = np.concatenate(biases) if biases else np.zeros(0)
    return layer, {"w": w, "b": b}, layout


class MulBuilder:
  """Collects unit groups of one multiplicative layer: products of two previous-layer units, and copies."""

  def __init__(self, prev: Layout):
    self.prev = prev
    self.items: list[tuple[str, np.ndarray, np.ndarray, str]] = []

  def index(self, group: str, idx) -> np.ndarray:
    """Positions in the previous layer of units group[idx]."""
    if group not in self.prev:
      raise KeyError(f"the previous layer has no group {group!r} ({sorted(self.prev)})")
    start, count = self.prev[group]
    idx = np.atleast_1d(np.asarray(idx, np.int64))
    if idx.size and (idx.min() < 0 or idx.max() >= count):
      raise IndexError(f"reads {group!r}[{idx.min()}..{idx.max()}] of {count} units")
    return start + idx

  def product(self, name: str, a: tuple[str, Any], b: tuple[str, Any], meaning: str) -> None:
    """Mul units name[u] = a_group[a_idx[u]] * b_group[b_idx[u]]."""
    left, right = self.index(*a), self.index(*b)
    if left.size != right.size:
      raise ValueError(f"group {name!r}: {left.size} left operands but {right.size} right operands")
    self._add(name, left, right, meaning)

  def carry(self, *names: str) -> None:
    """Copies of previous-layer groups (any sign; no arithmetic)."""
    for name in names:
      left = self.index(name, np.arange(self.prev[name][1]))
      self._add(name, left, np.full(left.size, -1, np.int64), f"{name} (copied)")

  def add(self, name: str, left, right, meaning: str) -> None:
    """Units name[u] = x[left[u]] * x[right[u]], or the copy x[left[u]] where right[u] == -1 (positions from
    ``index``)."""
    left, right = np.asarray(left, np.int64), np.asarray(right, np.int64)
    if left.shape != right.shape or left.ndim != 1:
      raise ValueError(f"group {name!r}: left and right must be 1-d of one length, got {left.shape}, {right.shape}")
    self._add(name, left, right, meaning)

  def _add(self, name, left, right, meaning):
    if any(n == name for n, _, _, _ in self.items):
      raise ValueError(f"unit group {name!r} added twice")
    self.items.append((name, left, right, meaning))

  def build(self) -> tuple[Layer, dict[str, np.ndarray], Layout]:
    groups, layout, start = [], {}, 0
    for name, left, _, meaning in self.items:
      groups.append(Group(name, start, left.size, meaning))
      layout[name] = (start, left.size)
      start += left.size
    empty = np.zeros(0, np.int32)
    layer = Layer(rows=empty, cols=empty, in_dim=sum(c for _, c in self.prev.values()), out_dim=start,
                  relu=False, groups=tuple(groups),
                  left=np.concatenate([l for _, l, _, _ in self.items]).astype(np.int32),
                  right=np.concatenate([r for _, _, r, _ in self.items]).astype(np.int32))
    return layer, {"w": np.zeros(0), "b": np.zeros(0)}, layout


Step = Callable[[Any], None]
"""One layer of a stack: a callable that fills a ``LayerBuilder`` (or, if marked by ``mul_step``, a ``MulBuilder``)."""


def mul_step(fn: Step) -> Step:
  """Marks a layer step of ``build_stack`` as multiplicative: ``fn`` receives a ``MulBuilder``."""
  fn.multiplicative = True
  return fn


def big_m(bound: int) -> float:
  """The smallest power of two above 2 * bound + 1: a select constant M for values and indices up to ``bound``
  (exact, and M * {0, 1} is exact)."""
  return float(2**(int(2 * bound + 2).bit_length()))


def build_stack(input_layout: Layout, steps: Sequence[Step], counts_only: bool = False
                ) -> tuple[list[Layer], list[dict], Layout]:
  """Builds consecutive layers, one per step (see ``Step``); returns (layers, params, layout of the last layer).

  counts_only: keep each layer's sizes only (a ``Layer`` with empty rows/cols and ``counted_connections`` set,
  params None), so that very large networks can be counted exactly without being held in memory.
  """
  layers, params, layout = [], [], input_layout
  for step in steps:
    lb = MulBuilder(layout) if getattr(step, "multiplicative", False) else LayerBuilder(layout)
    step(lb)
    layer, p, layout = lb.build()
    if counts_only and not layer.is_mul:
      layer = Layer(rows=np.zeros(0, np.int32), cols=np.zeros(0, np.int32), in_dim=layer.in_dim,
                    out_dim=layer.out_dim, relu=layer.relu, groups=layer.groups,
                    counted_connections=layer.num_connections)
      p = None
    layers.append(layer)
    params.append(p)
  return layers, params, layout


@dataclasses.dataclass(frozen=True, eq=False)
class LayerTrace:
  """The activations ``values`` [out_dim] of one layer on one query: ``stack`` names the stack ("init", "cell",
  "readout", or "" for a one-pass network), ``step`` the cell iteration (1-based; 0 outside a cell), ``index`` the
  layer's position in its stack (0-based)."""
  stack: str
  step: int
  index: int
  layer: Layer
  values: np.ndarray

  @property
  def label(self) -> str:
    """"init", "step s L(i+1)" or "L(i+1)"."""
    if self.stack == "init":
      return "init"
    if self.stack == "readout":
      return "out"
    return f"step {self.step} L{self.index + 1}" if self.step else f"L{self.index + 1}"

  def unit_values(self) -> dict[str, float]:
    return dict(zip(self.layer.unit_names(), (float(v) for v in self.values)))
