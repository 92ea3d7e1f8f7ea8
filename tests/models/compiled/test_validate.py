"""The validator finds no violation in the compiled networks and finds every violation planted in them."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mesabench.models.compiled import analysis
from mesabench.models.compiled import modsearch as ms
from mesabench.models.compiled import numpy_engine
from mesabench.models.compiled import polymax as pm
from mesabench.models.compiled import validate


@pytest.fixture
def banded():
  """A fresh banded net (tests mutate it) and inputs including the top edge."""
  return ms.modsearch_net("banded", 4096), np.asarray([1, 2, 100, 1000, 4095, 4096])


def rules(violations):
  return sorted({v.rule for v in violations})


def first_layer_with_gates(net):
  return next(i for i, l in enumerate(net.layers) if l.gates is not None)


def test_clean_networks_have_no_violations(banded):
  net, n = banded
  assert net.violations(n) == []
  assert ms.modsearch_net("recurrent", 256).violations(np.asarray([1, 200, 256])) == []
  assert pm.polymax_net(9, 4, 2).violations(np.asarray([[0.1, -0.3, 0.2, 0.5, -1.0]])) == []


def test_a_hidden_layer_without_relu_is_found(banded):
  net, _ = banded
  net.layers[3] = dataclasses.replace(net.layers[3], relu=False)
  found = net.violations()
  assert [v.layer for v in found if v.rule == "affine_relu"] == [3]
  # Layer 3 computes the digit tests' step pairs: without its ReLU their 0/1 outputs are no longer proved.
  assert rules(found) == ["affine_relu", "big_m"] and min(v.layer for v in found if v.rule == "big_m") > 3


def test_a_mul_layer_is_found_where_only_affine_maps_are_allowed():
  net = pm.polymax_net(9, 3, 1)
  strict = dataclasses.replace(net.contract, allow_mul=False)
  found = validate.static_violations(net.layers, net.params, strict)
  mul_layers = [i for i, l in enumerate(net.layers) if l.is_mul]
  assert mul_layers and sorted({v.layer for v in found if v.rule == "affine_relu"}) == mul_layers


def test_non_integer_and_too_large_weights_are_found(banded):
  net, _ = banded
  net.params[2]["w"] = net.params[2]["w"].copy()
  net.params[2]["w"][0] += 0.5
  net.params[5]["b"] = net.params[5]["b"].copy()
  net.params[5]["b"][1] = 2.0**52
  found = net.violations()
  assert {(v.rule, v.layer) for v in found} >= {("integer_weights", 2), ("weight_range", 5)}
  assert all(v.layer in (2, 5) for v in found)


def test_a_big_m_select_on_a_unit_that_is_not_0_1_is_found(banded):
  net, n = banded
  li = first_layer_with_gates(net)
  layer = net.layers[li]
  prev = net.layers[li - 1]
  # Point a select at a unit that is not 0/1 (the carried input n), keeping everything else.
  target = prev.group("n").start
  cols = layer.cols.copy()
  e = int(np.flatnonzero(layer.gates)[0])
  cols[e] = target
  order = np.lexsort((cols, layer.rows))
  net.layers[li] = dataclasses.replace(layer, cols=cols[order], gates=layer.gates[order])
  net.params[li]["w"] = net.params[li]["w"][order]
  found = [v for v in net.violations(n) if v.rule == "big_m"]
  assert found and all(v.layer == li for v in found)
  assert any("not provably a 0/1 unit" in v.message for v in found)
  assert any("took the value" in v.message for v in found)  # and on the activations


def test_a_broken_step_is_no_longer_proved_0_1(banded):
  """Shift the bias of one unit of a step pair: relu(e + 2) - relu(e) is not 0/1, and the gate it feeds is found."""
  net, _ = banded
  li = first_layer_with_gates(net)
  gate_col = int(net.layers[li].cols[net.layers[li].gates][0])
  # The gate unit (layer li - 1) is relu(a1 - a2 + b1 - b2 - 1); a1 (layer li - 2) gets one more in its bias.
  a1 = net.layers[li - 2].group("a1").start + (gate_col - net.layers[li - 1].group("c").start)
  net.params[li - 2]["b"] = net.params[li - 2]["b"].copy()
  net.params[li - 2]["b"][a1] += 1
  found = net.violations()
  assert rules(found) == ["big_m"] and {v.layer for v in found} == {li}


def test_a_large_weight_that_is_not_a_select_is_found(banded):
  net, _ = banded
  li = first_layer_with_gates(net)
  net.layers[li] = dataclasses.replace(net.layers[li], gates=None)
  found = net.violations()
  assert rules(found) == ["big_m"] and all("not a select gate" in v.message for v in found)


def test_activations_beyond_the_exact_range_are_found(banded):
  net, _ = banded
  x = net.inputs(np.asarray([5, 6]))
  x[0] = 2.0**51  # an input no query produces: the first layer's sums leave the exact range
  acts = numpy_engine.trace(net.layers, net.params, x)
  found = validate.activation_violations(net.layers, net.params, net.contract, x, acts)
  assert "exact_range" in rules(found) and min(v.layer for v in found if v.rule == "exact_range") == 0
  x = net.inputs(np.asarray([5, 6])) + 0.5  # non-integer inputs
  acts = numpy_engine.trace(net.layers, net.params, x)
  assert "exact_range" in rules(validate.activation_violations(net.layers, net.params, net.contract, x, acts))


def test_structure_errors_are_found(banded):
  net, _ = banded
  net.params[4]["w"] = net.params[4]["w"][:-1]
  found = net.violations()
  assert [(v.rule, v.layer) for v in found] == [("structure", 4)]
  assert validate.static_violations(net.layers, net.params[:-1])[0].rule == "structure"


def test_forbidden_primitives_are_found():
  def cheat(x):
    return jnp.where(x > 0, x, 0.0)
  names = analysis.primitives(jax.make_jaxpr(cheat)(jnp.ones(3)))
  found = validate.primitive_violations(names)
  assert {v.rule for v in found} == {"primitive"} and any("compares" in v.message for v in found)


def test_the_recurrent_cell_is_checked_on_every_step():
  net = ms.modsearch_net("recurrent", 256)
  net.params["cell"][2]["b"] = net.params["cell"][2]["b"] + 0.25
  found = net.violations(np.asarray([200]))
  assert {v.stack for v in found} >= {"cell", "cell step 1"}
  assert {"integer_weights", "exact_range"} <= set(rules(found))
  assert str(found[0]).startswith("[")
