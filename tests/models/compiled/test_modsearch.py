"""The compiled ModSearch networks equal the seed's loop (tracr-style: the compiled model equals the program), are
affine-then-ReLU only, keep the validator's rules, and count their sizes exactly."""
import jax
import numpy as np
import pytest

from mesabench.kernels import modsearch as kernel
from mesabench.models import costs
from mesabench.models.compiled import analysis
from mesabench.models.compiled import jax_engine
from mesabench.models.compiled import numpy_engine
from mesabench.models.compiled import validate
from mesabench.models.compiled import modsearch as ms
from tests.models.compiled.reference import python_loop

N_ALL = 20_000
SMALL = N_ALL  # n_max of the networks checked on every n <= 20,000


@pytest.fixture(scope="module")
def expected_all():
  """k for every n in 1..20,000: the exact int32 reference, itself checked against the Python loop on a subset."""
  n = np.arange(1, N_ALL + 1)
  k = np.asarray(kernel.search_reference(n.astype(np.int32), "banded")[0]).astype(np.int64)
  subset = list(range(1, 400)) + list(range(400, N_ALL + 1, 97)) + [N_ALL]
  assert [int(k[v - 1]) for v in subset] == [python_loop(v) for v in subset]
  return n, k


@pytest.fixture(scope="module")
def nets():
  return {arch: ms.modsearch_net(arch, SMALL) for arch in ms.ARCHS}


@pytest.mark.parametrize("arch", ms.ARCHS)
def test_equals_the_loop_for_every_n_up_to_20000(arch, nets, expected_all):
  n, expected = expected_all
  k, r = nets[arch].apply_with_residue(n)
  assert np.array_equal(k, expected)
  assert np.array_equal(r, (k * k) % n)


@pytest.mark.parametrize("arch,n_max,count", [("recurrent", 2**30, 4), ("unrolled", 2**16, 64),
                                              ("wide", 2**20, 64), ("banded", 2**30, 32)])
