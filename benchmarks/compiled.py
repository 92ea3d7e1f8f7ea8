"""Compiled search networks: explain one layer by layer, or measure how their size grows with n_max.

  python -m mesabench.benchmarks.compiled --explain --arch=recurrent --n=1024
  python -m mesabench.benchmarks.compiled --explain --arch=polymax --grid_points=9 --refine_steps=1
  python -m mesabench.benchmarks.compiled --size_law

--explain prints what every unit of the network computes (the affine map read off its weights, and its meaning),
then the activations of the first ``--steps`` iterations (looped archs) and the iterations where the answer
changes, and checks the result against the seed's Python loop.

--size_law counts parameters, connections, depth and FLOPs per query of the four ModSearch networks for
n_max = 2**4 ... 2**30 (exactly, from the built structure), fits power-law exponents over [2**10, 2**30], compares
with a lookup table memorizing the answer for every n <= n_max (n_max entries of bit_length(K(n_max)) bits, against
64 bits per float64 network parameter) and reports the crossover n_max beyond which each network is smaller.
It also counts the PolyMax network (``polymax_net``, degree 6, zoom 4) for G = 2**2 + 1 ... 2**16 + 1 grid points
with 0 and 2 refinement stages: parameters, connections, Mul units, depth, FLOPs and the regret bound per unit of
M2 = sum_j j (j-1) |c_j| (h**2 / 8 for the grid; h_R**2 / 8 once the refinement windows hold the maximizer).
Writes results/compiled_size_law.json (atomically, with environment and command) and results/compiled_size_law.png.
"""
from __future__ import annotations

import io
import math
import os
import sys

import numpy as np
from absl import app
from absl import flags

from mesabench.harness import provenance
from mesabench.models.compiled import modsearch as ms
from mesabench.models.compiled import polymax as pm

SCHEMA_VERSION = 1
BITS_PER_PARAM = 64
FIT_MIN_EXP = 10
EXPECTED_PARAM_EXPONENT = {"recurrent": 0.0, "unrolled": 0.7, "wide": 0.7, "banded": 0.4}
_RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")

FLAGS = flags.FLAGS
flags.DEFINE_bool("explain", False, "Print the network layer by layer and a trace for --n.")
flags.DEFINE_bool("size_law", False, "Measure sizes vs n_max; write results/compiled_size_law.{json,png}.")
flags.DEFINE_enum("arch", "recurrent", list(ms.ARCHS) + ["polymax"], "Architecture for --explain.")
flags.DEFINE_integer("n", 1024, "The query n for --explain (1 <= n <= n_max).")
flags.DEFINE_integer("n_max", 0, "n_max of the explained network (0: the smallest power of two >= max(n, 16)).")
flags.DEFINE_integer("steps", 3, "Iterations whose every activation --explain prints (looped archs).")
flags.DEFINE_integer("max_exp", 30, "--size_law: largest log2(n_max).")
flags.DEFINE_integer("grid_points", 9, "--explain --arch=polymax: grid points G.")
flags.DEFINE_integer("refine_steps", 1, "--explain --arch=polymax: zoom stages.")
flags.DEFINE_integer("zoom", 4, "--explain --arch=polymax: spacing shrink per zoom stage.")
flags.DEFINE_list("coeffs", ["-0.0225", "0.335", "-1.2025", "1.9", "-1"],
                  "--explain --arch=polymax: coefficients, ascending powers (default: two peaks, at 0.2 and 0.81).")
flags.DEFINE_string("out", _RESULTS, "--size_law: output folder.")


# ---------------------------------------------------------------------------------------------------- explain


def _fmt(x: float) -> str:
  if float(x).is_integer():
    v = int(x)
    if abs(v) >= 2**20 and v & (v - 1) == 0:
      return f"2**{v.bit_length() - 1}"
    if abs(v) >= 2**20 and (-v) & (-v - 1) == 0:
      return f"-2**{(-v).bit_length() - 1}"
    return str(v)
  return repr(float(x))


def _unit_names(groups) -> list[str]:
  names = []
  for g in groups:
    names += [g.name] if g.count == 1 else [f"{g.name}[{u}]" for u in range(g.count)]
  return names


