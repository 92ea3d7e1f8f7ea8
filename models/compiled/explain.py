"""What a compiled network computes, unit by unit, as data (``Explanation``) and as text (``render``).

``explain_modsearch(arch, n)`` / ``explain_polymax(...)`` build an ``Explanation``: every layer's unit groups with
the affine formula read off the weights (or the Mul operands) and the group's meaning, the activations of the
layers one query passes through (``ir.LayerTrace``: unit names and values, never text), the iterations where the
answer changes, and the check against the program. ``render`` turns it into the text that
``python -m mesabench.benchmarks.compiled --explain`` prints.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from mesabench.models.compiled import modsearch as ms
from mesabench.models.compiled import polymax as pm
from mesabench.models.compiled.ir import Layer
from mesabench.models.compiled.ir import LayerTrace
from mesabench.tasks import polymax as task_polymax

FORMULA_LIMIT = 20000
"""Layers wider than this show "..." instead of a group's first formula (reading it would scan every entry)."""
TRACE_UNIT_LIMIT = 40
"""Trace rows of layers with more units show the first 12 values only."""


@dataclasses.dataclass(frozen=True)
class GroupDoc:
  """One unit group: ``formulas`` holds the formula of every unit shown (a one-unit affine group: its formula; a
  wider affine group: its first unit's, or "..."; a Mul group: up to 4 units as "name = a * b"); ``more``: units
  not shown (Mul groups)."""
  name: str
  count: int
  meaning: str
  is_mul: bool
  formulas: tuple[str, ...]
  more: bool = False


@dataclasses.dataclass(frozen=True)
class LayerDoc:
  title: str
  units: int
  connections: int
  mul_units: int
  is_mul: bool
  groups: tuple[GroupDoc, ...]


@dataclasses.dataclass(frozen=True)
class Section:
  """A run of layers under an optional heading (e.g. "Read-out:")."""
  heading: str | None
  layers: tuple[LayerDoc, ...]


@dataclasses.dataclass(frozen=True)
class Change:
  """A cell iteration i after which the best index changed to k (with k*k mod n = r)."""
  step: int
  k: int
  r: int


@dataclasses.dataclass(frozen=True, eq=False)
class Explanation:
  """A network explained on one input. ``intro``: the paragraph lines before the layers; ``trace``: the layers'
  activations on the input; ``trace_steps``: cell iterations whose rows are shown (None: all rows);
  ``stage_lines``: a PolyMax trace as stage results; ``changes``: iterations where the answer changed; ``answer``:
  the closing check; ``equal``: whether the network agrees with the program (ModSearch) or stays within its bound
  (PolyMax)."""
  intro: tuple[str, ...]
  sections: tuple[Section, ...]
  trace_heading: str
  trace: tuple[LayerTrace, ...] = ()
  trace_steps: int | None = None
  stage_lines: tuple[str, ...] = ()
  changes: tuple[Change, ...] = ()
  answer: str = ""
  equal: bool = True


# ------------------------------------------------------------------------------------------------- formulas


def fmt(x: float) -> str:
  """An integer as an integer (powers of two from 2**20 on as 2**k), other floats by repr."""
  if float(x).is_integer():
    v = int(x)
    if abs(v) >= 2**20 and v & (v - 1) == 0:
      return f"2**{v.bit_length() - 1}"
    if abs(v) >= 2**20 and (-v) & (-v - 1) == 0:
      return f"-2**{(-v).bit_length() - 1}"
    return str(v)
  return repr(float(x))


def formula(layer: Layer, w, b, u: int, in_names: list[str]) -> str:
  """Unit u's affine map read off the weights, e.g. "relu(2*i + s + 1)"."""
  sel = np.nonzero(layer.rows == u)[0]
  terms = []
  for e in sel:
    c, name = float(w[e]), in_names[layer.cols[e]]
    if c == 1:
      terms.append(f"+ {name}")
    elif c == -1:
      terms.append(f"- {name}")
    else:
      terms.append(f"{'+' if c > 0 else '-'} {fmt(abs(c))}*{name}")
  if b[u] != 0 or not terms:
    terms.append(f"{'+' if b[u] >= 0 else '-'} {fmt(abs(b[u]))}")
  body = " ".join(terms).lstrip("+ ").strip()
  if body.startswith("- "):
    body = "-" + body[2:]
  return f"relu({body})" if layer.relu else body


