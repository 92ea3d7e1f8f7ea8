"""The linear self-attention layer (models.lsa): its update equals the explicit attention sum, and the GD
construction's prediction equals one gradient-descent step exactly (float64)."""
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings, strategies as st

from mesabench.models import lsa
from mesabench.tasks import linreg


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 12), d=st.integers(1, 8), eta=st.floats(0.01, 20.0))
def test_gd_construction_is_one_gd_step_exactly(seed, n, d, eta):
  with jax.enable_x64(True):
    t = linreg.sample_uniform_tasks(jax.random.key(seed), 16, d, n)
    x, y, xq = (np.asarray(a, np.float64) for a in (t.x, t.y, t.x_query))
    tokens = linreg.query_tokens(jnp.asarray(x), jnp.asarray(y), jnp.asarray(xq))
    params = lsa.gd_params(d, n, eta, dtype=jnp.float64)
    pred = np.asarray(lsa.predict(params, tokens))
    assert pred.dtype == np.float64
    kq, pv = (np.asarray(a) for a in lsa.products(params))
  w1 = eta / n * np.einsum("bn,bnd->bd", y, x)  # one GD step from w = 0 on 1/(2n) sum (w.x - y)^2
  gd = np.einsum("bd,bd->b", w1, xq)
  np.testing.assert_allclose(pred, gd, rtol=1e-12, atol=1e-13)
  # the products are exactly the construction's
  np.testing.assert_array_equal(kq, np.diag([1.0] * d + [0.0]))
  np.testing.assert_allclose(pv, np.diag([0.0] * d + [-eta / n]), rtol=1e-15)


def test_update_equals_the_explicit_attention_sum():
  d, n = 3, 5
  params = {k: np.asarray(v, np.float64) for k, v in lsa.init(jax.random.key(1), d, init_scale=1.0).items()}
  tokens = np.asarray(jax.random.normal(jax.random.key(2), (2, n + 1, d + 1)), np.float64)
  with jax.enable_x64(True):
    out = np.asarray(lsa.apply({k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(tokens)))
  for b in range(2):
    for j in range(n + 1):
      q = tokens[b, j] @ params["query"]
      delta = np.zeros(d + 1)
      for i in range(n):  # keys and values: the context tokens only
        delta += (q @ (tokens[b, i] @ params["key"])) * (tokens[b, i] @ params["value"] @ params["proj"])
      np.testing.assert_allclose(out[b, j], tokens[b, j] + delta, rtol=1e-10, atol=1e-12)
    with jax.enable_x64(True):
      pred = np.asarray(lsa.predict({k: jnp.asarray(v) for k, v in params.items()}, jnp.asarray(tokens)))
    np.testing.assert_allclose(pred[b], -out[b, -1, -1], rtol=1e-10, atol=1e-12)


def test_function_depends_only_on_the_products():
  params = lsa.init(jax.random.key(3), 4, init_scale=1.0)
  tokens = jax.random.normal(jax.random.key(4), (3, 6, 5))
  scaled = {**params, "query": params["query"] * 4.0, "proj": params["proj"] / 4.0}
  np.testing.assert_allclose(np.asarray(lsa.predict(scaled, tokens)), np.asarray(lsa.predict(params, tokens)),
                             rtol=1e-4, atol=1e-6)
  assert set(params) == set(lsa.NAMES) and all(v.shape == (5, 5) for v in params.values())
  small = lsa.init(jax.random.key(5), 30)  # default init_scale 0.002: variance 0.002 / 31 per entry
  assert abs(float(jnp.var(small["key"])) / (0.002 / 31) - 1) < 0.15
