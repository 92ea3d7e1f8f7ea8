"""Two transitions of a model family as its training pool grows: where it generalizes, and where it searches.

For a task, a model family and a model size, runs are trained on pools of N distinct instances (a log grid, refined
by bisection near each change) with several seeds, all vmapped in one jit by the harness (``harness.train``), and
evaluated on the pool (seen) and on held-out instances outside it (``task.sample_outside``: unseen).

N*_gen: unseen matches seen (``Criterion``; seed-mean losses at each N).
  * The memorizer reference ref(N) is the STRONGER (lower held-out loss, seed mean) of the nearest-neighbour
    memorizers fitted on the same pools and seeds: ``lookup`` (nearest stored input row) and ``lookup_instance``
    (nearest decoded instance). A memorizer's seen loss is 0, so ref(N) is also its
    generalization gap.
  * generalizes(N): unseen - seen <= gap_tolerance * ref(N)   (the model's generalization gap is at most 5 % of
    the memorizer's: an ABSOLUTE gap on the memorizer's scale, so a large model with a tiny held-out loss is not
    penalized for an even tinier pool loss, as a ratio test would)
    AND unseen <= (1 - margin) * ref(N)                       (clearly, 25 %, below the memorizer held out).
  * Any fixed rule that does not depend on the pool (a closed-form heuristic, a budgeted search) reaches N*_gen at
    the first pool size: N*_gen says where a family stops memorizing, not that it searches.

N*_search: the model beats every cheap non-search heuristic on the search-requiring stratum AND the behavioural
detector calls it a searcher (``SearchCriterion``).
  * h(N) = the lowest seed-mean loss on the stratum (``stratum``, default "hard": where the task's heuristics and
    small searches fail; held-out instances, the harness's stratified split) among the
    task's non-search heuristics (zoo model ``heuristic``, one per ``task.heuristic_rules()``) whose forward FLOPs
    per example are at most ``flops_factor`` times the model's; when none is that cheap, the best of all of them
    (the claim never gets easier for want of a cheap rule).
  * searches(N): seed-mean stratum loss < (1 - margin) * h(N)
    AND more than ``min_searcher_fraction`` of the seeds get the combined verdict "searcher" from
    ``classify(task, predict, seed=...)`` (``harness.detect``). The detector runs only at pool sizes where some
    seed beats h(N) (elsewhere no resample of the seeds can satisfy the first condition).
  * A heuristic never reaches N*_search (it cannot beat itself by a margin); a memorizer does not either. The
    reference searcher (zoo ``search``, the task's full algorithm) is judged with its budget as its test-time knob
    (``search_predict``, the calibration's convention): the positive control, expected at the first pool size.
  * A model without a test-time compute knob (mlp) cannot get the "searcher" verdict from the detector's default
    thresholds, so its N*_search is infinite by construction: run iterative families (looped, memory) for it.

Both N*: the smallest measured N from which the condition holds at every measured N' >= N (a sustained
transition, robust to one noisy grid point); infinity when the largest N fails. CI: percentile bootstrap over seeds
(resample the seed columns of the model's measurements jointly, recompute the seed means, the verdict fraction and
N*); the references (memorizer, heuristic) are seed means, not resampled. Reported on the measured grid, "inf"
where resamples do not transition. N*_search is taken over the pool sizes where the stratum was measured (a
stratum with too few instances outside the pool is "not applicable" there, neither a success nor a failure).

Capacity view (per pool size, across model sizes): the parameter count at which the generalization gap opens (the
smallest size whose seed-mean gap exceeds gap_tolerance * ref(N)), and bits memorized per parameter:
bits(N) = N * max(0, success_seen - success_unseen) * task.answer_bits() / params (each pool answer a model gets
right beyond what it gets right unseen counts as a stored answer). Beside it, the full answer table's bits
(``task.table_bits()``) against params * the bits a parameter can store, as measured for zoo MLPs on random labels
(``credited_bits_per_param``: the committed ``harness.reproduce.capacity`` result, 2.6; 4 was assumed before):
where the table is far larger, memorizing everything is impossible.

``python -m mesabench.benchmarks.transitions`` runs a phase diagram (presets ``PRESETS``); plots are
``mesabench.harness.plots``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np

from mesabench import models
from mesabench.tasks import core as task_core
from mesabench.harness import calibration
from mesabench.harness import detect
from mesabench.harness import leaderboard
from mesabench.harness import provenance
from mesabench.harness import suite
from mesabench.harness import train

SCHEMA_VERSION = 2
MEMORIZER_IDS = ("lookup", "lookup_instance")
"""The zoo's nearest-neighbour memorizers: the stronger of them at each N is the N*_gen reference."""
HEURISTIC_ID = "heuristic"
"""The zoo's non-search heuristic model (config {"rule": r}, r in ``task.heuristic_rules()``)."""
SEARCH_ID = "search"
BITS_PER_PARAM = 4.0
"""The storage a parameter was credited with before it was measured (issue 11, section 3): the fallback of
``credited_bits_per_param`` when no capacity result is committed."""


def credited_bits_per_param() -> tuple[float, str]:
  """(bits, source): the storage a parameter is credited with when comparing an answer table with a model: the
  measured capacity of zoo MLPs (``harness.reproduce.capacity.bits_per_param``, results/repro_capacity.json), or
  BITS_PER_PARAM when that result is missing."""
  from mesabench.harness.reproduce import capacity as capacity_study  # lazy: the study pulls in its models
  try:
    return capacity_study.bits_per_param(), "measured: results/repro_capacity.json (harness.reproduce.capacity)"
  except ValueError:
    return BITS_PER_PARAM, "assumed (no committed capacity result)"


PRESETS: dict[str, dict[str, Any]] = {
    "modsearch": {"task": "ModSearch-v0", "task_params": {"bits": 16}, "widths": [4, 16, 32],
                  "pool_sizes": [64, 256, 1024, 4096, 16384], "seeds": [0, 1, 2]},
    "modsearch-smoke": {"task": "ModSearch-v0", "task_params": {"bits": 10}, "widths": [4, 16, 64, 256],
                        "pool_sizes": [16, 32, 64, 128, 256, 512], "seeds": [0, 1, 2]},
    "polymax": {"task": "PolyMax-v0", "task_params": {"degree": 4}, "widths": [4, 16, 64, 256],
                "pool_sizes": [16, 32, 64, 128, 256, 512, 1024, 2048, 4096], "seeds": [0, 1, 2, 3, 4]},
}
"""Named diagram configurations (task, task parameters, model widths, pool sizes, seeds) the binary starts from.
"modsearch" is issue 11's regime where memorizing everything is impossible: at bits 16 the answer table holds
6.7e5 bits, and the mlp widths 4 / 16 / 32 (depth 2, classes head: 1.2e4 / 4.1e4 / 8.0e4 parameters) store at most
0.5e5 / 1.6e5 / 3.2e5 bits at 4 bits per parameter (width 64 would reach 6.3e5). "modsearch-smoke" is the quick
bits-10 preset (a 6.6e3-bit table: every model can store it)."""


