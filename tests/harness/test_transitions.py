"""Both transitions on synthetic families whose N*_gen and N*_search are known by construction, and the harness
adapters on the zoo's lookup and search baselines (stub detector: these tests do not depend on harness.detect)."""
import math
import os

import jax
import numpy as np
import pytest
from hypothesis import given, strategies as st

from mesabench import models
from mesabench import tasks
from mesabench.harness import train
from mesabench.harness import transitions as tr

GRID = [16, 32, 64, 128, 256, 512, 1024, 2048]
SEEDS = [0, 1, 2]
HEURISTIC_HARD = 0.2  # the fixed heuristic's loss on the search stratum


def _noise(n, seeds, scale):
  return np.array([np.random.default_rng([int(s), int(n)]).normal(0, scale) for s in seeds])


def _switch(n, onset):
  return 1.0 / (1.0 + math.exp(-12.0 * (math.log2(n) - math.log2(onset))))


def _family(kind, *, gen_onset=200.0, search_onset=700.0, noise=0.01, params=1000, flops=1e4):
  """A synthetic Measure: seen / unseen / search-stratum losses as known functions of N, plus seeded noise
  ((seed, N) -> the same value on every call).

  lookup: exact on the pool, 0.5 (chance) outside. lookup_instance: a stronger memorizer, 0.5 * (16 / N)**0.25
  outside. heuristic: a fixed rule, 0.05 seen and unseen, HEURISTIC_HARD on the stratum. search: 0.01
  everywhere. switch: memorizes below ``gen_onset`` and generalizes above it; its stratum loss falls from 0.4 to
  0.02 around ``search_onset``.
  """
  calls = []

  def measure(pool_sizes, seeds):
    calls.append(list(pool_sizes))
    k = len(seeds)
    seen, unseen, hard = [], [], []
    for n in pool_sizes:
      eps = _noise(n, seeds, noise)
      if kind == "lookup":
        s, u, h = np.zeros(k), 0.5 + eps, 0.5 + eps
      elif kind == "lookup_instance":
        s, u, h = np.zeros(k), 0.5 * (16 / n) ** 0.25 + eps, 0.5 * (16 / n) ** 0.25 + eps
      elif kind == "heuristic":
        s, u, h = np.full(k, 0.05), np.full(k, 0.05) + abs(eps) / 10, np.full(k, HEURISTIC_HARD) + abs(eps) / 10
      elif kind == "search":
        s, u, h = np.full(k, 0.01), np.full(k, 0.01) + abs(eps) / 10, np.full(k, 0.01) + abs(eps) / 10
      else:
        w, v = _switch(n, gen_onset), _switch(n, search_onset)
        s = np.full(k, 0.02) + abs(eps) / 10
        u = 0.02 + (1 - w) * 0.48 + abs(eps) / 10
        h = 0.02 + (1 - v) * 0.38 + abs(eps) / 10
      seen.append(s)
      unseen.append(u)
      hard.append(h)
    seen, unseen = np.array(seen), np.clip(np.array(unseen), 0, None)
    return tr.Sweep(np.array(pool_sizes), seen, unseen, 1.0 - seen, 1.0 - unseen, params, kind,
                    stratum_loss=np.clip(np.array(hard), 0, None), flops=flops)

  measure.calls = calls
  return measure


def _classifier(rule):
  """A stub detector: verdict = rule(pool size, seed); records the sizes it was asked about."""
  calls = []

  def classifier(pool_sizes, seeds):
    calls.append(list(pool_sizes))
    return np.array([[rule(n, s) for s in seeds] for n in pool_sizes], object)

  classifier.calls = calls
  return classifier


ALWAYS_SEARCHER = lambda n, s: "searcher"
SEARCHER_ABOVE_700 = lambda n, s: "searcher" if n >= 700 else "memorizer"


def _find(model, *, memorizers=("lookup", "lookup_instance"), classifier=None, heuristics=("heuristic",), **kw):
  return tr.find_transition(model, [_family(m) for m in memorizers], GRID, SEEDS,
                            heuristics=[_family(h) for h in heuristics],
                            classifier=classifier or _classifier(ALWAYS_SEARCHER), **kw)


# ------------------------------------------------------------------------------------------ known by construction


