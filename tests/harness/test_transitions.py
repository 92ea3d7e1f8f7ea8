"""The transition finder on synthetic families with known answers, and on the zoo's lookup and search baselines."""
import math

import jax
import numpy as np
import pytest
from hypothesis import given, strategies as st

from mesabench.harness import transitions as tr

GRID = [16, 32, 64, 128, 256, 512, 1024, 2048]


def _family(kind, *, onset=200.0, noise=0.01, params=1000):
  """A synthetic Measure: unseen/seen losses as known functions of N, plus seeded noise (seed, N) -> same value."""
  calls = []

  def measure(pool_sizes, seeds):
    calls.append(list(pool_sizes))
    seen, unseen = [], []
    for n in pool_sizes:
      rng = [np.random.default_rng([int(s), int(n)]) for s in seeds]
      eps = np.array([r.normal(0, noise) for r in rng])
      if kind == "lookup":  # perfect on the pool, chance outside, forever
        seen.append(np.zeros(len(seeds)))
        unseen.append(np.full(len(seeds), 0.5) + eps)
      elif kind == "search":  # the same small loss everywhere
        seen.append(np.full(len(seeds), 0.02))
        unseen.append(np.full(len(seeds), 0.02) + abs(eps) / 10)
      else:  # memorizes below the onset, generalizes above it (a smooth logistic switch in log N)
        w = 1.0 / (1.0 + math.exp(-12.0 * (math.log2(n) - math.log2(onset))))
        seen.append(np.full(len(seeds), 0.02) + abs(eps) / 10)
        unseen.append(np.full(len(seeds), 0.02 + (1 - w) * 0.48) + abs(eps) / 10)
    seen, unseen = np.array(seen), np.array(unseen)
    acc_s, acc_u = 1.0 - seen, 1.0 - unseen
    return tr.Sweep(np.array(pool_sizes), seen, np.clip(unseen, 0, None), acc_s, acc_u, params, kind)

  measure.calls = calls
  return measure


def test_lookup_family_never_transitions():
  out = tr.find_transition(_family("lookup"), _family("lookup"), GRID, [0, 1, 2])
  assert out["n_star"] == math.inf and out["ci"] == [math.inf, math.inf]
  assert out["transition_probability"] == 0.0 and out["refined"] == []


def test_search_family_always_generalizes():
  out = tr.find_transition(_family("search"), _family("lookup"), GRID, [0, 1, 2])
  assert out["n_star"] == GRID[0] and out["ci"] == [GRID[0], GRID[0]]
  assert all(out["generalizes"])


def test_known_onset_is_bracketed_and_refined_by_bisection():
  measure = _family("switch", onset=300.0)
  out = tr.find_transition(measure, _family("lookup"), GRID, [0, 1, 2], refine_steps=3)
  assert out["refined"], out  # bisection measured sizes between grid points
  assert all(256 < n < 1024 for n in out["refined"])
  assert 256 < out["n_star"] <= 512
  assert out["ci"][0] <= out["n_star"] <= out["ci"][1]
  assert measure.calls[0] == GRID and all(len(c) == 1 for c in measure.calls[1:])


def test_n_star_is_reproducible_with_the_same_seeds():
  a = tr.find_transition(_family("switch", noise=0.05), _family("lookup"), GRID, [0, 1, 2], seed=3)
  b = tr.find_transition(_family("switch", noise=0.05), _family("lookup"), GRID, [0, 1, 2], seed=3)
  assert a["n_star"] == b["n_star"] and a["ci"] == b["ci"] and a["per_seed"] == b["per_seed"]
  np.testing.assert_array_equal(a["sweep"].unseen, b["sweep"].unseen)


@given(st.lists(st.booleans(), min_size=1, max_size=12))
def test_sustained_onset_is_the_start_of_the_final_run_of_trues(ok):
  sizes = [2**i for i in range(len(ok))]
  got = tr.sustained_onset(sizes, ok)
  if not ok[-1]:
    assert got == math.inf
  else:
    i = sizes.index(int(got))
    assert all(ok[i:]) and (i == 0 or not ok[i - 1])


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0.01, 1))
def test_generalizes_matches_its_definition(seen, unseen, lookup):
  c = tr.Criterion()
  f = c.floor_fraction * lookup
  expected = (unseen + f) <= 1.1 * (seen + f) and unseen <= 0.75 * lookup
  assert bool(tr.generalizes(seen, unseen, lookup, c)) == expected


