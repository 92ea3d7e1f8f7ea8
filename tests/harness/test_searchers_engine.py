"""The searchers study engine at toy size: every model of a part gets an entry, compute curves to factor x T on
every split it can answer, and a classify verdict per seed."""
import json

import numpy as np
import pytest

from mesabench.harness import leaderboard
from mesabench.harness import searchers

TINY = searchers.Part(
    name="tiny", task={"id": "PolyMax-v0", "params": {"degree": 3}},
    model={"id": "looped", "config": {"width": 8, "iterations": 3, "bins": 8}},
    recipe={"steps": 20, "batch_size": 16, "eval_size": 64, "stratum_size": 32, "curve_points": 1,
            "progressive_alpha": 0.5, "iterations_range": [2, 3], "test_iterations": 6},
    control={"steps": 20, "batch_size": 16, "eval_size": 64, "stratum_size": 32, "curve_points": 1},
    ground_truth=({"id": "lookup", "config": {}}, {"id": "heuristic", "config": {}}),
    pool_size=64, factor=2, num_examples=64)


@pytest.mark.slow
def test_run_part_measures_every_model(tmp_path):
  res = searchers.run_part(TINY, seeds=(0, 1), command="test", log=lambda s: None)
  labels = [m.label for m in res.models]
  assert labels == ["looped+recipe", "looped control", "lookup", "heuristic"]
  recipe = res.model("looped+recipe")
  assert recipe.entry["train"]["progressive_alpha"] == 0.5
  assert res.model("looped control").entry["train"].get("progressive_alpha") is None
  assert recipe.entry["id"] != res.model("looped control").entry["id"]
  # curves on held-out, both strata and the larger split, from 1 to 2 x T = 6
  assert set(recipe.curves) >= {"heldout", "larger"}
  curve = recipe.curves["heldout"]
  assert curve.iterations == (1, 2, 3, 4, 6) and curve.train_t == 3
  assert len(curve.per_seed) == 2 and all(len(r) == 5 for r in curve.per_seed)
  # the curve at T equals the entry's own held-out loss (same instances, same parameters)
  held = recipe.entry["results"]["splits"]["heldout"]["loss"]["mean"]
  assert abs(curve.mean[curve.iterations.index(3)] - held) < 1e-6
  assert len(recipe.verdicts) == 2 and all(v in ("searcher", "memorizer", "heuristic", "inconclusive")
                                           for v in recipe.verdicts)
  assert res.model("lookup").curves == {}
  doc = {"schema_version": leaderboard.SCHEMA_VERSION, "suite": {"config": {}, "command": "test"},
         "environment": recipe.entry["environment"], "entries": [m.entry for m in res.models]}
  leaderboard.validate(doc)
  json.dumps(res.to_json())  # JSON-able
  assert np.isfinite(curve.slope)


def test_part_training_t_and_configs():
  assert TINY.training_t() == 3
  assert TINY.train_config("recipe").iterations_range == (2, 3)
  assert not TINY.train_config("control").uses_recipe
  assert searchers.PARTS["polymax"].training_t() == 8
