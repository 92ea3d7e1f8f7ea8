"""mesabench.kernels.polymax: fused grid pass (interpret mode) and XLA path against the reference, a numpy statement
of the candidate rule, and float64."""
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


def numpy_segment_maxima(values, num):
  """The candidate rule of ``polymax.segment_maxima`` written out in numpy, one row at a time: [(index, value)]."""
  g = values.shape[-1]
  seg = -(-g // polymax.SEGMENTS)
  out = []
  for row in np.asarray(values, np.float32):
    padded = np.concatenate([[-np.inf], row, [-np.inf]])
    is_max = (row > padded[:-2]) & (row >= padded[2:])
    bests = []
    for t in range(polymax.SEGMENTS):
      idx = [i for i in range(t * seg, min((t + 1) * seg, g)) if is_max[i]]
      if idx:
        i = max(idx, key=lambda i: (row[i], -i))  # largest value, then the smallest index
        bests.append((i, row[i]))
    bests.sort(key=lambda e: (-e[1], e[0]))
    out.append(bests[:num])
  return out


def noisy_flat(rows, degree, seed):
  """P = 1 + 1e-7 * noise: float32 grid values full of ulp-level ties and spurious local maxima."""
  rng = np.random.default_rng(seed)
  c = np.zeros((rows, degree + 1), np.float32)
  c[:, 0] = 1.0
  c[:, 1:] = 1e-7 * rng.standard_normal((rows, degree))
  return c


def test_segment_maxima_rule_and_global_max_first():
  rng = np.random.default_rng(11)
  g, num = 1500, 6  # 1500 = 128 segments of 12 points, the last ones short or empty
  c = np.concatenate([rng.standard_normal((6, 9)), noisy_flat(4, 8, 1), np.zeros((1, 9))]).astype(np.float32)
  c[6, 0] = 1.0  # constant row: one local maximum, at x = 0
  values = polymax._grid_values(jnp.asarray(c), g)
  idx, valid = (np.asarray(a) for a in polymax.segment_maxima(values, num))
  for r, want in enumerate(numpy_segment_maxima(values, num)):
    assert valid[r].sum() == len(want)
    np.testing.assert_array_equal(idx[r][valid[r]], [i for i, _ in want])
    assert idx[r][0] == int(np.argmax(np.asarray(values)[r]))  # the grid's largest value (first index) leads


@pytest.mark.parametrize("impl", ["pallas", "xla"])
@pytest.mark.parametrize("g", [3, 100, 1025, 4097])
def test_grid_pass_picks_the_reference_indices(impl, g):
  # Random rows, noisy flat tops (many local maxima per segment, ulp-level ties) and a constant row; G below,
  # at and above the number of segments, and not a multiple of it. Several XLA blocks: ``test_xla_row_blocks``.
  c = np.concatenate([np.random.default_rng(g).standard_normal((10, 7)), noisy_flat(5, 6, g),
                      np.full((1, 7), 0.0)]).astype(np.float32)
  num = polymax.num_candidates(6)
  values = polymax._grid_values(jnp.asarray(c), g)
  want, want_ok = (np.asarray(a) for a in polymax.segment_maxima(values, num))
  got, ok = polymax._grid_pass(jnp.asarray(c), grid_points=g, num=num, impl=impl,
                               platform="interpret" if impl == "pallas" else "xla")
  got, ok = np.asarray(got), np.asarray(ok)
  np.testing.assert_array_equal(ok, want_ok)
  np.testing.assert_array_equal(np.where(ok, got, -1), np.where(want_ok, want, -1))


def test_xla_row_blocks(monkeypatch):
  # Many small blocks (one or two rows each) give the same answer as the reference.
  c = np.concatenate([np.random.default_rng(5).standard_normal((20, 9)), noisy_flat(12, 8, 5)]).astype(np.float32)
  for points in (1, 2 * polymax.SEGMENTS * (polymax.segment_length(G) + 2)):
    monkeypatch.setattr(polymax, "XLA_BLOCK_POINTS", points)
    assert polymax.xla_rows_block(64, G) == (1 if points == 1 else 2)
    jax.clear_caches()
    v, x = polymax.maximize(c, impl="xla", grid_points=G)
    vr, xr = polymax.maximize_reference(c, grid_points=G)
    np.testing.assert_array_equal(np.asarray(x), np.asarray(xr))
    np.testing.assert_allclose(v, vr, atol=1e-6 * scale(c).max())
  jax.clear_caches()


def test_noisy_flat_tops_match_reference():
  # Many tiny local maxima in one segment: only the segment's best is kept, in every implementation alike.
  c = noisy_flat(8, 8, 3)
  for impl in ("pallas", "xla"):
    v, x = polymax.maximize(c, impl=impl, interpret=True, grid_points=G)
    vr, xr = polymax.maximize_reference(c, grid_points=G)
    np.testing.assert_allclose(v, vr, atol=1e-6 * scale(c).max())
    np.testing.assert_array_equal(x, xr)
  assert np.all(np.asarray(vr) >= dense_max(c) - 1e-6 * scale(c))


def test_xla_working_memory_does_not_grow_with_the_batch():
  # XLA's own buffer accounting: the grid pass keeps one block's tile, so temp bytes grow by O(num) floats per
  # row, not by G floats as the reference's materialized grid does.
  g = 4096
  temp = {}
  for rows in (64, 1024):
    f = jax.jit(lambda c: polymax._maximize_padded(c, grid_points=g, impl="xla", platform="xla"))
    temp[rows] = f.lower(jax.ShapeDtypeStruct((rows, 9), jnp.float32)).compile().memory_analysis().temp_size_in_bytes
  assert temp[1024] - temp[64] <= (1024 - 64) * 4 * 64
  assert temp[64] <= 4 * 4 * polymax.XLA_BLOCK_POINTS + 4 * 64 * 64


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
  with pytest.raises(ValueError, match=r"grid_points must be an integer in \[3, "):
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
