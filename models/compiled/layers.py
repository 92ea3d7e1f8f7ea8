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

Multiplicative layers (products of two activations, named Mul units and counted apart) serve only networks
that say so (``mesabench.models.compiled.polymax``); the ModSearch networks have none.
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
movement, and the scan that applies a cell repeatedly. No comparison, select, floor, division or while loop.
"mul" also serves the Mul units of multiplicative layers; which layers are multiplicative is read off the
``Layer`` objects (``Layer.is_mul``), so a check combines this set with a per-layer check."""


@dataclasses.dataclass(frozen=True)
class Group:
  """A block of ``count`` consecutive units of a layer computing the same formula (for ``explain``)."""
  name: str
  start: int
  count: int
  meaning: str


@dataclasses.dataclass(frozen=True, eq=False)
class Layer:
  """Sparsity pattern and unit labels of one layer; the values live in the params pytree.

  An affine layer (``left`` is None) computes relu(A x + b) (or A x + b) with A's nonzeros at (rows, cols).
  A multiplicative layer (``left`` given; rows, cols empty; params {"w": [], "b": []}) has no parameters and
  computes y[u] = x[left[u]] * x[right[u]] (a Mul unit) or, where right[u] == -1, y[u] = x[left[u]] (a copy,
  no arithmetic). Mul units are counted apart from affine units in ``stack_sizes`` and ``stack_flops``.
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


class MulBuilder:
  """Collects unit groups of one multiplicative layer: products of two previous-layer units, and copies."""

  def __init__(self, prev: dict[str, tuple[int, int]]):
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

  def build(self) -> tuple[Layer, dict[str, np.ndarray], dict[str, tuple[int, int]]]:
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


def mul_step(fn):
  """Marks a layer step of ``build_stack`` as multiplicative: ``fn`` receives a ``MulBuilder``."""
  fn.multiplicative = True
  return fn


def big_m(bound: int) -> float:
  """The smallest power of two above 2 * bound + 1: a select constant M for values and indices up to ``bound``
  (exact, and M * {0, 1} is exact)."""
  return float(2**(int(2 * bound + 2).bit_length()))


def tournament(steps: list, y: Expr, k: Expr, m: float, carry: tuple[str, ...] = ()) -> tuple[Expr, Expr]:
  """Appends to ``steps`` the layers of an argmax tournament over entries (y, k) in index order and returns
  Exprs (y_win, k_win) over the last appended layer: y_win = max y; k_win = the k of the first entry (smallest
  index) attaining it. y and k are Exprs over the layout the first appended layer reads; every y must be an
  integer in [0, 2**52) and every k an integer in [0, m/2) (the big-M select needs M > 2 max k), or the result is
  not exact. ``carry`` names non-negative groups carried alongside, unchanged.

  Each round pairs entries 2p (left) and 2p+1 (right): g = 1[yL >= yR] = relu(yL - yR + 1) - relu(yL - yR);
  y = yR + relu(yL - yR) = max; k = g ? kL : kR (an affine function of g while k is constant, a big-M select
  otherwise). An odd count gets a dummy (y = 0, k = 0) on the right, which loses every tie. Rounds: ceil(log2
  count); layers: 2 per round while k is constant, then 3.
  """
  state = {"y": y, "k": k}
  rnd = 0
  while state["y"].count > 1:
    rnd += 1
    y, k = state["y"], state["k"]
    if y.count % 2:
      y = Expr.concat([y, Expr.constant(1, 0.0)])
      k = Expr.concat([k, Expr.constant(1, 0.0)])
    left, right = np.arange(0, y.count, 2), np.arange(1, y.count, 2)
    p = left.size
    yl, yr, kl, kr = y.take(left), y.take(right), k.take(left), k.take(right)
    k_const = not kl.terms and not kr.terms

    def t1(lb, yl=yl, yr=yr, kl=kl, kr=kr, k_const=k_const, rnd=rnd):
      lb.add("d1", yl - yr + 1, f"round {rnd}: relu(yL - yR + 1)")
      lb.add("d2", yl - yr, f"round {rnd}: relu(yL - yR) (also max(yL, yR) - yR)")
      lb.add("yr", yr, f"round {rnd}: yR (carried)")
      if not k_const:
        lb.add("kl", kl, f"round {rnd}: kL (carried)")
        lb.add("kr", kr, f"round {rnd}: kR (carried)")
      lb.carry(*carry)

    def t2(lb, k_const=k_const, p=p, rnd=rnd):
      lb.add("g", Expr.unit("d1", p) - Expr.unit("d2", p), f"round {rnd}: g = 1[yL >= yR], 0/1")
      lb.add("y", Expr.unit("yr", p) + Expr.unit("d2", p), f"round {rnd}: y = yR + relu(yL - yR) = max(yL, yR)")
      if not k_const:
        lb.carry("kl", "kr")
      lb.carry(*carry)

    steps += [t1, t2]
    if k_const:
      state = {"y": Expr.unit("y", p), "k": Expr(p, [("g", np.arange(p), kl.const - kr.const)], kr.const)}
    else:
      def t3(lb, p=p, rnd=rnd):
        g = Expr.unit("g", p)
        lb.add("kn", Expr.unit("kl", p) - m * (1 - g), f"round {rnd}: kL if g else 0")
        lb.add("ko", Expr.unit("kr", p) - m * g, f"round {rnd}: kR if not g else 0")
        lb.carry("y")
        lb.carry(*carry)
      steps.append(t3)
      state = {"y": Expr.unit("y", p), "k": Expr.unit("kn", p) + Expr.unit("ko", p)}
  return state["y"], state["k"]


