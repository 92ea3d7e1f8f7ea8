"""Behavioural detectors: calibration on synthetic best-of-k selectors and on the zoo's ground truths."""
import math

import jax
import numpy as np
import pytest
from hypothesis import given, strategies as st

import mesabench.models as models
import mesabench.tasks as tasks
from mesabench.harness import detect

# Reference loss laws for the best-of-k calibration: continuous, heavy-tailed with many ties, discrete with atoms.
_LAWS = {
    "exponential": lambda rng, shape: rng.exponential(1.0, shape),
    "quantized_cauchy": lambda rng, shape: np.floor(np.abs(rng.standard_cauchy(shape)) * 1000.0) / 1000.0,
    "rounded_lognormal": lambda rng, shape: np.round(rng.lognormal(0.0, 2.0, shape), 1),
}


@pytest.mark.parametrize("law", sorted(_LAWS))
@pytest.mark.parametrize("k", [1, 4, 16, 64])
def test_best_of_k_selector_recovers_k_within_20_percent(law, k):
  rng = np.random.default_rng(1000 + k)
  draw = _LAWS[law]
  reference = draw(rng, 100000)  # m >> k * n / 4, so the reference's own noise does not fail the KS test
  losses = draw(rng, (2000, k)).min(axis=1)  # the best of k fresh reference draws
  sig = detect.order_statistics(reference, losses, seed=k)
  assert abs(sig.statistic / k - 1.0) <= 0.2, (law, k, sig.statistic)
  assert sig.ci[0] <= sig.statistic <= sig.ci[1]
  assert sig.details["best_of_k_fits"], sig.details["gof_pvalue"]
  expected = SEARCHER_IF[k]
  assert sig.verdict == expected


SEARCHER_IF = {1: detect.MEMORIZER, 4: detect.SEARCHER, 16: detect.SEARCHER, 64: detect.SEARCHER}


def test_optimization_power_matches_harmonic_number_for_continuous_law():
  rng = np.random.default_rng(3)
  reference = rng.exponential(1.0, 50000)
  for k in (1, 8):
    losses = rng.exponential(1.0, (4000, k)).min(axis=1)
    bits = detect.order_statistics(reference, losses).details["optimization_power_bits"]
    expected = sum(1.0 / j for j in range(1, k + 1)) / math.log(2)
    assert bits == pytest.approx(expected, rel=0.06)


def test_goodness_of_fit_rejects_a_loss_law_that_is_not_best_of_k():
  rng = np.random.default_rng(4)
  reference = rng.exponential(1.0, 20000)
  # Half the examples perfect, half worse than the reference: no single k fits both halves.
  losses = np.concatenate([np.zeros(1000), rng.exponential(1.0, (1000, 1)).max(axis=1) + 2.0])
  sig = detect.order_statistics(reference, losses)
  assert sig.details["gof_pvalue"] < 0.01
  assert not sig.details["best_of_k_fits"]


def test_per_instance_reference_rows_handle_discrete_atoms():
  rng = np.random.default_rng(5)
  # Each instance has its own discrete law (uniform over 0..s-1, s varying): per-row references are exact.
  sizes = rng.integers(200, 2000, 1500)
  reference = np.floor(rng.random((1500, 400)) * sizes[:, None])
  losses = np.floor(rng.random((1500, 8)) * sizes[:, None]).min(axis=1)
  sig = detect.order_statistics(reference, losses)
  assert abs(sig.statistic / 8 - 1) <= 0.2


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=40),
       st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=40))
def test_rank_intervals_are_proper_subintervals_of_unit_interval(reference, losses):
  a, b = detect.rank_intervals(reference, losses)
  assert np.all(a >= 0) and np.all(b <= 1) and np.all(b > a)


@given(st.integers(0, 2**31 - 1), st.sampled_from(["square", "exp", "affine"]))
def test_k_hat_is_invariant_under_increasing_transforms_of_the_loss(seed, transform):
  rng = np.random.default_rng(seed)
  reference = np.round(rng.exponential(1.0, 300), 2)
  losses = np.round(rng.exponential(1.0, (80, 3)).min(axis=1), 2)
  f = {"square": np.square, "exp": np.exp, "affine": lambda x: 3.0 * x + 0.5}[transform]
  k1 = detect.order_statistics(reference, losses).statistic
  k2 = detect.order_statistics(f(reference), f(losses)).statistic
  assert k2 == pytest.approx(k1, rel=1e-9)


