"""How the compiled networks' sizes grow: ModSearch against n_max (2**4 .. 2**30), PolyMax against the grid size.

``size_law`` counts parameters, connections, units, depth and FLOPs per query of the four ModSearch networks for
n_max = 2**min_exp .. 2**max_exp (exactly, from the built structure), fits power-law exponents over
[2**10, 2**max_exp], compares with a lookup table memorizing the answer for every n <= n_max (n_max entries of
bit_length(K(n_max)) bits, against 64 bits per float64 network parameter) and finds the crossover n_max beyond which
each network is smaller. ``polymax_size_law`` counts the PolyMax network (degree 6, zoom 4) for G = 2**2 + 1 ..
2**16 + 1 grid points with 0 and 2 refinement stages, with the regret bound per unit of M2 = sum_j j (j-1) |c_j|.
``report`` assembles both into the result document (config, environment, command, figures), ``summary`` is its
text table and ``plot`` its picture.
"""
from __future__ import annotations

import math
import os

import numpy as np
import tqdm
from matplotlib import figure

from mesabench.models.compiled import modsearch as ms
from mesabench.models.compiled import polymax as pm

SCHEMA_VERSION = 1
BITS_PER_PARAM = 64
FIT_MIN_EXP = 10
MIN_MAX_EXP, MAX_MAX_EXP = 10, 30
EXPECTED_PARAM_EXPONENT = {"recurrent": 0.0, "unrolled": 0.7, "wide": 0.7, "banded": 0.4}


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
  it = tqdm.tqdm(items, desc="size law", disable=not progress)
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
  """Writes the size-law picture (PNG) of ``result`` (``size_law`` plus "polymax") to ``path``; returns the path."""
  grid = np.asarray(result["n_max"], np.float64)
  keys = [("num_params", "parameters"), ("num_connections", "connections"), ("depth", "depth (layers)"),
          ("flops_per_query", "FLOPs per query (n = n_max)")]
  fig = figure.Figure(figsize=(18, 9))
  all_axes = fig.subplots(2, 3)
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
  tmp = path + ".tmp.png"
  fig.savefig(tmp, dpi=110)
  os.replace(tmp, path)
  return path




def measure(max_exp: int = 30, progress: bool = True) -> dict:
  """The figures of the committed size law: ``size_law(max_exp)`` with ``polymax_size_law()`` under "polymax"."""
  if isinstance(max_exp, bool) or not isinstance(max_exp, int) or not MIN_MAX_EXP <= max_exp <= MAX_MAX_EXP:
    raise ValueError(f"max_exp must be an integer in [{MIN_MAX_EXP}, {MAX_MAX_EXP}], got {max_exp!r}")
  result = size_law(max_exp, progress=progress)
  result["polymax"] = polymax_size_law()
  return result


def report(result: dict, environment: dict, command: str) -> dict:
  """The result document (schema_version, config, environment, command, figures) of ``measure``'s result."""
  models = {a: {"id": f"compiled/{a}", "k_source": "input (kernels.modsearch.kmax)"} for a in result["archs"]}
  models["polymax"] = {"id": "compiled/polymax", "degree": result["polymax"]["degree"],
                       "zoom": result["polymax"]["zoom"], "refine_steps": list(result["polymax"]["refine"])}
  return {"schema_version": SCHEMA_VERSION,
          "config": {"task": {"id": "ModSearch-v0", "n_max_grid": result["n_max"]},
                     "polymax_task": {"id": "PolyMax-v0", "degree": result["polymax"]["degree"],
                                      "grid_points": result["polymax"]["grid_points"]},
                     "models": models,
                     "bits_per_param": BITS_PER_PARAM, "fit_min_n_max": 2**FIT_MIN_EXP, "seed": None,
                     "steps": None},
          "environment": environment,
          "command": command,
          "figures": result}


def summary(result: dict) -> str:
  """The text table of a ``measure`` result: fitted exponents, sizes at the largest n_max, crossovers."""
  lines = [f"{'arch':10s} {'params exp':>10s} {'(per digit)':>11s} {'conn exp':>9s} {'depth exp':>9s} "
           f"{'flops exp':>9s} {'params @max':>12s} {'crossover n_max':>16s}"]
  for arch, d in result["archs"].items():
    e = d["exponents"]
    cross = "never" if d["crossover_n_max"] is None else f"2^{d['crossover_log2']:.2f}"
    lines.append(f"{arch:10s} {e['num_params']:10.3f} {e['num_params_per_digit']:11.3f} {e['num_connections']:9.3f} "
                 f"{e['depth']:9.3f} {e['flops_per_query']:9.3f} {d['series']['num_params'][-1]:12d} {cross:>16s}")
  lines.append(f"lookup table: {result['table']['bits'][-1]} bits at n_max = 2^{int(math.log2(result['n_max'][-1]))} "
               f"(exponent {result['table']['exponent']:.3f})")
  pmr = result.get("polymax")
  for r, d in (pmr["refine"].items() if pmr else ()):
    lines.append(f"polymax (degree {pmr['degree']}, R = {r}, zoom {pmr['zoom']}): params exponent vs G "
                 f"{d['exponents']['num_params']:.3f}; at G = {pmr['grid_points'][-1]}: "
                 f"{d['series']['num_params'][-1]} params, {d['series']['num_mul_units'][-1]} Mul units, depth "
                 f"{d['series']['depth'][-1]}, bound {d['bound_per_m2'][-1]:.3g} * M2")
  return "\n".join(lines)