def test_equals_the_loop_at_random_n_up_to_n_max(arch, n_max, count):
  rng = np.random.default_rng(5)
  # Random n over the whole range (log-uniform and uniform), the top edge, and a perfect 10th power.
  n = np.concatenate([rng.integers(1, n_max + 1, count // 2),
                      np.exp2(rng.uniform(0, np.log2(n_max), count - count // 2)).astype(np.int64),
                      [n_max, 1024, 1]])
  n = np.clip(n, 1, n_max)
  net = ms.modsearch_net(arch, n_max)
  expected = np.asarray(kernel.search_reference(n.astype(np.int32), "banded")[0])
  assert np.array_equal(net.apply(n), expected)
  small = n[n <= 3 * 10**5][:4]
  assert [int(v) for v in net.apply(small)] == [python_loop(int(v)) for v in small]


def test_edge_n_is_2_pow_30_in_float64():
  # K(2**30) = 2**21 exactly; the banded net's largest pre-activations exceed 2**42 there, beyond float32.
  net = ms.modsearch_net("banded", 2**30)
  n = np.asarray([2**30, 2**30 - 1, 2**30 - 2])
  expected = np.asarray(kernel.search_reference(n.astype(np.int32), "brute")[0])
  assert np.array_equal(net.apply(n), expected)
  x = net.inputs(n)
  acts = numpy_engine.trace(net.layers, net.params, x)
  assert validate.activation_violations(net.layers, net.params, net.contract, x, acts) == []
  assert max(float(np.max(np.abs(a))) for a in acts) >= 2**42


@pytest.mark.parametrize("arch", ms.ARCHS)
def test_forward_contains_only_affine_and_relu_primitives(arch):
  net = ms.modsearch_net(arch, 256)
  x = net.inputs(np.arange(1, 9))
  with jax.enable_x64(True):
    jaxpr = jax.make_jaxpr(lambda p, x: net.forward(p, x, steps=8))(net.params, x)
  prims = analysis.primitives(jaxpr)
  assert prims <= jax_engine.ALLOWED_PRIMITIVES, prims - jax_engine.ALLOWED_PRIMITIVES
  assert validate.primitive_violations(prims) == []
  assert not prims & {"lt", "gt", "ge", "le", "eq", "select_n", "floor", "div", "rem", "while", "cond"}
  # Every layer is affine (then ReLU): only the read-out may skip the ReLU, and every weight is an integer.
  for layer, p in zip(net.layers, net.params["cell"] if arch in ("recurrent", "unrolled") else net.params):
    assert layer.relu
    assert np.all(np.asarray(p["w"]) == np.round(p["w"])) and np.all(np.asarray(p["b"]) == np.round(p["b"]))


@pytest.mark.parametrize("arch", ms.ARCHS)
def test_sizes_agree_with_costs_and_structure(arch):
  for n_max in (16, 1000, 2**12):
    net = ms.modsearch_net(arch, n_max)
    counted = ms.size_counts(arch, n_max)
    assert net.num_params == costs.param_count(net.params) == counted["num_params"]
    assert net.num_connections == counted["num_connections"]
    assert counted["num_connections"] == sum(int(np.count_nonzero(w)) for w in jax.tree_util.tree_leaves(
        jax.tree_util.tree_map(lambda a: a, [p["w"] for p in (
            [net.params["init"], *net.params["cell"], net.params["readout"]]
            if arch in ("recurrent", "unrolled") else net.params)])))
    assert net.depth == counted["depth"] and net.flops_per_query(n_max) == counted["flops_per_query"]
  rec = ms.modsearch_net("recurrent", 2**12)
  assert rec.flops_per_query(2**12) > rec.flops_per_query(100) > 0


def test_a_wrong_weight_is_caught():
  net = ms.modsearch_net("banded", 2**12)
  n = np.arange(1, 2**12 + 1)
  good = net.apply(n)
  layer = next(i for i, l in enumerate(net.layers) if any(g.name == "c" for g in l.groups))
  net.params[layer]["b"] = net.params[layer]["b"] + 1.0  # every digit test answers "yes"
  assert not np.array_equal(net.apply(n), good)


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match="arch"):
    ms.modsearch_net("transformer", 64)
  with pytest.raises(ValueError, match="n_max"):
    ms.modsearch_net("wide", 2**31)
  with pytest.raises(ValueError, match="n_max"):
    ms.modsearch_net("wide", 3)
  net = ms.modsearch_net("banded", 64)
  with pytest.raises(ValueError, match="n"):
    net.apply(np.asarray([65]))
  with pytest.raises(ValueError, match="n"):
    net.apply(np.asarray([0]))
  with pytest.raises(ValueError, match="engine"):
    net.apply(np.asarray([5]), engine="gpu")


@pytest.mark.parametrize("arch", ms.ARCHS)
def test_every_arch_keeps_the_validator_rules(arch):
  """No violation, static or on the activations of every n <= 300 and the top edge (n = n_max)."""
  net = ms.modsearch_net(arch, 300)
  assert net.violations(np.arange(1, 301)) == []
  # Every select is gated: the big-M weight M occurs only on gate entries, and there are gates in every arch.
  layers = net.layers + ([net.init_layer, net.readout_layer] if arch in ("recurrent", "unrolled") else [])
  assert any(l.gates is not None and l.gates.any() for l in layers)


@pytest.mark.parametrize("arch,n_max,max_steps", [("banded", 2**30, None), ("wide", 2**20, None),
                                                  ("unrolled", 2**14, None), ("recurrent", 2**30, 2000)])
def test_keeps_the_rules_at_the_top_of_its_range(arch, n_max, max_steps):
  """Static rules, and the activation rules (exact integers, partial sums below 2**52, 0/1 gates) at the largest
  n, where values are largest (the recurrent net: its first 2,000 of 2**21 cells)."""
  net = ms.modsearch_net(arch, n_max)
  assert net.violations(np.asarray([n_max, n_max - 1, n_max // 2 + 123, 1]), max_steps=max_steps) == []