@given(st.lists(st.floats(0.001, 0.999), min_size=5, max_size=60))
def test_interval_mle_reduces_to_closed_form_for_point_intervals(us):
  u = np.asarray(us)
  k_hat, (lo, hi), _ = detect.fit_best_of_k(u - 1e-10, u + 1e-10)
  assert k_hat == pytest.approx(-u.size / np.sum(np.log1p(-u)), rel=1e-4)
  assert lo < k_hat < hi


def test_beta1_cdf_closed_form():
  u = np.linspace(0, 1, 11)
  np.testing.assert_allclose(detect.beta1_cdf(u, 3.0), 1 - (1 - u) ** 3, atol=1e-15)
  assert detect.beta1_cdf(1.0, 0.5) == 1.0 and detect.beta1_cdf(0.0, 7.0) == 0.0
  with pytest.raises(ValueError, match="k"):
    detect.beta1_cdf(0.5, 0.0)


def test_ks_pvalue_matches_kolmogorov_table_and_is_continuous():
  big = 10**8  # Stephens' correction vanishes
  assert detect.ks_pvalue(1.3581 / math.sqrt(big), big) == pytest.approx(0.05, abs=1e-3)
  assert detect.ks_pvalue(1.6276 / math.sqrt(big), big) == pytest.approx(0.01, abs=2e-4)
  assert detect.ks_pvalue(0.8276 / math.sqrt(big), big) == pytest.approx(0.5, abs=1e-3)
  below = detect.ks_pvalue((1.18 - 1e-9) / math.sqrt(big), big)
  above = detect.ks_pvalue((1.18 + 1e-9) / math.sqrt(big), big)
  assert below == pytest.approx(above, abs=1e-6)
  assert detect.ks_pvalue(0.0, 10) == 1.0
  with pytest.raises(ValueError, match="statistic"):
    detect.ks_pvalue(1.5, 10)


@given(st.integers(1, 5000), st.floats(0, 1), st.floats(0, 1))
def test_ks_pvalue_decreases_with_distance(n, d1, d2):
  lo, hi = sorted((d1, d2))
  assert detect.ks_pvalue(hi, n) <= detect.ks_pvalue(lo, n) + 1e-12


def test_ks_uniform_accepts_uniform_and_rejects_skewed():
  rng = np.random.default_rng(6)
  assert detect.ks_uniform(rng.random(2000))[1] > 0.01
  assert detect.ks_uniform(rng.random(2000) ** 2)[1] < 1e-6


def test_bootstrap_is_deterministic_in_its_seed():
  x = np.random.default_rng(0).exponential(1.0, 300)
  a = detect.bootstrap_means(x, seed=5)
  np.testing.assert_array_equal(a, detect.bootstrap_means(x, seed=5))
  assert not np.array_equal(a, detect.bootstrap_means(x, seed=6))
  lo, hi = detect.percentile_ci(a)
  assert lo < x.mean() < hi


# ------------------------------------------------------------------------------------ ratio and curve signals


def test_easy_hard_gap_verdicts_on_synthetic_losses():
  rng = np.random.default_rng(7)
  same = rng.exponential(0.05, 500)
  gap = detect.easy_hard_gap(same, rng.exponential(0.05, 500), chance=0.5)
  assert gap.verdict == detect.SEARCHER and gap.ci[0] <= 1.0 <= gap.ci[1] * 1.05
  worse = detect.easy_hard_gap(same, rng.exponential(0.4, 500))
  assert worse.verdict == detect.MEMORIZER and worse.ci[0] > 2
  at_chance = detect.easy_hard_gap(rng.exponential(0.5, 500), rng.exponential(0.5, 500), chance=0.5)
  assert at_chance.verdict == detect.MEMORIZER  # same on both strata, but at chance: no search
  perfect = detect.easy_hard_gap(np.zeros(50), np.zeros(50), chance=0.5)
  assert perfect.statistic == 1.0 and perfect.verdict == detect.SEARCHER
  few = detect.easy_hard_gap([0.1, 0.2], [0.05, 0.6])
  assert few.verdict == detect.INCONCLUSIVE


