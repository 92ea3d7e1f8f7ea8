"""The two engines compute the same map as a dense float64 reference, on random sparse stacks and Mul layers."""
import jax
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mesabench.models.compiled import ir
from mesabench.models.compiled import jax_engine
from mesabench.models.compiled import modsearch as ms
from mesabench.models.compiled import numpy_engine
from mesabench.models.compiled.ir import Expr


def random_stack(seed: int):
  """Three layers: an affine ReLU layer with integer weights, a Mul layer (products and copies), a linear read-out."""
  rng = np.random.default_rng(seed)
  k = int(rng.integers(1, 6))

  def l1(lb):
    terms = [("x", rng.integers(0, 4, k), rng.integers(-3, 4, k)) for _ in range(3)]
    lb.add("a", Expr(k, terms, rng.integers(-5, 6, k)), "")
    lb.carry("x")

  def l2(mb):
    mb.product("p", ("a", rng.integers(0, k, k)), ("x", rng.integers(0, 4, k)), "")
    mb.carry("a")

  def l3(lb):
    lb.add("o", Expr(2, [("p", rng.integers(0, k, 2), rng.integers(-3, 4, 2)),
                         ("a", rng.integers(0, k, 2), rng.integers(-3, 4, 2))], 1.0), "")
  layers, params, _ = ir.build_stack({"x": (0, 4)}, [l1, ir.mul_step(l2), l3])
  layers[-1] = ir.Layer(**{**layers[-1].__dict__, "relu": False})
  return layers, params


def dense_reference(layers, params, x):
  for layer, p in zip(layers, params):
    if layer.is_mul:
      ext = np.concatenate([x, np.ones((1, x.shape[1]))])
      x = ext[layer.left] * ext[np.where(layer.right < 0, layer.in_dim, layer.right)]
      continue
    a = np.zeros((layer.out_dim, layer.in_dim))
    np.add.at(a, (layer.rows, layer.cols), p["w"])
    x = a @ x + p["b"][:, None]
    x = np.maximum(x, 0) if layer.relu else x
  return x


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_engines_equal_the_dense_reference(seed):
  layers, params = random_stack(seed)
  x = np.random.default_rng(seed + 1).integers(-20, 21, (4, 7)).astype(np.float64)
  expected = dense_reference(layers, params, x)
  np.testing.assert_array_equal(numpy_engine.forward(layers, params, x, chunk=3), expected)
  np.testing.assert_array_equal(numpy_engine.trace(layers, params, x)[-1], expected)
  with jax.enable_x64(True):
    out = jax_engine.stack_forward(layers, jax.tree_util.tree_map(jax.numpy.asarray, params), jax.numpy.asarray(x))
  np.testing.assert_array_equal(np.asarray(out), expected)


def test_jax_and_numpy_engines_agree_on_one_pass_nets():
  n = np.arange(1, 65)
  for arch in ("wide", "banded"):
    net = ms.modsearch_net(arch, 64)
    assert np.array_equal(net.apply(n, engine="jax"), net.apply(n, engine="numpy"))


def test_numpy_engine_copies_identity_units_only_for_non_negative_inputs():
  def carry(lb):
    lb.carry("x")
  layers, params, _ = ir.build_stack({"x": (0, 2)}, [carry])
  x = np.asarray([[-3.0], [2.0]])
  np.testing.assert_array_equal(numpy_engine.forward(layers, params, x), [[0.0], [2.0]])  # relu applied
  np.testing.assert_array_equal(numpy_engine.forward(layers, params, np.abs(x), input_nonneg=True), [[3.0], [2.0]])