def mul_formula(layer: Layer, u: int, in_names: list[str]) -> str:
  a = in_names[layer.left[u]]
  return a if layer.right[u] < 0 else f"{a} * {in_names[layer.right[u]]}"


def describe_layer(title: str, layer: Layer, p: dict, in_names: list[str]) -> LayerDoc:
  """The ``LayerDoc`` of one layer whose inputs are named ``in_names``."""
  names = layer.unit_names()
  groups = []
  for g in layer.groups:
    units = range(g.start, g.start + g.count)
    if layer.is_mul:
      shown = [f"{names[u]} = {mul_formula(layer, u, in_names)}" for u in units]
      groups.append(GroupDoc(g.name, g.count, g.meaning, True, tuple(shown[:4]), len(shown) > 4))
    elif g.count == 1:
      groups.append(GroupDoc(g.name, 1, g.meaning, False, (formula(layer, p["w"], p["b"], g.start, in_names),)))
    else:
      first = formula(layer, p["w"], p["b"], g.start, in_names) if layer.out_dim <= FORMULA_LIMIT else "..."
      groups.append(GroupDoc(g.name, g.count, g.meaning, False, (first,)))
  return LayerDoc(title, layer.out_dim, layer.num_connections, layer.num_mul_units, layer.is_mul, tuple(groups))


def describe_stack(titles, layers, params, in_names: list[str]) -> tuple[tuple[LayerDoc, ...], list[str]]:
  """The docs of consecutive layers, and the unit names of the last one."""
  docs = []
  for title, layer, p in zip(titles, layers, params):
    docs.append(describe_layer(title, layer, p, in_names))
    in_names = layer.unit_names()
  return tuple(docs), in_names


# ------------------------------------------------------------------------------------------------ ModSearch


def default_n_max(n: int) -> int:
  """The smallest power of two >= max(n, 16)."""
  return max(16, 1 << max(int(n) - 1, 1).bit_length())


