"""Where memorization gives way to search: the pool size N* at which a model family starts to generalize.

For a task, a model family and a model size, runs are trained on pools of N distinct instances (a log grid, refined
by bisection near the change) with several seeds, all vmapped in one jit by the harness (``harness.train``),
and evaluated on the pool (seen) and on held-out instances (``task.sample_outside``: unseen).

Definition of N* (``Criterion``; seed-mean losses at each N):
  * generalizes(N): (unseen + f) <= (1 + gap_tolerance) * (seen + f)  -- unseen loss within 10 % of seen loss --
    AND unseen <= (1 - margin) * lookup_unseen(N)                     -- clearly (25 %) below the memorizer's
    held-out loss (``lookup``, nearest neighbour over the same pool, same seeds) --
    with the floor f = floor_fraction * lookup_unseen(N) (1 % of the memorizer's, i.e. about chance, loss) so that
    two near-zero losses compare as equal rather than as a ratio of noise.
  * N* = the smallest measured N from which generalizes(N') holds at every measured N' >= N (a sustained
    transition, robust to one noisy grid point); infinity when the largest N does not generalize.
  * CI: percentile bootstrap over seeds (resample the seed columns of seen and unseen jointly, recompute the mean
    curves and N*); reported on the measured grid, "inf" where resamples do not transition.

Capacity view (per pool size, across model sizes): the parameter count at which the train-test gap opens (the
smallest size whose unseen/seen ratio exceeds 1 + gap_tolerance), and bits memorized per parameter:
bits(N) = N * max(0, acc_seen - acc_unseen) * answer_bits / params, answer_bits the mean log2 of the number of
legal answers (ModSearch: log2(K + 1); PolyMax: log2(1 / (2 * hit radius)), the x's the hit criterion tells
apart); each pool answer a model gets right beyond what it gets right unseen is
counted as a stored answer of that entropy. The maximum over N is the family's measured memorization capacity (a
lower bound when even the largest pool is stored without error).

``python -m mesabench.benchmarks.transitions`` runs the ModSearch phase diagram (6 pool sizes x 4 model sizes x 3
seeds at n < 2**10 by default), times it against the same runs trained one by one (sequential), and writes
results/transitions.json and results/transitions.png; ``--task=PolyMax-v0 --task_params='{"degree": 4}'`` runs the
same diagram on PolyMax (success = hit rate instead of exact accuracy).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable, Sequence

import jax
import matplotlib
import matplotlib.pyplot as plt
from matplotlib.colors import LogNorm
import numpy as np

from mesabench import models
from mesabench import tasks
from mesabench.harness import leaderboard
from mesabench.harness import provenance
from mesabench.harness import suite
from mesabench.harness import train
from mesabench.tasks import polymax

SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Criterion:
  """Thresholds of the N* definition (module docstring). gap_tolerance in (0, 1], margin in [0, 1),
  floor_fraction in (0, 1)."""
  gap_tolerance: float = 0.10
  margin: float = 0.25
  floor_fraction: float = 0.01

  def __post_init__(self):
    for name, lo, hi, lo_open, hi_open in (("gap_tolerance", 0.0, 1.0, True, False), ("margin", 0.0, 1.0, False, True),
                                           ("floor_fraction", 0.0, 1.0, True, True)):
      v = getattr(self, name)
      if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v) or v < lo or v > hi or (
          lo_open and v == lo) or (hi_open and v == hi):
        raise ValueError(f"{name} must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}, got {v!r}")


@dataclasses.dataclass
class Sweep:
  """Measurements of one model (family + size) over pool sizes and seeds.

  Attributes:
    pool_sizes: int [P], strictly increasing.
    seen, unseen: mean task loss on the pool and on held-out instances, float64 [P, S] (S seeds, same order at
      every N).
    seen_accuracy, unseen_accuracy: float64 [P, S] (NaN where the task has no accuracy).
    params: parameter count of the model (the stored numbers, for ``lookup``).
    label: a name for tables and plots.
  """
  pool_sizes: np.ndarray
  seen: np.ndarray
  unseen: np.ndarray
  seen_accuracy: np.ndarray
  unseen_accuracy: np.ndarray
  params: int = 0
  label: str = ""

  def __post_init__(self):
    self.pool_sizes = np.asarray(self.pool_sizes, np.int64)
    if self.pool_sizes.ndim != 1 or self.pool_sizes.size < 1 or np.any(self.pool_sizes < 1) or np.any(
        np.diff(self.pool_sizes) <= 0):
      raise ValueError(f"pool_sizes must be a strictly increasing 1-D array of positive sizes, got "
                       f"{self.pool_sizes.tolist()}")
    shape = None
    for name in ("seen", "unseen", "seen_accuracy", "unseen_accuracy"):
      arr = np.asarray(getattr(self, name), np.float64)
      if arr.ndim != 2 or arr.shape[0] != self.pool_sizes.size or (shape is not None and arr.shape != shape):
        raise ValueError(f"{name} must have shape [len(pool_sizes)={self.pool_sizes.size}, seeds] like seen, got "
                         f"{arr.shape}")
      if name in ("seen", "unseen") and (not np.all(np.isfinite(arr)) or np.any(arr < 0)):
        raise ValueError(f"{name} must hold finite losses in [0, inf)")
      shape = arr.shape
      setattr(self, name, arr)

  @property
  def num_seeds(self) -> int:
    return self.seen.shape[1]

  def merge(self, other: "Sweep") -> "Sweep":
    """The union of two sweeps of the same model and seeds, sorted by pool size (``other`` wins on overlap)."""
    if other.num_seeds != self.num_seeds:
      raise ValueError(f"other must have {self.num_seeds} seeds, got {other.num_seeds}")
    rows = {int(n): (self, i) for i, n in enumerate(self.pool_sizes)}
    rows.update({int(n): (other, i) for i, n in enumerate(other.pool_sizes)})
    sizes = sorted(rows)
    pick = lambda name: np.stack([getattr(rows[n][0], name)[rows[n][1]] for n in sizes])
    return Sweep(np.asarray(sizes), pick("seen"), pick("unseen"), pick("seen_accuracy"), pick("unseen_accuracy"),
                 self.params, self.label)

  def at(self, pool_sizes: Sequence[int]) -> "Sweep":
    """The rows of the given pool sizes (each must have been measured)."""
    idx = [int(np.nonzero(self.pool_sizes == n)[0][0]) if n in self.pool_sizes else -1 for n in pool_sizes]
    if min(idx) < 0:
      raise ValueError(f"pool_sizes must be measured sizes {self.pool_sizes.tolist()}, got {list(pool_sizes)}")
    return Sweep(self.pool_sizes[idx], self.seen[idx], self.unseen[idx], self.seen_accuracy[idx],
                 self.unseen_accuracy[idx], self.params, self.label)

  def to_json(self) -> dict[str, Any]:
    return {"label": self.label, "params": int(self.params), "pool_sizes": self.pool_sizes.tolist(),
            "seen_loss": self.seen.tolist(), "unseen_loss": self.unseen.tolist(),
            "seen_accuracy": self.seen_accuracy.tolist(), "unseen_accuracy": self.unseen_accuracy.tolist()}


# --------------------------------------------------------------------------------------------------------- N*


def loss_ratio(seen, unseen, lookup_unseen, criterion: Criterion = Criterion()) -> np.ndarray:
  """(unseen + f) / (seen + f) with f = floor_fraction * lookup_unseen (broadcast elementwise)."""
  f = criterion.floor_fraction * np.asarray(lookup_unseen, np.float64)
  return (np.asarray(unseen, np.float64) + f) / (np.asarray(seen, np.float64) + f)


def generalizes(seen, unseen, lookup_unseen, criterion: Criterion = Criterion()) -> np.ndarray:
  """bool (broadcast shape): the two conditions of the N* definition hold (module docstring)."""
  ratio = loss_ratio(seen, unseen, lookup_unseen, criterion)
  below = np.asarray(unseen, np.float64) <= (1.0 - criterion.margin) * np.asarray(lookup_unseen, np.float64)
  return (ratio <= 1.0 + criterion.gap_tolerance) & below


def sustained_onset(pool_sizes, ok) -> float:
  """The smallest pool size from which ``ok`` (bool [P]) holds at every larger size; inf when ok[-1] is False."""
  ok = np.asarray(ok, bool)
  if ok.shape != np.shape(pool_sizes) or ok.ndim != 1:
    raise ValueError(f"ok must have the shape of pool_sizes {np.shape(pool_sizes)}, got {ok.shape}")
  if not ok[-1]:
    return math.inf
  first = ok.size - int(np.argmin(ok[::-1])) if not ok.all() else 0
  return float(np.asarray(pool_sizes)[first])


def n_star(sweep: Sweep, lookup: Sweep, criterion: Criterion = Criterion(), *, num_resamples: int = 1000,
           level: float = 0.95, seed: int = 0) -> dict[str, Any]:
  """N* of ``sweep`` against the memorizer ``lookup`` (measured at the same pool sizes), with a seed bootstrap CI.

  Returns {"n_star" (float, inf: never), "ci" [low, high] (percentiles of the bootstrap N*s, inverted-CDF method,
  so they are measured sizes or inf), "per_seed" (N* of each seed's own curve), "transition_probability" (the
  fraction of resamples that transition within the grid), "ratio" (seed-mean unseen/seen ratio per N),
  "generalizes" (per N)}. ``lookup`` losses are averaged over its seeds (the threshold is not resampled).
  """
  if not np.array_equal(sweep.pool_sizes, lookup.pool_sizes):
    raise ValueError(f"lookup must be measured at the sweep's pool sizes {sweep.pool_sizes.tolist()}, got "
                     f"{lookup.pool_sizes.tolist()}")
  if not 0.5 <= level < 1:
    raise ValueError(f"level must be in [0.5, 1), got {level}")
  if isinstance(num_resamples, bool) or not isinstance(num_resamples, (int, np.integer)) or num_resamples < 1:
    raise ValueError(f"num_resamples must be a positive integer, got {num_resamples!r}")
  ref = lookup.unseen.mean(axis=1)
  seen_m, unseen_m = sweep.seen.mean(axis=1), sweep.unseen.mean(axis=1)
  ok = generalizes(seen_m, unseen_m, ref, criterion)
  point = sustained_onset(sweep.pool_sizes, ok)
  rng = np.random.default_rng(seed)
  s = sweep.num_seeds
  idx = rng.integers(0, s, size=(num_resamples, s))
  boots = np.array([sustained_onset(sweep.pool_sizes, generalizes(sweep.seen[:, i].mean(1), sweep.unseen[:, i].mean(1),
                                                                   ref, criterion)) for i in idx])
  alpha = (1 - level) / 2
  lo, hi = np.quantile(boots, [alpha, 1 - alpha], method="inverted_cdf")
  per_seed = [sustained_onset(sweep.pool_sizes, generalizes(sweep.seen[:, j], sweep.unseen[:, j], ref, criterion))
              for j in range(s)]
  return {"n_star": point, "ci": [float(lo), float(hi)], "per_seed": per_seed,
          "transition_probability": float(np.mean(np.isfinite(boots))),
          "ratio": loss_ratio(seen_m, unseen_m, ref, criterion).tolist(), "generalizes": ok.tolist(),
          "lookup_unseen": ref.tolist(), "level": level, "criterion": dataclasses.asdict(criterion)}


Measure = Callable[[Sequence[int], Sequence[int]], Sweep]


def find_transition(measure: Measure, lookup_measure: Measure, pool_sizes: Sequence[int], seeds: Sequence[int], *,
                    criterion: Criterion = Criterion(), refine_steps: int = 2, num_resamples: int = 1000,
                    level: float = 0.95, seed: int = 0) -> dict[str, Any]:
  """N* on a grid refined by bisection near the change.

  ``measure(pool_sizes, seeds) -> Sweep`` trains and evaluates the model (all sizes and seeds in one vmapped call
  through the harness, or a synthetic family in tests); ``lookup_measure`` the same for the memorizer. After the
  grid, while N* (seed means) is finite and not the first grid point, the geometric midpoint between N* and the
  measured size below it is measured (``refine_steps`` times, at most; stops when no integer lies between).
  Returns {"sweep", "lookup" (merged Sweeps), "refined" (the sizes added), **n_star(...)}.
  """
  if isinstance(refine_steps, bool) or not isinstance(refine_steps, (int, np.integer)) or not 0 <= refine_steps <= 16:
    raise ValueError(f"refine_steps must be an integer in [0, 16], got {refine_steps!r}")
  grid = sorted(set(int(n) for n in pool_sizes))
  if not grid or grid[0] < 1:
    raise ValueError(f"pool_sizes must hold positive sizes, got {list(pool_sizes)}")
  seeds = list(seeds)
  sweep, lookup = measure(grid, seeds), lookup_measure(grid, seeds)
  refined = []
  for _ in range(refine_steps):
    result = n_star(sweep, lookup, criterion, num_resamples=1, seed=seed)
    onset = result["n_star"]
    if not math.isfinite(onset) or onset == sweep.pool_sizes[0]:
      break
    below = int(sweep.pool_sizes[np.searchsorted(sweep.pool_sizes, onset) - 1])
    mid = int(round(math.sqrt(below * onset)))
    if mid <= below or mid >= onset:
      break
    sweep, lookup = sweep.merge(measure([mid], seeds)), lookup.merge(lookup_measure([mid], seeds))
    refined.append(mid)
  out = n_star(sweep, lookup, criterion, num_resamples=num_resamples, level=level, seed=seed)
  out.update(sweep=sweep, lookup=lookup, refined=refined)
  return out


# ---------------------------------------------------------------------------------------------- capacity view


def capacity(sweeps: Sequence[Sweep], lookup: Sweep, answer_bits: float, criterion: Criterion = Criterion()
             ) -> dict[str, Any]:
  """The capacity view of model sizes ``sweeps`` (same pool sizes, ascending params) against ``lookup``.

  Returns {"gap_opens_at_params": {N: smallest params whose seed-mean unseen/seen ratio > 1 + gap_tolerance, or
  None}, "bits_per_param": [size][N] (module docstring), "max_bits_per_param": [size], "argmax_pool_size": [size],
  "answer_bits"}.
  """
  if not sweeps:
    raise ValueError("sweeps must hold at least one Sweep")
  if not answer_bits > 0:
    raise ValueError(f"answer_bits must be in (0, inf), got {answer_bits}")
  sizes = sweeps[0].pool_sizes
  for s in sweeps:
    if not np.array_equal(s.pool_sizes, sizes) or s.params < 1:
      raise ValueError("every sweep must share pool_sizes and have params >= 1")
  ref = lookup.at(sizes.tolist()).unseen.mean(1)
  opens = {}
  for i, n in enumerate(sizes):
    ratios = [loss_ratio(s.seen[i].mean(), s.unseen[i].mean(), ref[i], criterion) for s in sweeps]
    open_at = [s.params for s, r in zip(sweeps, ratios) if r > 1 + criterion.gap_tolerance]
    opens[int(n)] = int(min(open_at)) if open_at else None
  bits = []
  for s in sweeps:
    excess = np.clip(np.nan_to_num(s.seen_accuracy.mean(1) - s.unseen_accuracy.mean(1)), 0.0, 1.0)
    bits.append((sizes * excess * answer_bits / s.params).tolist())
  best = [int(np.argmax(b)) for b in bits]
  return {"gap_opens_at_params": opens, "bits_per_param": bits,
          "max_bits_per_param": [b[i] for b, i in zip(bits, best)],
          "argmax_pool_size": [int(sizes[i]) for i in best], "answer_bits": float(answer_bits)}


# --------------------------------------------------------------------------------------------- harness adapter


def harness_measure(task, model, train_config, *, label: str = "") -> Measure:
  """A ``Measure`` that trains ``model`` on ``task`` through ``harness.train.run_experiment``: every (pool size,
  seed) run of one call in ONE vmapped jit. Records each call's timing in ``measure.calls``."""

  calls = []

  def measure(pool_sizes, seeds):
    runs = [train.Run(int(s), int(n)) for n in pool_sizes for s in seeds]
    t0 = time.perf_counter()
    results = train.run_experiment(task, model, runs, train_config)
    calls.append({"runs": len(runs), "seconds": time.perf_counter() - t0, "timing": results[0]["timing"],
                  "results": results})
    return sweep_from_results(results, pool_sizes, seeds, label=label)

  measure.calls = calls
  return measure


