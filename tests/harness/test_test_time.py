"""Test-time compute curves: the slope beyond training T and its CI, against hand-built loss arrays."""
import numpy as np
import pytest

from mesabench import models, tasks
from mesabench.harness import test_time
from mesabench.harness import train


def _losses(per_iteration, seeds=3, examples=200, noise=0.01, seed=0):
  rng = np.random.default_rng(seed)
  base = np.asarray(per_iteration, np.float64)[None, :, None]
  return np.clip(base + noise * rng.standard_normal((seeds, len(per_iteration), examples)), 0, None)


def test_a_falling_curve_beyond_training_t_is_significant():
  its = (1, 2, 4, 8, 16, 32)
  c = test_time.curve_from_losses("larger", _losses([0.9, 0.8, 0.6, 0.5, 0.4, 0.3]), its, train_t=8)
  assert c.falls and c.slope_ci[1] < 0
  np.testing.assert_allclose(c.slope, -0.1, atol=0.01)  # 0.5 -> 0.4 -> 0.3 per doubling
  assert all(lo <= m <= hi for m, (lo, hi) in zip(c.mean, c.ci))


def test_a_flat_or_rising_curve_beyond_training_t_does_not_fall():
  its = (1, 2, 4, 8, 16, 32)
  flat = test_time.curve_from_losses("x", _losses([0.9, 0.6, 0.5, 0.4, 0.4, 0.4]), its, train_t=8)
  assert not flat.falls and flat.slope_ci[0] < 0 < flat.slope_ci[1]
  rising = test_time.curve_from_losses("x", _losses([0.9, 0.6, 0.5, 0.4, 0.5, 0.6]), its, train_t=8)
  assert not rising.falls and rising.slope > 0
  # the fall before training T does not count
  early = test_time.curve_from_losses("x", _losses([0.9, 0.1, 0.05, 0.05, 0.05, 0.05]), its, train_t=4)
  assert not early.falls


def test_slope_matches_numpy_polyfit():
  its = (1, 3, 9, 27)
  data = _losses([0.5, 0.4, 0.35, 0.2], seeds=2, examples=50, noise=0.05, seed=3)
  c = test_time.curve_from_losses("x", data, its, train_t=3)
  want = np.polyfit(np.log2(its[1:]), data.mean(axis=(0, 2))[1:], 1)[0]
  np.testing.assert_allclose(c.slope, want, rtol=1e-9)


@pytest.mark.parametrize("kw,name", [({"iterations": (1,)}, "iterations"), ({"iterations": (2, 1)}, "iterations"),
                                     ({"train_t": 0}, "train_t")])
def test_bad_parameters(kw, name):
  args = {"split": "x", "losses": _losses([0.1, 0.2]), "iterations": (1, 2), "train_t": 1}
  args.update(kw)
  if len(args["iterations"]) == 1:
    args["losses"] = _losses([0.1])
  with pytest.raises(ValueError, match=name):
    test_time.curve_from_losses(**args)
  with pytest.raises(ValueError, match="train_t"):
    test_time.ladder(0)


def test_ladder_reaches_eight_times_training_t():
  assert test_time.ladder(5) == (1, 2, 4, 5, 8, 10, 16, 20, 32, 40)
  assert max(test_time.ladder(12, factor=8)) == 96


def test_curves_of_a_trained_looped_model_match_its_predictions():
  task = tasks.make("PolyMax-v0", degree=3)
  model = models.make("looped", task.spec, width=8, iterations=2, bins=8)
  cfg = train.TrainConfig(steps=5, batch_size=16, eval_size=32, stratum_size=16, curve_points=1)
  runs = [train.Run(0, 32), train.Run(1, 32)]
  trained = train.train_runs(task, model, runs, cfg)
  batches = [task.sample(__import__("jax").random.key(i), 32) for i in range(2)]
  losses, succ = test_time.losses_by_iterations(task, model, trained.params, batches, (1, 3),
                                                success_metric=task.success_metric)
  import jax
  p1 = jax.tree_util.tree_map(lambda a: a[1], trained.params)
  want = task.score(batches[1], model.predict(p1, batches[1].inputs, iterations=3))["loss"]
  np.testing.assert_allclose(losses[1, 1], np.asarray(want, np.float64))
  assert losses.shape == (2, 2, 32) and succ.shape == (2, 2, 32)
