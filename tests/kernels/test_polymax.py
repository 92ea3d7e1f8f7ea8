"""mesabench.kernels.polymax: fused grid pass (interpret mode) and XLA path against the reference and float64."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mesabench.kernels import polymax

G = 1025  # small grids keep interpret mode fast; the comparison with the reference uses the same grid


def scale(c):
  return np.maximum(1.0, np.abs(np.asarray(c, np.float64)).sum(-1))


def dense_max(c, points=200_001):
  xs = np.linspace(0.0, 1.0, points)
  vals = np.polynomial.polynomial.polyval(xs, np.asarray(c, np.float64).T)
  return vals.max(-1)


@pytest.fixture(scope="module")
def batch():
  rng = np.random.default_rng(7)
  c = rng.standard_normal((37, 7)).astype(np.float32)  # 37: not a multiple of any row block
  c[0] = 0.0  # constant zero
  c[1] = [2.5, 0, 0, 0, 0, 0, 0]  # constant: every x ties, the smallest (0) wins
  c[2] = [0, 0, 1, -1, 0, 0, 0]  # x**2 - x**3: interior peak at x = 2/3
  c[3] = [0, 1, 0, 0, 0, 0, 0]  # rising: maximum at x = 1
  c[4] = -np.concatenate([np.polynomial.polynomial.polyfromroots([0.25, 0.25, 0.75, 0.75]), [0, 0]])  # two peaks
  c[5] *= 1e4  # large coefficients
  return c.astype(np.float32)


@pytest.mark.parametrize("impl", ["pallas", "xla"])
def test_matches_reference_and_float64(impl, batch):
  v, x = polymax.maximize(batch, impl=impl, interpret=True, grid_points=G)
  vr, xr = polymax.maximize_reference(batch, grid_points=G)
  tol = 1e-6 * scale(batch)
  assert np.all(np.abs(np.asarray(v) - np.asarray(vr)) <= tol)
  np.testing.assert_array_equal(np.asarray(x), np.asarray(xr))
  # P(argmax) equals the returned value, and the value is the true maximum (the grid bound at G = 1025, degree 6)
  px = np.polynomial.polynomial.polyval(np.asarray(x, np.float64), batch.astype(np.float64).T).diagonal()
  assert np.all(np.abs(px - np.asarray(v)) <= tol)
  assert np.all(np.asarray(v) >= dense_max(batch) - 1e-5 * scale(batch))


def test_ties_and_edges(batch):
  v, x = polymax.maximize(batch[:6], impl="pallas", interpret=True, grid_points=G)
  assert x[0] == 0.0 and v[0] == 0.0
  assert x[1] == 0.0 and v[1] == pytest.approx(2.5)
  assert x[2] == pytest.approx(2 / 3, abs=1e-4)
  assert x[3] == 1.0
  assert x[4] == pytest.approx(0.25, abs=1e-3)  # -(x-1/4)^2 (x-3/4)^2: equal peaks at 1/4 and 3/4; smaller wins
  assert np.isfinite(np.asarray(v)).all()


@pytest.mark.parametrize("degree", [0, 1, 2])
def test_low_degrees(degree):
  rng = np.random.default_rng(degree)
  c = rng.standard_normal((5, degree + 1)).astype(np.float32)
  for impl in ("pallas", "xla"):
    v, x = polymax.maximize(c, impl=impl, interpret=True, grid_points=G)
    vr, xr = polymax.maximize_reference(c, grid_points=G)
    np.testing.assert_allclose(v, vr, atol=1e-6 * scale(c).max())
    np.testing.assert_array_equal(x, xr)


def test_near_tie_across_lanes_uses_merging_path():
  # Many tiny local maxima in one lane (a flat-topped noisy polynomial) force the exact merging fallback.
  rng = np.random.default_rng(3)
  c = np.zeros((8, 9), np.float32)
  c[:, 0] = 1.0
  c[:, 1:] = 1e-7 * rng.standard_normal((8, 8))
  for impl in ("pallas", "xla"):
    v, x = polymax.maximize(c, impl=impl, interpret=True, grid_points=G)
    vr, xr = polymax.maximize_reference(c, grid_points=G)
    np.testing.assert_allclose(v, vr, atol=1e-6 * scale(c).max())
    np.testing.assert_array_equal(x, xr)


def test_default_grid_and_shapes():
  c = np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)
  v, x = polymax.maximize(c)
  assert v.shape == x.shape == (2, 3)
  vr, xr = polymax.maximize_reference(c)
  np.testing.assert_allclose(v, vr, atol=1e-6 * scale(c).max())


@pytest.mark.parametrize("impl", ["pallas", "xla", "reference"])
def test_evaluate(impl):
  rng = np.random.default_rng(1)
  c = rng.standard_normal((13, 6)).astype(np.float32)
  xs = rng.uniform(0, 1, (13, 200)).astype(np.float32)
  got = polymax.evaluate(c, xs, impl=impl, interpret=True)
  want = np.stack([np.polynomial.polynomial.polyval(xs[b].astype(np.float64), c[b].astype(np.float64))
                   for b in range(13)])
  np.testing.assert_allclose(got, want, atol=1e-5 * scale(c).max())
  assert got.shape == (13, 200)


def test_rejects_bad_input():
  with pytest.raises(ValueError, match="coeffs must be finite"):
    polymax.maximize(np.array([[1.0, np.nan]], np.float32))
  with pytest.raises(ValueError, match="degree must be in"):
    polymax.maximize(np.zeros((1, 40), np.float32))
  with pytest.raises(ValueError, match="grid_points must be in"):
    polymax.maximize(np.zeros((1, 3), np.float32), grid_points=2)
  with pytest.raises(ValueError, match="impl must be"):
    polymax.maximize(np.zeros((1, 3), np.float32), impl="triton")


@pytest.mark.parametrize("platform,marker", [("cuda", "triton"), ("tpu", "tpu_custom_call")])
def test_lowers_for_accelerators(platform, marker):
  f = jax.jit(lambda c: polymax._maximize_padded(c, grid_points=4096, impl="pallas", platform=platform))
  text = f.trace(jax.ShapeDtypeStruct((64, 9), jnp.float32)).lower(lowering_platforms=(platform,)).as_text()
  assert marker in text
  g = jax.jit(lambda c, x: polymax._evaluate_padded(c, x, impl="pallas", platform=platform))
  text = g.trace(jax.ShapeDtypeStruct((64, 9), jnp.float32),
                 jax.ShapeDtypeStruct((64, 256), jnp.float32)).lower(lowering_platforms=(platform,)).as_text()
  assert marker in text
