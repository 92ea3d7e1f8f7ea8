"""The compiled PolyMax network: equals its program, stays within its stated regret bound against the exact
oracle, shrinks the bound with G and with refinement as claimed, and uses only affine/ReLU layers and Mul units."""
import jax
import numpy as np
import pytest

from mesabench import tasks
from mesabench.models import costs
from mesabench.models.compiled import analysis
from mesabench.models.compiled import jax_engine
from mesabench.models.compiled import validate
from mesabench.models.compiled import modsearch as ms
from mesabench.models.compiled import polymax as pm
from mesabench.models.compiled import polymax_net
from mesabench.tasks import polymax as task_polymax

DEGREE = 6
BATCH = 512


def horner64(c, x):
  acc = np.zeros(np.shape(x))
  for j in range(c.shape[-1] - 1, -1, -1):
    acc = acc * x + c[..., j]
  return acc


@pytest.fixture(scope="module")
def problems():
  """Random degree-6 PolyMax-v0 instances, the oracle's (max, argmax), and the test's tolerance for the oracle:
  its value is within 1e-6 max(1, S) of the true maximum; twice that covers it with room for the float64
  evaluation of P here (error ~1e-13 S)."""
  batch = tasks.make("PolyMax-v0", degree=DEGREE).sample(jax.random.PRNGKey(3), BATCH)
  c = np.asarray(batch.info["coeffs"], np.float32)
  best, arg = (np.asarray(a, np.float64) for a in task_polymax.solve(c))
  c = c.astype(np.float64)
  tol = 2e-6 * np.maximum(1.0, np.abs(c).sum(-1))
  return c, best, arg, tol


@pytest.mark.parametrize("grid_points", [9, 33, 129])
def test_grid_regret_is_below_the_bound_for_every_row(grid_points, problems):
  c, best, _, tol = problems
  net = polymax_net(grid_points, DEGREE)
  x, value = net.apply_with_value(c)
  regret = best - horner64(c, x)
  bound = net.error_bound(c)
  assert np.all(regret <= bound + tol), float(np.max(regret - bound))
  assert np.all(regret >= -tol)  # nothing beats the maximum
  # The network's own value is P(x) up to eta; x is the first grid maximizer of the program.
  assert np.allclose(value, horner64(c, x), rtol=0, atol=1e-9)
  assert np.array_equal(x, pm.reference_program(c, grid_points))


def test_grid_bound_and_measured_regret_shrink_with_g(problems):
  c, best, _, _ = problems
  worst, bounds = [], []
  for g in (9, 33, 129):
    net = polymax_net(g, DEGREE)
    worst.append(float(np.max(best - horner64(c, net.apply(c)))))
    bounds.append(net.error_bound(c))
  # The bound is M2 h**2 / 8 + 2 eta: it falls by ((G2 - 1) / (G1 - 1))**2 = 16 per step of this grid.
  assert np.allclose(bounds[0] / bounds[1], 16.0, rtol=1e-6) and np.allclose(bounds[1] / bounds[2], 16.0, rtol=1e-6)
  # The measured worst regret falls too (quadratically for well-resolved peaks; at least 4x per step here).
  assert worst[0] > 4 * worst[1] > 16 * worst[2] > 0


@pytest.mark.parametrize("grid_points,refine_steps", [(9, 2), (17, 1)])
def test_refinement_bounds_against_the_oracle(grid_points, refine_steps, problems):
  c, best, arg, tol = problems
  net = polymax_net(grid_points, DEGREE, refine_steps, zoom=4)
  stages = net.stage_winners(c)
  x = net.apply(c)
  assert np.array_equal(stages[-1], x)
  assert np.array_equal(x, pm.reference_program(c, grid_points, refine_steps, zoom=4))
  regret = best - horner64(c, x)
  # (a) unconditional: the stage-0 bound holds for every row, and every stage keeps the previous winner.
  assert np.all(regret <= net.error_bound(c, 0) + tol)
  eta = pm.eta(DEGREE, np.abs(c).sum(-1), net.exponent)
  for r in range(1, refine_steps + 1):
    assert np.all(horner64(c, stages[r]) >= horner64(c, stages[r - 1]) - 2 * eta)
  # (b) the bound of the last stage whose window held the oracle's maximizer.
  last = np.zeros(len(c), np.int64)
  for r in range(1, refine_steps + 1):
    held = np.abs(arg - stages[r - 1]) <= net.spacing(r - 1)
    last = np.where(held, r, last)
  bound = np.choose(last, [net.error_bound(c, r) for r in range(refine_steps + 1)])
  assert np.all(regret <= bound + tol), float(np.max(regret - bound))
  assert np.mean(last == refine_steps) >= 0.8  # the refined claim is exercised on most rows
  # Refinement helps: the worst regret over rows whose maximizer stayed in the windows is below the grid's bound
  # divided by zoom**(2R) (up to the oracle's tolerance).
  final = last == refine_steps
  assert np.all(regret[final] <= net.error_bound(c, refine_steps)[final] + tol[final])


def test_special_polynomials():
  # Constant (all ties: x = 0), increasing (x = 1), decreasing (x = 0), symmetric twin peaks (exact tie in
  # exact arithmetic: either peak is right), and a degree-1 net.
  twin = -np.polynomial.polynomial.polyfromroots([0.25, 0.25, 0.75, 0.75])
  c = np.stack([[0.5, 0, 0, 0, 0], [0, 1, 0, 0, 0.5], [1, -1, 0, 0, 0], twin])
  for r in (0, 2):
    net = polymax_net(17, 4, r)
    x = net.apply(c)
    assert x[0] == 0.0 and x[1] == 1.0 and x[2] == 0.0
    assert min(abs(x[3] - 0.25), abs(x[3] - 0.75)) <= net.spacing(r)
    best = np.asarray(task_polymax.solve(c.astype(np.float32))[0], np.float64)
    assert np.all(best - horner64(c, x) <= net.error_bound(c) + 2e-6)
  assert polymax_net(5, 1, 1).apply(np.asarray([[0.3, -0.2]]))[0] == 0.0


