"""The IR: expressions compile to the sparse weights a hand computation gives; selects are marked as gates."""
import numpy as np
import pytest

from mesabench.models.compiled import ir
from mesabench.models.compiled.ir import Expr


def dense(layer, p):
  a = np.zeros((layer.out_dim, layer.in_dim))
  np.add.at(a, (layer.rows, layer.cols), p["w"])
  return a


def test_layer_builder_gives_the_hand_computed_matrix():
  prev = {"x": (0, 2), "y": (2, 1)}
  lb = ir.LayerBuilder(prev)
  lb.add("a", 2 * Expr.unit("x", 2) - Expr.unit("y", 2, [0, 0]) + 3, "2x - y + 3")
  lb.add("b", Expr.unit("x", 1, [1]) + Expr.unit("x", 1, [1]) - Expr.unit("x", 1, [0]) * 0, "x1 + x1 (duplicates summed)")
  lb.carry("y")
  layer, p, layout = lb.build()
  assert layout == {"a": (0, 2), "b": (2, 1), "y": (3, 1)}
  np.testing.assert_array_equal(dense(layer, p), [[2, 0, -1], [0, 2, -1], [0, 2, 0], [0, 0, 1]])
  np.testing.assert_array_equal(p["b"], [3, 3, 0, 0])
  assert layer.num_connections == 6 and layer.gates is None  # the zero coefficient was dropped
  assert layer.unit_names() == ["a[0]", "a[1]", "b", "y"]
  assert np.all(np.diff(layer.rows) >= 0)


def test_select_is_a_marked_big_m_term():
  m = ir.big_m(10)
  assert m == 32.0 and ir.big_m(15) == 64.0  # the smallest power of two above 2 * bound + 1
  lb = ir.LayerBuilder({"v": (0, 1), "g": (1, 1)})
  lb.add("on", ir.select(Expr.unit("v", 1), Expr.unit("g", 1), m), "v if g")
  lb.add("off", ir.select(Expr.unit("v", 1), Expr.unit("g", 1), m, keep_when=0), "v if not g")
  layer, p, _ = lb.build()
  np.testing.assert_array_equal(dense(layer, p), [[1, m], [1, -m]])
  np.testing.assert_array_equal(p["b"], [-m, 0])
  np.testing.assert_array_equal(layer.gates, [False, True, False, True])
  for v in range(11):  # relu of the select is v where the gate says so, else 0
    for g in (0, 1):
      out = np.maximum(dense(layer, p) @ [v, g] + p["b"], 0)
      np.testing.assert_array_equal(out, [v * g, v * (1 - g)])
  with pytest.raises(ValueError, match="keep_when"):
    ir.select(Expr.unit("v", 1), Expr.unit("g", 1), m, keep_when=2)


def test_mul_builder_and_errors():
  mb = ir.MulBuilder({"p": (0, 3), "q": (3, 2)})
  mb.product("r", ("p", [0, 2]), ("q", [1, 0]), "p0 q1, p2 q0")
  mb.carry("q")
  layer, _, _ = mb.build()
  assert layer.is_mul and layer.num_mul_units == 2 and layer.num_connections == 0
  np.testing.assert_array_equal(layer.left, [0, 2, 3, 4])
  np.testing.assert_array_equal(layer.right, [4, 3, -1, -1])
  with pytest.raises(IndexError):
    mb.index("p", 3)
  with pytest.raises(KeyError):
    mb.index("z", 0)
  lb = ir.LayerBuilder({"x": (0, 2)})
  lb.add("a", Expr.unit("x", 2), "")
  with pytest.raises(ValueError, match="twice"):
    lb.add("a", Expr.unit("x", 2), "")
  lb.add("b", Expr.unit("z", 1), "")
  with pytest.raises(KeyError):
    lb.build()
  with pytest.raises(ValueError, match="cannot add"):
    Expr.unit("x", 2) + Expr.unit("x", 1)


def test_counts_only_stack_keeps_sizes():
  def step(lb):
    lb.add("a", Expr.unit("x", 3) * 2 + 1, "")
  full, params, _ = ir.build_stack({"x": (0, 3)}, [step])
  counted, none, _ = ir.build_stack({"x": (0, 3)}, [step], counts_only=True)
  assert none == [None] and counted[0].num_connections == full[0].num_connections == 3
  assert counted[0].rows.size == 0 and params[0]["w"].size == 3
