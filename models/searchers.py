"""Budgeted searchers, the ground truth of search: model ``search`` with config {"budget": B, "strategy": s}.

The strategies are the task's (``task.search_strategies()``, documented in each task's module docstring):
ModSearch "seed" (the seed loop truncated to B candidates), "random" (B uniform candidates in [0, K]) and "bands"
(the best of the B highest band tops); PolyMax "grid" (B grid points, no refinement), "random" (B uniform points)
and "refined" (the oracle's algorithm on a B-point grid). With no config, ``search`` is the task's full algorithm
(``task.full_search()``: ModSearch "seed" with B = K of the widest n, PolyMax "refined" with the oracle's grid),
which equals the oracle. Random strategies key each instance's candidates by the instance itself (seed 0), so a
searcher is a deterministic function of its input.

``equivalent_budget(losses_by_budget, loss)``: the budget at which a budgeted-search family (``task.
search_family()``) reaches a given held-out loss, interpolated on a log-log scale; the harness reports it for
every leaderboard entry.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from mesabench import tasks
from mesabench.models import base

LOSS_FLOOR = 1e-12
"""Losses below this count as this in ``equivalent_budget`` (log scale: an exact searcher has loss 0)."""


@dataclasses.dataclass(frozen=True)
class Search(base.Model):
  """The task's ``strategy`` with ``budget`` candidates per instance. Config: budget, strategy."""

  trainable = False
  shares_weights_across_positions = True

  def init(self, key):
    del key
    return {}

  def predict(self, params, inputs):
    del params
    o = self.options
    return tasks.from_spec(self.spec).search(o["strategy"], o["budget"], inputs)

  def flops_per_example(self, params, inputs):
    """XLA's count, which covers a rolled loop body once, times the strategy's loop trip count."""
    o = self.options
    return super().flops_per_example(params, inputs) * tasks.from_spec(self.spec).search_loop_trips(
        o["strategy"], o["budget"])


def full_budget(spec) -> int:
  """The budget of the task's full algorithm (``search`` with no config)."""
  return tasks.from_spec(spec).full_search()[1]


def make(spec, **config) -> Search:
  task = tasks.from_spec(spec)
  if not task.search_strategies():
    raise ValueError(f"task {spec.task_id} has no search strategies (task.search_strategies() is empty)")
  default_strategy, default_budget = task.full_search()
  strategy = base.check_choice("strategy", config.get("strategy", default_strategy), task.search_strategies())
  budget = config.get("budget")
  if budget is None:
    budget = default_budget if strategy == default_strategy else task.search_budget_range(strategy)[1]
  lo, hi = task.search_budget_range(strategy)
  filled = {"budget": base.check_int("budget", budget, lo, hi), "strategy": strategy}
  return Search("search", spec, base.finish_config("search", config, filled))


@dataclasses.dataclass(frozen=True)
class EquivalentBudget:
  """Where a loss falls on a budgeted-search family's loss curve.

  Attributes:
    budget: the interpolated budget (relation "="), or the family's smallest (relation "<": the loss is worse
      than the smallest budget's) or largest budget (relation ">": better than the largest budget's).
    relation: "=", "<" or ">".
  """
  budget: float
  relation: str

  def __str__(self) -> str:
    return f"{self.budget:.3g}" if self.relation == "=" else f"{self.relation} {self.budget:g}"


def equivalent_budget(losses_by_budget: Mapping[int, float], loss: float,
                      floor: float = LOSS_FLOOR) -> EquivalentBudget:
  """The budget B at which the family's loss curve first reaches ``loss``, interpolated linearly in
  (log B, log max(loss, floor)) between consecutive budgets.

  losses_by_budget: budget (>= 1) -> the family's mean held-out loss at that budget (>= 0, finite), at least one
  entry. Budgets are taken in ascending order; the curve need not be monotone: the answer is the first crossing,
  scanning from the smallest budget. ``loss`` (>= 0) at or above the smallest budget's loss gives relation "<"
  (and exactly equal: "=" at that budget); below every budget's loss, relation ">".
  """
  if not losses_by_budget:
    raise ValueError("losses_by_budget must hold at least one (budget, loss) pair")
  budgets = sorted(losses_by_budget)
  for b in budgets:
    if not (isinstance(b, (int, np.integer)) and b >= 1):
      raise ValueError(f"losses_by_budget budgets must be integers >= 1, got {b!r}")
    v = losses_by_budget[b]
    if not (math.isfinite(v) and v >= 0):
      raise ValueError(f"losses_by_budget losses must be finite and >= 0, got {v!r} at budget {b}")
  if not (math.isfinite(loss) and loss >= 0):
    raise ValueError(f"loss must be finite and >= 0, got {loss!r}")
  logl = lambda v: math.log(max(v, floor))
  target = logl(loss)
  first = logl(losses_by_budget[budgets[0]])
  if target > first:
    return EquivalentBudget(float(budgets[0]), "<")
  if target == first:
    return EquivalentBudget(float(budgets[0]), "=")
  for lo, hi in zip(budgets[:-1], budgets[1:]):
    a, b = logl(losses_by_budget[lo]), logl(losses_by_budget[hi])
    if b <= target <= a and a > b:
      t = (a - target) / (a - b)
      return EquivalentBudget(float(math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo)))), "=")
  return EquivalentBudget(float(budgets[-1]), ">")


base.register("search", make)
