"""Test-time compute: does a trained iterative model's loss keep falling when it runs more iterations than it was
trained with? The measurement behind issue 13's "searcher" question, for any task and any iterative zoo model.

    curve = compute_curve(task, model, params, batches, iterations=(1, 2, 4, 8, 16, 32, 64), train_t=8)
    curve.mean, curve.ci            # mean loss per iteration count over seeds and instances, with its CI
    curve.slope, curve.slope_ci     # d loss / d log2(iterations) over the counts >= train_t (beyond training T)
    curve.falls                     # the slope's CI lies below 0: the loss falls significantly with extra iterations

``batches`` holds one Batch per seed (each seed's own held-out, stratum or larger instances) and ``params`` the
seeds' stacked parameters. Losses are ``task.score(...)["loss"]`` per instance; the CI is a two-level bootstrap:
seeds resampled with replacement, then each drawn seed's instances (paired across iteration counts, so a curve
stays whole). With one seed only the instances are resampled (the CI then says nothing about seed-to-seed spread).
The slope is the least-squares slope of the mean loss against log2(t) over the counts t >= ``train_t``; it is
reported in loss units per doubling and relative to the loss at ``train_t`` (``relative_slope``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mesabench.harness import stats
from mesabench.models import base as model_base

DEFAULT_RESAMPLES = 1000


@dataclasses.dataclass(frozen=True)
class ComputeCurve:
  """Loss against test-time iterations on one split, over seeds (see the module docstring).

  Attributes:
    split: the split's name ("heldout", "stratum:hard", "larger", "size=13", ...).
    iterations: the probed iteration counts, increasing.
    train_t: the training T (the largest training iteration count); the slope uses counts >= it.
    per_seed: [S][I] mean loss of each seed at each count.
    mean: [I] mean loss over seeds and instances; ci: [I] (low, high).
    slope, slope_ci: d mean loss / d log2(t) over t >= train_t, with its bootstrap CI (None with < 2 such counts).
    relative_slope: slope / (mean loss at train_t + 1e-12).
    success: [I] mean of the task's success metric at each count (exact match, accuracy ...), when measured.
  """
  split: str
  iterations: tuple[int, ...]
  train_t: int
  per_seed: list[list[float]]
  mean: list[float]
  ci: list[tuple[float, float]]
  slope: float | None
  slope_ci: tuple[float, float] | None
  relative_slope: float | None
  success: list[float] | None = None

  @property
  def falls(self) -> bool:
    """Whether the loss falls significantly beyond training T (the slope's CI lies below 0)."""
    return self.slope_ci is not None and self.slope_ci[1] < 0

  def to_json(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["falls"] = self.falls
    return out


def _slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Least-squares slopes of y [..., n] against x [n]."""
  xc = x - x.mean()
  return (y - y.mean(axis=-1, keepdims=True)) @ xc / float(xc @ xc)


def curve_from_losses(split: str, losses, iterations: Sequence[int], train_t: int, *, success=None,
                      level: float = stats.DEFAULT_LEVEL, num_resamples: int = DEFAULT_RESAMPLES,
                      seed: int = 0) -> ComputeCurve:
  """A ``ComputeCurve`` from per-instance losses [S, I, E] (S seeds, I iteration counts, E instances each).

  ValueError unless ``iterations`` is increasing with >= 2 counts >= 1 matching I, ``train_t`` >= 1, and the
  losses are finite and >= 0.
  """
  arr = stats.check_losses("losses", losses, ndim=3)
  its = tuple(int(t) for t in iterations)
  if len(its) != arr.shape[1] or len(its) < 2 or its[0] < 1 or any(b <= a for a, b in zip(its, its[1:])):
    raise ValueError(f"iterations must be {arr.shape[1]} >= 2 increasing counts >= 1, got {list(iterations)}")
  model_base.check_int("train_t", train_t, 1, 10**6)
  stats.check_level(level)
  stats.check_resamples(num_resamples)
  s, _, e = arr.shape
  per_seed = arr.mean(axis=2)  # [S, I]
  rng = np.random.default_rng(seed)
  reps = np.empty((num_resamples, len(its)))
  for r in range(num_resamples):
    seeds = rng.integers(0, s, size=s) if s > 1 else np.zeros(1, np.int64)
    idx = rng.integers(0, e, size=(s, e))
    reps[r] = np.mean([arr[j][:, idx[i]].mean(axis=1) for i, j in enumerate(seeds)], axis=0)
  mean = arr.mean(axis=(0, 2))
  ci = [stats.percentile_ci(reps[:, i], level) for i in range(len(its))]
  beyond = np.asarray([t >= train_t for t in its])
  slope = slope_ci = rel = None
  if beyond.sum() >= 2:
    x = np.log2(np.asarray(its, np.float64)[beyond])
    slope = float(_slope(x, mean[beyond]))
    slope_ci = stats.percentile_ci(_slope(x, reps[:, beyond]), level)
    at_t = mean[int(np.argmax(beyond))]
    rel = slope / (float(at_t) + 1e-12)
  succ = None
  if success is not None:
    succ = [float(v) for v in np.asarray(success, np.float64).mean(axis=(0, 2))]
  return ComputeCurve(split, its, int(train_t), per_seed.tolist(), [float(v) for v in mean], ci, slope, slope_ci,
                      rel, succ)


def losses_by_iterations(task, model, params_stacked, batches, iterations: Sequence[int],
                         success_metric: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
  """Per-instance losses [S, I, E] (and the success metric, when named) of an iterative model whose seeds'
  parameters are stacked in ``params_stacked``, on ``batches`` (one Batch per seed, equal sizes)."""
  if not model.iterative:
    raise ValueError(f"model must be iterative (a test-time iteration knob), got {model.model_id!r}")
  its = [int(t) for t in iterations]
  top = max(its)
  model_base.check_int("iterations", top, 1, model.max_iterations)
  fn = jax.jit(lambda p, x: model.predict_iterations(p, x, top))
  losses, succ = [], []
  for i, b in enumerate(batches):
    p = jax.tree_util.tree_map(lambda a: a[i], params_stacked)
    preds = fn(p, b.inputs)  # [top, E, ...]
    rows, srows = [], []
    for t in its:
      sc = task.score(b, jnp.asarray(preds[t - 1]))
      rows.append(np.asarray(sc["loss"], np.float64))
      if success_metric is not None:
        srows.append(np.asarray(sc[success_metric], np.float64))
    losses.append(rows)
    succ.append(srows)
  return np.asarray(losses), (np.asarray(succ) if success_metric is not None else None)


def compute_curve(task, model, params_stacked, batches, iterations: Sequence[int], train_t: int, split: str,
                  *, success_metric: str | None = None, level: float = stats.DEFAULT_LEVEL,
                  num_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> ComputeCurve:
  """``curve_from_losses`` of ``losses_by_iterations`` (see the module docstring)."""
  losses, succ = losses_by_iterations(task, model, params_stacked, batches, iterations, success_metric)
  return curve_from_losses(split, losses, iterations, train_t, success=succ, level=level,
                           num_resamples=num_resamples, seed=seed)


def ladder(train_t: int, factor: int = 8) -> tuple[int, ...]:
  """Iteration counts from 1 to ``factor`` x ``train_t``: powers of two, plus ``train_t`` and its multiples
  2, 4, ... ``factor`` (so the curve has >= 2 points beyond training T)."""
  model_base.check_int("train_t", train_t, 1, 10**5)
  model_base.check_int("factor", factor, 2, 1024)
  pts = {2**i for i in range(0, 20) if 2**i <= factor * train_t}
  m = 1
  while m <= factor:
    pts.add(m * train_t)
    m *= 2
  return tuple(sorted(pts))
