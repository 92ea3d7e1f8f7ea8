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
  return [{k: v for k, v in r.items() if k != "timing"} for r in results]


def test_same_seed_gives_identical_metrics(setup):
  task, model = setup
  runs = [train.Run(0, 16), train.Run(1, 16)]
  a = train.run_experiment(task, model, runs, CONFIG)
  b = train.run_experiment(task, model, runs, CONFIG)
  assert _strip(a) == _strip(b)
  assert a[0]["splits"]["pool"]["count"] == 16 and "heldout" in a[0]["splits"] and "larger" in a[0]["splits"]
  assert a[0]["curve"]["step"] == [1, 3, 12] and len(a[0]["curve"]["heldout_loss"]) == 3
  assert a[0]["compute"]["training_flops"] > 0 and a[0]["compute"]["examples_seen"] == 12 * 8


def test_vmapped_runs_equal_separate_runs(setup):
  task, model = setup
  runs = [train.Run(0, 16), train.Run(1, 16)]
  together = train.run_experiment(task, model, runs, CONFIG)
  for i, run in enumerate(runs):
    alone = train.run_experiment(task, model, [run], CONFIG)[0]
    for split, metrics in alone["splits"].items():
      for name, value in metrics.items():
        np.testing.assert_allclose(together[i]["splits"][split][name], value, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(together[i]["curve"]["train_loss"], alone["curve"]["train_loss"], rtol=1e-4)


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