def test_only_affine_relu_layers_and_named_mul_units():
  for r in (0, 1):
    net = polymax_net(9, 3, r)
    x, _ = net.inputs(np.asarray([[0.1, 0.5, -0.7, 0.2], [0.0, 1.0, 0.0, -1.0]]))
    with jax.enable_x64(True):
      jaxpr = jax.make_jaxpr(net.forward)(net.params, x)
    prims = analysis.primitives(jaxpr)
    assert prims <= jax_engine.ALLOWED_PRIMITIVES, prims - jax_engine.ALLOWED_PRIMITIVES
    assert validate.primitive_violations(prims) == [] and net.violations(x.T) == []
    assert not prims & {"lt", "gt", "ge", "le", "eq", "select_n", "floor", "div", "rem", "while", "cond", "scan"}
    for i, (layer, p) in enumerate(zip(net.layers, net.params)):
      if layer.is_mul:  # products of two activations or copies; no parameters
        assert r > 0 and np.size(p["w"]) == 0 and np.size(p["b"]) == 0 and layer.rows.size == 0
      else:  # affine, then ReLU except for the read-out
        assert layer.relu == (i < len(net.layers) - 1)
    assert (net.num_mul_units > 0) == (r > 0)
  for arch in ms.ARCHS:  # the ModSearch networks use no Mul units at all
    assert not any(l.is_mul for l in ms.modsearch_net(arch, 64).layers)


@pytest.mark.parametrize("grid_points,refine_steps", [(9, 0), (33, 2)])
def test_sizes_agree_with_costs(grid_points, refine_steps):
  d = DEGREE
  net = polymax_net(grid_points, d, refine_steps)
  assert net.num_params == costs.param_count(net.params)
  assert net.num_connections == sum(int(np.count_nonzero(p["w"])) for p in net.params)
  # Mul units per refinement: x_c**2..x_c**d and cp_j, cn_j times x_c**m for 1 <= m <= j <= d.
  assert net.num_mul_units == refine_steps * ((d - 1) + d * (d + 1))
  assert net.mul_flops_per_query() == net.num_mul_units
  affine = [l for l in net.layers if not l.is_mul]
  assert net.flops_per_query() == net.num_mul_units + sum(
      2 * l.num_connections + l.out_dim * (2 if l.relu else 1) for l in affine)
  assert net.depth == len(net.layers)
  # The grid layer alone holds G (d + 1) weights (x_g**0 = 1 included) and G biases.
  assert net.layers[0].num_connections >= grid_points * d


def test_engines_agree_and_a_wrong_weight_is_caught(problems):
  c = problems[0][:64]
  net = polymax_net(17, DEGREE, 1)
  x = net.apply(c)
  assert np.array_equal(net.apply(c, engine="jax"), x)
  b = net.params[0]["b"].copy()
  b[5] += 1.0  # grid point 5/16 scores P + 1
  net.params[0]["b"] = b
  wrong = net.apply(c)
  assert not np.array_equal(wrong, x) and np.mean(np.abs(wrong - 5 / 16) <= 1 / 16) > 0.3


def test_bad_arguments_raise():
  for kwargs, name in [(dict(grid_points=2, degree=3), "grid_points"), (dict(grid_points=9, degree=0), "degree"),
                       (dict(grid_points=9, degree=33), "degree"),
                       (dict(grid_points=9, degree=3, refine_steps=-1), "refine_steps"),
                       (dict(grid_points=9, degree=3, zoom=1), "zoom"),
                       (dict(grid_points=2**20, degree=3, refine_steps=16), "refine_steps"),
                       (dict(grid_points=9, degree=3, coeff_bound=0.0), "coeff_bound")]:
    with pytest.raises(ValueError, match=name):
      polymax_net(**kwargs)
  net = polymax_net(9, 3)
  with pytest.raises(ValueError, match="coeffs"):
    net.apply(np.zeros((2, 5)))
  with pytest.raises(ValueError, match="coeff_bound"):
    net.apply(np.full((1, 4), 100.0))
  with pytest.raises(ValueError, match="coeffs"):
    net.apply(np.asarray([[np.nan, 0, 0, 0]]))
  with pytest.raises(ValueError, match="engine"):
    net.apply(np.zeros((1, 4)), engine="gpu")
  with pytest.raises(ValueError, match="stage"):
    net.error_bound(np.zeros((1, 4)), stage=1)


def test_named_stages_cover_the_layers_in_order():
  net = polymax_net(9, 4, 2)
  assert [s.name for s in net.stages] == ["grid", "zoom 1", "zoom 2", "readout"]
  assert net.stages[0].first == 0 and net.stages[-1].end == len(net.layers)
  assert all(a.end == b.first for a, b in zip(net.stages, net.stages[1:]))
  # Each zoom stage opens with the clamp layer that holds the previous stage's winner in group "k", and holds
  # exactly ceil(log2 d) + 1 Mul layers.
  assert net.stage_layers == tuple(s.first for s in net.stages[1:3])
  for s in net.stages[1:3]:
    assert net.layers[s.first].group("k").count == 1
    assert sum(l.is_mul for l in net.layers[s.first:s.end]) == 3
  assert not any(l.is_mul for l in net.layers[:net.stages[0].end])
