"""In-context linear regression (tasks.linreg): the laws' moments, the token layouts, and the exact predictors
against float64 brute force (numeric integration of the posterior, explicit posterior sums, per-prefix solves)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mesabench.tasks import linreg


def _np(a):
  return np.asarray(a, np.float64)


# ------------------------------------------------------------------------------------------------------ laws


def test_uniform_law_moments():
  t = linreg.sample_uniform_tasks(jax.random.key(0), 4000, 5, 10, input_range=1.0, weight_scale=2.0)
  x, w = _np(t.x), _np(t.w)
  n = x.size
  assert x.min() >= -0.5 and x.max() <= 0.5
  assert abs(x.mean()) < 5 * np.sqrt(1 / 12 / 4) / np.sqrt(n)  # mean 0, var 1/12 for U(-1/2, 1/2)
  assert abs(x.var() - 1 / 12) < 5 * np.sqrt(1 / 180) / np.sqrt(n) * 2  # var of (U^2) is 1/80 - 1/144 = 1/180
  assert abs(w.var() - 4.0) < 5 * 4.0 * np.sqrt(2 / w.size)
  np.testing.assert_allclose(_np(t.y), np.einsum("bnd,bd->bn", x, w), atol=1e-5)  # no noise
  np.testing.assert_allclose(_np(t.y_query), np.einsum("bd,bd->b", _np(t.x_query), w), atol=1e-5)
  wide = linreg.sample_uniform_tasks(jax.random.key(1), 1000, 3, 4, input_range=2.0)
  assert _np(wide.x).min() < -0.9 and _np(wide.x).max() > 0.9  # input_range 2 is U(-1, 1)


def test_regression_law_moments_and_pool():
  pool = linreg.task_pool(jax.random.key(1), 8, 3)
  s = linreg.sample_regression(jax.random.key(2), 20000, 6, 3, 0.5, pool=pool)
  x, y, w = _np(s.x), _np(s.y), _np(s.w)
  assert abs(x.mean()) < 5 / np.sqrt(x.size) and abs(x.var() - 1) < 5 * np.sqrt(2 / x.size)
  noise = y - np.einsum("bkd,bd->bk", x, w)
  assert abs(noise.mean()) < 5 * 0.5 / np.sqrt(noise.size)
  assert abs(noise.var() - 0.25) < 5 * 0.25 * np.sqrt(2 / noise.size)
  rows = {tuple(np.round(r, 5)) for r in w}
  assert rows <= {tuple(np.round(r, 5)) for r in _np(pool)} and len(rows) == 8  # uniform over the pool
  counts = np.array([np.sum(np.all(np.isclose(w, p), axis=1)) for p in _np(pool)])
  assert np.all(np.abs(counts - 2500) < 5 * np.sqrt(2500 * 7 / 8))
  sub = linreg.sample_regression(jax.random.key(2), 5000, 2, 3, 0.5, pool=pool, pool_size=jnp.int32(3))
  assert {tuple(np.round(r, 5)) for r in _np(sub.w)} <= {tuple(np.round(r, 5)) for r in _np(pool[:3])}
  fresh = linreg.sample_regression(jax.random.key(3), 20000, 2, 3, 0.0)
  assert abs(_np(fresh.w).var() - 1) < 5 * np.sqrt(2 / fresh.w.size)
  np.testing.assert_allclose(_np(fresh.y), np.einsum("bkd,bd->bk", _np(fresh.x), _np(fresh.w)), atol=1e-5)


def test_same_key_same_batch():
  a = linreg.sample_regression(jax.random.key(7), 16, 4, 2, 0.5)
  b = linreg.sample_regression(jax.random.key(7), 16, 4, 2, 0.5)
  assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_token_layouts():
  x = jnp.arange(12.0).reshape(1, 3, 4) + 1
  y = jnp.array([[10.0, 20.0, 30.0]])
  seq = np.asarray(linreg.interleave(x, y))
  assert seq.shape == (1, 6, 5)
  np.testing.assert_array_equal(seq[0, 0], [0, 1, 2, 3, 4])
  np.testing.assert_array_equal(seq[0, 1], [10, 0, 0, 0, 0])
  np.testing.assert_array_equal(seq[0, 4], [0, 9, 10, 11, 12])
  np.testing.assert_array_equal(seq[0, 5], [30, 0, 0, 0, 0])
  tok = np.asarray(linreg.query_tokens(x, y, jnp.array([[7.0, 8, 9, 10]])))
  assert tok.shape == (1, 4, 5)
  np.testing.assert_array_equal(tok[0, 1], [5, 6, 7, 8, 20])
  np.testing.assert_array_equal(tok[0, 3], [7, 8, 9, 10, 0])
  spec = linreg.sequence_spec(4, 3)
  assert spec.input_shape == (6, 5) and spec.output_kind == "real_sequence"


@pytest.mark.parametrize("call, name", [
    (lambda: linreg.sample_uniform_tasks(jax.random.key(0), 0, 2, 2), "batch"),
    (lambda: linreg.sample_uniform_tasks(jax.random.key(0), 2, 2, 2, input_range=0.0), "input_range"),
    (lambda: linreg.sample_regression(jax.random.key(0), 2, 2, 2, -1.0), "noise_std"),
    (lambda: linreg.sample_regression(jax.random.key(0), 2, 2, 2, 0.5, pool=jnp.zeros((3, 5))), "pool"),
    (lambda: linreg.ridge_predictions(jnp.zeros((1, 2, 2)), jnp.zeros((1, 2)), 0.0), "lam"),
    (lambda: linreg.dmmse_predictions(jnp.zeros((1, 2, 2)), jnp.zeros((1, 2)), jnp.zeros((3, 2)), 0.0), "noise_std"),
    (lambda: linreg.dmmse_predictions(jnp.zeros((3, 2, 2)), jnp.zeros((3, 2)), jnp.zeros((3, 2)), 1.0, chunk=2),
     "chunk"),
])
def test_bad_inputs_name_the_parameter(call, name):
  with pytest.raises(ValueError, match=name):
    call()


# ------------------------------------------------------------------------------------------------ predictors


def test_ridge_equals_the_posterior_mean_by_numeric_integration():
  """D = 2: E[w | first k pairs] under w ~ N(0, I), noise var s2, by a 2-D quadrature grid (float64)."""
  s2 = 0.25
  seq = linreg.sample_regression(jax.random.key(4), 3, 5, 2, np.sqrt(s2))
  pred = _np(linreg.ridge_predictions(seq.x, seq.y, s2))
  g = np.linspace(-7, 7, 1401)
  w1, w2 = np.meshgrid(g, g, indexing="ij")
  ws = np.stack([w1.ravel(), w2.ravel()], 1)
  log_prior = -0.5 * np.sum(ws**2, 1)
  x, y = _np(seq.x), _np(seq.y)
  for b in range(3):
    for k in range(5):
      logp = log_prior - np.sum((y[b, :k, None] - x[b, :k] @ ws.T) ** 2, 0) / (2 * s2)
      p = np.exp(logp - logp.max())
      mean_w = (p[:, None] * ws).sum(0) / p.sum()
      assert abs(pred[b, k] - x[b, k] @ mean_w) < 2e-4, (b, k)
  assert np.all(pred[:, 0] == 0)


def test_ridge_equals_per_prefix_solves():
  seq = linreg.sample_regression(jax.random.key(5), 4, 7, 3, 0.3)
  pred = _np(linreg.ridge_predictions(seq.x, seq.y, 0.7))
  x, y = _np(seq.x), _np(seq.y)
  for b in range(4):
    for k in range(7):
      xs, ys = x[b, :k], y[b, :k]
      w = np.linalg.solve(xs.T @ xs + 0.7 * np.eye(3), xs.T @ ys)
      assert abs(pred[b, k] - x[b, k] @ w) < 1e-4


def test_dmmse_equals_explicit_posterior_sums():
  """Bayes' rule with explicit Gaussian likelihood products over a pool of 5 tasks (float64 loops)."""
  sigma = 0.5
  pool = linreg.task_pool(jax.random.key(6), 5, 2)
  seq = linreg.sample_regression(jax.random.key(7), 3, 6, 2, sigma, pool=pool)
  pred = _np(linreg.dmmse_predictions(seq.x, seq.y, pool, sigma))
  x, y, P = _np(seq.x), _np(seq.y), _np(pool)
  for b in range(3):
    for k in range(6):
      like = np.ones(5)
      for m in range(5):
        for i in range(k):
          r = y[b, i] - P[m] @ x[b, i]
          like[m] *= np.exp(-r * r / (2 * sigma**2)) / np.sqrt(2 * np.pi * sigma**2)
      post = like / like.sum()
      assert abs(pred[b, k] - x[b, k] @ (post @ P)) < 1e-4, (b, k)