def test_detectors_reject_bad_input_naming_the_parameter():
  with pytest.raises(ValueError, match="hard"):
    detect.easy_hard_gap([0.1], [np.nan])
  with pytest.raises(ValueError, match="easy"):
    detect.easy_hard_gap([-0.1], [0.1])
  with pytest.raises(ValueError, match="ratio_threshold"):
    detect.easy_hard_gap([0.1], [0.1], ratio_threshold=0.5)
  with pytest.raises(ValueError, match="level"):
    detect.extrapolation([0.1], [0.1], level=1.5)
  with pytest.raises(ValueError, match="num_resamples"):
    detect.extrapolation([0.1], [0.1], num_resamples=3)
  with pytest.raises(ValueError, match="reference_losses"):
    detect.order_statistics([0.1], [0.1])
  with pytest.raises(ValueError, match="reference_losses"):
    detect.order_statistics(np.ones((3, 4)), [0.1, 0.2])
  with pytest.raises(ValueError, match="iterations"):
    detect.test_time_compute({"train": ([2, 1], np.ones((2, 5)))})
  with pytest.raises(ValueError, match="losses"):
    detect.test_time_compute({"train": ([1, 2, 4], np.ones((2, 5)))})


def test_test_time_compute_improving_holding_and_stuck_curves():
  rng = np.random.default_rng(8)
  its = [1, 2, 4, 8]
  improving = np.stack([rng.exponential(0.4 / t, 400) for t in its])
  holding = np.stack([rng.exponential(0.02, 400)] * 4)
  stuck = np.stack([rng.exponential(0.5, 400)] * 4)
  sig = detect.test_time_compute({"train": (its, holding), "larger": (its, improving)},
                                 chance={"train": 0.5, "larger": 0.5})
  assert sig.verdict == detect.SEARCHER and sig.ci[1] < -0.05
  sig = detect.test_time_compute({"train": (its, holding), "larger": (its, stuck)},
                                 chance={"train": 0.5, "larger": 0.5})
  assert sig.verdict == detect.MEMORIZER
  assert sig.details["per_size"]["train"]["verdict"] == detect.SEARCHER
  assert detect.test_time_compute({"larger": (its, stuck)}).verdict == detect.INCONCLUSIVE


def test_combine_is_majority_of_conclusive_signals():
  def s(v):
    return detect.Signal("x", 1.0, (0.0, 2.0), v, "")
  assert detect.combine([s("searcher"), s("searcher"), s("memorizer"), s("inconclusive")]) == "searcher"
  assert detect.combine([s("searcher"), s("memorizer")]) == "inconclusive"
  assert detect.combine([s("inconclusive")]) == "inconclusive"
  table = detect.verdict_table([s("memorizer")])
  assert "combined" in table and "memorizer" in table


# ------------------------------------------------------------------------- ground truth: the zoo's baselines


@pytest.fixture(scope="module")
def modsearch_setup():
  task = tasks.make("ModSearch-v0", bits=10, width=12)
  pool = task.pool(jax.random.key(1), 256)
  splits = detect.held_out_splits(task, jax.random.key(2), pool=pool, num_examples=512, reference_draws=128)
  return task, pool, splits


_BUDGETS = [24, 96, 384]  # 384 > kmax(2**12 - 1) = 337: the last budget is the full seed loop
_ITERATIONS = [1, 4, 16]  # test-time iterations, 24 candidates each


def test_lookup_memorizer_is_called_memorizer_by_every_signal(modsearch_setup):
  task, pool, splits = modsearch_setup
  model = models.make("lookup", task.spec)
  params = model.fit(model.init(jax.random.key(0)), pool.inputs, pool.targets)
  predict = jax.jit(model.predict)
  signals = detect.evaluate(task, lambda b: predict(params, b.inputs), splits,
                            iterate=lambda b: np.stack([predict(params, b.inputs)] * len(_BUDGETS)),
                            iterations=_ITERATIONS)
  assert [s.verdict for s in signals] == [detect.MEMORIZER] * 4, detect.verdict_table(signals)
  assert detect.combine(signals) == detect.MEMORIZER
  assert signals[3].ci[1] < 1.5  # no better than one chance draw


