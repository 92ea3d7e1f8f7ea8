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
  # probes of the recipe model at the ladder iterations, every PolyMax variable, trained and controls
  pr = res.probes
  assert pr["iterations"] == [1, 2, 3, 4, 6] and set(pr["seeds"]) == {"0", "1"}
  assert set(pr["summary"]) == {f"{v}@c={c}" for v in ("best_x", "best_value") for c in (1, 4, 16)} | {
      "answer_x", "answer_value"}
  assert set(pr["best_scale"]) == {"best_x", "best_value"}
  for name, row in pr["summary"].items():
    assert len(row["trained"]) == 5 and len(row["random_init"]) == 5 and len(row["shuffled"]) == 5
    assert all(v is None or v <= 1.0 for v in row["trained"])
  paths = searchers.write_part(searchers.part_document(res, "test"), [m.entry for m in res.models],
                               str(tmp_path / "tiny.json"))
  assert any(p.endswith("tiny_probes.png") for p in paths)


def test_part_training_t_and_configs():
  assert TINY.training_t() == 3
  assert TINY.train_config("recipe").iterations_range == (2, 3)
  assert not TINY.train_config("control").uses_recipe
  assert searchers.PARTS["polymax"].training_t() == 8


def test_polymax_probe_variables_are_the_grid_search_by_brute_force():
  from mesabench import tasks
  import jax
  task = tasks.make("PolyMax-v0", degree=3)
  batch = task.sample(jax.random.key(3), 16)
  its = [1, 2, 5]
  got = searchers.polymax_variables(task, batch, its, scale=4)
  coeffs = np.asarray(batch.info["coeffs"], np.float64)
  lo, hi = task.search_budget_range("grid")
  for row, t in enumerate(its):
    b = min(max(4 * t, lo), hi)
    grid = np.arange(b) / (b - 1)
    for j in range(batch.size):
      vals = [sum(c * x ** k for k, c in enumerate(coeffs[j])) for x in grid]
      best = grid[int(np.argmax(vals))]  # first maximum, as the searcher breaks ties
      assert abs(got["best_x"][row, j] - best) < 1e-6
      assert abs(got["best_value"][row, j] - max(vals)) < 1e-5 * max(1.0, abs(max(vals)))


def test_modsearch_probe_variables_are_the_seed_loop_by_brute_force():
  from mesabench import tasks
  import jax
  task = tasks.make("ModSearch-v0", bits=10, width=12)
  batch = task.sample(jax.random.key(4), 12)
  its = [1, 3, 8]
  got = searchers.modsearch_variables(task, batch, its, scale=5)
  for row, t in enumerate(its):
    for j in range(batch.size):
      n, big_k = int(batch.info["n"][j]), int(batch.info["kmax"][j])
      steps = 5 * t
      best_k, best_r = 0, 0
      for i in range(1, min(steps, big_k) + 1):  # the seed's loop: first strict maximum
        if i * i % n > best_r:
          best_k, best_r = i, i * i % n
      i = min(steps, big_k)
      assert got["i"][row, j] == i and got["i_sq_mod_n"][row, j] == i * i % n
      assert got["best_k"][row, j] == best_k and got["best_r"][row, j] == best_r