def test_fixed_heuristic_reaches_n_star_gen_at_once_but_never_n_star_search():
  clf = _classifier(ALWAYS_SEARCHER)  # even a detector that calls everything a searcher cannot rescue it
  out = _find(_family("heuristic"), classifier=clf)
  assert out.gen.onset.n_star == GRID[0] and out.gen.onset.ci == (GRID[0], GRID[0])
  assert out.search.onset.n_star == math.inf and out.search.onset.transition_probability == 0.0
  assert clf.calls == []  # it never beats the heuristic, so the detector is never asked
  assert set(out.search.heuristic_label) == {"heuristic"}


def test_lookup_reaches_neither_transition():
  out = _find(_family("lookup"))
  assert out.gen.onset.n_star == math.inf and out.search.onset.n_star == math.inf and out.refined == ()


def test_search_family_reaches_both_at_the_first_pool_size():
  out = _find(_family("search"))
  assert out.gen.onset.n_star == GRID[0] and out.search.onset.n_star == GRID[0]
  assert all(out.search.onset.holds) and out.search.searcher_fraction == (1.0,) * len(GRID)


def test_search_needs_the_detector_too():
  out = _find(_family("search"), classifier=_classifier(lambda n, s: "memorizer"))
  assert out.gen.onset.n_star == GRID[0] and out.search.onset.n_star == math.inf


def test_switch_family_both_onsets_bracketed_and_refined():
  measure = _family("switch", gen_onset=200.0, search_onset=700.0)
  clf = _classifier(SEARCHER_ABOVE_700)
  out = _find(measure, classifier=clf, refine_steps=3)
  assert 128 < out.gen.onset.n_star <= 256
  assert 512 < out.search.onset.n_star <= 1024
  assert any(128 < n < 256 for n in out.refined) and any(512 < n < 1024 for n in out.refined)
  for onset in (out.gen.onset, out.search.onset):
    assert onset.ci[0] <= onset.n_star <= onset.ci[1]
  assert measure.calls[0] == GRID
  # the detector ran only where the stratum loss beat the heuristic (0.2 * 0.9): above ~ the search onset
  asked = [n for call in clf.calls for n in call]
  assert asked and min(asked) > 256


def test_majority_of_seeds_must_be_called_searcher():
  one_seed = lambda n, s: "searcher" if s == 0 else "inconclusive"  # 1 of 3 seeds
  two_seeds = lambda n, s: "searcher" if s != 2 else "memorizer"  # 2 of 3 seeds
  assert _find(_family("search"), classifier=_classifier(one_seed)).search.onset.n_star == math.inf
  got = _find(_family("search"), classifier=_classifier(two_seeds)).search
  assert got.onset.n_star == GRID[0] and got.searcher_fraction[0] == pytest.approx(2 / 3)


def test_the_stronger_memorizer_is_the_reference():
  # unseen 0.3 everywhere: 40 % below lookup (0.5) but above lookup_instance at large N (0.5 * (16/N)**0.25)
  def flat(pool_sizes, seeds):
    k = (len(pool_sizes), len(seeds))
    return tr.Sweep(np.array(pool_sizes), np.full(k, 0.3), np.full(k, 0.3), np.zeros(k), np.zeros(k), 10, "flat")

  weak = tr.find_transition(flat, [_family("lookup")], GRID, SEEDS)
  both = tr.find_transition(flat, [_family("lookup"), _family("lookup_instance")], GRID, SEEDS)
  assert weak.gen.onset.n_star == GRID[0]
  assert both.gen.onset.n_star == math.inf
  labels = both.gen.reference_label
  assert labels[0] == "lookup" and labels[-1] == "lookup_instance"  # 0.5*(16/16)**.25 = 0.5 ties -> the first
  want = [min(0.5, 0.5 * (16 / n) ** 0.25) for n in GRID]
  np.testing.assert_allclose(both.gen.reference_unseen, want, atol=0.02)


def test_search_n_star_is_none_without_heuristics_or_classifier():
  out = tr.find_transition(_family("search"), [_family("lookup")], GRID, SEEDS)
  assert out.search is None and out.gen.onset.n_star == GRID[0]


def test_both_n_star_are_reproducible():
  a = _find(_family("switch", noise=0.05), classifier=_classifier(SEARCHER_ABOVE_700), seed=3)
  b = _find(_family("switch", noise=0.05), classifier=_classifier(SEARCHER_ABOVE_700), seed=3)
  assert a.gen.onset == b.gen.onset and a.search.onset == b.search.onset
  np.testing.assert_array_equal(a.sweep.unseen, b.sweep.unseen)