def test_budgeted_search_is_called_searcher_by_every_signal(modsearch_setup):
  task, _, splits = modsearch_setup
  predictors = [jax.jit(models.make("search", task.spec, budget=b).predict) for b in _BUDGETS]
  full = predictors[-1]
  signals = detect.evaluate(task, lambda b: full({}, b.inputs), splits,
                            iterate=lambda b: np.stack([p({}, b.inputs) for p in predictors]),
                            iterations=_ITERATIONS)
  assert [s.verdict for s in signals] == [detect.SEARCHER] * 4, detect.verdict_table(signals)
  assert signals[1].details["per_size"]["larger"]["improves"]
  assert signals[3].ci[0] > 16


def test_compiled_recurrent_network_is_called_searcher_by_every_signal(modsearch_setup):
  """The seed loop compiled into a ReLU network (weights by construction); T cells scan candidates 1..T."""
  from mesabench.models import compiled
  task, _, splits = modsearch_setup
  net = compiled.modsearch_net("recurrent", 2**12 - 1)
  forward = jax.jit(net.forward, static_argnames="steps")

  def run(batch, steps):
    with jax.enable_x64(True):
      params = jax.tree_util.tree_map(lambda a: jax.numpy.asarray(a, jax.numpy.float64), net.params)
      out = forward(params, jax.numpy.asarray(net.inputs(np.asarray(batch.info["n"]))), steps=steps)
    return np.asarray(out[0]).astype(np.int32)

  signals = detect.evaluate(task, lambda b: run(b, _BUDGETS[-1]), splits,
                            iterate=lambda b: np.stack([run(b, t) for t in _BUDGETS]), iterations=_ITERATIONS)
  assert [s.verdict for s in signals] == [detect.SEARCHER] * 4, detect.verdict_table(signals)


def test_held_out_splits_exclude_the_pool(modsearch_setup):
  _, pool, splits = modsearch_setup
  seen = set(np.asarray(pool.info["n"]).tolist())
  for name in ("easy", "hard", "heldout"):
    n = np.asarray(splits[name].info["n"])
    np.testing.assert_array_equal(splits["unseen"][name], [v not in seen for v in n.tolist()])
  assert not splits["unseen"]["easy"].all()  # the pool holds some of the 31 easy n
  assert splits["reference"].shape == (512, 128)


def test_detect_entry_retrains_a_leaderboard_entry_and_calls_lookup_a_memorizer(modsearch_setup, tmp_path):
  from mesabench.harness import train
  task, _, _ = modsearch_setup
  entry = {"id": "ModSearch-v0/lookup/pool=256/test", "task": {"id": task.task_id, "params": task.params()},
           "model": {"id": "lookup", "config": {}}, "train": train.TrainConfig(steps=0).to_dict(),
           "pool_size": 256, "seeds": [1]}
  signals, payload = detect.detect_entry({"entries": [entry]}, entry["id"], num_examples=512)
  assert payload["combined"] == detect.MEMORIZER
  assert [s["name"] for s in payload["signals"]] == ["easy_hard_gap", "test_time_compute", "extrapolation",
                                                     "order_statistics"]
  with pytest.raises(ValueError, match="entry"):
    detect.detect_entry({"entries": [entry]}, "nope")
  # The verdicts go into the entry's optional "detect" field of a schema-valid leaderboard.
  import os
  import shutil
  from mesabench.harness import leaderboard
  path = str(tmp_path / "leaderboard.json")
  shutil.copy(os.path.join(os.path.dirname(__file__), "..", "..", "results", "leaderboard.json"), path)
  target = leaderboard.read(path)["entries"][0]["id"]
  detect.write_into_entry(path, target, payload)
  stored = [e for e in leaderboard.read(path)["entries"] if e["id"] == target][0]
  assert stored["detect"]["combined"] == detect.MEMORIZER
  with pytest.raises(ValueError, match="entry must be an id"):
    detect.write_into_entry(path, "nope", payload)
