"""What a trained model is measured against on its own held-out split: the task's budgeted-search family and its
non-search heuristics (issue 11's "equivalent search budget" and "margin over the best heuristic").

For every run, on exactly the batches the model is scored on (``train.eval_splits``: "heldout" and the stratified
"stratum:<name>" splits):

- the search family (``task.search_family()``: PolyMax the B-point grid without refinement, ModSearch the seed loop
  truncated to B candidates) is scored at each of its budgets;
- every heuristic rule (``task.heuristic_rules()``) is fitted on the run's own training pool (ridge needs it; the
  others ignore it) and scored.

An entry (several seeds) then reports, per split, its **equivalent search budget**: the budget at which the
family's mean loss matches the model's mean loss, interpolated on a log-log scale
(``mesabench.models.searchers.equivalent_budget``: "< B_min" when the model is worse than the smallest budget,
"> B_max" when better than the largest); and its **margin over the best heuristic**: best heuristic's mean loss
minus the model's (positive: the model beats every non-search rule).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import numpy as np

from mesabench import models
from mesabench.models import searchers
from mesabench.tasks import core as task_core

SPLITS = ("heldout", "stratum:hard")
"""The splits references are measured on (when the run has them)."""


@dataclasses.dataclass(frozen=True)
class RunReferences:
  """One run's reference losses: split -> budget -> mean loss (the family) and split -> rule -> mean loss."""
  family: dict[str, dict[int, float]]
  heuristics: dict[str, dict[str, float]]


def measure(task: task_core.Task, pools: Sequence[task_core.Batch], splits: dict[str, Any],
            seeds: Sequence[int]) -> list[RunReferences]:
  """The references of every run (``pools[i]``: run i's training instances; ``splits``: ``train.eval_splits``)."""
  family = task.search_family()
  members = [(b, models.make("search", task.spec, budget=b, strategy=family.strategy)) for b in family.budgets]
  rules = [(r, models.make("heuristic", task.spec, rule=r)) for r in task.heuristic_rules()]
  out = []
  for i, pool in enumerate(pools):
    fam: dict[str, dict[int, float]] = {}
    heu: dict[str, dict[str, float]] = {}
    fitted = [(r, m, m.fit(m.init(jax.random.key(seeds[i])), pool.inputs, pool.targets)) for r, m in rules]
    for split in SPLITS:
      batch = (splits.get(split) or [None] * len(pools))[i]
      if batch is None:
        continue
      fam[split] = {b: _mean_loss(task, batch, m.predict(m.init(jax.random.key(0)), batch.inputs))
                    for b, m in members}
      heu[split] = {r: _mean_loss(task, batch, m.predict(p, batch.inputs)) for r, m, p in fitted}
    out.append(RunReferences(fam, heu))
  return out


def _mean_loss(task, batch, prediction) -> float:
  return float(np.mean(np.asarray(task.score(batch, prediction)["loss"], np.float64)))


def summarize(model_losses: Sequence[dict[str, float]], refs: Sequence[RunReferences], family: str
              ) -> dict[str, Any]:
  """The entry's reference block: {"family": strategy, "<split>": {"equivalent_budget": {"budget", "relation"},
  "best_heuristic": {"rule", "loss"}, "margin_over_heuristic", "family_loss": {budget: loss}}} from per-seed
  model losses (split -> mean loss) and per-seed references; means over seeds. Splits some seed lacks are left out.
  """
  out: dict[str, Any] = {"family": family}
  for split in SPLITS:
    if not all(split in r.family for r in refs) or not all(split in m for m in model_losses):
      continue
    loss = float(np.mean([m[split] for m in model_losses]))
    budgets = sorted(refs[0].family[split])
    fam = {b: float(np.mean([r.family[split][b] for r in refs])) for b in budgets}
    block: dict[str, Any] = {"family_loss": {str(b): v for b, v in fam.items()}}
    if math.isfinite(loss) and fam:
      eq = searchers.equivalent_budget(fam, loss)
      block["equivalent_budget"] = {"budget": eq.budget, "relation": eq.relation}
    rules = sorted(refs[0].heuristics[split])
    if rules:
      heu = {r: float(np.mean([x.heuristics[split][r] for x in refs])) for r in rules}
      best = min(rules, key=lambda r: heu[r])
      block["best_heuristic"] = {"rule": best, "loss": heu[best]}
      block["margin_over_heuristic"] = heu[best] - loss
    out[split] = block
  return out