# ---------------------------------------------------------------------------------------------- the criteria


def test_absolute_gap_does_not_penalize_capacity():
  # the case: unseen 600x below the memorizer, pool loss 100x below that: a ratio test says "no"
  seen, unseen, ref = 1e-6, 1e-4, 0.06
  assert (unseen / seen) > 1.1 and bool(tr.generalizes(seen, unseen, ref))
  assert not bool(tr.generalizes(0.0, 0.01, ref))  # a gap of 17 % of the memorizer's is not "matching"


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0.01, 1), st.floats(0.01, 1), st.floats(0, 0.99))
def test_generalizes_matches_its_definition(seen, unseen, ref, tol, margin):
  c = tr.Criterion(gap_tolerance=tol, margin=margin)
  expected = (unseen - seen <= tol * ref) and (unseen <= (1 - margin) * ref)
  assert bool(tr.generalizes(seen, unseen, ref, c)) == expected


@given(st.lists(st.booleans(), min_size=1, max_size=12))
def test_sustained_onset_is_the_start_of_the_final_run_of_trues(ok):
  sizes = [2**i for i in range(len(ok))]
  got = tr.sustained_onset(sizes, ok)
  if not ok[-1]:
    assert got == math.inf
  else:
    i = sizes.index(int(got))
    assert all(ok[i:]) and (i == 0 or not ok[i - 1])


@given(st.lists(st.tuples(st.floats(0.001, 1), st.floats(1, 1e6)), min_size=1, max_size=5),
       st.floats(1, 1e5), st.floats(0.5, 100))
def test_heuristic_reference_is_the_best_cheap_one(hs, model_flops, factor):
  """Brute force: the minimum stratum loss over heuristics with flops <= factor * model flops, else over all."""
  sizes = [16, 64]
  sweeps = [tr.Sweep(sizes, np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)), 1, f"h{i}",
                     stratum_loss=np.full((2, 1), loss), flops=fl) for i, (loss, fl) in enumerate(hs)]
  model = tr.Sweep(sizes, np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)), 1, "m",
                   flops=model_flops)
  crit = tr.SearchCriterion(flops_factor=factor)
  ref = tr.heuristic_reference(model, sweeps, crit)
  cheap = [loss for loss, fl in hs if fl <= factor * model_flops]
  assert ref.flops_comparable == bool(cheap)
  assert ref.loss[0] == pytest.approx(min(cheap or [loss for loss, _ in hs]))


def test_missing_verdicts_where_needed_raise():
  sweep = _family("search")(GRID, SEEDS)
  with pytest.raises(ValueError, match="verdict"):
    tr.n_star_search(sweep, [_family("heuristic")(GRID, SEEDS)])


def test_capacity_view_on_synthetic_sizes():
  sizes = np.array([16, 64, 256])

  def sweep(params, seen_acc, unseen_acc, seen, unseen):
    ones = np.ones((3, 2))
    return tr.Sweep(sizes, seen * ones, unseen * ones, np.array(seen_acc)[:, None] * ones,
                    np.array(unseen_acc)[:, None] * ones, params, "")

  small = sweep(100, [0.5, 0.2, 0.1], [0.05, 0.05, 0.05], 0.48, 0.5)  # gap 0.02 = 4 % of 0.5: closed
  big = sweep(10000, [1.0, 1.0, 1.0], [0.05, 0.05, 0.05], 0.0, 0.5)  # gap 100 %: open
  lookup = sweep(1, [1, 1, 1], [0, 0, 0], 0.0, 0.5)
  cap = tr.capacity([small, big], [lookup], answer_bits=6.0, table_bits=6000.0)
  assert cap.gap_opens_at_params == {16: 10000, 64: 10000, 256: 10000}
  assert cap.bits_per_param[0][0] == pytest.approx(16 * 0.45 * 6 / 100)
  assert cap.argmax_pool_size[1] == 256
  assert cap.max_bits_per_param[1] == pytest.approx(256 * 0.95 * 6 / 10000)
  credit, source = tr.credited_bits_per_param()
  assert cap.credited_bits_per_param == credit and cap.credited_source == source
  assert cap.table_bits == 6000.0 and cap.params_bits == pytest.approx([100 * credit, 10000 * credit])


