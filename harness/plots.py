"""Pictures of results: the phase diagram of ``harness.transitions`` (PNG, matplotlib, Agg backend).

The phase diagram: log2 N (x) by model size (y); colour = the seed-mean generalization gap on the memorizer's
scale, (unseen - seen) / ref(N) (0: unseen matches seen; 1: as large as the memorizer's), clipped to [-0.1, 1];
on top, N*_gen (circles) and N*_search (diamonds) with their seed bootstrap CIs as error bars, joined across sizes,
and both in each row's label ("> largest N" when a family does not transition within the grid, "n/a" when
N*_search was not computed).
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from mesabench.harness import transitions as tr

GEN_COLOUR = "tab:cyan"
SEARCH_COLOUR = "tab:pink"


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of the phase diagram: a label, the parameter count, the gap fraction at each grid size, and the two
  onsets (``search`` None when not computed)."""
  label: str
  params: int
  gap_fraction: tuple[float, ...]
  gen: tr.Onset
  search: tr.Onset | None


def rows_of(transitions: Sequence[tr.Transition], grid: Sequence[int]) -> list[Row]:
  """Diagram rows of ``find_transition`` results, on the grid's pool sizes."""
  out = []
  for t in transitions:
    frac = dict(zip(t.sweep.pool_sizes.tolist(), t.gen.gap_fraction))
    out.append(Row(t.sweep.label, t.sweep.params, tuple(frac[int(n)] for n in grid), t.gen.onset,
                   None if t.search is None else t.search.onset))
  return out


def rows_from_json(doc: Mapping[str, Any]) -> list[Row]:
  """Diagram rows of a transitions.json document (``PhaseDiagram.to_json``)."""
  grid = [int(n) for n in doc["config"]["pool_sizes"]]
  out = []
  for r in doc["rows"]:
    frac = dict(zip([int(n) for n in r["sweep"]["pool_sizes"]], r["n_star_gen"]["gap_fraction"]))
    out.append(Row(r["label"], int(r["params"]), tuple(math.nan if frac[n] is None else float(frac[n]) for n in grid),
                   tr.Onset.from_json(r["n_star_gen"]),
                   None if r["n_star_search"] is None else tr.Onset.from_json(r["n_star_search"])))
  return out


def _onset_text(name: str, onset: tr.Onset | None, largest: int) -> str:
  if onset is None:
    return f"{name} n/a"
  if not math.isfinite(onset.n_star):
    return f"{name} > {largest}"
  lo, hi = onset.ci
  return f"{name} = {onset.n_star:.0f} [{lo:.0f}, {'inf' if not math.isfinite(hi) else f'{hi:.0f}'}]"


def plot_phase_diagram(path: str, rows: Sequence[Row], grid: Sequence[int], *, title: str = "") -> str:
  """Writes the phase diagram PNG of ``rows`` (bottom to top) over the pool sizes ``grid``; returns ``path``."""
  if not rows:
    raise ValueError("rows must hold at least one Row")
  grid = np.asarray(grid, np.float64)
  if grid.ndim != 1 or grid.size < 1 or np.any(grid < 1) or np.any(np.diff(grid) <= 0):
    raise ValueError(f"grid must be strictly increasing positive pool sizes, got {grid.tolist()}")
  for r in rows:
    if len(r.gap_fraction) != grid.size:
      raise ValueError(f"every row must have one gap fraction per grid size ({grid.size}), got "
                       f"{len(r.gap_fraction)} for {r.label!r}")
  matplotlib.use("Agg")
  frac = np.array([r.gap_fraction for r in rows], np.float64)
  x = np.log2(grid)
  fig, ax = plt.subplots(figsize=(8.0, 1.3 + 0.95 * len(rows)))
  dx = (x[1] - x[0]) / 2 if x.size > 1 else 0.5
  extent = (x[0] - dx, x[-1] + dx, -0.5, len(rows) - 0.5)
  im = ax.imshow(np.clip(frac, -0.1, 1.0), aspect="auto", origin="lower", extent=extent, cmap="magma_r",
                 vmin=-0.1, vmax=1.0)
  for j in range(len(rows)):
    for i in range(x.size):
      ax.text(x[i], j, f"{frac[j, i]:.2g}", ha="center", va="center", fontsize=7,
              color="white" if frac[j, i] > 0.5 else "black")
  for name, attr, marker, colour, shift in (("N*_gen", "gen", "o", GEN_COLOUR, -0.18),
                                            ("N*_search", "search", "D", SEARCH_COLOUR, 0.18)):
    px, py = [], []
    for j, r in enumerate(rows):
      onset = getattr(r, attr)
      if onset is None or not math.isfinite(onset.n_star):
        continue
      xs = math.log2(onset.n_star)
      lo = math.log2(onset.ci[0]) if math.isfinite(onset.ci[0]) else xs
      hi = math.log2(onset.ci[1]) if math.isfinite(onset.ci[1]) else extent[1]
      ax.errorbar([xs], [j + shift], xerr=[[xs - lo], [hi - xs]], fmt=marker, color=colour, ecolor=colour,
                  capsize=3, label=name if not px else None)
      px.append(xs)
      py.append(j + shift)
    if len(px) > 1:
      ax.plot(px, py, "-", color=colour, lw=1.2)
  largest = int(grid[-1])
  ax.set_yticks(range(len(rows)))
  ax.set_yticklabels([f"{r.label}\n{r.params:,} params\n{_onset_text('N*_gen', r.gen, largest)}\n"
                      f"{_onset_text('N*_search', r.search, largest)}" for r in rows], fontsize=6.5)
  ax.set_xticks(x)
  ax.set_xticklabels([f"2^{int(v)}" if float(v).is_integer() else f"{2**v:.0f}" for v in x])
  ax.set_xlabel("pool size N (distinct training instances)")
  fig.colorbar(im, ax=ax, label="(unseen - seen) / memorizer unseen")
  if ax.get_legend_handles_labels()[0]:
    ax.legend(loc="upper left", fontsize=7, framealpha=0.7)
  ax.set_title(title, fontsize=8)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def plot_from_json(doc: Mapping[str, Any], path: str) -> str:
  """The phase diagram of a transitions.json document."""
  cfg = doc["config"]
  params = ", ".join(f"{k}={v}" for k, v in cfg["task"]["params"].items())
  title = (f"{cfg['task']['id']}: generalization gap / memorizer's, {cfg['model_id']} x "
           f"{len(cfg['model_sizes'])} sizes, {len(cfg['seeds'])} seeds, {cfg['train']['steps']} steps\n"
           f"{params}")
  return plot_phase_diagram(path, rows_from_json(doc), cfg["pool_sizes"], title=title)