def explain_modsearch(arch: str, n: int, n_max: int = 0, steps: int = 3) -> Explanation:
  """The ModSearch network ``arch`` (n_max: 0 = ``default_n_max(n)``) explained on query ``n``: every layer's units,
  the trace of the first ``steps`` cell iterations (looped archs; every layer for one-pass archs), the iterations
  where the best index changes, and the check against the seed loop."""
  if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= ms.N_MAX:
    raise ValueError(f"n must be an integer in [1, {ms.N_MAX}], got {n!r}")
  if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
    raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
  n_max = default_n_max(n) if n_max == 0 else n_max
  if isinstance(n_max, (int, np.integer)) and not isinstance(n_max, bool) and n > n_max:
    raise ValueError(f"n_max must be >= n = {n}, got {n_max}")
  net = ms.modsearch_net(arch, n_max)
  k_in = ms.kmax_int(n)
  intro = (
      f"ModSearch compiled as a '{arch}' ReLU network (n_max = {n_max}), explained on n = {n}.",
      "",
      "Program (the seed's loop): K = floor(n**0.7); k = 0; for i = 1..K: if i*i mod n > k*k mod n: k = i; return k",
      "Number format: float64; every weight, bias and activation is an integer below 2**52, where float64 "
      "arithmetic is exact.",
      "Comparisons: 1[x >= 0] = relu(x + 1) - relu(x) for integer x. Selection by a 0/1 unit g: "
      f"g ? a : b = relu(a - M(1-g)) + relu(b - M g), M = {fmt(net.m)}.",
      f"Inputs: n = {n} and K = kmax(n) = {k_in} (exact integer program mesabench.kernels.modsearch.kmax; "
      f"{k_in}**10 <= {n}**7 < {k_in + 1}**10).",
      f"Size: {net.num_params} parameters, {net.num_connections} connections, {net.num_units} units, depth "
      f"{net.depth} (at n = n_max).",
      "")
  in_names = ["n", "K"]
  looped = arch in ("recurrent", "unrolled")
  if looped:
    init, state = describe_stack(["init"], [net.init_layer], [net.params["init"]], in_names)
    title = "The cell (one loop iteration; the same weights every time)" if arch == "recurrent" else \
        "Copy j of the cell (shown for j = 1; copy j has i = j baked into its biases)"
    cell_p = net.params["cell"] if arch == "recurrent" else net.copy_params(0)
    cell, names = describe_stack([f"L{li + 1}" for li in range(len(net.layers))], net.layers, cell_p, state)
    readout, _ = describe_stack(["out"], [net.readout_layer], [net.params["readout"]], names)
    sections = (Section("Layer 0 (init): the state before the loop", init),
                Section(f"\n{title}: {ms.CELL_DEPTH} layers", cell), Section("\nRead-out:", readout))
  else:
    docs, _ = describe_stack([f"L{li + 1}" for li in range(len(net.layers))], net.layers, net.params, in_names)
    sections = (Section(None, docs),)
  trace = tuple(net.trace(n))
  changes, prev_k = [], 0
  for row in trace:
    if row.stack == "cell" and row.index == ms.CELL_DEPTH - 1:
      d = row.unit_values()
      k_now = int(d["k_new"] + d["k_old"])
      if k_now != prev_k:
        changes.append(Change(row.step, k_now, int(d["r_new"] + d["r_old"])))
      prev_k = k_now
  k_net = int(net.apply(np.asarray([n]))[0])
  k_loop = ms.seed_loop(n)
  answer = (f"Answer: network k = {k_net}, seed loop k = {k_loop}: {'equal' if k_net == k_loop else 'DIFFERENT'}; "
            f"k*k mod n = {k_net * k_net % n}.")
  return Explanation(intro=intro, sections=sections, trace_heading=f"Trace on n = {n} (activations, unit = value):",
                     trace=trace, trace_steps=steps if looped else None, changes=tuple(changes), answer=answer,
                     equal=k_net == k_loop)


# -------------------------------------------------------------------------------------------------- PolyMax


DEFAULT_COEFFS = (-0.0225, 0.335, -1.2025, 1.9, -1.0)
"""A degree-4 polynomial with two peaks, at 0.2 and 0.81 (ascending powers)."""