def _check_fraction(name, v, lo_open, hi_open, lo=0.0, hi=1.0):
  if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < lo or v > hi or (
      lo_open and v == lo) or (hi_open and v == hi):
    raise ValueError(f"{name} must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}, got {v!r}")


@dataclasses.dataclass(frozen=True)
class Criterion:
  """Thresholds of N*_gen (module docstring). gap_tolerance in (0, 1], margin in [0, 1)."""
  gap_tolerance: float = 0.05
  margin: float = 0.25

  def __post_init__(self):
    _check_fraction("gap_tolerance", self.gap_tolerance, True, False)
    _check_fraction("margin", self.margin, False, True)


@dataclasses.dataclass(frozen=True)
class SearchCriterion:
  """Thresholds of N*_search (module docstring). stratum: a task stratum name; margin in [0, 1); flops_factor in
  (0, inf); min_searcher_fraction in [0, 1)."""
  stratum: str = "hard"
  margin: float = 0.1
  flops_factor: float = 10.0
  min_searcher_fraction: float = 0.5

  def __post_init__(self):
    if not isinstance(self.stratum, str) or not self.stratum:
      raise ValueError(f"stratum must be a non-empty stratum name, got {self.stratum!r}")
    _check_fraction("margin", self.margin, False, True)
    _check_fraction("min_searcher_fraction", self.min_searcher_fraction, False, True)
    _check_fraction("flops_factor", self.flops_factor, True, True, 0.0, math.inf)


# ---------------------------------------------------------------------------------------------------- Sweep


def _grid_array(name, value, shape, dtype):
  arr = np.asarray(value, dtype)
  if arr.shape != shape:
    raise ValueError(f"{name} must have shape [len(pool_sizes), seeds] = {shape} like seen, got {arr.shape}")
  return arr


@dataclasses.dataclass
class Sweep:
  """Measurements of one model (family + size) over pool sizes and seeds.

  Attributes:
    pool_sizes: int [P], strictly increasing.
    seen, unseen: mean task loss on the pool and on held-out instances, float64 [P, S] (S seeds, same order at
      every N), finite and >= 0.
    seen_success, unseen_success: the task's success metric (``task.success_metric``), float64 [P, S] (NaN where
      unmeasured).
    params: parameter count of the model (the stored numbers, for memorizers).
    label: a name for tables and plots.
    stratum_loss: mean loss on held-out instances of the search-requiring stratum, float64 [P, S] (NaN where
      unmeasured; default all NaN).
    verdicts: the detector's combined verdict per run, str [P, S] ("" where not classified; default all "").
    flops: forward FLOPs per example (NaN: unknown).
  """
  pool_sizes: np.ndarray
  seen: np.ndarray
  unseen: np.ndarray
  seen_success: np.ndarray
  unseen_success: np.ndarray
  params: int = 0
  label: str = ""
  stratum_loss: np.ndarray | None = None
  verdicts: np.ndarray | None = None
  flops: float = math.nan

  def __post_init__(self):
    self.pool_sizes = np.asarray(self.pool_sizes, np.int64)
    if self.pool_sizes.ndim != 1 or self.pool_sizes.size < 1 or np.any(self.pool_sizes < 1) or np.any(
        np.diff(self.pool_sizes) <= 0):
      raise ValueError(f"pool_sizes must be a strictly increasing 1-D array of positive sizes, got "
                       f"{self.pool_sizes.tolist()}")
    seen = np.asarray(self.seen, np.float64)
    if seen.ndim != 2 or seen.shape[0] != self.pool_sizes.size or seen.shape[1] < 1:
      raise ValueError(f"seen must have shape [len(pool_sizes)={self.pool_sizes.size}, seeds >= 1], got "
                       f"{seen.shape}")
    shape = seen.shape
    self.seen = seen
    for name in ("unseen", "seen_success", "unseen_success"):
      setattr(self, name, _grid_array(name, getattr(self, name), shape, np.float64))
    for name in ("seen", "unseen"):
      arr = getattr(self, name)
      if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must hold finite losses in [0, inf)")
    self.stratum_loss = (np.full(shape, np.nan) if self.stratum_loss is None
                         else _grid_array("stratum_loss", self.stratum_loss, shape, np.float64))
    if np.any(self.stratum_loss < 0):
      raise ValueError("stratum_loss must hold losses in [0, inf) or NaN")
    self.verdicts = (np.full(shape, "", object) if self.verdicts is None
                     else _grid_array("verdicts", self.verdicts, shape, object))
    bad = {v for v in self.verdicts.ravel().tolist() if v not in ("",) + detect.VERDICTS}
    if bad:
      raise ValueError(f"verdicts must be in {('',) + detect.VERDICTS}, got {sorted(map(str, bad))}")
    self.params = int(self.params)
    self.flops = float(self.flops)

  @property
  def num_seeds(self) -> int:
    return self.seen.shape[1]

  _GRIDS = ("seen", "unseen", "seen_success", "unseen_success", "stratum_loss", "verdicts")

  def _rows(self, sources: list[tuple["Sweep", int]], sizes) -> "Sweep":
    grids = {name: np.stack([getattr(s, name)[i] for s, i in sources]) for name in self._GRIDS}
    return Sweep(np.asarray(sizes), params=self.params, label=self.label, flops=self.flops, **grids)

  def merge(self, other: "Sweep") -> "Sweep":
    """The union of two sweeps of the same model and seeds, sorted by pool size (``other`` wins on overlap)."""
    if other.num_seeds != self.num_seeds:
      raise ValueError(f"other must have {self.num_seeds} seeds, got {other.num_seeds}")
    rows = {int(n): (self, i) for i, n in enumerate(self.pool_sizes)}
    rows.update({int(n): (other, i) for i, n in enumerate(other.pool_sizes)})
    sizes = sorted(rows)
    return self._rows([rows[n] for n in sizes], sizes)

  def at(self, pool_sizes: Sequence[int]) -> "Sweep":
    """The rows of the given pool sizes (each must have been measured)."""
    where = {int(n): i for i, n in enumerate(self.pool_sizes)}
    if not len(pool_sizes) or any(int(n) not in where for n in pool_sizes):
      raise ValueError(f"pool_sizes must be measured sizes {self.pool_sizes.tolist()}, got {list(pool_sizes)}")
    return self._rows([(self, where[int(n)]) for n in pool_sizes], [int(n) for n in pool_sizes])

  def with_verdicts(self, rows: np.ndarray, verdicts: np.ndarray) -> "Sweep":
    """A copy whose verdicts at the bool [P] ``rows`` are replaced by ``verdicts`` [rows.sum(), S]."""
    out = dataclasses.replace(self, verdicts=self.verdicts.copy())
    out.verdicts[np.asarray(rows, bool)] = np.asarray(verdicts, object)
    return Sweep(**{f.name: getattr(out, f.name) for f in dataclasses.fields(Sweep)})

  def to_json(self) -> dict[str, Any]:
    nan_to_none = lambda a: [[None if not np.isfinite(v) else float(v) for v in row] for row in a]
    return {"label": self.label, "params": self.params, "flops_per_example": None if not np.isfinite(self.flops)
            else self.flops, "pool_sizes": self.pool_sizes.tolist(), "seen_loss": self.seen.tolist(),
            "unseen_loss": self.unseen.tolist(), "seen_success": nan_to_none(self.seen_success),
            "unseen_success": nan_to_none(self.unseen_success), "stratum_loss": nan_to_none(self.stratum_loss),
            "verdicts": self.verdicts.tolist()}

  @classmethod
  def from_json(cls, obj: Mapping[str, Any]) -> "Sweep":
    """The inverse of ``to_json``."""
    grid = lambda k: np.asarray([[math.nan if v is None else v for v in row] for row in obj[k]], np.float64)
    return cls(np.asarray(obj["pool_sizes"]), grid("seen_loss"), grid("unseen_loss"), grid("seen_success"),
               grid("unseen_success"), int(obj["params"]), obj["label"], grid("stratum_loss"),
               np.asarray(obj["verdicts"], object),
               math.nan if obj.get("flops_per_example") is None else float(obj["flops_per_example"]))


