"""The zoo's ground truth (memorizers, heuristics, searchers) against independent brute force, and
``equivalent_budget`` on hand-computed cases."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mesabench import models, tasks
from mesabench.models import searchers
from mesabench.tasks import modsearch, polymax
from tests.tasks import reference


@pytest.fixture(scope="module")
def mod():
  return tasks.make("ModSearch-v0", bits=9, width=10)


@pytest.fixture(scope="module")
def poly():
  return tasks.make("PolyMax-v0", degree=4, max_degree=5)


def _fitted(model, pool):
  return model.fit(model.init(jax.random.key(0)), pool.inputs, pool.targets)


# ------------------------------------------------------------------------------------------------- memorizers


def test_lookup_instance_is_the_numeric_nearest_neighbour(mod):
  pool = mod.pool(jax.random.key(0), 40)
  batch = mod.sample(jax.random.key(1), 200)
  model = models.make("lookup_instance", mod.spec)
  got = np.asarray(model.predict(_fitted(model, pool), batch.inputs))
  pn, pk = np.asarray(pool.info["n"]).tolist(), np.asarray(pool.targets["k"]).tolist()
  for n, k in zip(np.asarray(batch.info["n"]).tolist(), got.tolist()):
    j = min(range(len(pn)), key=lambda i: (abs(n - pn[i]), i))  # ties to the earliest row
    assert k == pk[j]
  assert models.make("lookup_instance", mod.spec).param_count(_fitted(model, pool)) == 40 + 40


def test_lookup_instance_is_the_coefficient_l2_nearest_neighbour():
  task = tasks.make("PolyMax-v0", degree=3, encoding="binary")  # decoded, not bit-Hamming
  pool = task.pool(jax.random.key(0), 300)  # more than one query block
  batch = task.sample(jax.random.key(1), 130)
  model = models.make("lookup_instance", task.spec)
  got = np.asarray(model.predict(_fitted(model, pool), batch.inputs))
  pc, px = np.asarray(pool.info["coeffs"], np.float64), np.asarray(pool.targets["x"])
  for c, x in zip(np.asarray(batch.info["coeffs"], np.float64), got):
    d = [float(np.sum((c - p) ** 2)) for p in pc]
    assert x == px[int(np.argmin(d))]


# ------------------------------------------------------------------------------------------------- heuristics


def test_modsearch_heuristics_against_python(mod):
  n = np.arange(1, 512)
  batch = mod.from_n(n)
  isqrt = np.asarray(models.make("heuristic", mod.spec, rule="isqrt").predict({}, batch.inputs))
  top = np.asarray(models.make("heuristic", mod.spec, rule="top_band").predict({}, batch.inputs))
  for i, m in enumerate(n.tolist()):
    big_k = reference.kmax_int(m)
    assert isqrt[i] == min(math.isqrt(m - 1), big_k)
    # the largest k <= K that is the top of a complete band: (k + 1)**2 >= (q + 1) n with q = k*k // n
    complete = [k for k in range(big_k + 1) if (k + 1) ** 2 >= (k * k // m + 1) * m]
    assert top[i] == (complete[-1] if complete else big_k), m


def test_ridge_matches_numpy_lstsq(poly):
  pool = poly.pool(jax.random.key(2), 256)
  model = models.make("heuristic", poly.spec, rule="ridge")
  params = jax.jit(jax.vmap(lambda x, y: model.fit(model.init(None), x, y)))(pool.inputs[None],
                                                                            jax.tree_util.tree_map(lambda a: a[None],
                                                                                                   pool.targets))
  w = np.asarray(params["w"][0], np.float64)
  f = np.concatenate([np.ones((256, 1)), np.asarray(pool.info["coeffs"], np.float64)], axis=1)
  lam = np.sqrt(polymax.RIDGE_PENALTY) * np.eye(f.shape[1])[1:]
  want = np.linalg.lstsq(np.concatenate([f, lam]), np.concatenate([np.asarray(pool.targets["x"]),
                                                                  np.zeros(f.shape[1] - 1)]), rcond=None)[0]
  np.testing.assert_allclose(w, want, atol=2e-3 * max(1.0, np.abs(want).max()))
  batch = poly.sample(jax.random.key(3), 64)
  np.testing.assert_allclose(np.asarray(model.predict({"w": params["w"][0]}, batch.inputs)),
                             np.clip(np.concatenate([np.ones((64, 1)), np.asarray(batch.info["coeffs"])], 1) @ want,
                                     0, 1), atol=2e-3)
  assert model.param_count(model.init(None)) == poly.max_degree + 2


@pytest.mark.parametrize("rule,degree", [("quadratic", 2), ("cubic", 3)])
def test_projection_rules_against_a_dense_least_squares_fit(poly, rule, degree):
  batch = poly.sample(jax.random.key(4), 48)
  got = np.asarray(models.make("heuristic", poly.spec, rule=rule).predict({}, batch.inputs))
  xs = np.linspace(0, 1, 20001)
  for c, x in zip(np.asarray(batch.info["coeffs"], np.float64), got):
    q = np.polynomial.Polynomial.fit(xs, np.polynomial.Polynomial(c)(xs), degree)  # ~ the L2 projection
    qv = q(xs)
    assert q(x) >= qv.max() - 1e-5 * max(1.0, np.abs(qv).max()), (c, x, xs[np.argmax(qv)])


# -------------------------------------------------------------------------------------------------- searchers


@pytest.mark.parametrize("budget", [1, 3, 17, 600])
def test_modsearch_seed_search_is_the_truncated_seed_loop(mod, budget):
  n = np.array([1, 2, 7, 100, 255, 256, 389, 511])
  got = np.asarray(models.make("search", mod.spec, budget=budget, strategy="seed").predict({},
                                                                                          mod.from_n(n).inputs))
  for m, k in zip(n.tolist(), got.tolist()):
    best = 0
    for i in range(1, min(reference.kmax_int(m), budget) + 1):
      if i * i % m > best * best % m:
        best = i
    assert k == best, (m, budget)


@pytest.mark.parametrize("budget", [1, 2, 5, 40])
def test_modsearch_bands_search_is_the_best_of_the_highest_band_tops(mod, budget):
  n = np.arange(1, 512, 7)
  got = np.asarray(models.make("search", mod.spec, budget=budget, strategy="bands").predict({},
                                                                                           mod.from_n(n).inputs))
  for m, k in zip(n.tolist(), got.tolist()):
    big_k = reference.kmax_int(m)
    tops = [big_k] + [math.isqrt((q + 1) * m - 1) for q in range(big_k * big_k // m - 1, -1, -1)]
    tops = tops[:budget]
    best = max(t * t % m for t in tops)
    assert k == min(t for t in tops if t * t % m == best), (m, budget)


def test_modsearch_random_search_picks_the_best_of_its_candidates(mod):
  n = np.arange(1, 512, 5)
  batch = mod.from_n(n)
  got = np.asarray(models.make("search", mod.spec, budget=6, strategy="random").predict({}, batch.inputs))
  cands = np.asarray(modsearch.random_candidates(jnp.asarray(n, jnp.int32), 6, 0))
  for m, k, c in zip(n.tolist(), got.tolist(), cands.tolist()):
    assert all(0 <= ci <= reference.kmax_int(m) for ci in c)
    best = max(ci * ci % m for ci in c)
    assert k == min(ci for ci in c if ci * ci % m == best)
  again = np.asarray(models.make("search", mod.spec, budget=6, strategy="random").predict({}, batch.inputs[::-1]))
  np.testing.assert_array_equal(again, got[::-1])  # a function of the instance, not of its batch position
  all_k = modsearch.random_candidates(jnp.full((1,), 500, jnp.int32), 20000, 1)
  counts = np.bincount(np.asarray(all_k).ravel(), minlength=reference.kmax_int(500) + 1)
  assert counts.size == reference.kmax_int(500) + 1 and counts.min() > 0.5 * counts.mean()


@pytest.mark.parametrize("budget", [2, 3, 8, 33])
def test_polymax_grid_search_is_the_best_grid_point(poly, budget):
  batch = poly.sample(jax.random.key(5), 64)
  got = np.asarray(models.make("search", poly.spec, budget=budget, strategy="grid").predict({}, batch.inputs))
  xs = np.arange(budget) / (budget - 1)
  for c, x in zip(np.asarray(batch.info["coeffs"], np.float64), got):
    p = np.polynomial.Polynomial(c)
    assert np.min(np.abs(xs - x)) < 1e-7
    assert p(x) >= p(xs).max() - 1e-6 * max(1.0, np.abs(c).sum())


def test_polymax_random_search_is_the_best_of_its_points(poly):
  batch = poly.sample(jax.random.key(6), 32)
  got = np.asarray(models.make("search", poly.spec, budget=5, strategy="random").predict({}, batch.inputs))
  pts = np.asarray(poly.random_points(batch.info["coeffs"], 5, 0), np.float64)
  assert pts.shape == (32, 5) and pts.min() >= 0 and pts.max() < 1 and len(np.unique(pts)) == 160
  for c, x, xs in zip(np.asarray(batch.info["coeffs"], np.float64), got, pts):
    p = np.polynomial.Polynomial(c)
    assert np.min(np.abs(xs - x)) < 1e-7 and p(x) >= p(xs).max() - 1e-6 * max(1.0, np.abs(c).sum())


def test_search_default_is_the_full_algorithm_and_configs_are_checked(mod, poly):
  assert models.make("search", mod.spec).options == {"budget": mod.spec.num_classes - 1, "strategy": "seed"}
  assert models.make("search", poly.spec).options == {"budget": polymax._kernel.default_grid_points(5),
                                                    "strategy": "refined"}
  for spec, config, name in [(mod.spec, {"strategy": "grid"}, "strategy"), (poly.spec, {"strategy": "grid",
                                                                                         "budget": 1}, "budget"),
                             (mod.spec, {"rule": "cubic"}, "rule")]:
    with pytest.raises(ValueError, match=name):
      models.make("heuristic" if "rule" in config else "search", spec, **config)
  search = models.make("search", mod.spec, strategy="bands", budget=4)
  x = mod.sample(jax.random.key(0), 8).inputs
  one = models.make("search", mod.spec, strategy="bands", budget=1).flops_per_example({}, x)
  assert 3 * one < search.flops_per_example({}, x) <= 4.5 * one  # the loop body counted 4 times, not once


def test_ground_truth_records_build_models(mod, poly):
  for task in (mod, poly):
    gts = task.ground_truth()
    assert {g.kind for g in gts} == {"memorizer", "heuristic", "searcher"}
    for g in gts:
      model = models.make(g.model_id, task.spec, **g.config_dict)
      assert (g.budget is None) == (g.kind != "searcher")
      if g.budget is not None:
        assert model.options["budget"] == g.budget
    fam = task.search_family()
    assert set(fam.members()) <= set(gts) and list(fam.budgets) == sorted(fam.budgets)
  assert poly.search_family().strategy == "grid" and poly.search_family().budgets == (2, 3, 4, 8, 16, 32, 64)
  assert mod.search_family().strategy == "seed" and mod.search_family().budgets[-1] >= reference.kmax_int(511)


# ------------------------------------------------------------------------------------------ equivalent budget


def test_equivalent_budget_hand_computed():
  curve = {2: 1e-1, 4: 1e-3, 8: 1e-5}
  eb = searchers.equivalent_budget(curve, 1e-2)  # halfway in log loss between 2 and 4: sqrt(2 * 4)
  assert eb.relation == "=" and eb.budget == pytest.approx(math.sqrt(8))
  assert searchers.equivalent_budget(curve, 1e-3).budget == pytest.approx(4)
  assert searchers.equivalent_budget(curve, 1e-4).budget == pytest.approx(math.sqrt(32))
  assert (searchers.equivalent_budget(curve, 0.5).relation, searchers.equivalent_budget(curve, 0.5).budget) == ("<", 2)
  assert str(searchers.equivalent_budget(curve, 1e-9)) == "> 8"
  # first crossing of a non-monotone curve; exact zero losses sit at the floor
  bumpy = {1: 1.0, 2: 0.01, 4: 0.1, 8: 0.0}
  assert searchers.equivalent_budget(bumpy, 0.1).budget == pytest.approx(2 ** 0.5)
  assert searchers.equivalent_budget(bumpy, 0.0).budget == pytest.approx(8)
  with pytest.raises(ValueError, match="loss"):
    searchers.equivalent_budget(curve, float("nan"))
  with pytest.raises(ValueError, match="losses_by_budget"):
    searchers.equivalent_budget({}, 0.1)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1e-8, 1.0), min_size=2, max_size=6), st.floats(1e-9, 2.0))
def test_equivalent_budget_lands_on_the_curve(losses, loss):
  losses = sorted(losses, reverse=True)
  curve = {2**i: v for i, v in enumerate(losses)}
  eb = searchers.equivalent_budget(curve, loss)
  if eb.relation == "=":
    b = sorted(curve)
    j = max(i for i in range(len(b)) if b[i] <= eb.budget + 1e-9)
    if b[j] < eb.budget:
      lo, hi = b[j], b[j + 1]
      t = math.log(eb.budget / lo) / math.log(hi / lo)
      interp = math.exp((1 - t) * math.log(curve[lo]) + t * math.log(curve[hi]))
      assert interp == pytest.approx(loss, rel=1e-6)
  elif eb.relation == "<":
    assert loss > losses[0]
  else:
    assert loss < losses[-1]
