"""Linear probes: is a variable of a known algorithm linearly readable from a network's hidden state?

    result = fit_probe(features, labels, kind="binary", seed=0, groups=maze_index)
    result.score, result.ci             # held-out balanced accuracy (binary) or R^2 (real), bootstrap CI
    result.shuffled                     # the same probe trained on shuffled labels (same split): the control
    curve = probe_curve(states, labels, kind="binary", control_states=random_init_states)

What is fitted (all in float64 numpy, deterministic):
  * features are standardized with the training part's mean and standard deviation (constant features dropped);
  * ``kind="binary"`` (labels 0/1): L2-regularized logistic regression with an unpenalized intercept, fitted by
    Newton's method (iteratively reweighted least squares, at most ``NEWTON_STEPS`` steps, stopped when the largest
    coefficient change is below 1e-8), with class-balanced example weights (each class carries half the weight),
    so that predicting p > 1/2 targets the *balanced* accuracy. The score is the held-out balanced accuracy, the
    mean of the true-positive and true-negative rates: 0.5 is chance whatever the class balance. ``accuracy`` and
    ``majority`` (the held-out accuracy of always answering the training part's majority class) are reported too;
  * ``kind="real"``: ridge regression (closed form, intercept unpenalized); the score is the held-out R^2 =
    1 - SSE / SST around the held-out mean (0: no better than a constant; can be negative).
The split: ``train_fraction`` of the examples (or of the ``groups``, e.g. the maze each cell belongs to, so that
cells of one maze never sit on both sides) train the probe, the rest are held out; the permutation comes from
``seed`` alone. The CI is a percentile bootstrap of the held-out score over held-out groups (examples when no
groups are given), ``num_resamples`` resamples at ``level``. A score is "not applicable" (NaN, ``applicable`` False)
when a class has fewer than ``MIN_CLASS`` examples on either side of the split (nothing to tell apart), or when the
real labels are constant there.

Controls (what a probe score means only beside them):
  * shuffled labels: the labels permuted (``seed``-keyed) over the whole set, then the same split and fit. A probe
    that scores well on shuffled labels has the capacity to memorize its training part, not a readout (held-out,
    it lands near 0.5 balanced accuracy or R^2 <= 0);
  * the same architecture at random initialization: the caller passes its states (``probe_curve``'s
    ``control_states``), so the score of features that merely carry the input is known.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

KINDS = ("binary", "real")
NEWTON_STEPS = 50
MIN_CLASS = 5
"""A binary probe needs at least this many examples of each class on each side of the split."""


@dataclasses.dataclass(frozen=True)
class ProbeResult:
  """One probe: held-out ``score`` (binary: balanced accuracy in [0, 1], chance 0.5; real: R^2 in (-inf, 1]) with
  its bootstrap ``ci``; the shuffled-label control's score and CI; ``accuracy`` / ``majority`` (binary: held-out
  accuracy and the majority-class baseline; NaN for real probes); ``positive_fraction`` (binary labels; NaN for
  real); example counts; ``applicable`` (False: NaN scores, ``reason`` says why)."""
  kind: str
  score: float
  ci: tuple[float, float]
  shuffled: float
  shuffled_ci: tuple[float, float]
  accuracy: float
  majority: float
  positive_fraction: float
  num_train: int
  num_test: int
  applicable: bool = True
  reason: str = ""

  def to_json(self) -> dict[str, Any]:
    def num(x):
      x = float(x)
      return x if np.isfinite(x) else None
    return {"kind": self.kind, "score": num(self.score), "ci": [num(self.ci[0]), num(self.ci[1])],
            "shuffled": num(self.shuffled), "shuffled_ci": [num(self.shuffled_ci[0]), num(self.shuffled_ci[1])],
            "accuracy": num(self.accuracy), "majority": num(self.majority),
            "positive_fraction": num(self.positive_fraction), "num_train": self.num_train,
            "num_test": self.num_test, "applicable": self.applicable, "reason": self.reason}


def _check(features, labels, kind, train_fraction, l2, groups, num_resamples, level):
  if not isinstance(kind, str) or kind not in KINDS:
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
  x = np.asarray(features, np.float64)
  y = np.asarray(labels, np.float64)
  if x.ndim != 2 or x.shape[0] < 4:
    raise ValueError(f"features must be [N, D] with N >= 4, got shape {x.shape}")
  if y.shape != (x.shape[0],):
    raise ValueError(f"labels must be [N] = [{x.shape[0]}], got shape {y.shape}")
  if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
    raise ValueError("features and labels must be finite")
  if kind == "binary" and not np.all((y == 0) | (y == 1)):
    raise ValueError("labels must be 0 or 1 for kind='binary'")
  if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)) or not 0 < train_fraction < 1:
    raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
  if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not np.isfinite(l2) or l2 < 0:
    raise ValueError(f"l2 must be in [0, inf), got {l2!r}")
  if groups is not None:
    groups = np.asarray(groups)
    if groups.shape != (x.shape[0],):
      raise ValueError(f"groups must be [N] = [{x.shape[0]}], got shape {groups.shape}")
  if isinstance(num_resamples, bool) or not isinstance(num_resamples, (int, np.integer)) or not (
      10 <= num_resamples <= 100000):
    raise ValueError(f"num_resamples must be an integer in [10, 100000], got {num_resamples!r}")
  if not 0.5 <= level < 1:
    raise ValueError(f"level must be in [0.5, 1), got {level!r}")
  return x, y, groups


def split_indices(n: int, train_fraction: float, seed: int, groups=None) -> tuple[np.ndarray, np.ndarray]:
  """(train, test) example indices: a ``seed``-keyed permutation of the examples, or of the distinct ``groups``
  (every example of a group on one side). Both sides non-empty for n >= 2 (or >= 2 groups)."""
  rng = np.random.default_rng(seed)
  if groups is None:
    ids = np.arange(n)
    unit = ids
  else:
    unit, ids = np.unique(np.asarray(groups), return_inverse=True)
    unit = np.arange(unit.size)
  order = rng.permutation(unit.size)
  cut = min(max(int(round(train_fraction * unit.size)), 1), unit.size - 1)
  train_units = np.zeros(unit.size, bool)
  train_units[order[:cut]] = True
  mask = train_units[ids]
  return np.nonzero(mask)[0], np.nonzero(~mask)[0]


def _standardize(x_train, x_test):
  mu = x_train.mean(axis=0)
  sd = x_train.std(axis=0)
  keep = sd > 1e-12
  return (x_train[:, keep] - mu[keep]) / sd[keep], (x_test[:, keep] - mu[keep]) / sd[keep]


def _design(x):
  return np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, weights: np.ndarray | None = None) -> np.ndarray:
  """Coefficients [D + 1] (last: intercept, unpenalized) of L2-regularized, weighted logistic regression, by
  Newton's method (float64); minimizes sum_i w_i * BCE_i + l2 / 2 * |beta|^2 (the mean weight is 1)."""
  a = _design(np.asarray(x, np.float64))
  y = np.asarray(y, np.float64)
  w = np.ones(y.size) if weights is None else np.asarray(weights, np.float64)
  pen = np.full(a.shape[1], float(l2))
  pen[-1] = 0.0
  beta = np.zeros(a.shape[1])
  for _ in range(NEWTON_STEPS):
    z = np.clip(a @ beta, -30.0, 30.0)
    p = 1.0 / (1.0 + np.exp(-z))
    grad = a.T @ (w * (p - y)) + pen * beta
    h = (a * (w * p * (1 - p))[:, None]).T @ a + np.diag(pen) + 1e-9 * np.eye(a.shape[1])
    step = np.linalg.solve(h, grad)
    beta = beta - step
    if np.max(np.abs(step)) < 1e-8:
      break
  return beta