def leaderboard_entries(task, model, train_config, calls, seeds) -> list[dict[str, Any]]:
  """Leaderboard entries (``harness.leaderboard.make_entry``), one per pool size, from a measure's calls."""

  task_desc = {"id": task.task_id, "params": task.params()}
  model_desc = {"id": model.model_id, "config": model.config_dict()}
  train_desc = train_config.to_dict()
  by_size: dict[int, dict[int, dict[str, Any]]] = {}
  for call in calls:
    for r in call["results"]:
      by_size.setdefault(int(r["pool_size"]), {})[int(r["seed"])] = r
  entries = []
  for n in sorted(by_size):
    runs = [by_size[n][int(s)] for s in seeds]
    cmd = suite.entry_command(task_desc, model_desc, train_desc, n, list(seeds))
    entries.append(leaderboard.make_entry(task_desc, model_desc, train_desc, n, list(seeds), runs, cmd))
  return entries


def sweep_from_results(results: Sequence[dict[str, Any]], pool_sizes, seeds, *, label: str = "") -> Sweep:
  """A Sweep from ``run_experiment`` results ordered by pool size, then seed."""
  p, s = len(pool_sizes), len(seeds)
  if len(results) != p * s:
    raise ValueError(f"results must hold len(pool_sizes) * len(seeds) = {p * s} runs, got {len(results)}")

  def grid(split, metric):
    vals = [r["splits"].get(split, {}).get(metric, math.nan) for r in results]
    return np.asarray(vals, np.float64).reshape(p, s)

  params = int(results[0]["compute"]["params"])
  success = "accuracy" if "accuracy" in results[0]["splits"].get("pool", {}) else "hit"  # ModSearch / PolyMax
  return Sweep(np.asarray(pool_sizes), grid("pool", "loss"), grid("heldout", "loss"), grid("pool", success),
               grid("heldout", success), params, label)