def _formula(layer, w, b, u: int, in_names: list[str]) -> str:
  sel = np.nonzero(layer.rows == u)[0]
  terms = []
  for e in sel:
    c, name = float(w[e]), in_names[layer.cols[e]]
    if c == 1:
      terms.append(f"+ {name}")
    elif c == -1:
      terms.append(f"- {name}")
    else:
      terms.append(f"{'+' if c > 0 else '-'} {_fmt(abs(c))}*{name}")
  if b[u] != 0 or not terms:
    terms.append(f"{'+' if b[u] >= 0 else '-'} {_fmt(abs(b[u]))}")
  body = " ".join(terms).lstrip("+ ").strip()
  if body.startswith("- "):
    body = "-" + body[2:]
  return f"relu({body})" if layer.relu else body


def _mul_formula(layer, u: int, in_names: list[str]) -> str:
  a = in_names[layer.left[u]]
  return a if layer.right[u] < 0 else f"{a} * {in_names[layer.right[u]]}"


def _describe_layer(out, title, layer, p, in_names, per_unit_limit=64):
  if layer.is_mul:
    out.write(f"  {title}: {layer.out_dim} units, {layer.num_mul_units} Mul units (products of two activations; "
              "no parameters), the rest copies\n")
  else:
    out.write(f"  {title}: {layer.out_dim} units, {layer.num_connections} connections\n")
  names = _unit_names(layer.groups)
  for g in layer.groups:
    if layer.is_mul:
      shown = [f"{names[u]} = {_mul_formula(layer, u, in_names)}" for u in range(g.start, g.start + g.count)]
      out.write(f"    {'; '.join(shown[:4])}{'; ...' if len(shown) > 4 else ''}\n")
      out.write(f"    {'':8s}   # {g.meaning}\n")
      continue
    if g.count == 1:
      out.write(f"    {g.name:8s} = {_formula(layer, p['w'], p['b'], g.start, in_names)}\n")
      out.write(f"    {'':8s}   # {g.meaning}\n")
    else:
      first = _formula(layer, p["w"], p["b"], g.start, in_names) if layer.out_dim <= 20000 else "..."
      out.write(f"    {g.name}[0..{g.count - 1}]  e.g. {g.name}[0] = {first}\n")
      out.write(f"    {'':8s}   # {g.meaning}\n")
  return names


def explain(arch: str, n: int, n_max: int = 0, steps: int = 3) -> str:
  """The text --explain prints: every layer's units (formula read from the weights, and meaning), a trace of the
  first ``steps`` iterations with all activations, the iterations that change k, and the check against the loop."""
  if n_max == 0:
    n_max = max(16, 1 << max(int(n) - 1, 1).bit_length())
  net = ms.modsearch_net(arch, n_max)
  k_in = ms.kmax_int(n)
  out = io.StringIO()
  w = out.write
  w(f"ModSearch compiled as a '{arch}' ReLU network (n_max = {n_max}), explained on n = {n}.\n\n")
  w("Program (the seed's loop): K = floor(n**0.7); k = 0; for i = 1..K: if i*i mod n > k*k mod n: k = i; "
    "return k\n")
  w("Number format: float64; every weight, bias and activation is an integer below 2**52, where float64 "
    "arithmetic is exact.\n")
  w("Comparisons: 1[x >= 0] = relu(x + 1) - relu(x) for integer x. Selection by a 0/1 unit g: "
    f"g ? a : b = relu(a - M(1-g)) + relu(b - M g), M = {_fmt(net.m)}.\n")
  w(f"Inputs: n = {n} and K = kmax(n) = {k_in} (exact integer program mesabench.kernels.modsearch.kmax; "
    f"{k_in}**10 <= {n}**7 < {k_in + 1}**10).\n")
  w(f"Size: {net.num_params} parameters, {net.num_connections} connections, {net.num_units} units, depth "
    f"{net.depth} (at n = n_max).\n\n")
  in_names = ["n", "K"]
  if arch in ("recurrent", "unrolled"):
    w("Layer 0 (init): the state before the loop\n")
    state = _describe_layer(out, "init", net.init_layer, net.params["init"], in_names)
    title = "The cell (one loop iteration; the same weights every time)" if arch == "recurrent" else \
        "Copy j of the cell (shown for j = 1; copy j has i = j baked into its biases)"
    w(f"\n{title}: {ms.CELL_DEPTH} layers\n")
    names = state
    cell_p = net.params["cell"]
    if arch == "unrolled":
      cell_p = [{"w": q["w"][0], "b": q["b"][0]} for q in cell_p]
    for li, (layer, p) in enumerate(zip(net.layers, cell_p)):
      names = _describe_layer(out, f"L{li + 1}", layer, p, names)
    w("\nRead-out:\n")
    _describe_layer(out, "out", net.readout_layer, net.params["readout"], names)
  else:
    names = in_names
    params = net.params
    for li, (layer, p) in enumerate(zip(net.layers, params)):
      names = _describe_layer(out, f"L{li + 1}", layer, p, names)
  # Trace.
  trace = net.trace(n)
  w(f"\nTrace on n = {n} (activations, unit = value):\n")
  changes = []
  prev_k = 0
  for label, layer, acts in trace:
    names = _unit_names(layer.groups)
    step = int(label.split()[1]) if label.startswith("step ") else 0
    if step <= steps or arch not in ("recurrent", "unrolled"):
      if len(names) <= 40:
        vals = ", ".join(f"{nm}={_fmt(v)}" for nm, v in zip(names, acts))
      else:
        vals = f"{len(names)} units; " + ", ".join(f"{nm}={_fmt(v)}" for nm, v in list(zip(names, acts))[:12]) + ", ..."
      w(f"  {label:14s} {vals}\n")
    if label.endswith(f"L{ms.CELL_DEPTH}"):
      d = dict(zip(names, acts))
      k_now = int(d["k_new"] + d["k_old"])
      if k_now != prev_k:
        changes.append((step, k_now, int(d["r_new"] + d["r_old"])))
      prev_k = k_now
  if changes:
    w("\nIterations where the best changes (g = 1): i -> (k, k*k mod n)\n")
    w("  " + "; ".join(f"i={s}: k={k}, r={r}" for s, k, r in changes) + "\n")
  k_net = int(net.apply(np.asarray([n]))[0])
  k_loop = ms.seed_loop(n)
  w(f"\nAnswer: network k = {k_net}, seed loop k = {k_loop}: {'equal' if k_net == k_loop else 'DIFFERENT'}; "
    f"k*k mod n = {k_net * k_net % n}.\n")
  return out.getvalue()