def _row_means(a: np.ndarray) -> np.ndarray:
  """Mean of the finite values of each row of ``a`` [P, S]; NaN for a row without any (no warning)."""
  ok = np.isfinite(a)
  count = ok.sum(axis=1)
  total = np.where(ok, a, 0.0).sum(axis=1)
  return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _same_grid(name: str, sweep: Sweep, others: Sequence[Sweep]) -> list[Sweep]:
  out = []
  for o in others:
    if not set(sweep.pool_sizes.tolist()) <= set(o.pool_sizes.tolist()):
      raise ValueError(f"{name} must be measured at the sweep's pool sizes {sweep.pool_sizes.tolist()}, got "
                       f"{o.pool_sizes.tolist()}")
    out.append(o.at(sweep.pool_sizes.tolist()))
  return out


# ----------------------------------------------------------------------------------------------------- onsets


@dataclasses.dataclass(frozen=True)
class Onset:
  """A sustained transition on the measured grid, with its seed bootstrap CI.

  Attributes:
    n_star: the onset (a measured pool size; inf: never within the grid).
    ci: (low, high) percentiles of the bootstrap onsets (inverted-CDF method: measured sizes or inf).
    per_seed: the onset of each seed's own curve (for N*_search: that seed's loss and verdict).
    transition_probability: the fraction of resamples that transition within the grid.
    holds: the condition at each measured N (seed means).
    level: the CI's confidence level.
  """
  n_star: float
  ci: tuple[float, float]
  per_seed: tuple[float, ...]
  transition_probability: float
  holds: tuple[bool, ...]
  level: float

  def to_json(self) -> dict[str, Any]:
    return {"n_star": self.n_star, "ci": list(self.ci), "per_seed": list(self.per_seed),
            "transition_probability": self.transition_probability, "holds": list(self.holds), "level": self.level}

  @classmethod
  def from_json(cls, obj: Mapping[str, Any]) -> "Onset":
    """The inverse of ``to_json``; null (how strict JSON writers store inf) reads as inf ("never")."""
    size = lambda v: math.inf if v is None else float(v)
    return cls(size(obj["n_star"]), tuple(size(v) for v in obj["ci"]), tuple(size(v) for v in obj["per_seed"]),
               float(obj["transition_probability"]), tuple(bool(v) for v in obj["holds"]), float(obj["level"]))


def sustained_onset(pool_sizes, ok) -> float:
  """The smallest pool size from which ``ok`` (bool [P]) holds at every larger size; inf when ok[-1] is False."""
  ok = np.asarray(ok, bool)
  if ok.shape != np.shape(pool_sizes) or ok.ndim != 1:
    raise ValueError(f"ok must have the shape of pool_sizes {np.shape(pool_sizes)}, got {ok.shape}")
  if not ok[-1]:
    return math.inf
  first = ok.size - int(np.argmin(ok[::-1])) if not ok.all() else 0
  return float(np.asarray(pool_sizes)[first])


def _check_bootstrap(num_resamples, level):
  if not 0.5 <= level < 1:
    raise ValueError(f"level must be in [0.5, 1), got {level}")
  if isinstance(num_resamples, bool) or not isinstance(num_resamples, (int, np.integer)) or num_resamples < 1:
    raise ValueError(f"num_resamples must be a positive integer, got {num_resamples!r}")


def bootstrap_onset(pool_sizes, num_seeds: int, holds: Callable[[np.ndarray], np.ndarray], *,
                    num_resamples: int = 1000, level: float = 0.95, seed: int = 0) -> Onset:
  """The onset of ``holds(seed_columns) -> bool [P]`` (the condition on the seed means of the given columns):
  at all seeds, per seed, and over ``num_resamples`` bootstrap resamples of the seeds (numpy Generator ``seed``)."""
  _check_bootstrap(num_resamples, level)
  ok = np.asarray(holds(np.arange(num_seeds)), bool)
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, num_seeds, size=(num_resamples, num_seeds))
  boots = np.array([sustained_onset(pool_sizes, holds(i)) for i in idx])
  alpha = (1 - level) / 2
  lo, hi = np.quantile(boots, [alpha, 1 - alpha], method="inverted_cdf")
  per_seed = tuple(sustained_onset(pool_sizes, holds(np.array([j]))) for j in range(num_seeds))
  return Onset(sustained_onset(pool_sizes, ok), (float(lo), float(hi)), per_seed,
               float(np.mean(np.isfinite(boots))), tuple(ok.tolist()), float(level))


# ------------------------------------------------------------------------------------------------------ N*_gen


@dataclasses.dataclass(frozen=True)
class MemorizerReference:
  """The per-N stronger memorizer: its seed-mean held-out loss ``unseen`` [P] and ``label`` per N."""
  unseen: np.ndarray
  label: tuple[str, ...]


def memorizer_reference(memorizers: Sequence[Sweep]) -> MemorizerReference:
  """At each pool size, the memorizer with the lowest seed-mean held-out loss (all measured at the same sizes)."""
  if not memorizers:
    raise ValueError("memorizers must hold at least one Sweep")
  sizes = memorizers[0].pool_sizes
  for m in memorizers:
    if not np.array_equal(m.pool_sizes, sizes):
      raise ValueError(f"memorizers must share pool_sizes {sizes.tolist()}, got {m.pool_sizes.tolist()}")
  means = np.stack([m.unseen.mean(axis=1) for m in memorizers])  # [M, P]
  best = np.argmin(means, axis=0)
  return MemorizerReference(means[best, np.arange(sizes.size)], tuple(memorizers[i].label for i in best))


def gap_fraction(seen, unseen, reference_unseen) -> np.ndarray:
  """(unseen - seen) / reference_unseen: the generalization gap on the memorizer's scale (broadcast; a zero
  reference gives +-inf, or 0 for a zero gap)."""
  gap = np.asarray(unseen, np.float64) - np.asarray(seen, np.float64)
  ref = np.asarray(reference_unseen, np.float64)
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(ref > 0, gap / np.where(ref > 0, ref, 1.0), np.where(gap > 0, np.inf, 0.0))


def generalizes(seen, unseen, reference_unseen, criterion: Criterion = Criterion()) -> np.ndarray:
  """bool (broadcast shape): unseen - seen <= gap_tolerance * ref AND unseen <= (1 - margin) * ref."""
  seen, unseen = np.asarray(seen, np.float64), np.asarray(unseen, np.float64)
  ref = np.asarray(reference_unseen, np.float64)
  return (unseen - seen <= criterion.gap_tolerance * ref) & (unseen <= (1.0 - criterion.margin) * ref)