def answer_bits(task, key=None, size: int = 4096) -> float:
  """Mean log2 of the number of distinguishable answers per instance: log2(K + 1) on ModSearch samples
  (info["kmax"]), log2(spec.num_classes) for other integer outputs, and for interval outputs (PolyMax) the
  answers the hit criterion tells apart, log2(1 / (2 * HIT_RADIUS)) (about 9 bits)."""
  spec = task.spec
  if spec.output_kind == "interval":
    return float(math.log2(1.0 / (2.0 * polymax.HIT_RADIUS)))
  if spec.output_kind != "integer":
    raise ValueError(f"task must have integer or interval outputs, got {spec.output_kind!r}")
  batch = task.sample(jax.random.key(0) if key is None else key, size)
  kmax = batch.info.get("kmax")
  if kmax is None:
    return float(math.log2(spec.num_classes))
  return float(np.mean(np.log2(np.asarray(kmax, np.float64) + 1.0)))


# --------------------------------------------------------------------------------------------------- the plot


def plot_phase_diagram(path: str, sweeps: Sequence[Sweep], lookup: Sweep, stars: Sequence[dict[str, Any]],
                       criterion: Criterion = Criterion(), title: str = "") -> str:
  """Writes the phase diagram PNG: log2 N (x) by model size (y), colour = seed-mean unseen/seen loss ratio (log
  scale, floors as in ``loss_ratio``), N* with its CI on top (markers with error bars, joined across sizes) and in
  each row's label ("N* > largest N (none)" when the family does not transition within the grid)."""
  matplotlib.use("Agg")

  sizes = sweeps[0].pool_sizes
  ref = lookup.at(sizes.tolist()).unseen.mean(1)
  ratio = np.stack([loss_ratio(s.seen.mean(1), s.unseen.mean(1), ref, criterion) for s in sweeps])
  x = np.log2(sizes)
  fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.9 * len(sweeps)))
  dx = (x[1] - x[0]) / 2 if x.size > 1 else 0.5
  extent = (x[0] - dx, x[-1] + dx, -0.5, len(sweeps) - 0.5)
  im = ax.imshow(ratio, aspect="auto", origin="lower", extent=extent, cmap="magma_r",
                 norm=LogNorm(vmin=1.0, vmax=max(2.0, float(ratio.max()))))
  for j in range(len(sweeps)):
    for i in range(x.size):
      ax.text(x[i], j, f"{ratio[j, i]:.3g}", ha="center", va="center", fontsize=7,
              color="white" if ratio[j, i] > math.sqrt(max(2.0, float(ratio.max()))) else "black")
  pts_x, pts_y = [], []
  for j, st in enumerate(stars):
    ns = st["n_star"]
    lo, hi = st["ci"]
    if math.isfinite(ns):
      pts_x.append(math.log2(ns))
      pts_y.append(j)
      hi_x = math.log2(hi) if math.isfinite(hi) else extent[1]
      ax.errorbar([math.log2(ns)], [j], xerr=[[math.log2(ns) - math.log2(lo)], [hi_x - math.log2(ns)]], fmt="o",
                  color="cyan", ecolor="cyan", capsize=3)
  if len(pts_x) > 1:
    ax.plot(pts_x, pts_y, "-", color="cyan", lw=1.5, label="N* (seed bootstrap CI)")
  ax.set_yticks(range(len(sweeps)))
  def star_text(st):
    ns, (lo, hi) = st["n_star"], st["ci"]
    if not math.isfinite(ns):
      return f"N* > {int(sizes[-1])} (none)"
    return f"N* = {ns:.0f} [{lo:.0f}, {hi:.0f}]"
  ax.set_yticklabels([f"{s.label}\n{s.params:,} params\n{star_text(st)}" for s, st in zip(sweeps, stars)],
                     fontsize=7)
  ax.set_xticks(x)
  ax.set_xticklabels([f"2^{int(v)}" if float(v).is_integer() else f"{2**v:.0f}" for v in x])
  ax.set_xlabel("pool size N (distinct training instances)")
  fig.colorbar(im, ax=ax, label="unseen / seen loss")
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


