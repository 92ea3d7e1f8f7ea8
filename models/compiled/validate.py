"""The rules a compiled layer stack must keep, checked and returned as a list of violations (empty: none found).

``validate_stack(layers, params, contract, activations=None)`` checks, per layer:
  * "structure": parameter shapes match the pattern; rows sorted and in range; columns in range; each layer reads
    the previous layer's width; the unit groups tile the layer;
  * "affine_relu": every affine layer applies the ReLU, except the last when ``contract.linear_last``;
    multiplicative (Mul) layers only where ``contract.allow_mul``, and they carry no parameters;
  * "integer_weights" (``contract.integer``): every weight and bias is an integer;
  * "weight_range": every |weight| and |bias| is below 2**52 (integer contracts; else finite);
  * "big_m": every big-M select entry (``ir.Layer.gates``) reads a unit that is provably 0/1 from the structure: a
    step relu(e + 1) - relu(e) of two units with one affine map e and biases one apart, an AND relu(s_1 + ... +
    s_k - (k - 1)) of such steps, or a copy (weight 1, bias 0) of a 0/1 unit (the proof takes e to be an integer,
    which the exact_range rule checks on activations); and, when ``contract.big_m`` is given, every weight of
    magnitude >= big_m is such a select entry;
  and, given ``activations`` (every layer's output on some inputs, e.g. from ``numpy_engine.trace``; pass the
  inputs as ``inputs``):
  * "exact_range" (``contract.integer``): every activation is an integer below 2**52 in magnitude, and so is
    sum_e |w_e x_e| + |b| for every unit (which bounds every partial sum, in any summation order);
  * "big_m" again: every select gate's value is 0 or 1 on those inputs.
``primitive_violations(names, allow_mul)`` checks the primitives of a traced forward pass (``analysis.primitives``)
against ``jax_engine.ALLOWED_PRIMITIVES``.

The structural big-M proof covers gates computed inside the stack; a gate read from the stack's input (or from
the first layer) cannot be proved and is reported. Exactness of the ranges is checked on the given activations,
not proved for all inputs: pass the extreme inputs (n = n_max, ...).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from mesabench.models.compiled import jax_engine
from mesabench.models.compiled import numpy_engine
from mesabench.models.compiled.ir import EXACT_LIMIT
from mesabench.models.compiled.ir import Layer

RULES = ("structure", "affine_relu", "integer_weights", "weight_range", "big_m", "exact_range", "primitive")
FORBIDDEN_PRIMITIVES = frozenset({"lt", "gt", "ge", "le", "eq", "ne", "select_n", "floor", "ceil", "round", "div",
                                  "rem", "while", "cond", "sign", "abs"})
"""Primitives that would let a network compare, branch or round without ReLU steps."""


@dataclasses.dataclass(frozen=True)
class Contract:
  """What a stack promises. integer: integer weights, biases and activations below 2**52 (the ModSearch nets; the
  PolyMax net is not); allow_mul: Mul layers may occur; linear_last: the last layer may skip the ReLU; big_m:
  weights at least this large must be select entries (None: no magnitude rule)."""
  integer: bool = True
  allow_mul: bool = False
  linear_last: bool = True
  big_m: float | None = None


@dataclasses.dataclass(frozen=True)
class Violation:
  """One broken rule: ``rule`` (one of RULES), the ``layer`` index in the stack (-1: the whole stack), the ``unit``
  name (or "" for the layer), and what was found."""
  rule: str
  layer: int
  unit: str
  message: str
  stack: str = ""
  """Which stack of a network (e.g. "init", "cell", "cell step 3", "readout"); "" for a one-pass network."""

  def __str__(self) -> str:
    where = "stack" if self.layer < 0 else f"layer {self.layer}" + (f" unit {self.unit}" if self.unit else "")
    return f"[{self.rule}] {self.stack + ' ' if self.stack else ''}{where}: {self.message}"


def _unit_name(layer: Layer, u: int) -> str:
  for g in layer.groups:
    if g.start <= u < g.start + g.count:
      return g.name if g.count == 1 else f"{g.name}[{u - g.start}]"
  return f"#{u}"


def _structure(li: int, layer: Layer, p: dict | None, in_dim: int | None) -> list[Violation]:
  out = []
  bad = lambda msg: out.append(Violation("structure", li, "", msg))
  if in_dim is not None and layer.in_dim != in_dim:
    bad(f"reads {layer.in_dim} units but the previous layer has {in_dim}")
  ends = [(g.start, g.start + g.count) for g in layer.groups]
  if [s for s, _ in ends] != [0] + [e for _, e in ends[:-1]] or (ends and ends[-1][1] != layer.out_dim):
    bad(f"unit groups do not tile [0, {layer.out_dim})")
  if layer.is_mul:
    if layer.left.shape != (layer.out_dim,) or layer.right.shape != (layer.out_dim,):
      bad(f"Mul operands must have {layer.out_dim} entries")
    elif layer.out_dim and (layer.left.min() < 0 or layer.left.max() >= layer.in_dim or
                            layer.right.min() < -1 or layer.right.max() >= layer.in_dim):
      bad(f"Mul operands outside [0, {layer.in_dim})")
    return out
  if p is None:
    return out
  e = layer.rows.size
  if np.shape(p["w"]) != (e,) or np.shape(p["b"]) != (layer.out_dim,):
    bad(f"params must be w[{e}], b[{layer.out_dim}]; got w{np.shape(p['w'])}, b{np.shape(p['b'])}")
  if e and (np.any(np.diff(layer.rows) < 0) or layer.rows.min() < 0 or layer.rows.max() >= layer.out_dim):
    bad(f"rows must be sorted and in [0, {layer.out_dim})")
  if e and (layer.cols.min() < 0 or layer.cols.max() >= layer.in_dim):
    bad(f"columns outside [0, {layer.in_dim})")
  if layer.gates is not None and layer.gates.shape != (e,):
    bad(f"gates must flag each of the {e} entries")
  return out


class _ZeroOne:
  """Which units of a stack are provably 0/1 (memoized over (layer, unit)); layer -1 is the stack's input."""

  def __init__(self, layers: Sequence[Layer], params: Sequence[dict]):
    self.layers, self.params = layers, params
    self.memo: dict[tuple[int, int], bool] = {}
    self.ptr: dict[int, np.ndarray] = {}

  def row(self, li: int, u: int) -> tuple[np.ndarray, np.ndarray, float]:
    layer = self.layers[li]
    if li not in self.ptr:
      self.ptr[li] = np.searchsorted(layer.rows, np.arange(layer.out_dim + 1))
    s, e = self.ptr[li][u], self.ptr[li][u + 1]
    return layer.cols[s:e], np.asarray(self.params[li]["w"])[s:e], float(self.params[li]["b"][u])

  def __call__(self, li: int, u: int) -> bool:
    key = (li, u)
    if key not in self.memo:
      self.memo[key] = False  # cycles cannot occur (layers only read earlier layers)
      self.memo[key] = self._prove(li, u)
    return self.memo[key]

  def _prove(self, li: int, u: int) -> bool:
    if li < 0:
      return False
    layer = self.layers[li]
    if layer.is_mul:
      return bool(layer.right[u] < 0) and self(li - 1, int(layer.left[u]))
    cols, w, b = self.row(li, u)
    if cols.size == 1 and w[0] == 1.0 and b == 0.0:  # a copy (relu(x) = x for x in {0, 1})
      return self(li - 1, int(cols[0]))
    if li < 1 or not layer.relu and b != 0.0:
      return False
    # relu(sum of k steps + b) with steps s = x_p - x_q, x_p = relu(e + 1), x_q = relu(e): 0/1 iff k + b <= 1.
    plus, minus = cols[w == 1.0], cols[w == -1.0]
    if plus.size + minus.size != cols.size or plus.size != minus.size or plus.size == 0:
      return False
    prev = self.layers[li - 1]
    if prev.is_mul or not prev.relu:
      return False
    unmatched = list(minus)
    for pc in plus:
      pc_cols, pc_w, pc_b = self.row(li - 1, int(pc))
      match = None
      for qc in unmatched:
        qc_cols, qc_w, qc_b = self.row(li - 1, int(qc))
        if pc_b - qc_b == 1.0 and np.array_equal(pc_cols, qc_cols) and np.array_equal(pc_w, qc_w):
          match = qc
          break
      if match is None:
        return False
      unmatched.remove(match)
    return plus.size + b <= 1 and b <= 0