def test_credited_bits_per_param_is_the_measured_capacity(monkeypatch, tmp_path):
  from mesabench.harness.reproduce import capacity as capacity_study
  if os.path.exists(capacity_study.RESULT_PATH):  # the committed result: its seed-mean slope, not the old 4.0
    credit, source = tr.credited_bits_per_param()
    assert credit == capacity_study.bits_per_param() and source.startswith("measured")
    assert 0.5 < credit < 10 and credit != tr.BITS_PER_PARAM
  monkeypatch.setattr(capacity_study, "RESULT_PATH", str(tmp_path / "missing.json"))
  assert tr.credited_bits_per_param() == (tr.BITS_PER_PARAM, "assumed (no committed capacity result)")


def test_bad_input_raises_naming_the_parameter():
  with pytest.raises(ValueError, match="gap_tolerance"):
    tr.Criterion(gap_tolerance=0)
  with pytest.raises(ValueError, match="margin"):
    tr.Criterion(margin=1.0)
  with pytest.raises(ValueError, match="flops_factor"):
    tr.SearchCriterion(flops_factor=0)
  with pytest.raises(ValueError, match="pool_sizes"):
    tr.Sweep([4, 2], np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)))
  with pytest.raises(ValueError, match="unseen"):
    tr.Sweep([2, 4], np.zeros((2, 1)), np.zeros((2, 2)), np.zeros((2, 1)), np.zeros((2, 1)))
  with pytest.raises(ValueError, match="verdicts"):
    tr.Sweep([2], np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), verdicts=[["maybe"]])
  with pytest.raises(ValueError, match="refine_steps"):
    tr.find_transition(_family("search"), [_family("lookup")], GRID, [0], refine_steps=-1)
  with pytest.raises(ValueError, match="memorizers"):
    tr.n_star_gen(_family("search")([16, 32], [0]), [_family("lookup")([16, 64], [0])])


def test_json_round_trips():
  out = _find(_family("switch"), classifier=_classifier(SEARCHER_ABOVE_700))
  back = tr.Sweep.from_json(out.sweep.to_json())
  for name in ("seen", "unseen", "stratum_loss"):
    np.testing.assert_array_equal(getattr(back, name), getattr(out.sweep, name))
  np.testing.assert_array_equal(back.verdicts, out.sweep.verdicts)
  doc = out.to_json()
  nulls = {**doc["n_star_search"], "n_star": None, "ci": [GRID[-1], None]}  # strict JSON writes inf as null
  got = tr.Onset.from_json(nulls)
  assert got.n_star == math.inf and got.ci == (GRID[-1], math.inf)


# ---------------------------------------------------------------------------------------------- the harness


@pytest.mark.slow
def test_zoo_lookup_never_generalizes_and_search_does_through_the_harness():
  task = tasks.make("ModSearch-v0", bits=11)  # a hard stratum (n >= 1024) large enough for the stratum split
  cfg = train.TrainConfig(steps=0, eval_size=64, curve_points=1)
  lookup = tr.cached_measure(tr.harness_measure(task, models.make("lookup", task.spec), cfg, label="lookup",
                                                stratum="hard"))
  search = tr.harness_measure(task, models.make("search", task.spec), cfg, label="search", stratum="hard")
  sizes, seeds = [16], [0, 1]
  mem = tr.find_transition(lookup, [lookup], sizes, seeds)
  gen = tr.find_transition(search, [lookup], sizes, seeds)
  assert mem.gen.onset.n_star == math.inf and gen.gen.onset.n_star == 16
  np.testing.assert_array_equal(mem.sweep.seen, 0.0)  # a lookup table is exact on its pool
  np.testing.assert_array_equal(gen.sweep.stratum_loss, 0.0)  # the full search is exact on the hard stratum
  assert gen.sweep.flops > 0
  entries = tr.leaderboard_entries(task, models.make("search", task.spec), cfg, search.calls[:1], seeds)
  assert [e["pool_size"] for e in entries] == sizes