@dataclasses.dataclass(frozen=True)
class GenTransition:
  """N*_gen of one sweep: the onset, and per measured N the seed-mean gap fraction and the memorizer used."""
  onset: Onset
  gap_fraction: tuple[float, ...]
  reference_unseen: tuple[float, ...]
  reference_label: tuple[str, ...]
  criterion: Criterion

  def to_json(self) -> dict[str, Any]:
    return {**self.onset.to_json(), "gap_fraction": list(self.gap_fraction),
            "reference_unseen": list(self.reference_unseen), "reference_label": list(self.reference_label),
            "criterion": dataclasses.asdict(self.criterion)}


def n_star_gen(sweep: Sweep, memorizers: Sequence[Sweep], criterion: Criterion = Criterion(), *,
               num_resamples: int = 1000, level: float = 0.95, seed: int = 0) -> GenTransition:
  """N*_gen of ``sweep`` against the stronger of ``memorizers`` (each measured at least at the sweep's sizes)."""
  ref = memorizer_reference(_same_grid("memorizers", sweep, memorizers))

  def holds(cols):
    return generalizes(sweep.seen[:, cols].mean(1), sweep.unseen[:, cols].mean(1), ref.unseen, criterion)

  onset = bootstrap_onset(sweep.pool_sizes, sweep.num_seeds, holds, num_resamples=num_resamples, level=level,
                          seed=seed)
  frac = gap_fraction(sweep.seen.mean(1), sweep.unseen.mean(1), ref.unseen)
  return GenTransition(onset, tuple(float(v) for v in frac), tuple(float(v) for v in ref.unseen), ref.label,
                       criterion)


# --------------------------------------------------------------------------------------------------- N*_search


@dataclasses.dataclass(frozen=True)
class HeuristicReference:
  """Per N: the best eligible heuristic's seed-mean stratum loss ``loss`` [P] and ``label``; ``flops_comparable``
  is False when no heuristic was within the FLOPs factor and all of them were used."""
  loss: np.ndarray
  label: tuple[str, ...]
  flops_comparable: bool


def heuristic_reference(sweep: Sweep, heuristics: Sequence[Sweep],
                        criterion: SearchCriterion = SearchCriterion()) -> HeuristicReference:
  """The best non-search heuristic of comparable FLOPs at each of the sweep's pool sizes (module docstring).
  A heuristic with unknown FLOPs counts as comparable; one with no stratum loss at some N is skipped there."""
  if not heuristics:
    raise ValueError("heuristics must hold at least one Sweep")
  hs = _same_grid("heuristics", sweep, heuristics)
  cheap = [h for h in hs if not (np.isfinite(h.flops) and np.isfinite(sweep.flops))
           or h.flops <= criterion.flops_factor * sweep.flops]
  comparable = bool(cheap)
  pool = cheap or hs
  means = np.stack([_row_means(h.stratum_loss) for h in pool])
  filled = np.where(np.isfinite(means), means, np.inf)
  best = np.argmin(filled, axis=0)
  loss = filled[best, np.arange(best.size)]
  return HeuristicReference(np.where(np.isfinite(loss), loss, np.nan),
                            tuple(pool[i].label if np.isfinite(loss[j]) else "" for j, i in enumerate(best)),
                            comparable)


def beats(model_loss, heuristic_loss, criterion: SearchCriterion = SearchCriterion()) -> np.ndarray:
  """bool (broadcast): model_loss < (1 - margin) * heuristic_loss (False where either is NaN)."""
  m, h = np.asarray(model_loss, np.float64), np.asarray(heuristic_loss, np.float64)
  with np.errstate(invalid="ignore"):
    return np.isfinite(m) & np.isfinite(h) & (m < (1.0 - criterion.margin) * h)


def needs_verdict(sweep: Sweep, heuristics: Sequence[Sweep], criterion: SearchCriterion = SearchCriterion()
                  ) -> np.ndarray:
  """bool [P]: pool sizes where some seed's stratum loss beats the heuristic reference (only there can a seed
  resample satisfy the loss condition of N*_search, so only there the detector has to run)."""
  ref = heuristic_reference(sweep, heuristics, criterion)
  with np.errstate(invalid="ignore"):
    return beats(sweep.stratum_loss, ref.loss[:, None], criterion).any(axis=1)


@dataclasses.dataclass(frozen=True)
class SearchTransition:
  """N*_search of one sweep: the onset, and per measured N the model's seed-mean stratum loss, the heuristic
  reference, the fraction of seeds called "searcher" (NaN where not classified) and whether the stratum was
  measured there (``applicable``: False where the harness had too few stratum instances outside the pool; the
  onset is taken over the applicable sizes only, and is inf when there are none)."""
  onset: Onset
  model_loss: tuple[float, ...]
  heuristic_loss: tuple[float, ...]
  heuristic_label: tuple[str, ...]
  flops_comparable: bool
  searcher_fraction: tuple[float, ...]
  criterion: SearchCriterion
  applicable: tuple[bool, ...] = ()

  def to_json(self) -> dict[str, Any]:
    fin = lambda xs: [float(v) if np.isfinite(v) else None for v in xs]
    return {**self.onset.to_json(), "model_stratum_loss": fin(self.model_loss),
            "heuristic_stratum_loss": fin(self.heuristic_loss), "heuristic_label": list(self.heuristic_label),
            "flops_comparable": self.flops_comparable, "searcher_fraction": fin(self.searcher_fraction),
            "applicable": list(self.applicable),
            "criterion": dataclasses.asdict(self.criterion)}


def n_star_search(sweep: Sweep, heuristics: Sequence[Sweep], criterion: SearchCriterion = SearchCriterion(), *,
                  num_resamples: int = 1000, level: float = 0.95, seed: int = 0) -> SearchTransition:
  """N*_search of ``sweep`` (its ``stratum_loss`` and ``verdicts``) against the best comparable heuristic.

  ValueError when a pool size that ``needs_verdict`` has an unclassified seed (verdict "")."""
  ref = heuristic_reference(sweep, heuristics, criterion)
  need = needs_verdict(sweep, heuristics, criterion)
  missing = need[:, None] & (sweep.verdicts == "")
  if missing.any():
    raise ValueError(f"sweep must carry a detector verdict for every seed at pool sizes "
                     f"{sweep.pool_sizes[missing.any(1)].tolist()} (where it beats the heuristic)")
  searcher = sweep.verdicts == detect.SEARCHER

  def holds(cols):
    return (beats(_row_means(sweep.stratum_loss[:, cols]), ref.loss, criterion)
            & (searcher[:, cols].mean(1) > criterion.min_searcher_fraction))

  model_loss = _row_means(sweep.stratum_loss)
  applicable = np.isfinite(model_loss) & np.isfinite(ref.loss)
  if applicable.any():
    onset = bootstrap_onset(sweep.pool_sizes[applicable], sweep.num_seeds, lambda cols: holds(cols)[applicable],
                            num_resamples=num_resamples, level=level, seed=seed)
    full = np.zeros(applicable.size, bool)
    full[applicable] = onset.holds
    onset = dataclasses.replace(onset, holds=tuple(full.tolist()))
  else:
    onset = Onset(math.inf, (math.inf, math.inf), (math.inf,) * sweep.num_seeds, 0.0,
                  (False,) * applicable.size, float(level))
  classified = sweep.verdicts != ""
  frac = np.where(classified.any(1), (searcher & classified).sum(1) / np.maximum(classified.sum(1), 1), np.nan)
  return SearchTransition(onset, tuple(model_loss.tolist()), tuple(ref.loss.tolist()), ref.label,
                          ref.flops_comparable, tuple(frac.tolist()), criterion, tuple(applicable.tolist()))