# ------------------------------------------------------------------------------------------------------ binary


def cached_measure(measure: Measure) -> Measure:
  """``measure`` memoized per pool size (the lookup memorizer is shared by every model size)."""
  store: dict[int, Sweep] = {}

  def cached(pool_sizes, seeds):
    missing = [int(n) for n in pool_sizes if int(n) not in store]
    if missing:
      got = measure(missing, seeds)
      for n in missing:
        store[n] = got.at([n])
    out = store[int(pool_sizes[0])]
    for n in pool_sizes[1:]:
      out = out.merge(store[int(n)])
    return out

  cached.calls = getattr(measure, "calls", [])
  return cached


def run_phase_diagram(*, model_id: str, sizes: Sequence[dict[str, Any]], pool_sizes: Sequence[int],
                      seeds: Sequence[int], train_config, refine_steps: int, sequential: bool,
                      criterion: Criterion = Criterion(), command: str = "", bits: int = 10,
                      task_id: str = "ModSearch-v0", task_params: dict[str, Any] | None = None
                      ) -> tuple[dict[str, Any], list]:
  """The full job behind the binary: returns (the transitions.json document, the model-size Sweeps).

  The task is ``tasks.make(task_id, **task_params)``; ``task_params`` defaults to {"bits": bits} for ModSearch.
  """

  t_start = time.perf_counter()
  if task_params is None:
    task_params = {"bits": bits} if task_id == "ModSearch-v0" else {}
  task = tasks.make(task_id, **task_params)
  task_desc = {"id": task.task_id, "params": task.params()}
  grid = sorted(int(n) for n in pool_sizes)
  lookup_model = models.make("lookup", task.spec)
  lookup = cached_measure(harness_measure(task, lookup_model, train_config, label="lookup"))
  lookup_sweep = lookup(grid, seeds)  # also compiles the task's pools and held-out samplers for every size
  search_model = models.make("search", task.spec)
  search_measure = harness_measure(task, search_model, train_config, label="search")
  search_sweep = search_measure(grid, seeds)
  entries = (leaderboard_entries(task, lookup_model, train_config, lookup.calls, seeds)
             + leaderboard_entries(task, search_model, train_config, search_measure.calls, seeds))
  families = {}
  for name, sw in (("lookup", lookup_sweep), ("search", search_sweep)):
    families[name] = {"model": {"id": name, "config": (lookup_model if name == "lookup" else search_model)
                                .config_dict()}, "sweep": sw.to_json(),
                      **n_star(sw, lookup_sweep, criterion)}
  stars, sweeps, timing = [], [], []
  for cfg in sizes:
    model = models.make(model_id, task.spec, **cfg)
    label = model_id + "(" + ",".join(f"{k}={v}" for k, v in cfg.items()) + ")"
    measure = harness_measure(task, model, train_config, label=label)
    t0 = time.perf_counter()
    result = find_transition(measure, lookup, grid, seeds, criterion=criterion, refine_steps=refine_steps)
    wall = time.perf_counter() - t0
    grid_call = measure.calls[0]
    row = {"label": label, "params": result["sweep"].params, "vmapped_grid_s": grid_call["seconds"],
           "vmapped_runs": grid_call["runs"], "refine_s": sum(c["seconds"] for c in measure.calls[1:]),
           "find_transition_s": wall}
    if sequential:
      t1 = time.perf_counter()
      for n in grid:
        for s in seeds:
          train.run_experiment(task, model, [train.Run(int(s), int(n))], train_config)
      row["sequential_grid_s"] = time.perf_counter() - t1
      row["speedup"] = row["sequential_grid_s"] / row["vmapped_grid_s"]
    timing.append(row)
    sweeps.append(result["sweep"].at(grid))
    star = {k: v for k, v in result.items() if k not in ("sweep", "lookup")}
    star.update(label=label, model={"id": model_id, "config": model.config_dict()}, params=result["sweep"].params,
                sweep=result["sweep"].to_json())
    stars.append(star)
    print(f"{label}: {result['sweep'].params} params, N* = {star['n_star']} CI {star['ci']}, ratio "
          f"{[round(r, 2) for r in star['ratio']]}, grid {row['vmapped_grid_s']:.1f}s vmapped"
          + (f", {row['sequential_grid_s']:.1f}s sequential" if sequential else ""), flush=True)
    entries += leaderboard_entries(task, model, train_config, measure.calls, seeds)
  cap = capacity(sweeps, lookup_sweep, answer_bits(task), criterion)
  total = time.perf_counter() - t_start
  vm = sum(r["vmapped_grid_s"] for r in timing)
  doc = {
      "schema_version": SCHEMA_VERSION,
      "description": "Memorization -> search transitions (benchmarks/transitions.py docstring defines N*).",
      "config": {"task": task_desc, "model_id": model_id, "model_sizes": list(sizes), "pool_sizes": grid,
                 "seeds": list(seeds), "train": train_config.to_dict(), "refine_steps": refine_steps,
                 "criterion": dataclasses.asdict(criterion)},
      "environment": provenance.environment(),
      "command": command,
      "n_star": stars,
      "baselines": families,
      "capacity": cap,
      "timing": {"per_size": timing, "vmapped_grid_total_s": vm,
                 "sequential_grid_total_s": sum(r.get("sequential_grid_s", 0.0) for r in timing) if sequential
                 else None,
                 "speedup_vmapped_over_sequential": (sum(r["sequential_grid_s"] for r in timing) / vm)
                 if sequential else None,
                 "total_s": total, "grid_cells": len(grid) * len(sizes), "seeds": len(seeds),
                 "note": "vmapped: all pool sizes x seeds of one model size in one run_experiment call (one jit); "
                         "sequential: the same runs, one run_experiment call each, after the vmapped call has "
                         "compiled the task's samplers (so both pay the same data costs)."},
  }
  doc["leaderboard_entries"] = leaderboard.validate({  # the harness's entry schema, validated
      "schema_version": leaderboard.SCHEMA_VERSION, "suite": {"config": {}, "command": command},
      "environment": doc["environment"], "entries": entries})["entries"]
  return doc, sweeps


