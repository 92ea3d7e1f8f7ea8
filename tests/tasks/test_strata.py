"""Strata, the "harder" split and the answer table, each recomputed from its definition in plain Python/numpy."""
import math

import jax
import numpy as np
import pytest

from mesabench import models, tasks
from mesabench.tasks import polymax
from tests.tasks import reference


def _band_tops(n: int) -> list[int]:
  """Every band top t <= K of n, highest band first (the top of K's band is K), by Python integers."""
  big_k = reference.kmax_int(n)
  tops = [big_k]
  for q in range(big_k * big_k // n - 1, -1, -1):
    tops.append(math.isqrt((q + 1) * n - 1))
  return tops


def _best(n: int, cands: list[int]) -> int:
  """max residue among the candidates."""
  return max(c * c % n for c in cands)


@pytest.fixture(scope="module")
def mod8():
  task = tasks.make("ModSearch-v0", bits=8)
  return task, task.from_n(np.arange(1, 256))


def test_modsearch_strata_recomputed_from_the_heuristics(mod8):
  task, batch = mod8
  hard = np.asarray(batch.info["strata"]["hard"])
  for i, n in enumerate(range(1, 256)):
    r = reference.seed_loop(n)[1]
    isqrt = min(math.isqrt(n - 1), reference.kmax_int(n))
    want = isqrt * isqrt % n < r and _best(n, _band_tops(n)[:2]) < r
    assert hard[i] == want, n
  np.testing.assert_array_equal(np.asarray(batch.info["strata"]["easy"]), ~hard)


def test_modsearch_stratum_samples_are_distinct_members_and_outside_the_pool(mod8):
  task, batch = mod8
  members = set(np.asarray(batch.info["n"])[np.asarray(batch.info["strata"]["hard"])].tolist())
  got = task.sample(jax.random.key(3), len(members), stratum="hard")
  assert set(np.asarray(got.info["n"]).tolist()) == members  # all of them, each once
  with pytest.raises(ValueError, match="batch_size must be at most"):
    task.sample(jax.random.key(3), len(members) + 1, stratum="hard")
  pool = task.pool(jax.random.key(1), 100)
  out = task.sample_outside(jax.random.key(2), 40, pool, stratum="easy")
  n = np.asarray(out.info["n"])
  assert len(set(n.tolist())) == 40 and not set(n.tolist()) & set(np.asarray(pool.info["n"]).tolist())
  assert np.all(np.asarray(out.info["strata"]["easy"]))


@pytest.mark.slow
def test_modsearch_hard_is_harder_for_the_heuristics():
  task = tasks.make("ModSearch-v0", bits=12)
  for stratum_size in (512,):
    hard = task.sample(jax.random.key(0), stratum_size, stratum="hard")
    easy = task.sample(jax.random.key(1), stratum_size, stratum="easy")
    for rule in task.heuristic_rules():
      h = task.score(hard, task.heuristic(rule, hard.inputs))
      e = task.score(easy, task.heuristic(rule, easy.inputs))
      assert float(h["accuracy"].mean()) == 0.0 < float(e["accuracy"].mean()), rule
    h, e = (task.score(b, task.heuristic("isqrt", b.inputs))["loss"].mean() for b in (hard, easy))
    assert float(h) > 2 * float(e)


@pytest.mark.parametrize("bits", [1, 5, 10])
def test_table_bits_is_the_sum_over_every_n(bits):
  task = tasks.make("ModSearch-v0", bits=bits)
  want = sum(math.log2(reference.kmax_int(n) + 1) for n in range(1, 2**bits))
  assert task.table_bits() == pytest.approx(want, rel=1e-12)


def _grid_regret64(c, value, low, g):
  xs = np.arange(g) / (g - 1)
  best = np.polynomial.Polynomial(np.asarray(c, np.float64))(xs).max()
  return 0.0 if value == low else (value - best) / (value - low)


@pytest.fixture(scope="module")
def poly():
  return tasks.make("PolyMax-v0", degree=4, max_degree=5)


def test_polymax_strata_recomputed_from_the_grid(poly):
  batch = poly.sample(jax.random.key(0), 512)
  c = np.asarray(batch.info["coeffs"], np.float64)
  value, low = np.asarray(batch.targets["value"], np.float64), np.asarray(batch.info["min_value"], np.float64)
  x = np.asarray(batch.targets["x"])
  hard = np.asarray(batch.info["strata"]["hard"])
  checked = 0
  for i in range(batch.size):
    r = _grid_regret64(c[i], value[i], low[i], polymax.HARD_GRID_POINTS)
    if abs(r - polymax.HARD_GRID_REGRET) < 1e-4:
      continue  # too close to the threshold for float32 values
    assert hard[i] == (0 < x[i] < 1 and r > polymax.HARD_GRID_REGRET), i
    checked += 1
  assert checked > 500 and 0.05 < hard.mean() < 0.3
  np.testing.assert_array_equal(np.asarray(batch.info["strata"]["easy"]), ~hard)


@pytest.mark.slow
def test_polymax_stratum_samples_are_distinct_and_hard_is_harder(poly):
  hard = poly.sample(jax.random.key(1), 256, stratum="hard")
  easy = poly.sample(jax.random.key(2), 256, stratum="easy")
  assert np.all(np.asarray(hard.info["strata"]["hard"])) and np.all(np.asarray(easy.info["strata"]["easy"]))
  assert len({tuple(r) for r in np.asarray(hard.info["coeffs"]).tolist()}) == 256
  for rule in ("quadratic", "cubic"):
    h, e = (poly.score(b, poly.heuristic(rule, b.inputs, {})) for b in (hard, easy))
    assert float(h["regret"].mean()) > float(e["regret"].mean()) and float(h["hit"].mean()) < float(e["hit"].mean())
  for g in (2, 4, 8):
    h, e = (poly.score(b, poly.search("grid", g, b.inputs))["loss"].mean() for b in (hard, easy))
    assert float(h) > float(e), g
  pool = poly.pool(jax.random.key(3), 64)
  out = poly.sample_outside(jax.random.key(4), 32, pool, stratum="hard")
  rows = {tuple(r) for r in np.asarray(pool.info["coeffs"]).tolist()}
  assert not rows & {tuple(r) for r in np.asarray(out.info["coeffs"]).tolist()}


def test_polymax_harder_split_is_recomputable_and_answerable(poly):
  harder = poly.larger()
  assert harder.spec == poly.spec and harder.degree == poly.degree
  batch = harder.sample(jax.random.key(5), 64)
  c = np.asarray(batch.info["coeffs"], np.float64)
  np.testing.assert_array_equal(c[:, 5], 0.0)
  for i in range(64):
    r = _grid_regret64(c[i], float(batch.targets["value"][i]), float(batch.info["min_value"][i]),
                       polymax.HARDER_GRID_POINTS)
    assert r > polymax.HARDER_GRID_REGRET - 1e-4 and 0 < float(batch.targets["x"][i]) < 1


def test_larger_applicability():
  mod = tasks.make("ModSearch-v0", bits=6, width=8)
  assert mod.larger_requires_shared_weights()
  verdict = {m: models.base.answers_larger(models.make(m, mod.spec), mod)
             for m in ("mlp", "looped", "transformer", "memory", "lookup", "search")}
  assert verdict == {"mlp": False, "looped": False, "transformer": True, "memory": True, "lookup": True,
                     "search": True}
  assert not models.base.answers_larger(models.make("transformer", mod.spec), tasks.make("ModSearch-v0", bits=8))
  poly = tasks.make("PolyMax-v0", degree=3)
  assert not poly.larger_requires_shared_weights()
  assert models.base.answers_larger(models.make("mlp", poly.spec), poly)
