"""harness.stats against independent references: closed forms, brute-force enumeration and simulation."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mesabench.harness import stats


def test_bootstrap_means_equals_an_explicit_resampling_loop():
  x = np.random.default_rng(0).exponential(1.0, 37)
  reps = stats.bootstrap_means(x, num_resamples=300, seed=5)
  rng = np.random.default_rng(5)
  expected = []
  for start in range(0, 300, 256):  # the documented chunking draws indices chunk by chunk
    idx = rng.integers(0, x.size, size=(min(300, start + 256) - start, x.size))
    expected.extend(x[row].mean() for row in idx)
  np.testing.assert_allclose(reps, expected, rtol=1e-12)
  assert not np.array_equal(reps, stats.bootstrap_means(x, num_resamples=300, seed=6))


def test_bootstrap_distribution_matches_exhaustive_enumeration():
  x = np.array([0.0, 1.0, 5.0])
  exact = sorted(np.mean(c) for c in itertools.product(x, repeat=3))  # all 27 equally likely resamples
  reps = stats.bootstrap_means(x, num_resamples=100_000, seed=1)
  assert reps.mean() == pytest.approx(np.mean(exact), abs=0.02)
  assert np.mean(reps <= 1.0) == pytest.approx(np.mean(np.asarray(exact) <= 1.0), abs=0.01)


def test_paired_bootstrap_keeps_rows_together():
  curve = np.stack([np.arange(10.0), np.arange(10.0) * 2])
  reps = stats.bootstrap_means(curve, num_resamples=200)
  np.testing.assert_allclose(reps[:, 1], 2 * reps[:, 0])


def test_percentile_ci_of_a_known_sample():
  lo, hi = stats.percentile_ci(np.arange(1001.0), level=0.9)
  assert (lo, hi) == (pytest.approx(50.0), pytest.approx(950.0))
  with pytest.raises(ValueError, match="level"):
    stats.percentile_ci([1.0], level=1.0)
  with pytest.raises(ValueError, match="num_resamples"):
    stats.bootstrap_means([1.0], num_resamples=3)


def _ks_statistic(z):
  z = np.sort(z, axis=-1)
  n = z.shape[-1]
  i = np.arange(1, n + 1)
  return np.maximum(np.max(i / n - z, axis=-1), np.max(z - (i - 1) / n, axis=-1))


def test_ks_pvalue_matches_the_simulated_null_distribution():
  rng = np.random.default_rng(2)
  n = 60
  null = _ks_statistic(rng.random((20000, n)))
  for q, tol in ((0.5, 0.02), (0.9, 0.006), (0.99, 0.002)):  # the documented accuracy: best in the tail
    d = float(np.quantile(null, q))
    assert stats.ks_pvalue(d, n) == pytest.approx(1 - q, abs=tol), q


def test_ks_pvalue_limits_and_errors():
  big = 10**8
  assert stats.ks_pvalue(1.3581 / math.sqrt(big), big) == pytest.approx(0.05, abs=1e-3)
  assert stats.ks_pvalue(0.0, 10) == 1.0
  below = stats.ks_pvalue((1.18 - 1e-9) / math.sqrt(big), big)
  above = stats.ks_pvalue((1.18 + 1e-9) / math.sqrt(big), big)
  assert below == pytest.approx(above, abs=1e-6)
  with pytest.raises(ValueError, match="statistic"):
    stats.ks_pvalue(1.5, 10)


@given(st.integers(1, 5000), st.floats(0, 1), st.floats(0, 1))
def test_ks_pvalue_decreases_with_distance(n, d1, d2):
  lo, hi = sorted((d1, d2))
  assert stats.ks_pvalue(hi, n) <= stats.ks_pvalue(lo, n) + 1e-12


def test_ks_uniform_statistic_equals_brute_force_sup_over_a_fine_grid():
  z = np.random.default_rng(3).random(25) ** 1.5
  grid = np.linspace(0, 1, 200001)
  ecdf_right = np.searchsorted(np.sort(z), grid, side="right") / z.size
  ecdf_left = np.searchsorted(np.sort(z), grid, side="left") / z.size
  brute = max(np.max(np.abs(ecdf_right - grid)), np.max(np.abs(ecdf_left - grid)))
  assert stats.ks_uniform(z)[0] == pytest.approx(brute, abs=1e-4)


def test_beta1_cdf_closed_form():
  u = np.linspace(0, 1, 11)
  np.testing.assert_allclose(stats.beta1_cdf(u, 3.0), 1 - (1 - u) ** 3, atol=1e-15)
  with pytest.raises(ValueError, match="k"):
    stats.beta1_cdf(0.5, 0.0)


@given(st.lists(st.floats(0.001, 0.999), min_size=5, max_size=60))
def test_interval_mle_reduces_to_closed_form_for_point_intervals(us):
  u = np.asarray(us)
  fit = stats.fit_best_of_k(u - 1e-10, u + 1e-10)
  assert fit.k == pytest.approx(-u.size / np.sum(np.log1p(-u)), rel=1e-4)
  assert fit.ci[0] < fit.k < fit.ci[1]


@given(st.integers(1, 40), st.integers(1, 12))
@settings(max_examples=50)
def test_rank_law_equals_the_binomial_closed_form(m, k):
  sf = np.exp(stats.best_of_k_log_sf(float(k), m))
  expected = [math.comb(m, j) / math.comb(m + k, j) for j in range(m + 1)] + [0.0]
  np.testing.assert_allclose(sf, expected, rtol=1e-10, atol=1e-300)


def test_rank_law_matches_simulated_ranks():
  rng = np.random.default_rng(4)
  m, k = 20, 3
  ref = rng.random((50000, m))
  best = rng.random((50000, k)).min(axis=1)
  c = (ref < best[:, None]).sum(axis=1)
  sf = np.exp(stats.best_of_k_log_sf(3.0, m))
  for j in (1, 3, 8):
    assert np.mean(c >= j) == pytest.approx(sf[j], abs=0.01)


@pytest.mark.parametrize("k", [1, 8, 32])
def test_rank_fit_recovers_k_of_a_random_searcher_on_a_discrete_law(k):
  rng = np.random.default_rng(10 + k)
  n, m = 600, 128
  sizes = rng.integers(20, 400, n)[:, None]  # each instance its own discrete uniform law: many ties
  ref = np.floor(rng.random((n, m)) * sizes)
  losses = np.floor(rng.random((n, k)) * sizes).min(axis=1)
  c, t, mm = stats.rank_counts(ref, losses)
  fit = stats.fit_best_of_k_ranks(c, t, mm)
  assert fit.ci[0] <= k <= fit.ci[1] or abs(fit.k / k - 1) < 0.15, (fit.k, fit.ci)
  assert stats.best_of_k_rank_gof(c, t, mm, fit.k)[1] > 0.01


def test_rank_gof_rejects_a_mixture_of_perfect_and_bad_answers():
  rng = np.random.default_rng(5)
  ref = rng.random((800, 128))
  losses = np.where(np.arange(800) % 2 == 0, 0.0, rng.random((800, 3)).max(axis=1))
  c, t, m = stats.rank_counts(ref, losses)
  fit = stats.fit_best_of_k_ranks(c, t, m)
  assert stats.best_of_k_rank_gof(c, t, m, fit.k)[1] < 1e-6


def test_rank_counts_and_intervals_by_brute_force():
  ref = np.array([[0.0, 1.0, 1.0, 2.0], [3.0, 3.0, 3.0, 3.0]])
  c, t, m = stats.rank_counts(ref, [1.0, 0.5])
  assert c.tolist() == [1, 0] and t.tolist() == [2, 0] and m == 4
  a, b = stats.rank_intervals(ref, [1.0, 0.5])
  np.testing.assert_allclose(a, [0.2, 0.0])
  np.testing.assert_allclose(b, [0.8, 0.2])
  with pytest.raises(ValueError, match="reference_losses"):
    stats.rank_counts(np.ones((3, 4)), [0.1, 0.2])
  with pytest.raises(ValueError, match="losses"):
    stats.rank_counts(np.ones(4), [np.nan])


def test_wilson_interval_against_hand_computed_values():
  # 8 of 10 at 95%: the textbook Wilson interval (0.4902, 0.9433)
  lo, hi = stats.wilson_interval(8, 10, 0.95)
  assert abs(lo - 0.4902) < 5e-4 and abs(hi - 0.9433) < 5e-4
  lo, hi = stats.wilson_interval(0, 20, 0.95)
  assert lo < 1e-12 and abs(hi - 0.1611) < 5e-4
  with pytest.raises(ValueError, match="trials"):
    stats.wilson_interval(1, 0)
  with pytest.raises(ValueError, match="successes"):
    stats.wilson_interval(5, 4)