def explain_polymax(grid_points: int = 9, refine_steps: int = 1, coeffs=DEFAULT_COEFFS, zoom: int = 4
                    ) -> Explanation:
  """The PolyMax network for P = ``coeffs`` (ascending powers; degree = len - 1, 1..32) explained: every layer's
  units, each stage's winner on P, and the comparison with the exact oracle and the regret bound."""
  c = np.asarray([float(v) for v in coeffs], np.float64)
  if c.ndim != 1 or not 2 <= c.size <= pm.MAX_DEGREE + 1:
    raise ValueError(f"coeffs must hold 2..{pm.MAX_DEGREE + 1} numbers (degree 1..{pm.MAX_DEGREE}), got {c.size}")
  if not np.all(np.isfinite(c)):
    raise ValueError("coeffs must be finite numbers")
  d = c.size - 1
  net = pm.polymax_net(grid_points, d, refine_steps, zoom,
                       coeff_bound=max(pm.default_coeff_bound(d), 2 * float(np.abs(c).sum())))
  intro = (
      f"PolyMax compiled into a network (G = {grid_points}, degree {d}, {refine_steps} zoom stage(s) of "
      f"{2 * zoom + 1} points), explained on P = {' + '.join(f'{v:g} x**{j}' for j, v in enumerate(c))}.",
      "",
      "Program: x0 = first maximizer of P on the grid g/(G-1); per zoom stage: the first maximizer on the "
      f"{2 * zoom + 1}-point grid of {zoom}x finer spacing around the winner (window clamped into [0, 1]).",
      f"Number format: float64. Values v = P + C with C = {fmt(net.offset)} lie in [2**{net.exponent}, "
      f"1.5 * 2**{net.exponent}), one binade, so y = 2**{52 - net.exponent} v - 2**52 is an exact integer and "
      "comparisons are ReLU steps on integers: 1[a >= b] = relu(a - b + 1) - relu(a - b).",
      f"Size: {net.num_params} parameters, {net.num_connections} connections, {net.num_mul_units} Mul units, "
      f"{net.num_units} units, depth {net.depth}, {net.flops_per_query()} FLOPs per query "
      f"({net.mul_flops_per_query()} of them Mul).",
      "")
  docs, _ = describe_stack([f"L{li + 1}" for li in range(len(net.layers))], net.layers, net.params,
                           [f"c{j}" for j in range(d + 1)])
  winners = net.stage_winners(c[None])
  x, value = net.apply_with_value(c[None])
  stage_lines = tuple(
      f"stage {r} winner x = {float(xr[0]):.9f} (grid spacing 1/{net.grid_size(r)}), "
      f"P(x) = {float(np.polynomial.polynomial.polyval(xr[0], c)):.9f}" for r, xr in enumerate(winners))
  best, arg = (float(np.asarray(a)[0]) for a in task_polymax.solve(c.astype(np.float32)[None]))
  regret = best - float(np.polynomial.polynomial.polyval(x[0], c))
  bound0 = float(net.error_bound(c[None], 0)[0])
  answer = (f"Answer: network x = {float(x[0]):.9f}, value {float(value[0]):.9f}; oracle argmax {arg:.9f}, "
            f"max {best:.9f}; regret {regret:.3g} <= bound {bound0:.3g} (grid), "
            f"{float(net.error_bound(c[None], refine_steps)[0]):.3g} (if the last window holds the maximizer).")
  return Explanation(intro=intro, sections=(Section(None, docs),), trace_heading="Trace on P:",
                     stage_lines=stage_lines, answer=answer, equal=regret <= bound0 + 2e-6 * max(1.0, np.abs(c).sum()))


# --------------------------------------------------------------------------------------------------- render


def _render_layer(doc: LayerDoc) -> list[str]:
  if doc.is_mul:
    lines = [f"  {doc.title}: {doc.units} units, {doc.mul_units} Mul units (products of two activations; "
             "no parameters), the rest copies"]
  else:
    lines = [f"  {doc.title}: {doc.units} units, {doc.connections} connections"]
  for g in doc.groups:
    if g.is_mul:
      lines.append(f"    {'; '.join(g.formulas)}{'; ...' if g.more else ''}")
    elif g.count == 1:
      lines.append(f"    {g.name:8s} = {g.formulas[0]}")
    else:
      lines.append(f"    {g.name}[0..{g.count - 1}]  e.g. {g.name}[0] = {g.formulas[0]}")
    lines.append(f"    {'':8s}   # {g.meaning}")
  return lines


def _render_row(row: LayerTrace) -> str:
  names = row.layer.unit_names()
  pairs = list(zip(names, row.values))
  if len(names) <= TRACE_UNIT_LIMIT:
    vals = ", ".join(f"{nm}={fmt(v)}" for nm, v in pairs)
  else:
    vals = f"{len(names)} units; " + ", ".join(f"{nm}={fmt(v)}" for nm, v in pairs[:12]) + ", ..."
  return f"  {row.label:14s} {vals}"


def render(e: Explanation) -> str:
  """The text of an explanation (what ``--explain`` prints)."""
  lines = list(e.intro)
  for s in e.sections:
    if s.heading is not None:
      lines.append(s.heading)
    for doc in s.layers:
      lines += _render_layer(doc)
  lines.append("")
  lines.append(e.trace_heading)
  lines += [_render_row(r) for r in e.trace if e.trace_steps is None or r.step <= e.trace_steps]
  lines += [f"  {s}" for s in e.stage_lines]
  if e.changes:
    lines.append("")
    lines.append("Iterations where the best changes (g = 1): i -> (k, k*k mod n)")
    lines.append("  " + "; ".join(f"i={c.step}: k={c.k}, r={c.r}" for c in e.changes))
  lines.append("")
  lines.append(e.answer)
  return "\n".join(lines) + "\n"