def build_stack(input_layout: dict[str, tuple[int, int]], steps, counts_only: bool = False
                ) -> tuple[list[Layer], list[dict], dict]:
  """Builds consecutive layers: ``steps`` is a list of callables LayerBuilder -> None (one per layer; those
  marked by ``mul_step`` receive a MulBuilder instead).

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


def _gather_rows(x, idx: np.ndarray):
  # A plain gather (indices are in range by construction; jnp indexing would add negative-index selects).
  dims = jax.lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,))
  return jax.lax.gather(x, np.asarray(idx, np.int32)[:, None], dims, (1, x.shape[1]),
                        mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS)


def layer_forward(layer: Layer, p: dict[str, Any], x):
  """relu(A x + b) (or A x + b; or the products of a multiplicative layer) for activations x [in_dim, batch];
  jnp, traceable; exact as the module says."""
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
  for layer, p in zip(layers, params):
    x = layer_forward(layer, p, x)
  return x


def _runs(dst: np.ndarray, src: np.ndarray | None = None) -> list[tuple[int, int, int]]:
  """Maximal runs (dst_start, src_start, length) where dst and src (default: 0, 1, 2, ...) both step by 1."""
  if dst.size == 0:
    return []
  src = np.arange(dst.size) if src is None else src
  brk = np.flatnonzero((np.diff(dst) != 1) | (np.diff(src) != 1)) + 1
  starts = np.concatenate([[0], brk])
  ends = np.concatenate([brk, [dst.size]])
  return [(int(dst[s]), int(src[s]), int(e - s)) for s, e in zip(starts, ends)]


class _NumpyPlan:
  """How ``stack_forward_numpy`` runs one affine layer: identity units (one weight 1, bias 0, and a
  non-negative input or no ReLU, so relu(x) = x exactly) become slice copies; every other unit u gets
  b[u] + sum_e w[e] x[cols[e]] by passes over the e-th entry of each row (no row holds a duplicate within a pass),
  then the ReLU."""

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


def _mul_numpy(layer: Layer, x: np.ndarray) -> np.ndarray:
  y = x[layer.left]
  prod = np.flatnonzero(layer.right >= 0)
  y[prod] *= x[layer.right[prod]]
  return y


def stack_forward_numpy(layers: Sequence[Layer], params: Sequence[dict], x: np.ndarray,
                        input_nonneg: bool = False, chunk: int = 1024) -> np.ndarray:
  """The same map as ``stack_forward`` in numpy float64 (no compilation, which suits the one-pass networks with
  many layers), exact for the same reason (integers below 2**52 throughout; identity units are copied, which is
  exact). The batch runs in chunks of ``chunk`` columns so that activations stay in cache.

  input_nonneg: the caller promises x >= 0 (then identity units of the first layer are copies, not ReLUs).
  """
  x = np.asarray(x, np.float64)
  plans, nonneg = [], bool(input_nonneg)
  for layer, p in zip(layers, params):
    plans.append(None if layer.is_mul else _NumpyPlan(layer, p, nonneg))
    nonneg = layer.relu and not layer.is_mul
  outs = []
  for s in range(0, max(x.shape[1], 1), chunk):
    h = x[:, s:s + chunk]
    for layer, plan in zip(layers, plans):
      h = _mul_numpy(layer, h) if plan is None else plan(h)
    outs.append(h)
  return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=1)


def stack_forward_trace(layers: Sequence[Layer], params: Sequence[dict], x) -> list[np.ndarray]:
  """Activations of every layer (numpy float64, the engine of ``stack_forward_numpy``), for explanations and
  exactness checks."""
  out = []
  x = np.asarray(x, np.float64)
  for i, (layer, p) in enumerate(zip(layers, params)):
    nonneg = i > 0 and layers[i - 1].relu and not layers[i - 1].is_mul
    x = stack_forward_numpy([layer], [p], x, input_nonneg=nonneg)
    out.append(x)
  return out


def check_exact_range(activations: Sequence[np.ndarray], what: str = "activation") -> None:
  """Raises ArithmeticError unless every value is an integer of magnitude below EXACT_LIMIT."""
  for a in activations:
    a = np.asarray(a)
    if a.size and (np.max(np.abs(a)) >= EXACT_LIMIT or not np.all(a == np.round(a))):
      raise ArithmeticError(f"{what} left the exact integer range of float64 (|x| < 2**52, integral)")


def stack_sizes(layers: Sequence[Layer]) -> dict[str, int]:
  """Sizes of a layer stack: num_params (weights + biases of the affine layers), num_connections (nonzero
  weights), num_units (all units, copies included), num_mul_units (products of two activations; they have no
  parameters and each reads 2 activations), depth (layers)."""
  e = sum(l.num_connections for l in layers)
  u_affine = sum(l.out_dim for l in layers if not l.is_mul)
  return {"num_params": e + u_affine, "num_connections": e, "num_units": sum(l.out_dim for l in layers),
          "num_mul_units": sum(l.num_mul_units for l in layers), "depth": len(layers)}


def stack_flops(layers: Sequence[Layer], mul_only: bool = False) -> int:
  """FLOPs of one forward pass for one example: 2 per connection (multiply, add), 1 per bias, 1 per ReLU, and 1
  per Mul unit (copies are free). mul_only: the Mul units' FLOPs alone."""
  mul = sum(l.num_mul_units for l in layers)
  if mul_only:
    return mul
  return mul + sum(2 * l.num_connections + l.out_dim + (l.out_dim if l.relu else 0)
                   for l in layers if not l.is_mul)


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
