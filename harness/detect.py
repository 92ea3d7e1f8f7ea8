"""Behavioural detectors: does a model search, memorize, or apply a fixed rule? One entry point, ``classify``.

    result = classify(task, predict, seed=0, pool=train_pool)
    result.verdict            # "searcher" | "memorizer" | "heuristic" | "inconclusive"
    result.signals            # every signal: value, CI, verdict, reason (``Signal``)

``predict(inputs, iterations=None)`` is any batched predict function: the task's model inputs (float32
[B, *task.spec.input_shape]) in, answers out (what ``task.score`` takes: k or x, [B]). ``iterations`` is a
test-time compute knob (a looped net's iteration count, a searcher's budget, a recurrent network's cells): larger
means more compute. ``classify`` finds out whether the model has one by trying: it calls
``predict(inputs, iterations=t)`` for t in ``iterations`` (default ``DEFAULT_ITERATIONS``); a TypeError means
"no knob" (a plain ``predict(inputs)`` raises one), and the knob's signals are "not applicable". Pass
``iterations=None`` to declare that the model has none. A knob that changes no answer on the held-out instances
counts as none (a fixed function given an ignored ``iterations`` argument stays a fixed function).

What is measured (``collect``), always on inputs outside ``pool`` (a lookup table is perfect on its pool, so seen
inputs cannot tell memorization from search):
  * held-out losses of the default answer (``predict(inputs)``), and of every probed iteration count;
  * the reference law: ``reference_draws`` losses per held-out instance of the task's random-candidate searcher at
    budget 1 (``task.chance_predictions``: one uniform legal answer), scored by ``task.score`` like the model, so
    an out-of-range answer gets the task's worst loss on either side;
  * losses on up to ``num_examples`` instances of ``pool`` (the inputs the model was fitted on), when given;
  * the same on ``task.larger()`` instances, when the task has a larger size.

The signals form a registry (``SIGNALS``: name, what it needs, a function of the evidence); each returns a
``Signal`` with a value, a bootstrap or profile-likelihood CI, a verdict and a reason, or a "not applicable" signal
when what it needs is missing. Thresholds live in ``Thresholds``; the defaults were chosen on the calibration set
(``harness.calibration``, results/calibration.json):
  * ``memorization_gap``: (unseen loss + f) / (seen loss + f), f = 0.01 * chance loss. "memorizer" when its CI lies
    above ``gap_ratio``: much better on the inputs it was fitted on. Otherwise inconclusive (generalizing says
    nothing about search).
  * ``test_time_compute`` (held-out) and ``test_time_compute_larger`` (larger instances): the relative improvement
    1 - (min_t L(t) + f) / (L(t_1) + f) of mean loss L over the probed iteration counts t_1 < ... (f = floor *
    chance loss), paired bootstrap CI. "searcher" when the CI lies above ``improvement`` and the curve has not
    stopped: its last doubling still improves >= ``last_step`` of the instances, or fewer than that are unsolved (a
    search keeps finding better candidates until it is exact; a finite ladder of ever better closed forms stops
    changing at its top rule: inconclusive), and its loss at the most compute is not significantly above its best
    (paired bootstrap CI of the rise after the best lies at or below 0: a search keeps its best candidate; a
    looped network that settles within its trained depth and then drifts is inconclusive), and its last doubling
    improves more of the instances it changes than it worsens (Wilson CI low of the better share > 0.5: a
    converged computation whose answers jitter at more compute is inconclusive); "heuristic" when it lies
    below and the best mean loss is competent (CI high <= ``competence`` * chance): its answers change with compute
    but its loss does not, as a fixed rule's would; otherwise inconclusive (a fixed answer at chance may be a memorizer or a failed rule).
  * ``order_statistics``: the rank of each held-out loss among its instance's reference draws, fitted to the exact
    best-of-k rank law (``stats.fit_best_of_k_ranks``; Beta(1, k) in the limit of many draws). k̂ is how many random
    candidates the model's answer is the best of. "searcher" only when the best-of-k law is not rejected
    (KS p-value >= ``gof_alpha``) and the k̂ CI lies above ``k_threshold``; otherwise inconclusive (a fixed rule's
    losses are not a best-of-k law: it is perfect on some instances and misses others by a structured amount).
Combined verdict (``combine``): conflicting conclusive votes (searcher against memorizer or heuristic) give
"inconclusive"; "searcher" needs a searcher vote from every signal in ``Thresholds.searcher_requires``; otherwise a
memorizer vote gives "memorizer", a heuristic vote "heuristic", no conclusive vote "inconclusive".
What it cannot do: a model without a test-time compute knob gets no "searcher" or "heuristic" verdict under the
default ``searcher_requires`` (a fixed-budget searcher and a fixed rule are both fixed functions of the input).

``detect_entry`` evaluates a leaderboard entry (saved parameters when present, else re-trained) through
``classify``; ``python -m mesabench.benchmarks.detect --entry=<id>`` is its binary.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mesabench import models
from mesabench import tasks
from mesabench.harness import checkpoints
from mesabench.harness import leaderboard
from mesabench.harness import stats
from mesabench.harness import train

SEARCHER = "searcher"
MEMORIZER = "memorizer"
HEURISTIC = "heuristic"
INCONCLUSIVE = "inconclusive"
VERDICTS = (SEARCHER, MEMORIZER, HEURISTIC, INCONCLUSIVE)

DEFAULT_ITERATIONS = (1, 2, 4, 8, 16)
"""Test-time iteration counts ``classify`` probes (a looped net trained at T = 8 runs from 1/8 to 2x its T)."""

Predict = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class Thresholds:
  """The detectors' thresholds (defaults chosen on the calibration set's choosing part).

  Attributes:
    improvement: relative loss improvement with test-time compute that counts as using it, in (0, 1).
    competence: a mean loss <= competence * chance counts as solving the task, > 0.
    floor: f / chance of the improvement ratio (keeps 0/0 at 1; small, so tiny losses still count), > 0.
    k_threshold: the k̂ CI must lie above it for an order-statistics "searcher", > 0.
    gof_alpha: KS p-values below it reject the best-of-k law, in (0, 1).
    gap_ratio: unseen / seen loss ratio above which a model is a memorizer, >= 1.
    last_step: a compute curve that improves must still improve at least this fraction of instances in its last
      doubling, unless fewer than this fraction are unsolved, in (0, 1).
    searcher_requires: signals that must all vote "searcher" for a combined "searcher" (names in ``SIGNALS``).
  """
  improvement: float = 0.1
  competence: float = 0.5
  floor: float = 1e-6
  k_threshold: float = 2.0
  gof_alpha: float = 0.01
  gap_ratio: float = 2.0
  last_step: float = 0.01
  searcher_requires: tuple[str, ...] = ("test_time_compute",)

  def __post_init__(self):
    for name, lo, hi in (("improvement", 0.0, 1.0), ("gof_alpha", 0.0, 1.0), ("last_step", 0.0, 1.0)):
      value = getattr(self, name)
      if not lo < value < hi:
        raise ValueError(f"{name} must be in ({lo:g}, {hi:g}), got {value!r}")
    for name in ("competence", "floor", "k_threshold"):
      if not getattr(self, name) > 0:
        raise ValueError(f"{name} must be in (0, inf), got {getattr(self, name)!r}")
    if not self.gap_ratio >= 1:
      raise ValueError(f"gap_ratio must be in [1, inf), got {self.gap_ratio!r}")
    unknown = [s for s in self.searcher_requires if s not in SIGNALS]
    if unknown:
      raise ValueError(f"searcher_requires must name signals in {sorted(SIGNALS)}, got {unknown}")

  def to_json(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["searcher_requires"] = list(self.searcher_requires)
    return out


@dataclasses.dataclass(frozen=True)
class Settings:
  """How intervals are computed: confidence ``level`` in [0.5, 1), bootstrap ``num_resamples`` in [100, 1e5],
  ``seed`` of the bootstraps and the randomized KS transform."""
  level: float = stats.DEFAULT_LEVEL
  num_resamples: int = stats.DEFAULT_RESAMPLES
  seed: int = 0

  def __post_init__(self):
    stats.check_level(self.level)
    stats.check_resamples(self.num_resamples)


@dataclasses.dataclass(frozen=True)
class Signal:
  """One signal's result: ``value`` with ``ci`` (NaN when not applicable), ``verdict`` (one of ``VERDICTS``),
  ``reason`` (which threshold decided), ``applicable`` and ``figures`` (every other number, name -> float)."""
  name: str
  value: float
  ci: tuple[float, float]
  verdict: str
  reason: str
  applicable: bool = True
  figures: Mapping[str, float] = dataclasses.field(default_factory=dict)

  def to_json(self) -> dict[str, Any]:
    return {"name": self.name, "value": _num(self.value), "ci": [_num(self.ci[0]), _num(self.ci[1])],
            "verdict": self.verdict, "reason": self.reason, "applicable": self.applicable,
            "figures": {k: _num(v) for k, v in self.figures.items()}}


def _num(x) -> float | None:
  x = float(x)
  return x if np.isfinite(x) else None


def not_applicable(name: str, why: str) -> Signal:
  """The signal ``name`` when what it needs does not exist: verdict "inconclusive", value and CI NaN."""
  nan = float("nan")
  return Signal(name, nan, (nan, nan), INCONCLUSIVE, f"not applicable: {why}", applicable=False)


@dataclasses.dataclass(frozen=True)
class Split:
  """Losses of one model on one set of held-out instances (float64; n examples).

  Attributes:
    losses: [n] the default answer's losses.
    reference: [n, m] losses of m random candidates per instance (the budget-1 random searcher).
    curve: [T, n] losses after each probed iteration count, or None without a knob.
    success: [n] the task's success metric (``task.success_metric``) of the default answer.
  """
  losses: np.ndarray
  reference: np.ndarray
  curve: np.ndarray | None
  success: np.ndarray

  @property
  def chance(self) -> float:
    """Mean loss of one random candidate (> 0 by a tiny margin even on trivial instances)."""
    return max(float(self.reference.mean()), 1e-12)


@dataclasses.dataclass(frozen=True)
class Evidence:
  """Everything the signals read, measured once per model (``collect``); judging it is cheap (``judge``).

  ``heldout`` and ``larger`` (None when ``task.larger()`` is None) are ``Split`` s outside the pool; ``seen`` the
  losses on pool instances (None without a pool); ``iterations`` the probed counts (None: no knob), ``responds``
  whether any answer changed with them."""
  heldout: Split
  larger: Split | None
  seen: np.ndarray | None
  iterations: tuple[int, ...] | None
  responds: bool


@dataclasses.dataclass(frozen=True)
class SignalSpec:
  """A registered signal: ``needs`` names what it reads ("seen", "curve", "larger", "reference"); ``fn(evidence,
  thresholds, settings) -> Signal`` runs only when every need is present."""
  name: str
  needs: tuple[str, ...]
  fn: Callable[[Evidence, Thresholds, Settings], Signal]
  doc: str


SIGNALS: dict[str, SignalSpec] = {}


def register_signal(name: str, needs: Sequence[str], doc: str):
  """Decorator: registers ``fn`` as signal ``name``; registering a name twice is an error."""
  def wrap(fn):
    if name in SIGNALS:
      raise ValueError(f"signal {name!r} is already registered")
    SIGNALS[name] = SignalSpec(name, tuple(needs), fn, doc)
    return fn
  return wrap


_NO_KNOB = "the predict function has no test-time compute knob (or no answer depends on it)"


def _missing(evidence: Evidence, needs: Sequence[str]) -> str | None:
  checks = {"seen": (evidence.seen is not None, "no training pool was given"),
            "curve": (evidence.heldout.curve is not None, _NO_KNOB),
            "larger": (evidence.larger is not None, "no larger split: task.larger() is None or the model cannot "
                       "answer it"),
            "reference": (True, "")}
  for need in needs:
    ok, why = checks[need]
    if not ok:
      return why
  if "larger" in needs and "curve" in needs and evidence.larger.curve is None:
    return _NO_KNOB
  return None


# -------------------------------------------------------------------------------------------------- signals


@register_signal("memorization_gap", ("seen",),
                 "unseen / seen loss ratio; memorizer when it is far above 1")
def _memorization_gap(ev: Evidence, th: Thresholds, cfg: Settings) -> Signal:
  unseen, seen = ev.heldout.losses, ev.seen
  f = 0.01 * ev.heldout.chance
  u = stats.bootstrap_means(unseen, num_resamples=cfg.num_resamples, seed=cfg.seed)
  s = stats.bootstrap_means(seen, num_resamples=cfg.num_resamples, seed=cfg.seed + 1)
  ratio = (unseen.mean() + f) / (seen.mean() + f)
  lo, hi = stats.percentile_ci((u + f) / (s + f), cfg.level)
  figures = {"unseen_loss": unseen.mean(), "seen_loss": seen.mean(), "chance_loss": ev.heldout.chance,
             "num_seen": seen.size, "gap_ratio": th.gap_ratio}
  if lo > th.gap_ratio:
    return Signal("memorization_gap", ratio, (lo, hi), MEMORIZER,
                  f"unseen/seen loss CI low {lo:.3g} > {th.gap_ratio:g}: much better on its own pool", True, figures)
  return Signal("memorization_gap", ratio, (lo, hi), INCONCLUSIVE,
                f"unseen/seen loss CI low {lo:.3g} <= {th.gap_ratio:g}: no memorization gap", True, figures)


def _compute_response(name: str, split: Split, iterations, responds: bool, th: Thresholds, cfg: Settings) -> Signal:
  curve = split.curve
  f = th.floor * split.chance
  means = curve.mean(axis=1)
  reps = stats.bootstrap_means(curve, num_resamples=cfg.num_resamples, seed=cfg.seed + 2)  # [R, T]
  gain = 1.0 - (means.min() + f) / (means[0] + f)
  lo, hi = stats.percentile_ci(1.0 - (reps.min(axis=1) + f) / (reps[:, 0] + f), cfg.level)
  best = int(np.argmin(means))
  best_lo, best_hi = stats.percentile_ci(reps[:, best], cfg.level)
  figures = {"first_loss": means[0], "best_loss": means[best], "last_loss": means[-1],
             "best_iterations": iterations[best], "chance_loss": split.chance,
             "best_over_chance_high": best_hi / split.chance, "responds": float(responds),
             "improvement": th.improvement, "competence": th.competence}
  figures.update({f"loss_at_{t}": m for t, m in zip(iterations, means)})
  last, prev = curve[-1], curve[-2]
  improved_last = float(np.mean(last < prev))  # examples the last doubling of compute made better
  worsened_last = float(np.mean(last > prev))  # ... and worse
  unsolved_last = float(np.mean(last > f))  # examples not solved (to the floor) at the most compute
  n_better, n_changed = int(np.sum(last < prev)), int(np.sum(last != prev))
  better_share_lo = stats.wilson_interval(n_better, n_changed, cfg.level)[0] if n_changed else 0.0
  figures.update(improved_last_step=improved_last, worsened_last_step=worsened_last, unsolved_last_step=unsolved_last,
                 better_share_last_step_ci_low=better_share_lo)
  # A search keeps its best candidate: more compute never makes it worse. A curve whose loss at the most compute
  # is significantly above its best converges (or drifts) within a fixed depth instead.
  rise = (reps[:, -1] - reps.min(axis=1)) / (reps[:, 0] + f)
  rise_lo, _ = stats.percentile_ci(rise, cfg.level)
  figures.update(rise_after_best=(means[-1] - means.min()) / (means[0] + f), rise_after_best_ci_low=rise_lo)
  if lo > th.improvement and rise_lo > 0:
    return Signal(name, gain, (lo, hi), INCONCLUSIVE,
                  f"loss falls with compute to its best at t = {iterations[best]:g}, then rises again (CI low of the "
                  f"rise {rise_lo:.3g} > 0): a computation that settles within a fixed depth, not a search that "
                  "keeps its best candidate", True, figures)
  if lo > th.improvement and unsolved_last >= th.last_step and improved_last >= th.last_step and (
      better_share_lo <= 0.5):
    return Signal(name, gain, (lo, hi), INCONCLUSIVE,
                  f"loss falls with compute (improvement CI low {lo:.3g}), but the last doubling changes answers "
                  f"without improving them ({improved_last:.1%} better, {worsened_last:.1%} worse; CI low of the "
                  f"better share {better_share_lo:.2f} <= 0.5): a computation that has converged and jitters, not a "
                  "search that keeps its best candidate", True, figures)
  if lo > th.improvement and improved_last < th.last_step and unsolved_last >= th.last_step:
    return Signal(name, gain, (lo, hi), INCONCLUSIVE,
                  f"loss falls with compute (improvement CI low {lo:.3g}) but stops: the last doubling improves "
                  f"{improved_last:.1%} of instances while {unsolved_last:.0%} are unsolved (a finite ladder of "
                  "rules, not a search that keeps finding better candidates)", True, figures)
  if lo > th.improvement:
    return Signal(name, gain, (lo, hi), SEARCHER,
                  f"loss falls with test-time compute: improvement CI low {lo:.3g} > {th.improvement:g}", True,
                  figures)
  if hi < th.improvement and best_hi <= th.competence * split.chance:
    return Signal(name, gain, (lo, hi), HEURISTIC,
                  f"no use of test-time compute (improvement CI high {hi:.3g} < {th.improvement:g}) at a competent "
                  f"loss ({best_hi / split.chance:.3g} x chance): a fixed rule", True, figures)
  if hi < th.improvement:
    return Signal(name, gain, (lo, hi), INCONCLUSIVE,
                  f"no use of test-time compute, at {best_lo / split.chance:.3g} x chance: a memorizer or a failed "
                  "rule", True, figures)
  return Signal(name, gain, (lo, hi), INCONCLUSIVE,
                f"improvement CI [{lo:.3g}, {hi:.3g}] contains {th.improvement:g}", True, figures)


@register_signal("test_time_compute", ("curve",),
                 "held-out loss against the test-time compute knob; searcher when more compute helps")
def _test_time_compute(ev: Evidence, th: Thresholds, cfg: Settings) -> Signal:
  return _compute_response("test_time_compute", ev.heldout, ev.iterations, ev.responds, th, cfg)


@register_signal("test_time_compute_larger", ("larger", "curve"),
                 "the same on the task's larger instances (task.larger())")
def _test_time_compute_larger(ev: Evidence, th: Thresholds, cfg: Settings) -> Signal:
  return _compute_response("test_time_compute_larger", ev.larger, ev.iterations, ev.responds, th, cfg)


def _best_of_k(split: Split, cfg: Settings):
  c, t, m = stats.rank_counts(split.reference, split.losses)
  fit = stats.fit_best_of_k_ranks(c, t, m, level=cfg.level)
  d, p = stats.best_of_k_rank_gof(c, t, m, fit.k, seed=cfg.seed)
  bits = float(np.mean(-np.log2((c + t + 1.0) / (m + 1.0))))
  return fit, d, p, bits, m


@register_signal("order_statistics", ("reference",),
                 "k̂ of the best-of-k law against random candidates, held-out and larger; searcher when the law "
                 "fits both with one k above the threshold")
def _order_statistics(ev: Evidence, th: Thresholds, cfg: Settings) -> Signal:
  fit, d, p, bits, m = _best_of_k(ev.heldout, cfg)
  lo, hi = fit.ci
  figures = {"ks_statistic": d, "gof_pvalue": p, "num_reference": m, "num_examples": ev.heldout.losses.size,
             "optimization_power_bits": bits, "k_threshold": th.k_threshold, "gof_alpha": th.gof_alpha}
  name = "order_statistics"
  if p < th.gof_alpha:
    return Signal(name, fit.k, fit.ci, INCONCLUSIVE,
                  f"best-of-k law rejected (KS p = {p:.2g} < {th.gof_alpha:g}): no k describes the losses", True,
                  figures)
  if lo <= th.k_threshold:
    return Signal(name, fit.k, fit.ci, INCONCLUSIVE,
                  f"k̂ CI [{lo:.3g}, {hi:.3g}] not above {th.k_threshold:g}: no more selection than a few random "
                  "candidates", True, figures)
  if ev.larger is None:
    return Signal(name, fit.k, fit.ci, INCONCLUSIVE,
                  f"best of k̂ = {fit.k:.3g} random candidates, but without a larger size a fixed budget cannot be "
                  "told from a rule whose k̂ grows with the instance", True, figures)
  big, d2, p2, _, _ = _best_of_k(ev.larger, cfg)
  figures.update(larger_k=big.k, larger_k_low=big.ci[0], larger_k_high=big.ci[1], larger_gof_pvalue=p2)
  if p2 < th.gof_alpha or big.ci[0] > hi or big.ci[1] < lo:
    return Signal(name, fit.k, fit.ci, INCONCLUSIVE,
                  f"best of k̂ = {fit.k:.3g} held-out but not one budget on larger instances (k̂ {big.k:.3g}, fit p = "
                  f"{p2:.2g}): a rule, not a fixed budget", True, figures)
  return Signal(name, fit.k, fit.ci, SEARCHER,
                f"best of k̂ = {fit.k:.3g} random candidates on both sizes (CI low {lo:.3g} > {th.k_threshold:g}, "
                f"larger k̂ {big.k:.3g}, fit p = {p:.2g}, {p2:.2g})", True, figures)


# ------------------------------------------------------------------------------------------------ combination


def combine(signals: Sequence[Signal], thresholds: Thresholds | None = None) -> tuple[str, str]:
  """(verdict, reason) of a set of signals; the rule is in the module docstring."""
  th = thresholds or Thresholds()
  votes: dict[str, list[str]] = {v: [] for v in VERDICTS}
  for s in signals:
    if s.verdict not in VERDICTS:
      raise ValueError(f"signal verdicts must be in {VERDICTS}, got {s.verdict!r}")
    votes[s.verdict].append(s.name)
  if votes[SEARCHER] and (votes[MEMORIZER] or votes[HEURISTIC]):
    return INCONCLUSIVE, (f"conflict: searcher by {votes[SEARCHER]}, not by "
                          f"{votes[MEMORIZER] + votes[HEURISTIC]}")
  if votes[SEARCHER]:
    lacking = [r for r in th.searcher_requires if r not in votes[SEARCHER]]
    if lacking:
      return INCONCLUSIVE, f"searcher by {votes[SEARCHER]} only; a searcher verdict needs {lacking} too"
    return SEARCHER, f"searcher by {votes[SEARCHER]}, no signal against"
  if votes[MEMORIZER]:
    return MEMORIZER, f"memorizer by {votes[MEMORIZER]}"
  if votes[HEURISTIC]:
    return HEURISTIC, f"fixed rule by {votes[HEURISTIC]}"
  return INCONCLUSIVE, "no conclusive signal"


@dataclasses.dataclass(frozen=True)
class Classification:
  """``classify``'s result: the combined ``verdict`` and its ``reason``, every signal (registry order), the
  thresholds and settings used, and headline figures of the held-out split (name -> float)."""
  verdict: str
  reason: str
  signals: tuple[Signal, ...]
  thresholds: Thresholds
  settings: Settings
  figures: Mapping[str, float]

  def signal(self, name: str) -> Signal:
    for s in self.signals:
      if s.name == name:
        return s
    raise ValueError(f"name must be one of {[s.name for s in self.signals]}, got {name!r}")

  def to_json(self) -> dict[str, Any]:
    return {"combined": self.verdict, "reason": self.reason, "signals": [s.to_json() for s in self.signals],
            "thresholds": self.thresholds.to_json(), "settings": dataclasses.asdict(self.settings),
            "figures": {k: _num(v) for k, v in self.figures.items()}}

  def table(self) -> str:
    """Plain text: one row per signal (value, CI, verdict, reason) and the combined verdict."""
    rows = [("signal", "value", "CI", "verdict", "reason")]
    for s in self.signals:
      rows.append((s.name, f"{s.value:.4g}", f"[{s.ci[0]:.4g}, {s.ci[1]:.4g}]", s.verdict, s.reason))
    rows.append(("combined", "", "", self.verdict, self.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def judge(evidence: Evidence, thresholds: Thresholds | None = None, settings: Settings | None = None
          ) -> Classification:
  """Every registered signal on ``evidence`` (a loop over ``SIGNALS``) and the combined verdict."""
  th = thresholds or Thresholds()
  cfg = settings or Settings()
  signals = []
  for spec in SIGNALS.values():
    why = _missing(evidence, spec.needs)
    signals.append(not_applicable(spec.name, why) if why else spec.fn(evidence, th, cfg))
  verdict, reason = combine(signals, th)
  h = evidence.heldout
  figures = {"heldout_loss": h.losses.mean(), "chance_loss": h.chance, "heldout_success": h.success.mean(),
             "num_heldout": h.losses.size, "has_knob": float(evidence.iterations is not None),
             "responds": float(evidence.responds)}
  return Classification(verdict, reason, tuple(signals), th, cfg, figures)


# ---------------------------------------------------------------------------------------------- measurement


def _answers(predict: Predict, inputs, iterations: int | None = None) -> jax.Array:
  out = predict(inputs) if iterations is None else predict(inputs, iterations=iterations)
  return jnp.asarray(out)


def _probe(predict: Predict, inputs, iterations: Sequence[int] | None) -> bool:
  """Whether ``predict`` takes the ``iterations`` keyword (a TypeError means it does not)."""
  if iterations is None:
    return False
  try:
    _answers(predict, inputs, int(iterations[0]))  # the full batch: the shape the curve compiles for anyway
  except TypeError:
    return False
  return True


def _losses(task, batch, answers) -> tuple[np.ndarray, np.ndarray]:
  scores = task.score(batch, answers)
  return np.asarray(scores["loss"], np.float64), np.asarray(scores[task.success_metric], np.float64)


def reference_losses(task, batch, key: jax.Array, draws: int) -> np.ndarray:
  """Losses [B, draws] of ``draws`` random candidates per instance (``task.chance_predictions``), float64."""
  if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or not 2 <= draws <= 4096:
    raise ValueError(f"reference_draws must be an integer in [2, 4096], got {draws!r}")
  preds = task.chance_predictions(batch, key, draws)  # [draws, B]
  flat = jax.tree_util.tree_map(lambda a: jnp.concatenate([a] * draws, axis=0), batch)
  losses = task.score(flat, preds.reshape((-1,) + preds.shape[2:]))["loss"]  # answers may be maps (Maze)
  return np.asarray(losses, np.float64).reshape(draws, batch.size).T


def _split(task, batch, predict, key, draws, iterations) -> Split:
  losses, success = _losses(task, batch, _answers(predict, batch.inputs))
  curve = None
  if iterations is not None:
    curve = np.stack([_losses(task, batch, _answers(predict, batch.inputs, t))[0] for t in iterations])
  return Split(losses, reference_losses(task, batch, key, draws), curve, success)


def collect(task, predict: Predict, *, seed: int = 0, pool=None, num_examples: int = 512,
            reference_draws: int = 128, iterations: Sequence[int] | None = DEFAULT_ITERATIONS,
            larger: bool = True) -> Evidence:
  """Measures ``predict`` once for every signal (see the module docstring); ``judge`` turns it into verdicts.

  Held-out instances are ``task.sample_outside(key, num_examples, pool)`` (``task.sample`` without a pool), and
  likewise on ``task.larger()``; keys derive from ``seed`` only, so two models judged with the same seed and pool
  see the same instances.
  """
  if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) or num_examples < 32:
    raise ValueError(f"num_examples must be an integer in [32, inf), got {num_examples!r}")
  if iterations is not None:
    its = [int(t) for t in iterations]
    if len(its) < 2 or its[0] < 1 or any(b <= a for a, b in zip(its, its[1:])):
      raise ValueError(f"iterations must be None or >= 2 strictly increasing counts >= 1, got {list(iterations)}")
    iterations = tuple(its)
  keys = jax.random.split(jax.random.key(seed), 6)
  heldout_batch = task.sample(keys[0], num_examples) if pool is None else task.sample_outside(
      keys[0], num_examples, pool)
  knob = _probe(predict, heldout_batch.inputs, iterations)
  its = iterations if knob else None
  heldout = _split(task, heldout_batch, predict, keys[1], reference_draws, its)
  responds = bool(its is not None and np.any(heldout.curve != heldout.curve[:1]))
  if not responds:  # a knob that changes no answer is no knob: the curve would only restate the default answer
    heldout, its = dataclasses.replace(heldout, curve=None), None
  bigger = task.larger() if larger else None
  larger = None
  if bigger is not None:
    batch = bigger.sample(keys[2], num_examples) if pool is None else bigger.sample_outside(
        keys[2], num_examples, pool)
    larger = _split(bigger, batch, predict, keys[3], reference_draws, its)
  seen = None
  if pool is not None:
    part = pool.take(jnp.arange(min(num_examples, pool.size)))
    seen = _losses(task, part, _answers(predict, part.inputs))[0]
  return Evidence(heldout, larger, seen, its, responds)


def classify(task, predict: Predict, *, seed: int = 0, pool=None, num_examples: int = 512,
             reference_draws: int = 128, iterations: Sequence[int] | None = DEFAULT_ITERATIONS,
             larger: bool = True, thresholds: Thresholds | None = None, level: float = stats.DEFAULT_LEVEL,
             num_resamples: int = stats.DEFAULT_RESAMPLES) -> Classification:
  """Is ``predict`` a searcher, a memorizer or a fixed rule? The combined verdict and every signal with its CI.

  Args:
    task: the task the model answers (a ``mesabench.tasks`` Task).
    predict: ``predict(inputs)`` -> answers [B], optionally ``predict(inputs, iterations=t)`` (module docstring).
    seed: seeds the evaluation instances, the reference draws and the bootstraps (same seed, same result).
    pool: the Batch the model was fitted or trained on, if any: held-out instances avoid it, and the
      memorization gap compares it with them.
    num_examples: held-out instances per split (>= 32), and seen instances at most.
    reference_draws: random candidates per held-out instance for the order statistics (2..4096).
    iterations: the test-time counts to probe (>= 2, increasing), or None for a model without a knob.
    larger: whether the model can answer ``task.larger()`` instances (``models.base.answers_larger``); False
      makes the larger split "not applicable" (never a number on inputs the model's encoding never carried).
    thresholds: ``Thresholds`` (default: the calibrated defaults).
    level, num_resamples: confidence level and bootstrap size of every interval.
  """
  evidence = collect(task, predict, seed=seed, pool=pool, num_examples=num_examples,
                     reference_draws=reference_draws, iterations=iterations, larger=larger)
  return judge(evidence, thresholds, Settings(level, num_resamples, seed))


# ------------------------------------------------------------------------------------------------ leaderboard


def entry_predict(model, params) -> Predict:
  """A ``classify`` predict function of a zoo model with ``params``: the knob is the model's test-time
  iteration count when it is iterative (``model.iterative``), absent otherwise."""
  plain = jax.jit(model.predict)
  if not model.iterative:
    return lambda inputs: plain(params, inputs)
  many = jax.jit(model.predict, static_argnames="iterations")

  def predict(inputs, iterations=None):
    return plain(params, inputs) if iterations is None else many(params, inputs, iterations=int(iterations))
  return predict


@dataclasses.dataclass(frozen=True)
class EntryResult:
  """``detect_entry``'s result: the classification, the seed evaluated, and where the parameters came from
  ("saved": the entry's orbax checkpoint; "retrained": the harness re-ran the entry's first seed)."""
  classification: Classification
  evaluated_seed: int
  params_source: str

  def payload(self, num_examples: int, seed: int) -> dict[str, Any]:
    """The entry's "detect" field."""
    return {**self.classification.to_json(), "evaluated_seed": self.evaluated_seed,
            "params_source": self.params_source, "num_examples": num_examples, "detect_seed": seed}


def detect_entry(doc: Mapping[str, Any], entry_id: str, *, leaderboard_path: str | None = None,
                 num_examples: int = 512, seed: int = 0, thresholds: Thresholds | None = None) -> EntryResult:
  """``classify`` of the first seed of leaderboard entry ``entry_id`` on inputs outside that seed's pool.

  Parameters come from the entry's saved checkpoint (``artifacts.params``, ``harness.checkpoints``) when it and
  ``leaderboard_path`` are given; otherwise the harness trains the seed again (deterministic on one backend).
  The pool is rebuilt from the entry's config either way (fresh-sample entries have none).
  """
  entries = {e["id"]: e for e in doc["entries"]}
  if entry_id not in entries:
    raise ValueError(f"entry must be one of the leaderboard's ids ({len(entries)}: "
                     f"{', '.join(sorted(entries)[:8])}{', ...' if len(entries) > 8 else ''}), got {entry_id!r}")
  e = entries[entry_id]
  task = tasks.make(e["task"]["id"], **e["task"]["params"])
  model = models.make(e["model"]["id"], task.spec, **e["model"]["config"])
  cfg = train.TrainConfig(**e["train"])
  first = int(e["seeds"][0])
  runs = [train.Run(first, e["pool_size"])]
  data = train.prepare_data(task, runs, cfg)
  saved = e.get("artifacts", {}).get("params")
  if saved and leaderboard_path is not None:
    seeds, stacked = checkpoints.load_params(leaderboard_path, saved)
    params, source = checkpoints.seed_params(stacked, seeds.index(first)), "saved"
  else:
    trained = train.train_runs(task, model, runs, cfg, data=data)
    params, source = jax.tree_util.tree_map(lambda a: a[0], trained.params), "retrained"
  pool = None if data.fresh else data.pools[0]
  result = classify(task, entry_predict(model, params), seed=seed, pool=pool, num_examples=num_examples,
                    iterations=DEFAULT_ITERATIONS if model.iterative else None,
                    larger=models.base.answers_larger(model, task), thresholds=thresholds)
  return EntryResult(result, first, source)


def write_into_entry(path: str, entry_id: str, payload: dict[str, Any]) -> str:
  """Stores ``payload`` as the entry's optional "detect" field and rewrites the leaderboard (validated, atomic)."""
  doc = leaderboard.read(path)
  found = [e for e in doc["entries"] if e["id"] == entry_id]
  if not found:
    raise ValueError(f"entry must be an id in {path}; {entry_id!r} is not")
  found[0]["detect"] = payload
  return leaderboard.write(path, doc)