def sweep_from_json(obj: dict[str, Any]) -> Sweep:
  """The inverse of ``Sweep.to_json``."""
  return Sweep(np.asarray(obj["pool_sizes"]), np.asarray(obj["seen_loss"], np.float64),
               np.asarray(obj["unseen_loss"], np.float64), np.asarray(obj["seen_accuracy"], np.float64),
               np.asarray(obj["unseen_accuracy"], np.float64), int(obj["params"]), obj["label"])


def plot_from_doc(doc: dict[str, Any], path: str) -> str:
  """The phase diagram of a transitions.json document (its grid rows, N* and lookup baseline)."""
  grid = doc["config"]["pool_sizes"]
  sweeps = [sweep_from_json(st["sweep"]).at(grid) for st in doc["n_star"]]
  lookup = sweep_from_json(doc["baselines"]["lookup"]["sweep"]).at(grid)
  stars = [{"n_star": float(st["n_star"]), "ci": [float(v) for v in st["ci"]]} for st in doc["n_star"]]
  cfg = doc["config"]
  title = (f"{cfg['task']['id']}: unseen/seen loss, {cfg['model_id']} x {len(sweeps)} sizes, "
           f"{len(cfg['seeds'])} seeds, {cfg['train']['steps']} steps\n{cfg['task']['params']}")
  return plot_phase_diagram(path, sweeps, lookup, stars, Criterion(**cfg["criterion"]), title=title)


def merge_into_leaderboard(path: str, doc: dict[str, Any]) -> str:
  """Replaces or extends the entries of the leaderboard at ``path`` with the diagram's grid entries."""
  board = leaderboard.read(path)
  ids = {e["id"] for e in doc["leaderboard_entries"]}
  board["entries"] = [e for e in board["entries"] if e["id"] not in ids] + doc["leaderboard_entries"]
  return leaderboard.write(path, board)


def summary(doc: dict[str, Any], out: str, png: str) -> str:
  """One line: where the diagram went and how long it took (vmapped vs sequential)."""
  t = doc["timing"]
  line = f"wrote {out} and {png}: total {t['total_s']:.1f}s, vmapped grid {t['vmapped_grid_total_s']:.1f}s"
  if t["sequential_grid_total_s"]:
    line += (f", sequential {t['sequential_grid_total_s']:.1f}s, speed-up "
             f"{t['speedup_vmapped_over_sequential']:.2f}x")
  return line