@pytest.mark.slow
def test_harness_classifier_hands_classify_the_trained_model():
  """A stub classify that scores ``predict`` on fresh instances: "searcher" iff every answer is the oracle's.
  The full search must pass it, the lookup table (pool 16 of 255 instances) must not."""
  task = tasks.make("ModSearch-v0", bits=8)
  cfg = train.TrainConfig(steps=0, eval_size=64, curve_points=1)
  seen = []

  def classify(t, predict, *, seed=0, pool=None):
    assert pool is not None and pool.size in (16, 32)  # the run's own training pool
    batch = t.sample(jax.random.key(seed + 11), 64)
    acc = float(np.mean(np.asarray(t.score(batch, predict(batch.inputs))[t.success_metric])))
    seen.append(acc)
    return "searcher" if acc == 1.0 else "memorizer"

  for model_id, want in (("search", "searcher"), ("lookup", "memorizer")):
    model = models.make(model_id, task.spec)
    clf = tr.harness_classifier(task, model, cfg, classify)
    got = clf([16, 32], [0, 1])
    assert got.shape == (2, 2) and set(got.ravel().tolist()) == {want}, (model_id, seen)
    assert clf.calls[-1]["retrained"]
  # with a measure that kept its parameters, the same verdicts come without training again
  measure = tr.harness_measure(task, models.make("lookup", task.spec), cfg, keep_params=True)
  measure([16, 32], [0, 1])
  clf = tr.harness_classifier(task, models.make("lookup", task.spec), cfg, classify, measure=measure)
  assert set(clf([32], [0, 1]).ravel().tolist()) == {"memorizer"} and not clf.calls[-1]["retrained"]


def test_sweep_reads_the_tasks_success_metric():
  results = [train.RunResult(seed=s, pool_size=16, diverged_step=None, curve={}, timing={},
                             compute={"params": 7, "flops_per_example": 3.0},
                             splits={"pool": {"loss": 0.1, "hit": h}, "heldout": {"loss": 0.2, "hit": h / 2},
                                     "stratum:hard": {"loss": 0.4}}) for s, h in ((0, 0.5), (1, 1.0))]
  sweep = tr.sweep_from_results(results, [16], [0, 1], success_metric="hit", stratum="hard")
  np.testing.assert_allclose(sweep.seen_success, [[0.5, 1.0]])
  np.testing.assert_allclose(sweep.unseen_success, [[0.25, 0.5]])
  np.testing.assert_allclose(sweep.stratum_loss, [[0.4, 0.4]])
  other = tr.sweep_from_results(results, [16], [0, 1], success_metric="accuracy")
  assert np.isnan(other.seen_success).all() and np.isnan(other.stratum_loss).all()


@pytest.mark.slow
def test_run_phase_diagram_writes_both_transitions(tmp_path):
  from mesabench.harness import plots

  task = tasks.make("ModSearch-v0", bits=6)
  cfg = train.TrainConfig(steps=20, eval_size=32, curve_points=1)
  stub = lambda t, predict, seed=0, pool=None: "memorizer"
  diagram = tr.run_phase_diagram(task=task, model_id="mlp", sizes=[{"width": 8, "depth": 1}], pool_sizes=[8, 16],
                                 seeds=[0, 1], train_config=cfg, refine_steps=0, classify=stub,
                                 num_resamples=50, progress=lambda s: None)
  doc = diagram.to_json()
  assert doc["rows"][0]["n_star_gen"]["n_star"] == math.inf or doc["rows"][0]["n_star_gen"]["n_star"] in (8, 16)
  refs = {r["model"]["id"]: r for r in doc["references"]}
  assert refs["search"]["n_star_gen"]["n_star"] == 8
  assert refs["lookup"]["n_star_gen"]["n_star"] == math.inf
  assert doc["capacity"]["table_bits"] == pytest.approx(task.table_bits())
  assert doc["config"]["n_star_search_computed"] and not doc["notes"]
  assert doc["rows"][0]["n_star_search"]["n_star"] == math.inf  # the stub never says "searcher"
  assert {r["model"]["id"] for r in doc["references"]} == {"lookup", "lookup_instance", "heuristic", "search"}
  heuristics = [r for r in doc["references"] if r["model"]["id"] == "heuristic"]
  assert len(heuristics) == len(task.heuristic_rules())
  assert all(h["n_star_search"]["n_star"] == math.inf for h in heuristics)  # a rule cannot beat the best rule
  path = plots.plot_from_json(doc, str(tmp_path / "p.png"))
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_unmeasured_stratum_never_counts_as_beating_the_heuristic():
  """A stratum split that is not applicable (NaN: too few instances outside the pool) gives no N*_search, and
  the detector is not asked; a heuristic unmeasured at some N is skipped there."""
  def blank(pool_sizes, seeds):
    sweep = _family("search")(pool_sizes, seeds)
    return tr.Sweep(sweep.pool_sizes, sweep.seen, sweep.unseen, sweep.seen_success, sweep.unseen_success,
                    sweep.params, "blank", stratum_loss=np.full(sweep.seen.shape, np.nan), flops=sweep.flops)

  clf = _classifier(ALWAYS_SEARCHER)
  out = tr.find_transition(blank, [_family("lookup")], GRID, SEEDS, heuristics=[_family("heuristic")],
                           classifier=clf)
  assert out.search.onset.n_star == math.inf and clf.calls == [] and out.gen.onset.n_star == GRID[0]
  heur = _family("heuristic")(GRID, SEEDS)
  holes = heur.stratum_loss.copy()
  holes[0] = np.nan
  holed = tr.Sweep(heur.pool_sizes, heur.seen, heur.unseen, heur.seen_success, heur.unseen_success, 0, "holed",
                   stratum_loss=holes, flops=heur.flops)
  other = tr.Sweep(heur.pool_sizes, heur.seen, heur.unseen, heur.seen_success, heur.unseen_success, 0, "other",
                   stratum_loss=np.full(holes.shape, 0.3), flops=heur.flops)
  ref = tr.heuristic_reference(_family("search")(GRID, SEEDS), [holed, other])
  assert ref.label[0] == "other" and ref.label[1] == "holed" and ref.loss[0] == pytest.approx(0.3)