def test_capacity_view_on_synthetic_sizes():
  sizes = np.array([16, 64, 256])
  def sweep(params, seen_acc, unseen_acc, seen, unseen):
    ones = np.ones((3, 2))
    return tr.Sweep(sizes, seen * ones, unseen * ones, np.array(seen_acc)[:, None] * ones,
                    np.array(unseen_acc)[:, None] * ones, params, "")
  small = sweep(100, [0.5, 0.2, 0.1], [0.05, 0.05, 0.05], 0.48, 0.5)  # ratio 1.04: no gap
  big = sweep(10000, [1.0, 1.0, 1.0], [0.05, 0.05, 0.05], np.array([[0.0], [0.0], [0.0]]), 0.5)
  lookup = sweep(1, [1, 1, 1], [0, 0, 0], 0.0, 0.5)
  cap = tr.capacity([small, big], lookup, answer_bits=6.0)
  assert cap["gap_opens_at_params"] == {16: 10000, 64: 10000, 256: 10000}
  assert cap["bits_per_param"][0][0] == pytest.approx(16 * 0.45 * 6 / 100)
  assert cap["argmax_pool_size"][1] == 256
  assert cap["max_bits_per_param"][1] == pytest.approx(256 * 0.95 * 6 / 10000)


def test_bad_input_raises_naming_the_parameter():
  with pytest.raises(ValueError, match="gap_tolerance"):
    tr.Criterion(gap_tolerance=0)
  with pytest.raises(ValueError, match="margin"):
    tr.Criterion(margin=1.0)
  with pytest.raises(ValueError, match="pool_sizes"):
    tr.Sweep([4, 2], np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)))
  with pytest.raises(ValueError, match="unseen"):
    tr.Sweep([2, 4], np.zeros((2, 1)), np.zeros((2, 2)), np.zeros((2, 1)), np.zeros((2, 1)))
  with pytest.raises(ValueError, match="refine_steps"):
    tr.find_transition(_family("search"), _family("lookup"), GRID, [0], refine_steps=-1)
  with pytest.raises(ValueError, match="lookup"):
    a = _family("search")([16, 32], [0])
    tr.n_star(a, _family("lookup")([16, 64], [0]))


def test_phase_diagram_png_is_written(tmp_path):
  sizes = [16, 64, 256]
  sweeps = [_family("switch", onset=60.0, params=p)(sizes, [0, 1]) for p in (100, 1000)]
  lookup = _family("lookup")(sizes, [0, 1])
  stars = [tr.n_star(s, lookup) for s in sweeps] + []
  stars[1] = {"n_star": math.inf, "ci": [math.inf, math.inf]}
  path = tr.plot_phase_diagram(str(tmp_path / "p.png"), sweeps, lookup, stars, title="t")
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_zoo_lookup_never_transitions_and_search_always_generalizes_through_the_harness():
  import mesabench.models as models
  import mesabench.tasks as tasks
  from mesabench.harness import train

  task = tasks.make("ModSearch-v0", bits=8)
  cfg = train.TrainConfig(steps=0, eval_size=64, curve_points=1)
  lookup = tr.cached_measure(tr.harness_measure(task, models.make("lookup", task.spec), cfg, label="lookup"))
  search = tr.harness_measure(task, models.make("search", task.spec), cfg, label="search")
  sizes, seeds = [16], [0, 1]
  mem = tr.find_transition(lookup, lookup, sizes, seeds)
  gen = tr.find_transition(search, lookup, sizes, seeds)
  assert mem["n_star"] == math.inf and gen["n_star"] == 16
  np.testing.assert_array_equal(mem["sweep"].seen, 0.0)  # a lookup table is exact on its pool
  again = tr.find_transition(search, lookup, sizes, seeds)
  assert again["n_star"] == gen["n_star"] and again["ci"] == gen["ci"]
  entries = tr.leaderboard_entries(task, models.make("search", task.spec), cfg, search.calls[:1], seeds)
  assert [e["pool_size"] for e in entries] == sizes


def test_answer_bits_and_success_metric_per_task():
  from mesabench import tasks
  mod = tasks.make("ModSearch-v0", bits=6)
  want = np.mean(np.log2(np.asarray(mod.sample(jax.random.key(0), 256).info["kmax"], np.float64) + 1))
  assert abs(tr.answer_bits(mod, size=256) - want) < 1e-9
  assert abs(tr.answer_bits(tasks.make("PolyMax-v0", degree=3)) - np.log2(500.0)) < 1e-9
  # PolyMax results carry "hit" where ModSearch results carry "accuracy"; the sweep reads whichever is there.
  results = [{"compute": {"params": 7}, "splits": {"pool": {"loss": 0.1, "hit": h}, "heldout": {"loss": 0.2,
                                                                                                  "hit": h / 2}}}
             for h in (0.5, 1.0)]
  sweep = tr.sweep_from_results(results, [16], [0, 1])
  np.testing.assert_allclose(sweep.seen_accuracy, [[0.5, 1.0]])
  np.testing.assert_allclose(sweep.unseen_accuracy, [[0.25, 0.5]])
