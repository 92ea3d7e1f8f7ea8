"""The training harness: determinism, vmapped runs equal separate runs, divergence handling, config checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mesabench import models, tasks
from mesabench.harness import train

CONFIG = train.TrainConfig(steps=12, batch_size=8, learning_rate=1e-2, eval_size=16, curve_points=3)


@pytest.fixture(scope="module")
def setup():
  task = tasks.make("ModSearch-v0", bits=6, width=8)
  model = models.make("mlp", task.spec, width=8, depth=1)
  return task, model


def _strip(results):
  return [(r.seed, r.pool_size, r.diverged_step, r.splits, r.curve, r.compute, r.iterations) for r in results]


def test_same_seed_gives_identical_metrics(setup):
  task, model = setup
  runs = [train.Run(0, 16), train.Run(1, 16)]
  a = train.run_experiment(task, model, runs, CONFIG)
  b = train.run_experiment(task, model, runs, CONFIG)
  assert _strip(a) == _strip(b)
  assert a[0].splits["pool"]["count"] == 16 and "heldout" in a[0].splits
  assert a[0].curve["step"] == [1, 3, 12] and len(a[0].curve["heldout_loss"]) == 3
  assert a[0].compute["training_flops"] > 0 and a[0].compute["examples_seen"] == 12 * 8


def test_vmapped_runs_equal_separate_runs(setup):
  task, model = setup
  runs = [train.Run(0, 16), train.Run(1, 16)]
  together = train.run_experiment(task, model, runs, CONFIG)
  for i, run in enumerate(runs):
    alone = train.run_experiment(task, model, [run], CONFIG)[0]
    for split, metrics in alone.splits.items():
      for name, value in metrics.items():
        np.testing.assert_allclose(together[i].splits[split][name], value, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(together[i].curve["train_loss"], alone.curve["train_loss"], rtol=1e-4)


def test_larger_split_only_for_models_that_can_answer_it(setup):
  task, mlp = setup  # ModSearch bits 6 in 8 input bits: larger n set the two high bits, zero in training
  runs = [train.Run(0, 16)]
  res = train.run_experiment(task, mlp, runs, CONFIG)[0]
  assert "larger" not in res.splits and "input position" in res.not_applicable["larger"]
  lookup = train.run_experiment(task, models.make("lookup", task.spec), runs, CONFIG)[0]
  assert "larger" in lookup.splits  # a stored table reads every position


def test_held_out_and_strata_are_distinct_unseen_instances():
  task = tasks.make("ModSearch-v0", bits=10, width=12)
  cfg = train.TrainConfig(steps=40, batch_size=8, eval_size=16, stratum_size=8, curve_points=1)
  for runs in ([train.Run(3, 16)], [train.Run(3, None)]):  # a pool, and a fresh stream (320 examples)
    data = train.prepare_data(task, runs, cfg)
    splits = train.eval_splits(task, runs, data, cfg)
    seen = {int(n) for n in np.asarray(data.pools[0].info["n"])}
    held = [int(n) for n in np.asarray(splits["heldout"][0].info["n"])]
    assert not seen & set(held), "held-out instances must lie outside the training instances (fresh too)"
    for name in ("stratum:easy", "stratum:hard"):
      batch = splits[name][0]
      if batch is None:
        assert name in splits["not_applicable"]
        continue
      ns = [int(n) for n in np.asarray(batch.info["n"])]
      assert len(ns) == 8 == len(set(ns)) and not seen & set(ns)
      assert np.all(np.asarray(batch.info["strata"][name.split(":")[1]]))


def test_a_stream_covering_the_whole_space_has_no_held_out_split(setup):
  task, _ = setup  # 63 instances, a stream of 320 examples reads them all
  cfg = train.TrainConfig(steps=40, batch_size=8, eval_size=16, stratum_size=4, curve_points=1)
  data = train.prepare_data(task, [train.Run(0, None)], cfg)
  splits = train.eval_splits(task, [train.Run(0, None)], data, cfg)
  assert splits["heldout"] == [None] and "whole instance space" in splits["not_applicable"]["heldout"]


def test_params_and_per_example_scores_are_returned_on_request(setup):
  task, model = setup
  res = train.run_experiment(task, model, [train.Run(0, 16)], CONFIG, keep_params=True, keep_per_example=True)[0]
  batch = task.sample(jax.random.key(9), 8)
  assert model.predict(res.params, batch.inputs).shape == (8,)
  per = res.per_example["heldout"]["loss"]
  assert per.shape == (CONFIG.eval_size,) and abs(per.mean() - res.splits["heldout"]["loss"]) < 1e-9


def test_non_finite_loss_marks_the_run_diverged_and_the_others_go_on(setup):
  task, model = setup
  runs = [train.Run(0, 16), train.Run(1, 16)]
  data = train.prepare_data(task, runs, CONFIG)
  data.inputs = data.inputs.at[1].set(jnp.nan)
  out = train.train_runs(task, model, runs, CONFIG, data=data)
  assert out.diverged_step[0] == -1 and out.diverged_step[1] == 0
  assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree_util.tree_leaves(out.params))


def test_curve_steps_are_log_spaced_and_end_at_steps():
  assert train.curve_steps(1000, 4) == [1, 10, 100, 1000]
  assert train.curve_steps(0, 4) == []


@pytest.mark.parametrize("field,value", [("steps", -1), ("batch_size", 0), ("learning_rate", 0.0),
                                         ("schedule", "linear"), ("warmup_fraction", 1.0), ("eval_size", 10**6)])
def test_bad_train_config_names_the_field(field, value):
  with pytest.raises(ValueError, match=field):
    train.TrainConfig(**{field: value})
