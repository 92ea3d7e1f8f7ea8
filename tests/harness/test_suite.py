"""harness.suite: the main job's library — config checks before any work, resume, per-entry provenance, saved
parameters; and the comparable part of a leaderboard across runs."""
import copy
import json
import os

import jax
import numpy as np
import pytest

from mesabench import models
from mesabench import tasks
from mesabench.harness import checkpoints
from mesabench.harness import leaderboard
from mesabench.harness import suite
from mesabench.harness import train

SUITE = {"config_version": 1, "tasks": [{"id": "ModSearch-v0", "params": {"bits": 6, "width": 8}}],
         "models": [{"id": "mlp", "config": {"width": 8, "depth": 1}}, {"id": "lookup", "config": {}}],
         "pool_sizes": [8, 16], "seeds": [0, 1],
         "train": {"steps": 6, "batch_size": 8, "eval_size": 16, "curve_points": 2}}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("lb") / "full.json")
  suite.run_suite(SUITE, path, command="test", log=lambda s: None)
  return path


def test_suite_writes_a_valid_leaderboard(full):
  doc = leaderboard.read(full)
  assert [e["id"].split("/")[:3] for e in doc["entries"]] == [
      ["ModSearch-v0", "mlp", "pool=8"], ["ModSearch-v0", "mlp", "pool=16"],
      ["ModSearch-v0", "lookup", "pool=8"], ["ModSearch-v0", "lookup", "pool=16"]]
  entry = doc["entries"][0]
  assert entry["command"].startswith("python -m mesabench.benchmarks.run --config_json=")
  assert entry["model"]["config"]["head"] == "classes" and entry["train"]["steps"] == 6
  assert entry["results"]["splits"]["heldout"]["loss"]["per_seed"][1] is not None
  assert entry["results"]["success_metric"] == "accuracy"
  assert entry["results"]["metrics"]["accuracy"] == "higher" and entry["results"]["metrics"]["loss"] == "lower"
  assert entry["environment"]["backend"] == "cpu"


def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(full, tmp_path):
  path = str(tmp_path / "resumed.json")
  partial = suite.run_suite(SUITE, path, command="test", max_entries=3, log=lambda s: None)
  assert len(leaderboard.read(path)["entries"]) == 3 == len(partial["entries"])
  suite.run_suite(SUITE, path, resume=True, command="test", log=lambda s: None)
  assert leaderboard.comparable(leaderboard.read(path)) == leaderboard.comparable(leaderboard.read(full))


def test_resume_keeps_each_entrys_own_environment(tmp_path):
  path = str(tmp_path / "lb.json")
  suite.run_suite(SUITE, path, command="test", max_entries=1, log=lambda s: None)
  doc = leaderboard.read(path)
  doc["entries"][0]["environment"] = dict(doc["entries"][0]["environment"], backend="gpu", device_kind="H200")
  leaderboard.write(path, doc)
  suite.run_suite(SUITE, path, resume=True, command="test", log=lambda s: None)
  entries = leaderboard.read(path)["entries"]
  assert entries[0]["environment"]["device_kind"] == "H200"  # measured elsewhere: says so
  assert {e["environment"]["backend"] for e in entries[1:]} == {"cpu"}


def test_saved_parameters_reload_and_predict_the_same(full):
  doc = leaderboard.read(full)
  entry = doc["entries"][0]
  seeds, stacked = checkpoints.load_params(full, entry["artifacts"]["params"])
  assert seeds == entry["seeds"]
  task = tasks.make("ModSearch-v0", bits=6, width=8)
  model = models.make("mlp", task.spec, **entry["model"]["config"])
  cfg = train.TrainConfig(**entry["train"])
  again = train.run_experiment(task, model, [train.Run(s, entry["pool_size"]) for s in seeds], cfg,
                               keep_params=True)
  for i, r in enumerate(again):
    batch = task.sample(jax.random.key(5), 32)
    a = model.predict(r.params, batch.inputs)
    b = model.predict(checkpoints.seed_params(stacked, i), batch.inputs)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c["tasks"][0]["params"].update(bits=40), "config.tasks[0].params"),
    (lambda c: c["tasks"][0]["params"].update(colour=1), "config.tasks[0].params"),
    (lambda c: c["models"][0]["config"].update(width=0), "config.models[0].config"),
    (lambda c: c.update(pool_sizes=[8, 255]), "config.pool_sizes[1]"),
    (lambda c: c.update(pool_sizes=[8, 300]), "config.pool_sizes[1]"),
    (lambda c: c.update(seeds=[]), "config.seeds"),
    (lambda c: c["train"].update(steps=-1), "steps"),
])
def test_check_resources_names_the_field_before_any_training(mutate, field):
  config = copy.deepcopy(SUITE)
  mutate(config)
  with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
    suite.check_resources(suite.check_suite(config))


def test_a_config_too_large_for_this_machine_is_refused_with_the_estimate():
  config = suite.check_suite({**copy.deepcopy(SUITE), "tasks": [{"id": "ModSearch-v0", "params": {"bits": 20}}],
                              "models": [{"id": "mlp", "config": {"width": 4096, "depth": 16}}],
                              "pool_sizes": [512], "seeds": [0], "train": {"batch_size": 65536}})
  with pytest.raises(ValueError, match=r"config.models\[0\] \(mlp on ModSearch-v0\) needs about .* GiB"):
    suite.check_resources(config)
  task = tasks.make("ModSearch-v0", bits=20)
  small, big = (train.estimate_bytes(task, models.make("lookup", task.spec), [train.Run(0, n)], train.TrainConfig())
                - task.memory_bytes(n) for n in (1024, 65536))
  assert big > 32 * small  # a memorizer's memory and distance rows grow with the pool (64x here)


def test_pool_covering_the_whole_space_reports_no_heldout_split_instead_of_crashing():
  task = tasks.make("ModSearch-v0", bits=4, width=4)  # 15 instances
  model = models.make("lookup", task.spec)
  res = train.run_experiment(task, model, [train.Run(0, 15), train.Run(1, 8)],
                             train.TrainConfig(steps=0, eval_size=16))
  assert "heldout" not in res[0].splits and res[0].splits["pool"]["loss"] == 0.0
  assert "heldout" in res[1].splits  # the other run still has unseen instances


def test_overrides_keep_params_and_reject_empty_lists():
  config = suite.with_overrides(suite.DEFAULT_SUITE, tasks=["ModSearch-v0"], steps=5, seeds=[3])
  assert config["tasks"] == [t for t in suite.DEFAULT_SUITE["tasks"] if t["id"] == "ModSearch-v0"]
  assert config["train"]["steps"] == 5 and config["seeds"] == [3]
  with pytest.raises(ValueError, match="config.seeds"):
    suite.with_overrides(suite.DEFAULT_SUITE, seeds=[])
  with pytest.raises(ValueError, match="config_json"):
    suite.load_config(text="{not json")


def test_default_output_is_the_ignored_runs_folder():
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  with open(os.path.join(repo, ".gitignore"), encoding="utf-8") as f:
    assert "/" + suite.DEFAULT_RUNS_DIR + "/" in f.read().split()
  assert json.loads(json.dumps(suite.DEFAULT_SUITE)) == suite.DEFAULT_SUITE