def explain_polymax(grid_points: int = 9, refine_steps: int = 1, coeffs=(-0.0225, 0.335, -1.2025, 1.9, -1.0),
                    zoom: int = 4) -> str:
  """The text --explain --arch=polymax prints: every layer's units (formula read from the weights or the Mul
  operands, and meaning), each stage's winner on ``coeffs``, and the comparison with the exact oracle and the
  regret bound."""
  from mesabench.tasks import polymax as task_polymax  # the oracle, for the closing check only

  c = np.asarray([float(v) for v in coeffs], np.float64)
  if c.ndim != 1 or not 2 <= c.size <= pm.MAX_DEGREE + 1:
    raise ValueError(f"coeffs must hold 2..{pm.MAX_DEGREE + 1} numbers (degree 1..{pm.MAX_DEGREE}), got {c.size}")
  d = c.size - 1
  net = pm.polymax_net(grid_points, d, refine_steps, zoom, coeff_bound=max(pm.default_coeff_bound(d),
                                                                          2 * float(np.abs(c).sum())))
  out = io.StringIO()
  w = out.write
  w(f"PolyMax compiled into a network (G = {grid_points}, degree {d}, {refine_steps} zoom stage(s) of "
    f"{2 * zoom + 1} points), explained on P = {' + '.join(f'{v:g} x**{j}' for j, v in enumerate(c))}.\n\n")
  w("Program: x0 = first maximizer of P on the grid g/(G-1); per zoom stage: the first maximizer on the "
    f"{2 * zoom + 1}-point grid of {zoom}x finer spacing around the winner (window clamped into [0, 1]).\n")
  w(f"Number format: float64. Values v = P + C with C = {_fmt(net.offset)} lie in [2**{net.exponent}, "
    f"1.5 * 2**{net.exponent}), one binade, so y = 2**{52 - net.exponent} v - 2**52 is an exact integer and "
    "comparisons are ReLU steps on integers: 1[a >= b] = relu(a - b + 1) - relu(a - b).\n")
  w(f"Size: {net.num_params} parameters, {net.num_connections} connections, {net.num_mul_units} Mul units, "
    f"{net.num_units} units, depth {net.depth}, {net.flops_per_query()} FLOPs per query "
    f"({net.mul_flops_per_query()} of them Mul).\n\n")
  names = [f"c{j}" for j in range(d + 1)]
  for li, (layer, p) in enumerate(zip(net.layers, net.params)):
    names = _describe_layer(out, f"L{li + 1}", layer, p, names)
  winners = net.stage_winners(c[None])
  x, value = net.apply_with_value(c[None])
  w("\nTrace on P:\n")
  for r, xr in enumerate(winners):
    w(f"  stage {r} winner x = {float(xr[0]):.9f} (grid spacing 1/{net.grid_size(r)}), "
      f"P(x) = {float(np.polynomial.polynomial.polyval(xr[0], c)):.9f}\n")
  best, arg = (float(np.asarray(a)[0]) for a in task_polymax.solve(c.astype(np.float32)[None]))
  regret = best - float(np.polynomial.polynomial.polyval(x[0], c))
  w(f"\nAnswer: network x = {float(x[0]):.9f}, value {float(value[0]):.9f}; oracle argmax {arg:.9f}, "
    f"max {best:.9f}; regret {regret:.3g} <= bound {float(net.error_bound(c[None], 0)[0]):.3g} (grid), "
    f"{float(net.error_bound(c[None], refine_steps)[0]):.3g} (if the last window holds the maximizer).\n")
  return out.getvalue()