# ---------------------------------------------------------------------------------------------- the finder

Measure = Callable[[Sequence[int], Sequence[int]], Sweep]
"""``measure(pool_sizes, seeds) -> Sweep``: trains and evaluates a model at those sizes and seeds."""
Classifier = Callable[[Sequence[int], Sequence[int]], np.ndarray]
"""``classifier(pool_sizes, seeds) -> verdicts str [P, S]``: the detector's combined verdict of each run."""


@dataclasses.dataclass(frozen=True)
class Transition:
  """Output of ``find_transition``: the model's merged sweep (with verdicts), the references' sweeps, both N*
  (``search`` None without heuristics and classifier) and the pool sizes bisection added."""
  sweep: Sweep
  memorizers: tuple[Sweep, ...]
  heuristics: tuple[Sweep, ...]
  gen: GenTransition
  search: SearchTransition | None
  refined: tuple[int, ...]

  def to_json(self) -> dict[str, Any]:
    return {"label": self.sweep.label, "params": self.sweep.params, "sweep": self.sweep.to_json(),
            "n_star_gen": self.gen.to_json(), "n_star_search": None if self.search is None else self.search.to_json(),
            "refined": list(self.refined)}


def _classify_rows(sweep: Sweep, heuristics: Sequence[Sweep], classifier: Classifier, seeds,
                   criterion: SearchCriterion) -> Sweep:
  need = needs_verdict(sweep, heuristics, criterion) & (sweep.verdicts == "").any(axis=1)
  if not need.any():
    return sweep
  got = np.asarray(classifier(sweep.pool_sizes[need].tolist(), list(seeds)), object)
  if got.shape != (int(need.sum()), sweep.num_seeds):
    raise ValueError(f"classifier must return verdicts [{int(need.sum())}, {sweep.num_seeds}], got {got.shape}")
  return sweep.with_verdicts(need, got)


def _midpoint_below(pool_sizes: np.ndarray, onset: float) -> int | None:
  if not math.isfinite(onset) or onset == pool_sizes[0]:
    return None
  below = int(pool_sizes[np.searchsorted(pool_sizes, onset) - 1])
  mid = int(round(math.sqrt(below * onset)))
  return mid if below < mid < onset else None


def find_transition(measure: Measure, memorizers: Sequence[Measure], pool_sizes: Sequence[int],
                    seeds: Sequence[int], *, heuristics: Sequence[Measure] = (), classifier: Classifier | None = None,
                    criterion: Criterion = Criterion(), search_criterion: SearchCriterion = SearchCriterion(),
                    refine_steps: int = 2, num_resamples: int = 1000, level: float = 0.95, seed: int = 0
                    ) -> Transition:
  """N*_gen and N*_search on a grid refined by bisection near each change.

  ``measure``, each of ``memorizers`` and ``heuristics`` are Measures (all sizes and seeds of one call in one
  vmapped harness call, or synthetic families in tests); ``classifier`` gives the detector's verdicts, asked only
  at sizes where the model beats the heuristic reference. N*_search is computed when both ``heuristics`` and
  ``classifier`` are given. After the grid, while an N* (seed means) is finite and not the first size, the
  geometric midpoint between it and the measured size below is measured (``refine_steps`` rounds at most; a
  round stops when no integer lies between).
  """
  if isinstance(refine_steps, bool) or not isinstance(refine_steps, (int, np.integer)) or not 0 <= refine_steps <= 16:
    raise ValueError(f"refine_steps must be an integer in [0, 16], got {refine_steps!r}")
  if not memorizers:
    raise ValueError("memorizers must hold at least one Measure")
  _check_bootstrap(num_resamples, level)
  grid = sorted(set(int(n) for n in pool_sizes))
  if not grid or grid[0] < 1:
    raise ValueError(f"pool_sizes must hold positive sizes, got {list(pool_sizes)}")
  seeds = list(seeds)
  with_search = bool(heuristics) and classifier is not None

  def measure_all(sizes):
    return (measure(sizes, seeds), [m(sizes, seeds) for m in memorizers],
            [h(sizes, seeds) for h in heuristics])

  def classified(sweep, heus):
    return _classify_rows(sweep, heus, classifier, seeds, search_criterion) if with_search else sweep

  sweep, mems, heus = measure_all(grid)
  sweep = classified(sweep, heus)
  refined: list[int] = []
  for _ in range(refine_steps):
    onsets = [n_star_gen(sweep, mems, criterion, num_resamples=1, level=level).onset.n_star]
    if with_search:
      onsets.append(n_star_search(sweep, heus, search_criterion, num_resamples=1, level=level).onset.n_star)
    mids = sorted({m for m in (_midpoint_below(sweep.pool_sizes, o) for o in onsets) if m is not None})
    if not mids:
      break
    new, new_mems, new_heus = measure_all(mids)
    sweep = sweep.merge(new)
    mems = [a.merge(b) for a, b in zip(mems, new_mems)]
    heus = [a.merge(b) for a, b in zip(heus, new_heus)]
    sweep = classified(sweep, heus)
    refined += mids
  gen = n_star_gen(sweep, mems, criterion, num_resamples=num_resamples, level=level, seed=seed)
  search = (n_star_search(sweep, heus, search_criterion, num_resamples=num_resamples, level=level, seed=seed)
            if with_search else None)
  return Transition(sweep, tuple(mems), tuple(heus), gen, search, tuple(refined))


def cached_measure(measure: Measure) -> Measure:
  """``measure`` memoized per (pool size, seeds) (a reference is shared by every model size)."""
  store: dict[tuple[int, tuple[int, ...]], Sweep] = {}

  def cached(pool_sizes, seeds):
    key = tuple(int(s) for s in seeds)
    missing = [int(n) for n in pool_sizes if (int(n), key) not in store]
    if missing:
      got = measure(missing, seeds)
      for n in missing:
        store[(n, key)] = got.at([n])
    out = store[(int(pool_sizes[0]), key)]
    for n in pool_sizes[1:]:
      out = out.merge(store[(int(n), key)])
    return out

  cached.calls = getattr(measure, "calls", [])
  return cached


# ---------------------------------------------------------------------------------------------- capacity view


