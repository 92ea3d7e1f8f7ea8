"""Select-v0: the oracle against a brute-force argmax, the proxy correlation, splits, scores and bad input."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import mesabench.tasks as tasks


def _brute_best(values, count, tol=1e-5):
  """The smallest index among the maxima of values[:count] (plain loops, float64). Values closer than ``tol``
  are ties: with integer features the distinct utilities here differ by far more, while float32 rounding of the
  normalized weights can split an exact tie by an ulp."""
  top = values[0]
  for i in range(1, count):
    top = max(top, values[i])
  for i in range(count):
    if values[i] >= top - tol:
      return i
  raise AssertionError("unreachable")


def _u_float64(task, feats):
  w = np.asarray(task.weights, np.float64)
  x = feats[:, : task.d_causal].astype(np.float64)
  u = x @ w
  if task.utility == "ideal_point":
    u = u - 0.5 * np.sum(x * x, axis=1)
  return u


_ORACLE_TASKS = {"linear": dict(utility="linear", d_causal=2, d_proxy=2, weights=(1, 2)),
                 "ideal_point": dict(utility="ideal_point", d_causal=2, d_proxy=1, weights=(1, 1))}
K_MAX, B = 5, 4


@pytest.mark.parametrize("name", sorted(_ORACLE_TASKS))
@given(data=st.data())
def test_oracle_matches_brute_force_argmax_with_ties(name, data):
  # One task (one compile) per utility; hypothesis draws the candidates. Integer features in a small range give
  # many exact ties, all exact in float32.
  task = tasks.make("Select-v0", k_min=2, k_max=K_MAX, **_ORACLE_TASKS[name])
  d_causal = task.d_causal
  feats = np.array(data.draw(st.lists(st.integers(-2, 2), min_size=B * K_MAX * task.d,
                                      max_size=B * K_MAX * task.d)), np.float32).reshape(B, K_MAX, task.d)
  count = np.array(data.draw(st.lists(st.integers(2, K_MAX), min_size=B, max_size=B)))
  batch = task.from_features(feats, count)
  for i in range(B):
    u = _u_float64(task, feats[i])
    assert int(batch.targets["k"][i]) == _brute_best(u, count[i])
    up = feats[i, :, d_causal:].astype(np.float64).sum(1)
    assert int(batch.info["proxy_k"][i]) == _brute_best(up, count[i])
    assert bool(batch.info["strata"]["conflict"][i]) == (int(batch.info["proxy_k"][i]) != int(batch.targets["k"][i]))
    assert np.all(np.asarray(batch.inputs[i, count[i]:]) == 0.0)  # padding rows are zero, flag 0
    assert np.all(np.asarray(batch.inputs[i, :count[i], -1]) == 1.0)


def _pairs(batch, task):
  mask = np.asarray(batch.info["mask"])
  u = np.asarray(batch.info["utility"], np.float64)[mask]
  p = np.asarray(batch.info["features"], np.float64)[..., task.d_causal:][mask]
  return u, p


@pytest.mark.parametrize("utility, rho", [("linear", 0.0), ("linear", 0.9), ("linear", -0.7), ("ideal_point", 0.5)])
def test_proxy_correlation_is_rho_within_sampling_error(utility, rho):
  task = tasks.make("Select-v0", rho=rho, utility=utility, d_causal=2, d_proxy=2, k_min=4, k_max=4)
  batch = task.sample(jax.random.key(1), 4096)
  u, p = _pairs(batch, task)
  n = len(u)
  for j in range(task.d_proxy):
    r = np.corrcoef(u, p[:, j])[0, 1]
    # SE of Pearson's r is about (1 - rho^2) / sqrt(n); the linear utility's z(U) is exact, the ideal point's uses
    # exact moments of a chi-square, so the population correlation is rho in both cases.
    assert abs(r - rho) <= 5 * (1 - rho * rho) / math.sqrt(n) + 2e-3, (j, r, rho)
  assert abs(np.corrcoef(p[:, 0], p[:, 1])[0, 1] - rho * rho) < 5 / math.sqrt(n) + 2e-3
  if rho != 0.9:
    return
  # the shift split decouples the proxies (independent) or reverses them
  for shift, want in (("independent", 0.0), ("reversed", -rho)):
    sb = tasks.make("Select-v0", rho=rho, utility=utility, d_causal=2, d_proxy=2, k_min=4, k_max=4,
                    shift=shift).split_task("shift").sample(jax.random.key(2), 4096)
    u, p = _pairs(sb, task)
    assert abs(np.corrcoef(u, p[:, 0])[0, 1] - want) <= 5 * (1 - want * want) / math.sqrt(n) + 2e-3


def test_out_of_domain_split_scales_the_features_and_keeps_the_linear_correlation():
  task = tasks.make("Select-v0", rho=0.8, ood_scale=5.0, k_min=4, k_max=4)
  train = task.sample(jax.random.key(0), 2048)
  ood = task.split_task("ood").sample(jax.random.key(0), 2048)
  f_train = np.asarray(train.info["features"])[np.asarray(train.info["mask"])]
  f_ood = np.asarray(ood.info["features"])[np.asarray(ood.info["mask"])]
  assert np.allclose(f_ood.std(0) / f_train.std(0), 5.0, rtol=0.06)
  u, p = _pairs(ood, task)
  assert abs(np.corrcoef(u, p[:, 0])[0, 1] - 0.8) < 5 * 0.36 / math.sqrt(len(u)) + 2e-3


def test_candidate_counts_cover_the_range_and_more_candidates_changes_the_shape():
  task = tasks.make("Select-v0", k_min=3, k_max=6)
  batch = task.sample(jax.random.key(3), 2000)
  counts = np.asarray(batch.info["count"])
  assert set(np.unique(counts)) == {3, 4, 5, 6}
  assert batch.inputs.shape == (2000, 6, task.d + 1)
  more = task.with_candidates(64, 64).sample(jax.random.key(3), 8)
  assert more.inputs.shape == (8, 64, task.d + 1) and np.all(np.asarray(more.info["count"]) == 64)
  assert task.larger() is None


def test_scores_hand_computed():
  task = tasks.make("Select-v0", k_min=2, k_max=4, d_causal=1, d_proxy=1, weights=(1.0,))
  feats = np.array([[[3, 0], [1, 5], [2, 1], [0, 0]],      # k=3: U best 0, proxy best 1 (conflict)
                    [[1, 9], [1, 0], [0, 0], [0, 0]]],     # k=2: tie on U (both 1): best 0; proxy best 0 (agree)
                   np.float32)
  batch = task.from_features(feats, [3, 2])
  assert batch.targets["k"].tolist() == [0, 0] and batch.info["proxy_k"].tolist() == [1, 0]
  s = task.score(batch, jnp.array([1, 1]))
  # instance 0 picks U=1 out of {3, 1, 2}: regret (3-1)/(3-1) = 1, loss 2, follows the proxy
  # instance 1 picks the tied candidate: accurate, zero regret, no conflict
  assert s["accuracy"].tolist() == [0.0, 1.0]
  assert np.allclose(s["regret"], [1.0, 0.0]) and np.allclose(s["loss"], [2.0, 0.0])
  assert s["proxy_follow"].tolist() == [1.0, 0.0]
  s = task.score(batch, jnp.array([2, 3]))  # index 3 is padding in a k=2 instance: scored as the worst
  assert np.allclose(s["regret"], [0.5, 0.0]) and s["accuracy"].tolist() == [0.0, 1.0]  # all tie in instance 1
  s = task.score(batch, jnp.array([-1, 7]))
  assert s["accuracy"].tolist() == [0.0, 1.0] and np.allclose(s["regret"], [1.0, 0.0])
  assert s["proxy_follow"].tolist() == [0.0, 0.0]


def test_determinism_pool_and_outside():
  task = tasks.make("Select-v0", rho=0.5)
  a, b = task.sample(jax.random.key(7), 64), task.sample(jax.random.key(7), 64)
  assert np.array_equal(np.asarray(a.inputs), np.asarray(b.inputs))
  pool = task.pool(jax.random.key(8), 64)
  rows = {np.asarray(r).tobytes() for r in pool.inputs}
  assert len(rows) == 64
  out = task.sample_outside(jax.random.key(8), 64, pool)  # same key as the pool: every draw collides at first
  assert not rows & {np.asarray(r).tobytes() for r in out.inputs}


def test_task_hooks():
  task = tasks.make("Select-v0", k_min=2, k_max=8)
  assert "Select-v0" in tasks.registered()
  assert task.answer_bits() == pytest.approx(np.mean([math.log2(k) for k in range(2, 9)]))
  batch = task.sample(jax.random.key(0), 500)
  draws = np.asarray(task.chance_predictions(batch, jax.random.key(1), 40))
  assert draws.shape == (40, 500) and np.all(draws >= 0) and np.all(draws < np.asarray(batch.info["count"]))
  assert np.mean(np.asarray(task.score(batch, jnp.asarray(draws[0]))["accuracy"])) < 0.5
  dec = task.decode(batch.inputs)
  assert np.array_equal(np.asarray(dec["features"]), np.asarray(batch.info["features"]))
  assert np.array_equal(np.asarray(dec["mask"]), np.asarray(batch.info["mask"]))
  assert tasks.from_spec(task.spec) == task
  assert set(dict(task.metric_directions)) == set(task.score(batch, batch.targets["k"]))
  assert task.dummy_targets(3)["k"].shape == (3,)


@pytest.mark.parametrize("params, name", [
    ({"k_min": 1}, "k_min"), ({"k_min": 2, "k_max": 1}, "k_max"), ({"d_causal": 0}, "d_causal"),
    ({"d_proxy": -1}, "d_proxy"), ({"rho": 1.5}, "rho"), ({"rho": -1.01}, "rho"), ({"rho": float("nan")}, "rho"),
    ({"rho": True}, "rho"), ({"utility": "cubic"}, "utility"), ({"split": "test"}, "split"),
    ({"weights": (1.0,)}, "weights"), ({"weights": (0.0, 0.0)}, "weights"), ({"ood_scale": 1.0}, "ood_scale")])
def test_bad_parameters_name_the_field(params, name):
  with pytest.raises(ValueError, match=name):
    tasks.make("Select-v0", **params)


def test_bad_features_name_the_field():
  task = tasks.make("Select-v0", k_max=3, d_causal=1, d_proxy=1)
  feats = np.zeros((2, 3, 2), np.float32)
  feats[1, 0, 0] = np.nan
  with pytest.raises(ValueError, match="features"):
    task.from_features(feats, [2, 3])
  with pytest.raises(ValueError, match="features"):
    task.from_features(np.zeros((2, 3, 5), np.float32), [2, 3])
  with pytest.raises(ValueError, match="count"):
    task.from_features(np.zeros((2, 3, 2), np.float32), [1, 3])
  with pytest.raises(ValueError, match="name"):
    task.split_task("more")