# --------------------------------------------------------------------------------------------------- size law


def fit_exponent(n_max: list[int], values: list[float], lo_exp: int = FIT_MIN_EXP) -> float:
  """Least-squares slope of log(values) against log(n_max) over n_max >= 2**lo_exp (positive values only)."""
  x = np.log2(np.asarray(n_max, np.float64))
  y = np.asarray(values, np.float64)
  keep = (x >= lo_exp) & (y > 0)
  if keep.sum() < 2:
    return float("nan")
  return float(np.polyfit(x[keep], np.log2(y[keep]), 1)[0])


def table_bits(n_max: int) -> int:
  """Bits of a lookup table holding the answer k for every n <= n_max: n_max * bit_length(K(n_max))."""
  return n_max * ms.kmax_int(n_max).bit_length()


def crossover(n_max: list[int], net_bits: list[float], tab_bits: list[float]) -> float | None:
  """The n_max beyond which the network stays smaller than the table on this grid (log-interpolated between the
  last grid point where it is not and the next); None if it never is at the grid's end, n_max[0] if always."""
  smaller = [a < b for a, b in zip(net_bits, tab_bits)]
  if not smaller[-1]:
    return None
  last_bad = max((i for i, s in enumerate(smaller) if not s), default=-1)
  if last_bad < 0:
    return float(n_max[0])
  i = last_bad
  d0 = math.log2(net_bits[i]) - math.log2(tab_bits[i])
  d1 = math.log2(net_bits[i + 1]) - math.log2(tab_bits[i + 1])
  x0, x1 = math.log2(n_max[i]), math.log2(n_max[i + 1])
  return float(2**(x0 + (x1 - x0) * d0 / (d0 - d1)))


def size_law(max_exp: int = 30, min_exp: int = 4, archs=ms.ARCHS, progress: bool = True) -> dict:
  """Sizes of every arch at n_max = 2**min_exp .. 2**max_exp (counted exactly from the built structure), fitted
  exponents over [2**10, 2**max_exp], the lookup table's size and the crossover n_max per arch."""
  exps = list(range(min_exp, max_exp + 1))
  grid = [2**e for e in exps]
  rows = {}
  items = [(a, n) for a in archs for n in grid]
  it = provenance.progress(items, desc="size law") if progress else items
  for arch, n in it:
    rows.setdefault(arch, []).append(ms.size_counts(arch, n))
  tab = [table_bits(n) for n in grid]
  out = {"n_max": grid, "table": {"entries": grid, "bits": tab,
                                  "bits_per_entry": [ms.kmax_int(n).bit_length() for n in grid]},
         "kmax_layer": [ms.kmax_layer_size(n) for n in grid], "archs": {}}
  for arch in archs:
    r = rows[arch]
    series = {key: [c[key] for c in r] for key in ("num_params", "num_connections", "num_units", "depth",
                                                   "flops_per_query")}
    bits = [c["num_params"] * BITS_PER_PARAM for c in r]
    fits = {key: fit_exponent(grid, v) for key, v in series.items()}
    digits = [ms.kmax_int(n).bit_length() for n in grid]
    fits["num_params_per_digit"] = fit_exponent(grid, [p / d for p, d in zip(series["num_params"], digits)])
    with_k = [p + k["num_params"] for p, k in zip(series["num_params"], out["kmax_layer"])]
    fits["num_params_with_kmax_layer"] = fit_exponent(grid, with_k)
    cross = crossover(grid, bits, tab)
    out["archs"][arch] = {"series": series, "bits": bits, "exponents": fits,
                          "expected_param_exponent": EXPECTED_PARAM_EXPONENT[arch],
                          "crossover_n_max": cross,
                          "crossover_log2": None if cross is None else math.log2(cross)}
  table_fit = fit_exponent(grid, tab)
  out["table"]["exponent"] = table_fit
  return out