def validate_stack(layers: Sequence[Layer], params: Sequence[dict | None], contract: Contract = Contract(),
                   activations: Sequence[np.ndarray] | None = None, inputs: np.ndarray | None = None
                   ) -> list[Violation]:
  """Every violation of the module's rules found in the stack (``params`` None per layer: a counts-only layer,
  checked for its structure and ReLU only). ``activations``: every layer's output [out_dim, batch] on ``inputs``
  [in_dim, batch]; the dynamic rules run only when both are given."""
  out = static_violations(layers, params, contract)
  if activations is not None and inputs is not None:
    out += activation_violations(layers, params, contract, inputs, activations)
  return out


def static_violations(layers: Sequence[Layer], params: Sequence[dict | None], contract: Contract = Contract()
                      ) -> list[Violation]:
  """The rules that need no inputs: structure, affine_relu, integer_weights, weight_range, big_m (structural)."""
  if len(params) != len(layers):
    return [Violation("structure", -1, "", f"{len(layers)} layers but {len(params)} parameter sets")]
  out: list[Violation] = []
  zero_one = _ZeroOne(layers, params)
  for li, (layer, p) in enumerate(zip(layers, params)):
    out += _structure(li, layer, p, layers[li - 1].out_dim if li else None)
    last = li == len(layers) - 1
    if layer.is_mul:
      if not contract.allow_mul:
        out.append(Violation("affine_relu", li, "", "a Mul layer (products of activations) in a stack that allows "
                             "only affine maps and ReLU"))
      if p is not None and (np.size(p["w"]) or np.size(p["b"])):
        out.append(Violation("affine_relu", li, "", "a Mul layer must carry no parameters"))
      continue
    if not layer.relu and not (last and contract.linear_last):
      out.append(Violation("affine_relu", li, "", "an affine layer without ReLU that is not the read-out"))
    if p is None or any(v.layer == li and v.rule == "structure" for v in out):
      continue
    w, b = np.asarray(p["w"], np.float64), np.asarray(p["b"], np.float64)
    for name, vals, units in (("weight", w, layer.rows), ("bias", b, np.arange(b.size))):
      if contract.integer and vals.size and not np.all(vals == np.round(vals)):
        e = int(np.flatnonzero(vals != np.round(vals))[0])
        out.append(Violation("integer_weights", li, _unit_name(layer, int(units[e])),
                             f"{name} {vals[e]!r} is not an integer"))
      limit = EXACT_LIMIT if contract.integer else np.inf
      if vals.size and not np.all(np.abs(vals) < limit):
        e = int(np.flatnonzero(~(np.abs(vals) < limit))[0])
        out.append(Violation("weight_range", li, _unit_name(layer, int(units[e])),
                             f"|{name}| = {abs(vals[e]):g} is not " + ("below 2**52" if contract.integer else "finite")))
    gates = layer.gates if layer.gates is not None else np.zeros(w.size, bool)
    if contract.big_m is not None:
      for e in np.flatnonzero((np.abs(w) >= contract.big_m) & ~gates)[:8]:
        out.append(Violation("big_m", li, _unit_name(layer, int(layer.rows[e])),
                             f"weight {w[e]:g} >= big_m {contract.big_m:g} on {_unit_name_in(layers, li, layer.cols[e])}"
                             ", which is not a select gate"))
    for col in np.unique(layer.cols[gates]):
      if not zero_one(li - 1, int(col)):
        src = _unit_name_in(layers, li, int(col))
        rows = layer.rows[gates & (layer.cols == col)]
        out.append(Violation("big_m", li, _unit_name(layer, int(rows[0])),
                             f"big-M select gated by {src}, which is not provably a 0/1 unit"))
  return out