def test_check_diagram_refuses_bad_inputs_before_training():
  task = tasks.make("ModSearch-v0", bits=6)
  cfg = train.TrainConfig(steps=10)
  with pytest.raises(ValueError, match="pool_sizes"):
    tr.check_diagram(task, "mlp", [{"width": 4}], [8, 63], [0], cfg)  # 63 = every instance: none held out
  with pytest.raises(ValueError, match=r"sizes\[1\]"):
    tr.check_diagram(task, "mlp", [{"width": 4}, {"width": 4, "no_such_option": 1}], [8], [0], cfg)
  with pytest.raises(ValueError, match="seed"):
    tr.check_diagram(task, "mlp", [{"width": 4}], [8], [-1], cfg)


def test_search_predict_uses_the_budget_as_its_knob():
  from mesabench.harness import calibration
  task = tasks.make("ModSearch-v0", bits=8)
  model = models.make("search", task.spec)
  predict = tr.search_predict(task, model)
  batch = task.sample(jax.random.key(3), 128)
  cfg = model.config_dict()
  lo, hi = task.search_budget_range(cfg["strategy"])
  np.testing.assert_array_equal(predict(batch.inputs), batch.targets["k"])  # the full search is the oracle
  for t in (1, 2, calibration.NOMINAL_ITERATIONS):
    b = min(hi, max(lo, cfg["budget"] * t // calibration.NOMINAL_ITERATIONS))
    want = models.make("search", task.spec, budget=b, strategy=cfg["strategy"]).predict({}, batch.inputs)
    np.testing.assert_array_equal(predict(batch.inputs, iterations=t), want)
  assert not np.array_equal(predict(batch.inputs, iterations=1), batch.targets["k"])  # an eighth of the budget


def test_a_not_applicable_stratum_at_large_pools_does_not_break_the_onset():
  """At the largest pools the stratum has too few instances outside the pool (NaN): N*_search is taken over the
  sizes where it was measured, and it is inf when it was measured nowhere."""
  def cut(kind, last):
    base = _family(kind)

    def measure(pool_sizes, seeds):
      sw = base(pool_sizes, seeds)
      loss = sw.stratum_loss.copy()
      loss[sw.pool_sizes >= last] = np.nan
      return tr.Sweep(sw.pool_sizes, sw.seen, sw.unseen, sw.seen_success, sw.unseen_success, sw.params, kind,
                      stratum_loss=loss, flops=sw.flops)
    return measure

  out = tr.find_transition(cut("search", 1024), [_family("lookup")], GRID, SEEDS, heuristics=[_family("heuristic")],
                           classifier=_classifier(ALWAYS_SEARCHER))
  assert out.search.onset.n_star == GRID[0]
  assert out.search.applicable == tuple(n < 1024 for n in GRID)
  none = tr.find_transition(cut("search", 1), [_family("lookup")], GRID, SEEDS, heuristics=[_family("heuristic")],
                            classifier=_classifier(ALWAYS_SEARCHER))
  assert none.search.onset.n_star == math.inf and not any(none.search.applicable)