def polymax_size_law(max_log2: int = 16, min_log2: int = 2, degree: int = 6, refine_steps=(0, 2),
                     zoom: int = 4, fit_min_log2: int = 6) -> dict:
  """Sizes of ``polymax_net(G, degree, R, zoom)`` for G = 2**k + 1, k = min_log2..max_log2, per R in
  ``refine_steps``, with fitted exponents against G (over G > 2**fit_min_log2; with refinement the fixed cost of
  the zoom stages, about 1,300 parameters each at degree 6, flattens the small-G end) and the regret bound per
  unit of
  M2 = sum_j j (j-1) |c_j|: h_0**2 / 8 (unconditional) and h_R**2 / 8 (once the windows hold the maximizer;
  the rounding term 2 (R+1) eta is omitted: below 1e-10 at degree 6)."""
  grid = [2**k + 1 for k in range(min_log2, max_log2 + 1)]
  out = {"grid_points": grid, "degree": degree, "zoom": zoom, "refine": {}}
  for r in refine_steps:
    series = {k: [] for k in ("num_params", "num_connections", "num_mul_units", "num_units", "depth",
                              "flops_per_query", "mul_flops_per_query")}
    for g in grid:
      net = pm.polymax_net(g, degree, r, zoom)
      for k in series:
        v = getattr(net, k)
        series[k].append(int(v() if callable(v) else v))
    h0 = [1.0 / (g - 1) for g in grid]
    out["refine"][str(r)] = {
        "series": series,
        "exponents": {k: fit_exponent(grid, v, lo_exp=fit_min_log2) for k, v in series.items()},
        "bound_per_m2_grid": [h * h / 8 for h in h0],
        "bound_per_m2": [(h / zoom**r)**2 / 8 for h in h0]}
  return out