def _unit_name_in(layers: Sequence[Layer], li: int, col: int) -> str:
  """The name of input unit ``col`` of layer ``li`` (a unit of layer li - 1, or of the stack's input)."""
  return f"input[{col}]" if li == 0 else f"layer {li - 1} {_unit_name(layers[li - 1], int(col))}"


def activation_violations(layers: Sequence[Layer], params: Sequence[dict], contract: Contract, inputs: np.ndarray,
                          activations: Sequence[np.ndarray]) -> list[Violation]:
  """The rules checked on the activations [out_dim, batch] of every layer on ``inputs`` [in_dim, batch]:
  exact_range (integer contracts) and the 0/1 values of every select gate (big_m)."""
  inputs = np.asarray(inputs, np.float64)
  activations = list(activations)
  out = []
  if len(activations) != len(layers):
    return [Violation("structure", -1, "", f"{len(activations)} activation arrays for {len(layers)} layers")]
  xs = [inputs] + activations[:-1]
  for li, (layer, p, x, a) in enumerate(zip(layers, params, xs, activations)):
    if contract.integer:
      bad = ~((np.abs(a) < EXACT_LIMIT) & (a == np.round(a)))
      if bad.any():
        u = int(np.flatnonzero(bad.any(axis=1))[0])
        out.append(Violation("exact_range", li, _unit_name(layer, u),
                             f"activation {a[u][bad[u]][0]:g} is not an integer below 2**52"))
      if not layer.is_mul and p is not None:
        mag = Layer(rows=layer.rows, cols=layer.cols, in_dim=layer.in_dim, out_dim=layer.out_dim, relu=False,
                    groups=layer.groups)
        bound = numpy_engine.forward([mag], [{"w": np.abs(p["w"]), "b": np.abs(p["b"])}], np.abs(x))
        over = ~(bound < EXACT_LIMIT)
        if over.any():
          u = int(np.flatnonzero(over.any(axis=1))[0])
          out.append(Violation("exact_range", li, _unit_name(layer, u),
                               f"sum |w x| + |b| = {bound[u][over[u]][0]:g} reaches 2**52 (a partial sum may be "
                               "inexact)"))
    if layer.gates is not None and p is not None:
      for col in np.unique(layer.cols[layer.gates]):
        vals = x[col]
        if not np.all((vals == 0) | (vals == 1)):
          bad_val = vals[(vals != 0) & (vals != 1)][0]
          out.append(Violation("big_m", li, _unit_name(layer, int(layer.rows[layer.gates & (layer.cols == col)][0])),
                               f"select gate {_unit_name_in(layers, li, int(col))} took the value {bad_val:g}"))
  return out


def primitive_violations(names: set[str]) -> list[Violation]:
  """Violations among the primitive names of a traced forward pass (``analysis.primitives``): every primitive
  outside ``jax_engine.ALLOWED_PRIMITIVES`` (those in FORBIDDEN_PRIMITIVES compare, branch or round). "mul" serves
  both the affine map and Mul units: whether Mul layers occur is checked per layer by ``static_violations``."""
  out = []
  for name in sorted(names - jax_engine.ALLOWED_PRIMITIVES):
    why = "compares, branches or rounds" if name in FORBIDDEN_PRIMITIVES else "is not an affine map, ReLU or data movement"
    out.append(Violation("primitive", -1, "", f"primitive {name!r} {why}"))
  return out
