"""Non-search heuristics, the ground truth of "a cheap rule": model ``heuristic`` with config {"rule": name}.

The rules are the task's (``task.heuristic_rules()``; documented, with their measured held-out loss, in each task's
module docstring): ModSearch "isqrt" and "top_band"; PolyMax "ridge" (fitted on the pool by ``fit``), "quadratic"
and "cubic". A heuristic never evaluates the task's objective on candidate answers. Its "parameters" are its
fitted state (ridge: max_degree + 2 weights; closed-form rules: none).
"""
from __future__ import annotations

import dataclasses

from mesabench import tasks
from mesabench.models import base


@dataclasses.dataclass(frozen=True)
class Heuristic(base.Model):
  """The task's rule ``rule``. Config: rule (default: the task's first rule)."""

  trainable = False
  shares_weights_across_positions = True

  @property
  def rule(self) -> str:
    return self.options["rule"]

  def init(self, key):
    del key
    return tasks.from_spec(self.spec).heuristic_init(self.rule)

  def fit(self, params, inputs, targets):
    return tasks.from_spec(self.spec).heuristic_fit(self.rule, params, inputs, targets)

  def predict(self, params, inputs):
    return tasks.from_spec(self.spec).heuristic(self.rule, inputs, params)


def make(spec, **config) -> Heuristic:
  rules = tasks.from_spec(spec).heuristic_rules()
  if not rules:
    raise ValueError(f"task {spec.task_id} has no heuristic rules (task.heuristic_rules() is empty)")
  filled = {"rule": base.check_choice("rule", config.get("rule", rules[0]), rules)}
  return Heuristic("heuristic", spec, base.finish_config("heuristic", config, filled))


base.register("heuristic", make)