def plot(result: dict, path: str) -> str:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  grid = np.asarray(result["n_max"], np.float64)
  keys = [("num_params", "parameters"), ("num_connections", "connections"), ("depth", "depth (layers)"),
          ("flops_per_query", "FLOPs per query (n = n_max)")]
  fig, all_axes = plt.subplots(2, 3, figsize=(18, 9))
  axes = all_axes[:, :2]
  colors = {"recurrent": "C0", "unrolled": "C1", "wide": "C2", "banded": "C3"}
  for ax, (key, label) in zip([axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]], keys):
    for arch, d in result["archs"].items():
      ax.loglog(grid, d["series"][key], "o-", ms=3, base=2, color=colors[arch],
                label=f"{arch} (slope {d['exponents'][key]:.2f})")
    if key == "num_params":
      ax.loglog(grid, np.asarray(result["table"]["bits"]) / BITS_PER_PARAM, "k--", base=2,
                label="lookup table, in 64-bit words")
    ax.set_xlabel("n_max")
    ax.set_ylabel(label)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
  if "polymax" in result:
    pmr = result["polymax"]
    g = np.asarray(pmr["grid_points"], np.float64)
    ax_size, ax_bound = all_axes[0, 2], all_axes[1, 2]
    for i, (r, d) in enumerate(pmr["refine"].items()):
      ax_size.loglog(g, d["series"]["num_params"], "o-", ms=3, base=2, color=f"C{4 + i}",
                     label=f"params, R = {r} (slope {d['exponents']['num_params']:.2f})")
      if int(r):
        ax_size.loglog(g, d["series"]["num_mul_units"], "s:", ms=3, base=2, color=f"C{4 + i}",
                       label=f"Mul units, R = {r}")
      ax_bound.loglog(g, d["bound_per_m2"], "o-", ms=3, base=2, color=f"C{4 + i}",
                      label=f"R = {r}: h_R^2/8 (windows hold the max)")
    ax_bound.loglog(g, pmr["refine"]["0"]["bound_per_m2_grid"], "k--", base=2, label="h_0^2/8 (always)")
    ax_size.set_title(f"PolyMax net, degree {pmr['degree']}, zoom {pmr['zoom']}", fontsize=10)
    ax_size.set_xlabel("grid points G")
    ax_size.set_ylabel("count")
    ax_bound.set_xlabel("grid points G")
    ax_bound.set_ylabel("regret bound / sum_j j(j-1)|c_j|")
    for ax in (ax_size, ax_bound):
      ax.grid(True, which="major", alpha=0.3)
      ax.legend(fontsize=8)
  cross = ", ".join(f"{a}: " + ("never" if d["crossover_n_max"] is None else f"2^{d['crossover_log2']:.1f}")
                    for a, d in result["archs"].items())
  fig.suptitle(f"ModSearch compiled into ReLU networks: size vs n_max (fit over n_max >= 2^{FIT_MIN_EXP})\n"
               f"network smaller than the memorizing table beyond n_max = {cross}", fontsize=11)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.explain == FLAGS.size_law:
    raise app.UsageError("pass exactly one of --explain and --size_law")
  if FLAGS.explain:
    if FLAGS.arch == "polymax":
      sys.stdout.write(explain_polymax(FLAGS.grid_points, FLAGS.refine_steps, FLAGS.coeffs, FLAGS.zoom))
      return
    if not 1 <= FLAGS.n <= ms.N_MAX:
      raise app.UsageError(f"--n must be in [1, {ms.N_MAX}], got {FLAGS.n}")
    sys.stdout.write(explain(FLAGS.arch, FLAGS.n, FLAGS.n_max, FLAGS.steps))
    return
  if not 10 <= FLAGS.max_exp <= 30:
    raise app.UsageError(f"--max_exp must be in [10, 30], got {FLAGS.max_exp}")
  result = size_law(FLAGS.max_exp)
  result["polymax"] = polymax_size_law()
  models = {a: {"id": f"compiled/{a}", "k_source": "input (kernels.modsearch.kmax)"} for a in ms.ARCHS}
  models["polymax"] = {"id": "compiled/polymax", "degree": result["polymax"]["degree"],
                       "zoom": result["polymax"]["zoom"], "refine_steps": list(result["polymax"]["refine"])}
  doc = {"schema_version": SCHEMA_VERSION,
         "config": {"task": {"id": "ModSearch-v0", "n_max_grid": result["n_max"]},
                    "polymax_task": {"id": "PolyMax-v0", "degree": result["polymax"]["degree"],
                                     "grid_points": result["polymax"]["grid_points"]},
                    "models": models,
                    "bits_per_param": BITS_PER_PARAM, "fit_min_n_max": 2**FIT_MIN_EXP, "seed": None,
                    "steps": None},
         "environment": provenance.environment(),
         "command": provenance.command_line("mesabench.benchmarks.compiled"),
         "figures": result}
  json_path = provenance.write_json(os.path.join(FLAGS.out, "compiled_size_law.json"), doc)
  png_path = plot(result, os.path.join(FLAGS.out, "compiled_size_law.png"))
  print(f"{'arch':10s} {'params exp':>10s} {'(per digit)':>11s} {'conn exp':>9s} {'depth exp':>9s} "
        f"{'flops exp':>9s} {'params @max':>12s} {'crossover n_max':>16s}")
  for arch, d in result["archs"].items():
    e = d["exponents"]
    cross = "never" if d["crossover_n_max"] is None else f"2^{d['crossover_log2']:.2f}"
    print(f"{arch:10s} {e['num_params']:10.3f} {e['num_params_per_digit']:11.3f} {e['num_connections']:9.3f} "
          f"{e['depth']:9.3f} {e['flops_per_query']:9.3f} {d['series']['num_params'][-1]:12d} {cross:>16s}")
  print(f"lookup table: {result['table']['bits'][-1]} bits at n_max = 2^{FLAGS.max_exp} "
        f"(exponent {result['table']['exponent']:.3f})")
  pmr = result["polymax"]
  for r, d in pmr["refine"].items():
    print(f"polymax (degree {pmr['degree']}, R = {r}, zoom {pmr['zoom']}): params exponent vs G "
          f"{d['exponents']['num_params']:.3f}; at G = {pmr['grid_points'][-1]}: {d['series']['num_params'][-1]} "
          f"params, {d['series']['num_mul_units'][-1]} Mul units, depth {d['series']['depth'][-1]}, "
          f"bound {d['bound_per_m2'][-1]:.3g} * M2")
  print(f"wrote {json_path} and {png_path}")


if __name__ == "__main__":
  app.run(main)
