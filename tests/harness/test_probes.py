"""Linear probes: recover a planted linear variable from synthetic states, fail (about chance) on shuffled labels,
fitters against closed forms, the group split, per-iteration curves with a random-init control, and bad input."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from mesabench.harness import probes


def planted(seed, n=1200, d=12, noise=0.2):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d))
  w = rng.normal(size=d)
  z = x @ (w / np.linalg.norm(w))  # variance 1: R^2 of the best linear readout is 1 / (1 + noise^2)
  return x, z + noise * rng.normal(size=n), (z + noise * rng.normal(size=n) > 0.4).astype(np.int64)


@given(st.integers(0, 10**6))
def test_recovers_a_planted_binary_variable_and_not_shuffled_labels(seed):
  x, _, y = planted(seed)
  r = probes.fit_probe(x, y, "binary", seed=seed, num_resamples=50)
  assert r.applicable and r.score > 0.85 and r.ci[0] <= r.score <= r.ci[1]
  assert abs(r.shuffled - 0.5) < 0.08  # balanced accuracy of shuffled labels: chance
  assert r.num_train + r.num_test == x.shape[0]
  assert 0 < r.positive_fraction < 1 and r.majority >= 0.5


@given(st.integers(0, 10**6))
def test_recovers_a_planted_real_variable_and_not_shuffled_labels(seed):
  x, z, _ = planted(seed)
  r = probes.fit_probe(x, z, "real", seed=seed, num_resamples=50, l2=0.1)
  assert r.score > 0.9 and r.shuffled < 0.05


def test_features_without_the_variable_score_chance():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(1000, 8))
  y = (rng.random(1000) > 0.7).astype(int)
  r = probes.fit_probe(x, y, "binary", seed=1, num_resamples=50)
  assert abs(r.score - 0.5) < 0.08
  assert r.ci[0] < 0.5 < r.ci[1] or abs(r.score - 0.5) < 0.05


def test_logistic_fit_matches_a_gradient_descent_reference():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(300, 3))
  y = (x[:, 0] - x[:, 1] + 0.5 * rng.normal(size=300) > 0).astype(float)
  l2 = 0.5
  beta = probes.fit_logistic(x, y, l2)
  # Reference: plain gradient descent on the same objective (float64, many small steps).
  a = np.concatenate([x, np.ones((300, 1))], axis=1)
  b = np.zeros(4)
  pen = np.array([l2, l2, l2, 0.0])
  for _ in range(20000):
    p = 1 / (1 + np.exp(-a @ b))
    b -= 0.002 * (a.T @ (p - y) + pen * b)
  np.testing.assert_allclose(beta, b, rtol=1e-4, atol=1e-5)


def test_ridge_fit_matches_lstsq_without_penalty():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(50, 4))
  y = x @ np.array([1.0, -2.0, 0.5, 3.0]) + 7.0 + 0.1 * rng.normal(size=50)
  beta = probes.fit_ridge(x, y, 0.0)
  ref, *_ = np.linalg.lstsq(np.concatenate([x, np.ones((50, 1))], axis=1), y, rcond=None)
  np.testing.assert_allclose(beta, ref, rtol=1e-6, atol=1e-6)


def test_group_split_keeps_groups_whole_and_is_seeded():
  groups = np.repeat(np.arange(20), 7)
  tr, te = probes.split_indices(groups.size, 0.5, 3, groups)
  assert set(groups[tr]).isdisjoint(groups[te]) and tr.size + te.size == groups.size
  tr2, _ = probes.split_indices(groups.size, 0.5, 3, groups)
  np.testing.assert_array_equal(tr, tr2)
  tr3, _ = probes.split_indices(groups.size, 0.5, 4, groups)
  assert not np.array_equal(tr, tr3)


def test_probe_curve_per_iteration_with_a_random_init_control():
  """States that carry the label from iteration 3 on (and noise before) give a curve that rises at 3; control
  states that never carry it stay at chance."""
  rng = np.random.default_rng(5)
  t, n, d = 5, 800, 6
  labels = (rng.random((t, n)) > 0.5).astype(int)
  states = rng.normal(size=(t, n, d))
  states[2:, :, 0] += 3.0 * (2 * labels[2:] - 1)
  control = rng.normal(size=(t, n, d))
  curve = probes.probe_curve(states, labels, "binary", control_states=control, num_resamples=20,
                             groups=np.arange(n) // 8)
  s = curve.scores("trained")
  assert curve.iterations == (1, 2, 3, 4, 5)
  assert np.all(s[:2] < 0.6) and np.all(s[2:] > 0.9)
  assert np.all(np.abs(curve.scores("control") - 0.5) < 0.1)
  assert np.all(np.abs(curve.scores("shuffled") - 0.5) < 0.1)
  assert curve.to_json()["trained"][3]["applicable"]


def test_a_class_too_rare_is_not_applicable():
  x = np.random.default_rng(0).normal(size=(100, 3))
  y = np.zeros(100, int)
  y[:3] = 1
  r = probes.fit_probe(x, y, "binary", num_resamples=10)
  assert not r.applicable and np.isnan(r.score) and "positives" in r.reason
  assert r.to_json()["score"] is None


@pytest.mark.parametrize("kwargs,name", [({"kind": "ordinal"}, "kind"), ({"train_fraction": 1.0}, "train_fraction"),
                                         ({"l2": -1.0}, "l2"), ({"num_resamples": 5}, "num_resamples"),
                                         ({"level": 0.3}, "level"), ({"groups": np.arange(3)}, "groups")])
def test_bad_parameters_name_themselves(kwargs, name):
  x, _, y = planted(0, n=40)
  with pytest.raises(ValueError, match=name):
    probes.fit_probe(x, y, **kwargs)


def test_bad_shapes_and_labels():
  x, z, y = planted(0, n=40)
  with pytest.raises(ValueError, match="labels"):
    probes.fit_probe(x, z, "binary")  # real labels for a binary probe
  with pytest.raises(ValueError, match="labels"):
    probes.fit_probe(x, y[:10])
  with pytest.raises(ValueError, match="states"):
    probes.probe_curve(x, y)
  with pytest.raises(ValueError, match="control_states"):
    probes.probe_curve(x[None], y, control_states=x[None, :20])
