"""PolyMax-v0 and its oracle against a float64 root-based reference."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import mesabench.tasks as tasks
from mesabench.tasks import polymax
from tests.tasks import reference


def _check_against_reference(coeffs):
  value, x = (np.asarray(a, np.float64) for a in polymax.solve(coeffs))
  for c, v, xx in zip(np.asarray(coeffs, np.float64), value, x):
    want_v, _ = reference.polymax_float64(c)
    tol = 1e-6 * max(1.0, np.abs(c).sum())
    assert abs(v - want_v) <= tol, (c, v, want_v)
    assert abs(np.polynomial.Polynomial(c)(xx) - want_v) <= tol, (c, xx)  # P(argmax) is the maximum
    assert 0.0 <= xx <= 1.0


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 5, 6, 8, 11, 16])
def test_oracle_matches_float64_reference_on_random_polynomials(degree):
  rng = np.random.default_rng(degree)
  scale = rng.choice([1.0, 30.0, 1e4], size=(64, 1))
  _check_against_reference((rng.uniform(-1, 1, (64, degree + 1)) * scale).astype(np.float32))


def _two_peaks(a, b, eps):
  """-(x-a)^2 (x-b)^2 + eps*x: maxima near a and b, the one at b higher by about eps*(b-a)."""
  p = -np.polynomial.Polynomial.fromroots([a, a, b, b]) + np.polynomial.Polynomial([0, eps])
  return p.coef.astype(np.float32)


def test_near_ties_between_two_interior_maxima():
  # A gap far above the tie tolerance: the higher peak (near b) must win.
  v, x = polymax.solve(np.stack([_two_peaks(0.2, 0.7, 1e-4), _two_peaks(0.3, 0.9, -1e-4)]))
  assert abs(float(x[0]) - 0.7) < 2e-3 and abs(float(x[1]) - 0.3) < 2e-3
  # An exact tie (symmetric polynomial): the smallest x wins.
  v, x = polymax.solve(_two_peaks(0.25, 0.75, 0.0)[None])
  assert abs(float(x[0]) - 0.25) < 1e-3 and abs(float(v[0])) < 1e-6
  # Gaps around the tie tolerance: whichever peak, the value is within the error bound.
  _check_against_reference(np.stack([_two_peaks(0.25, 0.75, e) for e in (1e-9, -1e-9, 1e-7, 3e-7, -3e-7)]))


def test_boundary_maxima_and_constants():
  coeffs = np.array([[0, 1, 0, 0], [0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0.5, -3, 2.75, 0.2]], np.float32)
  v, x = polymax.solve(coeffs)
  np.testing.assert_allclose(np.asarray(x)[:4], [1.0, 0.0, 0.0, 0.0])
  np.testing.assert_allclose(np.asarray(v)[:4], [1.0, 0.0, 1.0, 0.0])
  _check_against_reference(coeffs)
  v0, x0 = polymax.solve(np.array([[3.5]], np.float32))  # degree 0
  assert float(v0[0]) == 3.5 and float(x0[0]) == 0.0


def test_large_coefficients_with_cancellation():
  # (x - 1/2)^6 * -1e4 expanded: large coefficients, small values near the maximum.
  p = -1e4 * np.polynomial.Polynomial.fromroots([0.5] * 6) + np.polynomial.Polynomial([0, 10.0])
  _check_against_reference(p.coef.astype(np.float32)[None])


@given(st.integers(0, 12), st.integers(0, 2**31 - 1))
def test_oracle_property_random_degree_and_seed(degree, seed):
  rng = np.random.default_rng(seed)
  coeffs = np.zeros((8, 13), np.float32)
  coeffs[:, : degree + 1] = rng.standard_normal((8, degree + 1)) * rng.choice([1.0, 100.0])
  _check_against_reference(coeffs)


def test_bad_coefficients_are_rejected():
  with pytest.raises(ValueError, match="coeffs must be finite"):
    polymax.solve(np.array([[1.0, np.nan]], np.float32))
  with pytest.raises(ValueError, match=r"degree must be in \[0, 32\]"):
    polymax.solve(np.zeros((1, 40), np.float32))
  with pytest.raises(ValueError, match=r"degree must be an integer in \[0, 32\]"):
    tasks.make("PolyMax-v0", degree=-1)
  with pytest.raises(ValueError, match="encoding must be one of"):
    tasks.make("PolyMax-v0", encoding="hex")
  with pytest.raises(ValueError, match=r"int_bits must be at least 8"):
    tasks.make("PolyMax-v0", degree=6, int_bits=4)
  with pytest.raises(ValueError, match=r"max_degree must be an integer in \[degree=6, 32\]"):
    tasks.make("PolyMax-v0", degree=6, max_degree=5)
  task = tasks.make("PolyMax-v0", degree=2)
  with pytest.raises(ValueError, match=r"coeffs must lie within"):
    task.from_coeffs(np.array([[1e6, 0, 0]], np.float32))
  with pytest.raises(ValueError, match="coeffs must be finite"):
    task.from_coeffs(np.array([[np.inf, 0, 0]], np.float32))


@pytest.fixture(scope="module")
def binary_task():
  return tasks.make("PolyMax-v0", degree=6, encoding="binary")


def test_batch_targets_features_and_binary_round_trip(binary_task):
  batch = binary_task.sample(jax.random.key(0), 128)
  coeffs = np.asarray(batch.info["coeffs"])
  np.testing.assert_array_equal(np.asarray(binary_task.decode(batch.inputs)["coeffs"]), coeffs)
  assert batch.inputs.shape == (128, 7, 1 + binary_task.int_bits + binary_task.frac_bits)
  words = coeffs * 2.0**binary_task.frac_bits
  np.testing.assert_array_equal(words, np.round(words))  # instances live on the fixed-point grid
  for i in range(0, 128, 8):
    want_v, _ = reference.polymax_float64(coeffs[i])
    assert abs(float(batch.targets["value"][i]) - want_v) <= 1e-6 * max(1, np.abs(coeffs[i]).sum())
    # Local maxima counted by brute force on a fine grid, endpoints included.
    xs = np.linspace(0, 1, 20001)
    p = np.polynomial.Polynomial(coeffs[i].astype(np.float64))(xs)
    peaks = int(np.sum((p[1:-1] > p[:-2]) & (p[1:-1] >= p[2:]))) + int(p[0] >= p[1]) + int(p[-1] > p[-2])
    assert int(batch.info["difficulty"]["num_maxima"][i]) == peaks, coeffs[i]
  diff = batch.info["difficulty"]
  one = np.asarray(diff["num_maxima"]) == 1
  np.testing.assert_array_equal(np.asarray(diff["gap"])[one], 1.0)


@given(st.lists(st.integers(-(2**23) + 1, 2**23 - 1), min_size=7, max_size=7))
def test_binary_encoding_round_trips_every_word(words):
  task = tasks.make("PolyMax-v0", degree=6, encoding="binary", int_bits=1, frac_bits=22,
                    distribution="uniform")
  coeffs = jnp.asarray(np.array(words, np.float64)[None] / 2.0**22, jnp.float32)
  np.testing.assert_array_equal(np.asarray(task.decode(task.encode(coeffs))["coeffs"]), np.asarray(coeffs))


def test_scoring_against_direct_evaluation():
  task = tasks.make("PolyMax-v0", degree=4)
  batch = task.sample(jax.random.key(5), 64)
  m = task.score(batch, batch.targets["x"])
  assert float(m["loss"].max()) <= 1e-12 and float(m["hit"].min()) == 1.0
  x_hat = np.linspace(0, 1, 64, dtype=np.float32)
  m = task.score(batch, x_hat)
  coeffs = np.asarray(batch.info["coeffs"], np.float64)
  p_hat = np.array([np.polynomial.Polynomial(c)(x) for c, x in zip(coeffs, x_hat)])
  best = np.asarray(batch.targets["value"], np.float64)
  np.testing.assert_allclose(np.asarray(m["loss"]), (p_hat - best) ** 2, rtol=1e-5, atol=1e-9)  # float32 P
  low = np.asarray(batch.info["min_value"], np.float64)
  np.testing.assert_allclose(np.asarray(m["regret"]), (best - p_hat) / (best - low), atol=1e-5)
  nan_scores = task.score(batch, jnp.full((64,), jnp.nan))
  np.testing.assert_allclose(np.asarray(nan_scores["regret"]), 1.0, atol=1e-6)
  with pytest.raises(ValueError, match=r"prediction must have shape \(64,\)"):
    task.score(batch, jnp.zeros((63,)))


def test_pool_distinct_outside_disjoint_and_determinism():
  task = tasks.make("PolyMax-v0", degree=1, int_bits=1, frac_bits=3, distribution="uniform")
  assert task.space_size == 17**2  # words -8..8 per coefficient
  pool = task.pool(jax.random.key(0), 200)  # 200 of 289: forces many redraws
  rows = {tuple(r) for r in np.asarray(pool.info["coeffs"]).tolist()}
  assert len(rows) == 200
  outside = task.sample_outside(jax.random.key(1), 64, pool)
  assert not rows & {tuple(r) for r in np.asarray(outside.info["coeffs"]).tolist()}
  with pytest.raises(ValueError, match=r"size must be in \[1, 289\]"):
    task.pool(jax.random.key(0), 290)
  again = task.pool(jax.random.key(0), 200)
  np.testing.assert_array_equal(np.asarray(again.inputs), np.asarray(pool.inputs))


def test_larger_is_harder_at_the_same_degree():  # stratum definitions: tests/tasks/test_strata.py
  task = tasks.make("PolyMax-v0", degree=6, max_degree=8)
  big = task.larger()
  assert big.degree == 6 and big.spec == task.spec and big.larger() is None
  batch = big.sample(jax.random.key(0), 16)
  np.testing.assert_array_equal(np.asarray(batch.info["coeffs"])[:, 7:], 0.0)  # slots above the degree stay 0


def test_registry():
  assert set(tasks.registered()) >= {"PolyMax-v0", "ModSearch-v0"}
  known = ", ".join(tasks.registered())  # every registered id, sorted
  assert known.index("ModSearch-v0") < known.index("PolyMax-v0")
  with pytest.raises(ValueError, match=re.escape(f"unknown task id 'PolyMax-v9'; known ids: {known}")):
    tasks.make("PolyMax-v9")
  with pytest.raises(ValueError, match="already registered"):
    tasks.register("PolyMax-v0", polymax.PolyMax)
  with pytest.raises(ValueError, match="versioned"):
    tasks.register("PolyMax", polymax.PolyMax)


def test_degree_too_large_for_bernstein_names_the_degree():
  """degree >= 16 used to name int_bits, which the user never passed."""
  with pytest.raises(ValueError, match=r"^degree must be at most 15 with distribution='bernstein'"):
    tasks.make("PolyMax-v0", degree=16)
  with pytest.raises(ValueError, match=r"^max_degree must be at most 15"):
    tasks.make("PolyMax-v0", degree=4, max_degree=20)
  with pytest.raises(ValueError, match=r"^degree must be at most 15"):
    tasks.make("PolyMax-v0", degree=16, int_bits=20)
  assert tasks.make("PolyMax-v0", degree=15).int_bits == 22
  assert tasks.make("PolyMax-v0", degree=32, distribution="uniform").degree == 32


def test_chunked_batches_equal_one_shot_batches(monkeypatch):
  """Feature grid and oracle run per chunk of chunk_rows: the batch is the same, bit for bit."""
  from mesabench.tasks import polymax as pm
  task = tasks.make("PolyMax-v0", degree=5)
  one = task.sample(jax.random.key(2), 40)
  monkeypatch.setattr(pm.PolyMax, "chunk_rows", 16)
  chunked = task.sample(jax.random.key(2), 40)
  for a, b in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(chunked)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_memory_estimate_and_refusal():
  from mesabench.tasks import core
  task = tasks.make("PolyMax-v0", degree=32, distribution="uniform", encoding="binary")
  row = sum(np.asarray(x).nbytes for x in jax.tree_util.tree_leaves(task.sample(jax.random.key(0), 1)))
  assert row >= 4 * 33 * 24 + 4 * 33  # binary inputs and the coefficients, at least
  est = task.memory_bytes(2**20)
  assert est == 2 * 2**20 * row + task.chunk_rows * task.work_bytes_per_row + core.COMPILE_BYTES
  # the old cap of 2**24 rows would need > 100 GiB here: refused up front, naming batch_size and the estimate
  if task.memory_bytes(2**24) > core.memory_limit_bytes():
    with pytest.raises(ValueError, match=r"^batch_size must be at most \d+ for PolyMax-v0 .* GiB"):
      task.sample(jax.random.key(0), 2**24)
    with pytest.raises(ValueError, match=r"^size must be at most \d+"):
      task.pool(jax.random.key(0), 2**24)