def fit_ridge(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
  """Coefficients [D + 1] (last: intercept, unpenalized) of ridge regression, closed form (float64)."""
  a = _design(np.asarray(x, np.float64))
  pen = np.full(a.shape[1], float(l2))
  pen[-1] = 0.0
  return np.linalg.solve(a.T @ a + np.diag(pen) + 1e-9 * np.eye(a.shape[1]), a.T @ np.asarray(y, np.float64))


def _balanced_accuracy(y, pred) -> float:
  pos, neg = y == 1, y == 0
  return 0.5 * (np.mean(pred[pos] == 1) + np.mean(pred[neg] == 0))


def _r2(y, pred) -> float:
  sst = np.sum((y - y.mean()) ** 2)
  return 1.0 - np.sum((y - pred) ** 2) / sst if sst > 0 else float("nan")


def _bootstrap(score_fn, y, pred, test_groups, num_resamples, level, seed) -> tuple[float, float]:
  rng = np.random.default_rng(seed)
  units, inv = np.unique(test_groups, return_inverse=True)
  members = [np.nonzero(inv == u)[0] for u in range(units.size)]
  reps = []
  for _ in range(num_resamples):
    pick = rng.integers(0, units.size, units.size)
    idx = np.concatenate([members[u] for u in pick])
    reps.append(score_fn(y[idx], pred[idx]))
  reps = np.asarray(reps, np.float64)
  reps = reps[np.isfinite(reps)]
  if reps.size == 0:
    return float("nan"), float("nan")
  a = (1 - level) / 2
  return float(np.quantile(reps, a)), float(np.quantile(reps, 1 - a))


def _fit_and_score(x, y, kind, tr, te, l2, groups, num_resamples, level, seed):
  """(score, ci, accuracy, majority, applicable reason) of one probe on the split (tr, te)."""
  nan = float("nan")
  if kind == "binary":
    for side, idx in (("training", tr), ("held-out", te)):
      counts = (int(np.sum(y[idx] == 0)), int(np.sum(y[idx] == 1)))
      if min(counts) < MIN_CLASS:
        return nan, (nan, nan), nan, nan, (f"the {side} part has {counts[0]} negatives and {counts[1]} positives "
                                           f"(< {MIN_CLASS} of a class)")
  elif np.std(y[tr]) == 0 or np.std(y[te]) == 0:
    return nan, (nan, nan), nan, nan, "the labels are constant on one side of the split"
  xtr, xte = _standardize(x[tr], x[te])
  if kind == "binary":
    ytr = y[tr]
    frac = ytr.mean()
    weights = np.where(ytr == 1, 0.5 / frac, 0.5 / (1 - frac))
    beta = fit_logistic(xtr, ytr, l2, weights)
    pred = (_design(xte) @ beta > 0).astype(np.float64)
    score_fn = _balanced_accuracy
    accuracy = float(np.mean(pred == y[te]))
    majority = float(np.mean(y[te] == (1.0 if frac > 0.5 else 0.0)))
  else:
    beta = fit_ridge(xtr, y[tr], l2)
    pred = _design(xte) @ beta
    score_fn = _r2
    accuracy = majority = nan
  test_groups = te if groups is None else groups[te]
  ci = _bootstrap(score_fn, y[te], pred, test_groups, num_resamples, level, seed)
  return float(score_fn(y[te], pred)), ci, accuracy, majority, ""


def fit_probe(features, labels, kind: str = "binary", *, train_fraction: float = 0.5, seed: int = 0,
              l2: float = 1.0, groups=None, num_resamples: int = 200, level: float = 0.95) -> ProbeResult:
  """A linear probe from ``features`` [N, D] to ``labels`` [N] and its shuffled-label control (module docstring).

  kind: "binary" (labels 0/1; logistic regression, balanced accuracy) or "real" (ridge, R^2).
  train_fraction in (0, 1): part of the examples (or groups) that trains the probe; l2 >= 0: the penalty on the
  standardized coefficients; groups: [N] ids that must not straddle the split (None: examples are independent);
  num_resamples in [10, 1e5], level in [0.5, 1): the bootstrap CI of the held-out score.
  """
  x, y, groups = _check(features, labels, kind, train_fraction, l2, groups, num_resamples, level)
  tr, te = split_indices(x.shape[0], train_fraction, seed, groups)
  score, ci, acc, maj, why = _fit_and_score(x, y, kind, tr, te, l2, groups, num_resamples, level, seed)
  shuffled = np.random.default_rng(seed + 1).permutation(y)
  s_score, s_ci, _, _, _ = _fit_and_score(x, shuffled, kind, tr, te, l2, groups, num_resamples, level, seed)
  return ProbeResult(kind, score, ci, s_score, s_ci, acc, maj,
                     float(y.mean()) if kind == "binary" else float("nan"), int(tr.size), int(te.size),
                     applicable=not why, reason=why)


@dataclasses.dataclass(frozen=True)
class ProbeCurve:
  """Probes per iteration: ``iterations`` [T'] (1-based), the trained states' results, and the control states'
  (random initialization; None when not given). Each result carries its shuffled-label control."""
  iterations: tuple[int, ...]
  trained: tuple[ProbeResult, ...]
  control: tuple[ProbeResult, ...] | None

  def scores(self, which: str = "trained") -> np.ndarray:
    """[T'] held-out scores of "trained", "control" (random init) or "shuffled" (trained states, shuffled labels)."""
    if which == "shuffled":
      return np.asarray([r.shuffled for r in self.trained])
    rows = self.trained if which == "trained" else self.control
    if rows is None:
      raise ValueError("which='control' needs control_states")
    return np.asarray([r.score for r in rows])

  def to_json(self) -> dict[str, Any]:
    return {"iterations": list(self.iterations), "trained": [r.to_json() for r in self.trained],
            "control": None if self.control is None else [r.to_json() for r in self.control]}


def probe_curve(states, labels, kind: str = "binary", *, iterations: Sequence[int] | None = None,
                control_states=None, **kwargs) -> ProbeCurve:
  """``fit_probe`` at every iteration: ``states`` [T, N, D] (iteration t's features for N examples), ``labels``
  [T, N] (a variable that changes with the iteration, e.g. BFS reached within t steps) or [N] (one for all);
  ``control_states`` [T, N, D] of the same architecture at random initialization (optional). ``iterations``: the
  1-based iteration of each row (default 1..T). Every row uses the same split (``seed``) and settings (``kwargs``
  of ``fit_probe``)."""
  states = np.asarray(states)
  if states.ndim != 3:
    raise ValueError(f"states must be [T, N, D], got shape {states.shape}")
  t, n = states.shape[:2]
  labels = np.asarray(labels)
  if labels.shape not in ((n,), (t, n)):
    raise ValueError(f"labels must be [N] = [{n}] or [T, N] = [{t}, {n}], got shape {labels.shape}")
  if control_states is not None:
    control_states = np.asarray(control_states)
    if control_states.shape[:2] != (t, n) or control_states.ndim != 3:
      raise ValueError(f"control_states must be [T, N, D'] with T, N = {t}, {n}, got shape {control_states.shape}")
  its = tuple(range(1, t + 1)) if iterations is None else tuple(int(i) for i in iterations)
  if len(its) != t:
    raise ValueError(f"iterations must hold T = {t} values, got {len(its)}")
  row = (lambda i: labels[i]) if labels.ndim == 2 else (lambda i: labels)
  trained = tuple(fit_probe(states[i], row(i), kind, **kwargs) for i in range(t))
  control = None
  if control_states is not None:
    control = tuple(fit_probe(control_states[i], row(i), kind, **kwargs) for i in range(t))
  return ProbeCurve(its, trained, control)


def summarize_curves(by_seed: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
  """Per variable of ``by_seed`` ({seed: {variable: ProbeCurve.to_json()}}): the mean over seeds of the held-out
  score per iteration for the trained states, the random-init control and shuffled labels ("trained",
  "random_init", "shuffled", None where no seed has a finite score), each one's mean over iterations
  ("<which>_mean"), and under "best_scale", for variables probed at several scales ("<var>@c=<c>"), the name with
  the highest trained mean."""
  out: dict[str, Any] = {}
  for name in next(iter(by_seed.values())):
    rows: dict[str, list] = {"trained": [], "random_init": [], "shuffled": []}
    for curves in by_seed.values():
      cur = curves[name]
      rows["trained"].append([np.nan if r["score"] is None else r["score"] for r in cur["trained"]])
      rows["random_init"].append([np.nan if r["score"] is None else r["score"] for r in cur["control"]])
      rows["shuffled"].append([np.nan if r["shuffled"] is None else r["shuffled"] for r in cur["trained"]])
    summary: dict[str, Any] = {}
    for which, v in rows.items():
      arr = np.asarray(v, np.float64)
      with np.errstate(all="ignore"):
        per_it = np.nanmean(arr, axis=0) if np.isfinite(arr).any() else np.full(arr.shape[1], np.nan)
      summary[which] = [None if not np.isfinite(x) else float(x) for x in per_it]
      finite = per_it[np.isfinite(per_it)]
      summary[which + "_mean"] = float(finite.mean()) if finite.size else None
    out[name] = summary
  best: dict[str, str] = {}
  for name, row in out.items():
    var = name.split("@c=")[0]
    if "@c=" in name and row["trained_mean"] is not None and (
        var not in best or row["trained_mean"] > out[best[var]]["trained_mean"]):
      best[var] = name
  out["best_scale"] = best
  return out