@dataclasses.dataclass(frozen=True)
class Capacity:
  """The capacity view (module docstring) of model sizes over pool sizes.

  Attributes:
    gap_opens_at_params: {N: the smallest params whose gap exceeds the tolerance, or None}.
    bits_per_param: [size][N]; max_bits_per_param and argmax_pool_size: per size.
    answer_bits: ``task.answer_bits()``; table_bits: ``task.table_bits()`` (the full answer table);
    params_bits: params * credited_bits_per_param per size (``credited_bits_per_param()``: the measured capacity of
      zoo MLPs, with its source in credited_source).
  """
  gap_opens_at_params: dict[int, int | None]
  bits_per_param: list[list[float]]
  max_bits_per_param: list[float]
  argmax_pool_size: list[int]
  answer_bits: float
  table_bits: float | None = None
  params_bits: list[float] | None = None
  credited_bits_per_param: float | None = None
  credited_source: str = ""

  def to_json(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["gap_opens_at_params"] = {str(k): v for k, v in self.gap_opens_at_params.items()}
    return out


def capacity(sweeps: Sequence[Sweep], memorizers: Sequence[Sweep], answer_bits: float,
             criterion: Criterion = Criterion(), *, table_bits: float | None = None) -> Capacity:
  """The capacity view of model sizes ``sweeps`` (same pool sizes, params >= 1) against the stronger memorizer;
  ``table_bits``: the task's full answer table (``task.table_bits()``), reported beside params times the credited
  bits per parameter (``credited_bits_per_param``)."""
  if not sweeps:
    raise ValueError("sweeps must hold at least one Sweep")
  if not answer_bits > 0:
    raise ValueError(f"answer_bits must be in (0, inf), got {answer_bits}")
  sizes = sweeps[0].pool_sizes
  for s in sweeps:
    if not np.array_equal(s.pool_sizes, sizes) or s.params < 1:
      raise ValueError("every sweep must share pool_sizes and have params >= 1")
  ref = memorizer_reference(_same_grid("memorizers", sweeps[0], memorizers)).unseen
  opens = {}
  for i, n in enumerate(sizes):
    open_at = [s.params for s in sweeps
               if gap_fraction(s.seen[i].mean(), s.unseen[i].mean(), ref[i]) > criterion.gap_tolerance]
    opens[int(n)] = int(min(open_at)) if open_at else None
  bits = []
  for s in sweeps:
    excess = np.clip(np.nan_to_num(s.seen_success.mean(1) - s.unseen_success.mean(1)), 0.0, 1.0)
    bits.append((sizes * excess * answer_bits / s.params).tolist())
  best = [int(np.argmax(b)) for b in bits]
  credit, source = credited_bits_per_param()
  return Capacity(opens, bits, [b[i] for b, i in zip(bits, best)], [int(sizes[i]) for i in best],
                  float(answer_bits), None if table_bits is None else float(table_bits),
                  [float(s.params) * credit for s in sweeps], credit, source)


# --------------------------------------------------------------------------------------------- harness adapter


def sweep_from_results(results: Sequence[train.RunResult], pool_sizes, seeds, *, success_metric: str,
                       stratum: str | None = None, label: str = "") -> Sweep:
  """A Sweep from ``harness.train.run_experiment`` results ordered by pool size, then seed. ``success_metric`` is
  the task's (``task.success_metric``); ``stratum`` names the split "stratum:<name>" whose loss is the search
  stratum's (NaN where a run has no held-out example in it)."""
  p, s = len(pool_sizes), len(seeds)
  if len(results) != p * s:
    raise ValueError(f"results must hold len(pool_sizes) * len(seeds) = {p * s} runs, got {len(results)}")

  def grid(split, metric):
    vals = [r.splits.get(split, {}).get(metric, math.nan) for r in results]
    return np.asarray([math.nan if v is None else v for v in vals], np.float64).reshape(p, s)

  comp = results[0].compute
  return Sweep(np.asarray(pool_sizes), grid("pool", "loss"), grid("heldout", "loss"), grid("pool", success_metric),
               grid("heldout", success_metric), int(comp["params"]), label,
               stratum_loss=None if stratum is None else grid("stratum:" + stratum, "loss"),
               flops=float(comp.get("flops_per_example", math.nan)))


def harness_measure(task, model, train_config, *, label: str = "", stratum: str | None = None,
                    keep_params: bool = False) -> Measure:
  """A ``Measure`` that trains ``model`` on ``task`` through ``harness.train.run_experiment``: every (pool size,
  seed) run of one call in ONE vmapped jit. Records each call's timing and ``RunResult``s in ``measure.calls``
  (with the trained parameters when ``keep_params``: ``harness_classifier`` then judges them without training
  again)."""
  calls = []

  def measure(pool_sizes, seeds):
    runs = [train.Run(int(s), int(n)) for n in pool_sizes for s in seeds]
    t0 = time.perf_counter()
    results = train.run_experiment(task, model, runs, train_config, keep_params=keep_params)
    calls.append({"runs": len(runs), "seconds": time.perf_counter() - t0, "timing": results[0].timing,
                  "results": results})
    return sweep_from_results(results, pool_sizes, seeds, success_metric=task.success_metric, stratum=stratum,
                              label=label)

  measure.calls = calls
  return measure


def verdict_of(result) -> str:
  """The combined verdict of a ``classify`` result (``detect.Classification``, or a bare verdict string)."""
  v = result if isinstance(result, str) else result.verdict
  if v not in detect.VERDICTS:
    raise ValueError(f"classify must return a verdict in {detect.VERDICTS} (or an object carrying one), got {v!r}")
  return v


def search_predict(task, model, params=None) -> Callable[..., Any]:
  """A ``classify`` predict function of the zoo's ``search`` model whose budget B is its test-time compute knob,
  as the detector's calibration presents searchers (``harness.calibration``): ``iterations=t`` runs budget
  max(lo, min(hi, B * t // NOMINAL_ITERATIONS)) of the same strategy ([lo, hi] = task.search_budget_range), so
  t = NOMINAL_ITERATIONS is the model itself. ``params`` is ignored (a search has none)."""
  del params
  cfg = model.config_dict()
  lo, hi = task.search_budget_range(cfg["strategy"])
  cache: dict[int, Callable[..., Any]] = {}

  def predict(inputs, iterations=None):
    b = cfg["budget"] if iterations is None else int(min(hi, max(lo, cfg["budget"] * int(iterations)
                                                                   // calibration.NOMINAL_ITERATIONS)))
    if b not in cache:
      cache[b] = jax.jit(models.make(SEARCH_ID, task.spec, budget=b, strategy=cfg["strategy"]).predict)
    return cache[b]({}, inputs)
  return predict


def harness_classifier(task, model, train_config, classify: Callable[..., Any], *, measure: Measure | None = None,
                       seed: int = 0, predictor: Callable[[Any, Any], Callable[..., Any]] | None = None
                       ) -> Classifier:
  """A ``Classifier``: asks ``classify(task, predict, seed=seed, pool=<the run's training pool>)`` for the combined
  verdict of each (pool size, seed) run. The parameters come from ``measure.calls`` (a ``harness_measure`` with
  ``keep_params``) when every run is there; otherwise the runs are trained again through the harness (one vmapped
  call, the same runs, so the same parameters up to vmap batching). ``predictor(model, params)`` makes the predict
  function (default ``detect.entry_predict``: the iteration knob of iterative models). Records timing in
  ``classifier.calls``."""
  predictor = predictor or detect.entry_predict
  calls = []

  def classifier(pool_sizes, seeds):
    runs = [train.Run(int(s), int(n)) for n in pool_sizes for s in seeds]
    t0 = time.perf_counter()
    data = train.prepare_data(task, runs, train_config)
    stored = {(r.pool_size, r.seed): r.params for call in getattr(measure, "calls", ()) for r in call["results"]
              if r.params is not None}
    if all((r.pool_size, r.seed) in stored for r in runs):
      params = [stored[(r.pool_size, r.seed)] for r in runs]
      retrained = False
    else:
      stacked = train.train_runs(task, model, runs, train_config, data=data).params
      params = [jax.tree_util.tree_map(lambda a, i=i: a[i], stacked) for i in range(len(runs))]
      retrained = True
    out = [verdict_of(classify(task, predictor(model, p), seed=seed, pool=data.pools[i]))
           for i, p in enumerate(params)]
    calls.append({"runs": len(runs), "seconds": time.perf_counter() - t0, "retrained": retrained})
    return np.asarray(out, object).reshape(len(pool_sizes), len(seeds))

  classifier.calls = calls
  return classifier


def reference_models(task) -> dict[str, list]:
  """The zoo's references for ``task``: {"memorizers": the ``MEMORIZER_IDS`` models, "heuristics": one
  ``heuristic`` model per ``task.heuristic_rules()``}, built for its spec."""
  return {"memorizers": [models.make(m, task.spec) for m in MEMORIZER_IDS],
          "heuristics": [models.make(HEURISTIC_ID, task.spec, rule=r) for r in task.heuristic_rules()]}


def model_label(model) -> str:
  cfg = model.config_dict()
  return model.model_id + ("(" + ",".join(f"{k}={v}" for k, v in cfg.items()) + ")" if cfg else "")


def leaderboard_entries(task, model, train_config, calls, seeds) -> list[dict[str, Any]]:
  """Leaderboard entries (``harness.leaderboard.make_entry``), one per pool size, from a measure's calls."""
  task_desc = {"id": task.task_id, "params": task.params()}
  model_desc = {"id": model.model_id, "config": model.config_dict()}
  train_desc = train_config.to_dict()
  by_size: dict[int, dict[int, train.RunResult]] = {}
  for call in calls:
    for r in call["results"]:
      by_size.setdefault(int(r.pool_size), {})[int(r.seed)] = r
  entries = []
  for n in sorted(by_size):
    if not all(int(s) in by_size[n] for s in seeds):
      continue
    runs = [by_size[n][int(s)] for s in seeds]
    cmd = suite.entry_command(task_desc, model_desc, train_desc, n, list(seeds))
    entries.append(leaderboard.make_entry(task_desc, model_desc, train_desc, n, list(seeds), runs, cmd,
                                          success_metric=task.success_metric,
                                          metric_directions=dict(task.metric_directions)))
  return entries


# ------------------------------------------------------------------------------------------------- the job


def check_diagram(task, model_id: str, sizes: Sequence[dict[str, Any]], pool_sizes: Sequence[int],
                  seeds: Sequence[int], train_config) -> list:
  """Checks a diagram's inputs before any training: every model size builds for ``task``, every pool size leaves
  held-out instances (N < task.space_size), every seed is a valid run seed, and the largest vmapped call of each
  size and of each reference fits in memory (``harness.train.estimate_bytes``, ``tasks.core.memory_limit_bytes``).
  Returns the family's models; ValueError naming the field otherwise."""
  if not sizes:
    raise ValueError("sizes must hold at least one model config")
  if not pool_sizes or not seeds:
    raise ValueError("pool_sizes and seeds must be non-empty")
  for n in pool_sizes:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n < task.space_size:
      raise ValueError(f"pool_sizes must be integers in [1, {task.space_size}) (the {task.space_size} distinct "
                       f"instances of {task.task_id} with {task.params()}, one at least held out), got {n!r}")
  runs = [train.Run(int(s), int(n)) for n in pool_sizes for s in seeds]
  family = []
  for i, cfg in enumerate(sizes):
    try:
      family.append(models.make(model_id, task.spec, **cfg))
    except (TypeError, ValueError) as err:
      raise ValueError(f"sizes[{i}] ({model_id} {cfg}): {err}") from err
  refs = reference_models(task)
  limit = task_core.memory_limit_bytes()
  for model in family + refs["memorizers"] + refs["heuristics"] + [models.make(SEARCH_ID, task.spec)]:
    need = train.estimate_bytes(task, model, runs, train_config)
    if need > limit:
      raise ValueError(f"pool_sizes/seeds: {model_label(model)} needs about {need / 2**30:.1f} GiB for {len(runs)} "
                       f"vmapped runs (harness.train.estimate_bytes), more than the {limit / 2**30:.1f} GiB here; "
                       "use fewer seeds or smaller pools")
  return family



@dataclasses.dataclass
class PhaseDiagram:
  """Everything a phase diagram measured: the rows (one Transition per model size), the references' own
  transitions (memorizers, search, heuristics: how the ground truths score on the same definitions), the
  capacity view, timing, and the grid's leaderboard entries. ``to_json`` is the transitions.json document."""
  config: dict[str, Any]
  rows: list[Transition]
  references: list[Transition]
  capacity: Capacity
  timing: dict[str, Any]
  leaderboard_entries: list[dict[str, Any]]
  row_models: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  reference_models: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  command: str = ""
  environment: dict[str, Any] = dataclasses.field(default_factory=dict)
  notes: list[str] = dataclasses.field(default_factory=list)

  def to_json(self) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION,
            "description": "Two transitions per model size: N*_gen (unseen matches seen, against the stronger "
                           "nearest-neighbour memorizer) and N*_search (beats the best comparable non-search "
                           "heuristic on the search stratum and the detector says searcher); definitions in "
                           "mesabench.harness.transitions.",
            "config": self.config, "environment": self.environment, "command": self.command, "notes": self.notes,
            "rows": [{"model": m, **t.to_json()} for m, t in zip(self.row_models, self.rows)],
            "references": [{"model": m, **t.to_json()} for m, t in zip(self.reference_models, self.references)],
            "memorizers": [m.to_json() for m in (self.rows[0].memorizers if self.rows else ())],
            "heuristics": [h.to_json() for h in (self.rows[0].heuristics if self.rows else ())],
            "capacity": self.capacity.to_json(), "timing": self.timing,
            "leaderboard_entries": self.leaderboard_entries}


def run_phase_diagram(*, task, model_id: str, sizes: Sequence[dict[str, Any]], pool_sizes: Sequence[int],
                      seeds: Sequence[int], train_config, refine_steps: int = 2, sequential: bool = False,
                      criterion: Criterion = Criterion(), search_criterion: SearchCriterion = SearchCriterion(),
                      classify: Callable[..., Any] | None = None, command: str = "", num_resamples: int = 1000,
                      classify_references: bool = True, progress: Callable[[str], None] = print) -> PhaseDiagram:
  """The job behind the binary: every model size of ``model_id`` (configs ``sizes``) on ``task``, both N*.

  ``classify_references``: also judge the reference families with the detector where they beat the heuristics
  (in practice the full search, the positive control: one ``classify`` per pool size and seed, the costliest part
  of a diagram of a cheap family); when False their N*_search is not computed (null).

  ``classify`` defaults to ``harness.detect.classify``; N*_search is computed when the zoo has heuristics for the
  task (``reference_models``), and is reported as not computed otherwise (``notes``).
  ``search_criterion.stratum`` must be one of ``task.strata``.
  """
  if search_criterion.stratum not in task.strata:
    raise ValueError(f"stratum must be one of the task's strata {task.strata}, got {search_criterion.stratum!r}")
  t_start = time.perf_counter()
  classify = classify or detect.classify
  refs = reference_models(task)
  notes = []
  if not refs["heuristics"]:
    notes.append("N*_search not computed: the task has no heuristic rules")
  with_search = bool(refs["heuristics"])
  stratum = search_criterion.stratum
  grid = sorted(int(n) for n in pool_sizes)

  def ref_measure(model):
    return cached_measure(harness_measure(task, model, train_config, label=model_label(model), stratum=stratum,
                                          keep_params=with_search))

  mem_measures = [ref_measure(m) for m in refs["memorizers"]]
  heu_measures = [ref_measure(h) for h in refs["heuristics"]] if with_search else []
  classifiers = []

  def transition(model, measure, predictor=None, judged=True):
    clf = (harness_classifier(task, model, train_config, classify, measure=measure, predictor=predictor)
           if with_search and judged else None)
    if clf is not None:
      classifiers.append(clf)
    return find_transition(measure, mem_measures, grid, seeds, heuristics=heu_measures, classifier=clf,
                           criterion=criterion, search_criterion=search_criterion, refine_steps=refine_steps,
                           num_resamples=num_resamples)

  references, entries, ref_descs, row_descs, ref_timing = [], [], [], [], []
  search_model = models.make(SEARCH_ID, task.spec)
  search_knob = lambda model, params: search_predict(task, model, params)
  for model, measure, predictor in ([(m, mm, None) for m, mm in zip(refs["memorizers"], mem_measures)]
                                    + [(h, hm, None) for h, hm in zip(refs["heuristics"] if with_search else [],
                                                                       heu_measures)]
                                    + [(search_model, ref_measure(search_model), search_knob)]):
    t0, n_classify = time.perf_counter(), len(classifiers)
    references.append(transition(model, measure, predictor, classify_references))
    ref_descs.append({"id": model.model_id, "config": model.config_dict()})
    ref_timing.append({"label": model_label(model), "find_transition_s": time.perf_counter() - t0,
                       "classify_s": sum(c["seconds"] for clf in classifiers[n_classify:] for c in clf.calls)})
    entries += leaderboard_entries(task, model, train_config, measure.calls, seeds)
  rows, timing = [], []
  for cfg in sizes:
    model = models.make(model_id, task.spec, **cfg)
    label = model_label(model)
    measure = harness_measure(task, model, train_config, label=label, stratum=stratum, keep_params=with_search)
    t0 = time.perf_counter()
    n_classify = len(classifiers)
    result = transition(model, measure)
    wall = time.perf_counter() - t0
    row = {"label": label, "params": result.sweep.params, "vmapped_grid_s": measure.calls[0]["seconds"],
           "vmapped_runs": measure.calls[0]["runs"], "refine_s": sum(c["seconds"] for c in measure.calls[1:]),
           "classify_s": sum(c["seconds"] for clf in classifiers[n_classify:] for c in clf.calls),
           "find_transition_s": wall}
    if sequential:
      t1 = time.perf_counter()
      for n in grid:
        for s in seeds:
          train.run_experiment(task, model, [train.Run(int(s), int(n))], train_config)
      row["sequential_grid_s"] = time.perf_counter() - t1
      row["speedup"] = row["sequential_grid_s"] / row["vmapped_grid_s"]
    timing.append(row)
    rows.append(result)
    row_descs.append({"id": model.model_id, "config": model.config_dict()})
    s = result.search
    progress(f"{label}: {result.sweep.params} params, N*_gen = {result.gen.onset.n_star} CI {result.gen.onset.ci}"
             + ("" if s is None else f", N*_search = {s.onset.n_star} CI {s.onset.ci}")
             + f", grid {row['vmapped_grid_s']:.1f}s vmapped"
             + (f", {row['sequential_grid_s']:.1f}s sequential" if sequential else ""))
    entries += leaderboard_entries(task, model, train_config, measure.calls, seeds)
  cap = capacity([r.sweep.at(grid) for r in rows], [m.at(grid) for m in rows[0].memorizers],
                 task.answer_bits(), criterion, table_bits=task.table_bits()) if rows else None
  vm = sum(r["vmapped_grid_s"] for r in timing)
  seq = sum(r.get("sequential_grid_s", 0.0) for r in timing) if sequential else None
  timing_doc = {"per_size": timing, "references": ref_timing, "vmapped_grid_total_s": vm, "sequential_grid_total_s": seq,
                "speedup_vmapped_over_sequential": (seq / vm) if sequential and vm > 0 else None,
                "total_s": time.perf_counter() - t_start, "grid_cells": len(grid) * len(sizes), "seeds": len(seeds),
                "note": "vmapped: all pool sizes x seeds of one model size in one run_experiment call (one jit); "
                        "classify_s: the detector on the runs it judged; references: memorizers, heuristics and "
                        "the full search measured and judged on the same grid (their first measurement also "
                        "compiles the task's samplers)."}
  config = {"task": {"id": task.task_id, "params": task.params()}, "model_id": model_id,
            "model_sizes": list(sizes), "pool_sizes": grid, "seeds": list(seeds), "train": train_config.to_dict(),
            "refine_steps": refine_steps, "criterion": dataclasses.asdict(criterion),
            "search_criterion": dataclasses.asdict(search_criterion), "n_star_search_computed": with_search,
            "classify_references": classify_references}
  env = provenance.environment()
  entries = leaderboard.validate({"schema_version": leaderboard.SCHEMA_VERSION,
                                  "suite": {"config": {}, "command": command}, "environment": env,
                                  "entries": entries})["entries"]
  return PhaseDiagram(config, rows, references, cap, timing_doc, entries, row_descs, ref_descs, command, env, notes)


def merge_into_leaderboard(path: str, entries: Sequence[dict[str, Any]]) -> str:
  """Replaces or extends the entries of the leaderboard at ``path`` with ``entries`` (same ids replaced)."""
  board = leaderboard.read(path)
  ids = {e["id"] for e in entries}
  board["entries"] = [e for e in board["entries"] if e["id"] not in ids] + list(entries)
  return leaderboard.write(path, board)


def summary(diagram: PhaseDiagram, out: str, png: str) -> str:
  """One line: where the diagram went and how long it took (vmapped vs sequential)."""
  t = diagram.timing
  line = f"wrote {out} and {png}: total {t['total_s']:.1f}s, vmapped grid {t['vmapped_grid_total_s']:.1f}s"
  if t["sequential_grid_total_s"]:
    line += (f", sequential {t['sequential_grid_total_s']:.1f}s, speed-up "
             f"{t['speedup_vmapped_over_sequential']:.2f}x")
  return line