def test_dmmse_pool_size_and_chunks():
  pool = linreg.task_pool(jax.random.key(8), 16, 3)
  seq = linreg.sample_regression(jax.random.key(9), 8, 5, 3, 0.5, pool=pool[:4])
  full = _np(linreg.dmmse_predictions(seq.x, seq.y, pool[:4], 0.5))
  masked = _np(jax.jit(lambda m: linreg.dmmse_predictions(seq.x, seq.y, pool, 0.5, pool_size=m))(4))
  chunked = _np(linreg.dmmse_predictions(seq.x, seq.y, pool[:4], 0.5, chunk=2))
  np.testing.assert_allclose(masked, full, atol=1e-5)
  np.testing.assert_allclose(chunked, full, atol=1e-5)


def test_bayes_estimators_win_where_they_are_optimal():
  """On pool tasks dMMSE beats ridge; on fresh Gaussian tasks ridge beats dMMSE (sampling error is small here)."""
  pool = linreg.task_pool(jax.random.key(10), 4, 4)
  on_pool = linreg.sample_regression(jax.random.key(11), 4000, 8, 4, 0.5, pool=pool)
  fresh = linreg.sample_regression(jax.random.key(12), 4000, 8, 4, 0.5)
  mse = lambda p, s: float(np.mean((_np(p) - _np(s.y))[:, 1:] ** 2))
  assert mse(linreg.dmmse_predictions(on_pool.x, on_pool.y, pool, 0.5), on_pool) < 0.8 * mse(
      linreg.ridge_predictions(on_pool.x, on_pool.y, 0.25), on_pool)
  assert mse(linreg.ridge_predictions(fresh.x, fresh.y, 0.25), fresh) < 0.8 * mse(
      linreg.dmmse_predictions(fresh.x, fresh.y, pool, 0.5), fresh)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 12), d=st.integers(1, 6))
def test_gd_step_and_tuned_eta(seed, n, d):
  t = linreg.sample_uniform_tasks(jax.random.key(seed), 64, d, n)
  x, y, xq, yq = _np(t.x), _np(t.y), _np(t.x_query), _np(t.y_query)
  a = np.einsum("bn,bnd,bd->b", y, x, xq) / n
  np.testing.assert_allclose(_np(linreg.gd_step_predictions(t.x, t.y, t.x_query, 2.5)), 2.5 * a, rtol=1e-4,
                             atol=1e-6)
  eta = linreg.tune_gd_eta(t.x, t.y, t.x_query, t.y_query)
  grid = np.linspace(eta - 1, eta + 1, 2001)
  losses = ((grid[:, None] * a[None] - yq[None]) ** 2).sum(1)
  assert abs(grid[np.argmin(losses)] - eta) <= 1e-3 + 1e-4 * abs(eta)
