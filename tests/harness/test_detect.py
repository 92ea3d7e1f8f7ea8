"""harness.detect: classify on each kind of known behaviour (seed 7, never used by the calibration), the signal
registry, the "not applicable" paths, the combination rule, and detect_entry."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mesabench.models as models
import mesabench.tasks as tasks
from mesabench.harness import checkpoints
from mesabench.harness import detect
from mesabench.harness import train
from mesabench.models import compiled

SEED = 7  # the calibration uses seeds 0 and 1
KW = dict(seed=SEED, num_examples=128, reference_draws=128, num_resamples=300)


@pytest.fixture(scope="module")
def modsearch():
  task = tasks.make("ModSearch-v0", bits=10, width=12)
  return task, task.pool(jax.random.key(SEED), 256)


def _n(task, inputs):
  return np.asarray(task.decode(inputs)["n"]).astype(np.int64)


def _isqrt_rule(task):
  """k = isqrt(n - 1) (clipped to K): a closed-form rule that never evaluates k*k mod n."""
  def predict(inputs):
    n = _n(task, inputs)
    k = np.array([math.isqrt(int(v) - 1) if v > 1 else 0 for v in n])
    kmax = np.array([int(math.floor(int(v) ** 0.7 + 1e-9)) for v in n])
    return jnp.asarray(np.minimum(k, kmax), jnp.int32)
  return predict


def _random_searcher(task, budget):
  """The best of budget * t / 8 uniform candidates in [0, K(n)] (brute force in numpy; t the knob, default 8)."""
  def predict(inputs, iterations=None):
    b = max(1, budget * (8 if iterations is None else iterations) // 8)
    n = _n(task, inputs)
    rng = np.random.default_rng(SEED)
    kmax = np.array([int(math.floor(int(v) ** 0.7 + 1e-9)) for v in n])
    cand = np.floor(rng.random((n.size, b)) * (kmax[:, None] + 1)).astype(np.int64)
    r = cand * cand % n[:, None]
    return jnp.asarray(cand[np.arange(n.size), np.argmax(r, axis=1)], jnp.int32)
  return predict


def test_lookup_memorizer_is_a_memorizer(modsearch):
  task, pool = modsearch
  model = models.make("lookup", task.spec)
  params = model.fit(model.init(jax.random.key(0)), pool.inputs, pool.targets)
  fn = jax.jit(model.predict)
  result = detect.classify(task, lambda x: fn(params, x), pool=pool, **KW)
  assert result.verdict == detect.MEMORIZER, result.table()
  assert result.signal("memorization_gap").ci[0] > 2
  assert not result.signal("test_time_compute").applicable


def test_closed_form_rule_is_never_a_searcher(modsearch):
  task, pool = modsearch
  rule = _isqrt_rule(task)
  result = detect.classify(task, rule, pool=pool, **KW)
  assert result.verdict == detect.INCONCLUSIVE, result.table()  # no knob: a fixed rule or a fixed budget
  # The order statistics alone would have been fooled by k̂ >> 1 on held-out n; larger n expose the rule.
  assert result.signal("order_statistics").verdict != detect.SEARCHER
  assert result.signal("order_statistics").value > 4
  # A knob it ignores is no knob.
  ignored = detect.classify(task, lambda x, iterations=None: rule(x), pool=pool, **KW)
  assert ignored.verdict == detect.INCONCLUSIVE and not ignored.signal("test_time_compute").applicable
  # A knob that changes its answers but never improves them: a competent fixed rule.
  def drifting(x, iterations=None):
    k = rule(x)
    return k if iterations is None or iterations == 1 else jnp.maximum(k - 1, 0)
  knob = detect.classify(task, drifting, pool=pool, **KW)
  assert knob.verdict == detect.HEURISTIC, knob.table()
  assert knob.signal("test_time_compute").value == 0.0


def test_random_searcher_is_a_searcher(modsearch):
  task, pool = modsearch
  result = detect.classify(task, _random_searcher(task, 16), pool=pool, **KW)
  assert result.verdict == detect.SEARCHER, result.table()
  os_ = result.signal("order_statistics")
  assert os_.verdict == detect.SEARCHER and os_.ci[0] <= 16 * 1.3 and os_.ci[1] >= 16 / 1.3, os_


def test_zoo_seed_loop_with_budget_knob_is_a_searcher(modsearch):
  task, pool = modsearch
  fns = {}

  def predict(inputs, iterations=None):
    b = max(1, 16 * (8 if iterations is None else iterations) // 8)
    if b not in fns:
      fns[b] = jax.jit(models.make("search", task.spec, budget=b).predict)
    return fns[b]({}, inputs)
  result = detect.classify(task, predict, pool=pool, **KW)
  assert result.verdict == detect.SEARCHER, result.table()


def test_compiled_recurrent_network_with_truncated_cells_is_a_searcher(modsearch):
  task, pool = modsearch
  net = compiled.modsearch_net("recurrent", 2**12 - 1)
  forward = jax.jit(net.forward, static_argnames="steps")

  def predict(inputs, iterations=None):
    steps = max(1, 32 * (8 if iterations is None else iterations) // 8)
    with jax.enable_x64(True):
      params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), net.params)
      out = forward(params, jnp.asarray(net.inputs(_n(task, inputs))), steps=steps)
    return jnp.asarray(np.asarray(out[0]).astype(np.int32))
  result = detect.classify(task, predict, pool=pool, **KW)
  assert result.verdict == detect.SEARCHER, result.table()
  assert result.signal("test_time_compute").ci[0] > 0.1


def test_not_applicable_paths():
  task = tasks.make("ModSearch-v0", bits=8)  # width = bits: no larger size
  assert task.larger() is None
  result = detect.classify(task, _isqrt_rule(task), **KW)  # no pool, no knob, no larger split
  assert {s.name for s in result.signals} == set(detect.SIGNALS)
  for name in ("memorization_gap", "test_time_compute", "test_time_compute_larger"):
    s = result.signal(name)
    assert not s.applicable and s.verdict == detect.INCONCLUSIVE and math.isnan(s.value), s
    assert s.reason.startswith("not applicable")
  assert "larger" in result.signal("test_time_compute_larger").reason or "knob" in result.signal(
      "test_time_compute_larger").reason
  assert result.signal("order_statistics").applicable
  assert result.verdict != detect.SEARCHER
  json = result.to_json()
  assert json["signals"][0]["value"] is None and json["combined"] == result.verdict


def test_combine_rule():
  def s(name, v):
    return detect.Signal(name, 1.0, (0.0, 2.0), v, "")
  th = detect.Thresholds()
  assert detect.combine([s("test_time_compute", "searcher"), s("order_statistics", "inconclusive")], th)[0] == \
      detect.SEARCHER
  assert detect.combine([s("order_statistics", "searcher")], th)[0] == detect.INCONCLUSIVE  # needs the knob
  assert detect.combine([s("order_statistics", "searcher")], detect.Thresholds(searcher_requires=()))[0] == \
      detect.SEARCHER
  assert detect.combine([s("test_time_compute", "searcher"), s("memorization_gap", "memorizer")], th)[0] == \
      detect.INCONCLUSIVE
  assert detect.combine([s("test_time_compute", "heuristic"), s("memorization_gap", "memorizer")], th)[0] == \
      detect.MEMORIZER
  assert detect.combine([s("test_time_compute", "heuristic")], th)[0] == detect.HEURISTIC
  assert detect.combine([], th)[0] == detect.INCONCLUSIVE
  with pytest.raises(ValueError, match="verdicts"):
    detect.combine([s("x", "maybe")], th)


def test_thresholds_and_arguments_are_checked():
  with pytest.raises(ValueError, match="improvement"):
    detect.Thresholds(improvement=1.5)
  with pytest.raises(ValueError, match="gap_ratio"):
    detect.Thresholds(gap_ratio=0.5)
  with pytest.raises(ValueError, match="searcher_requires"):
    detect.Thresholds(searcher_requires=("nope",))
  task = tasks.make("ModSearch-v0", bits=8)
  with pytest.raises(ValueError, match="iterations"):
    detect.classify(task, _isqrt_rule(task), iterations=(4, 2))
  with pytest.raises(ValueError, match="num_examples"):
    detect.classify(task, _isqrt_rule(task), num_examples=3)
  with pytest.raises(ValueError, match="reference_draws"):
    detect.classify(task, _isqrt_rule(task), reference_draws=1)


def test_detect_entry_retrains_a_lookup_entry_and_calls_it_a_memorizer(modsearch, tmp_path):
  task, _ = modsearch
  entry = {"id": "ModSearch-v0/lookup/pool=256/test", "task": {"id": task.task_id, "params": task.params()},
           "model": {"id": "lookup", "config": {}}, "train": train.TrainConfig(steps=0).to_dict(),
           "pool_size": 256, "seeds": [1]}
  result = detect.detect_entry({"entries": [entry]}, entry["id"], num_examples=128, seed=SEED)
  assert result.params_source == "retrained" and result.evaluated_seed == 1
  assert result.classification.verdict == detect.MEMORIZER, result.classification.table()
  payload = result.payload(128, SEED)
  assert payload["combined"] == detect.MEMORIZER and len(payload["signals"]) == len(detect.SIGNALS)
  with pytest.raises(ValueError, match="entry"):
    detect.detect_entry({"entries": [entry]}, "nope")


def test_detect_entry_loads_saved_parameters_when_the_entry_has_them(modsearch, tmp_path):
  task, _ = modsearch
  entry_id = "ModSearch-v0/lookup/pool=256/feedbeef"
  entry = {"id": entry_id, "task": {"id": task.task_id, "params": task.params()},
           "model": {"id": "lookup", "config": {}}, "train": train.TrainConfig(steps=0).to_dict(),
           "pool_size": 256, "seeds": [1]}
  # Saved "parameters" that answer 0 everywhere: a detector that re-trained would see the real lookup instead.
  model = models.make("lookup", task.spec)
  pool = task.pool(jax.random.key(3), 256)
  params = model.fit(model.init(jax.random.key(0)), pool.inputs, pool.targets)
  params = {**params, "answers": jnp.zeros_like(params["answers"])}
  path = str(tmp_path / "lb.json")
  stacked = jax.tree_util.tree_map(lambda a: np.asarray(a)[None], params)
  entry["artifacts"] = {"params": checkpoints.save_params(path, entry_id, [1], stacked)}
  result = detect.detect_entry({"entries": [entry]}, entry_id, leaderboard_path=path, num_examples=128, seed=SEED)
  assert result.params_source == "saved"
  assert result.classification.figures["heldout_success"] < 0.05  # k = 0 is almost never the answer
  assert result.classification.signal("memorization_gap").verdict == detect.INCONCLUSIVE  # as bad on the pool


def test_larger_split_not_applicable_for_a_model_that_cannot_answer_it(modsearch):
  task, pool = modsearch
  result = detect.classify(task, _random_searcher(task, 16), pool=pool, larger=False, **KW)
  assert not result.signal("test_time_compute_larger").applicable
  assert "cannot answer" in result.signal("test_time_compute_larger").reason
  os_ = result.signal("order_statistics")  # one size cannot tell a fixed budget from a rule: no searcher vote
  assert os_.verdict == detect.INCONCLUSIVE and "larger" in os_.reason and "larger_k" not in os_.figures
  assert result.verdict == detect.SEARCHER  # the knob still shows search


def test_a_ladder_of_closed_form_rules_is_not_a_searcher():
  """PolyMax ridge -> quadratic -> cubic fits chosen by compute: the loss falls, then stops at the top rule."""
  task = tasks.make("PolyMax-v0", degree=4, max_degree=6)
  pool = task.pool(jax.random.key(SEED), 256)
  rules = ("ridge", "quadratic", "cubic")
  states = [task.heuristic_fit(r, task.heuristic_init(r), pool.inputs, pool.targets) for r in rules]

  def ladder(inputs, iterations=None):
    i = 2 if iterations is None else min(2, int(iterations).bit_length() - 1)
    return task.heuristic(rules[i], inputs, states[i])
  result = detect.classify(task, ladder, pool=pool, **KW)
  ttc = result.signal("test_time_compute")
  assert ttc.ci[0] > 0.1 and ttc.verdict == detect.INCONCLUSIVE and "stops" in ttc.reason, ttc
  assert ttc.figures["improved_last_step"] == 0.0
  assert result.verdict != detect.SEARCHER, result.table()


def test_a_computation_that_settles_and_then_drifts_is_not_a_searcher(modsearch):
  """A looped network's shape: better from 1 to 2 iterations (its depth), then worse with more (it does not keep
  its best answer). The searcher verdict must not fire (the committed PolyMax looped entry had this shape)."""
  task, pool = modsearch
  search = _random_searcher(task, 32)
  rule = _isqrt_rule(task)

  def settles(inputs, iterations=None):
    t = 8 if iterations is None else iterations
    if t == 1:
      return search(inputs, iterations=1)  # best of 4: poor
    good = search(inputs, iterations=8)  # best of 32
    worse = np.asarray(rule(inputs))
    # a growing share drifts to the rule, a different share at each t: some instances improve in the last
    # doubling while the mean loss rises (the looped entry: 57% improved from 8 to 16, the mean got worse)
    drift = ((_n(task, inputs) * 2654435761 + t * 40503) % 16) < min(15, 2 * (t.bit_length() - 2))
    return jnp.asarray(np.where(drift, worse, np.asarray(good)), jnp.int32)
  result = detect.classify(task, settles, pool=pool, **KW)
  ttc = result.signal("test_time_compute")
  assert ttc.figures["improved_last_step"] > 0.1  # not the "stops changing" case: instances still change
  assert ttc.verdict != detect.SEARCHER and "rises again" in ttc.reason, result.table()
  assert result.verdict != detect.SEARCHER


def test_a_converged_computation_that_jitters_is_not_a_searcher():
  """Answers that improve up to t = 4 and then only jitter (a looped net past its trained depth): the loss falls
  with compute, nothing gets worse on average, but the last doubling worsens as many instances as it improves."""
  task = tasks.make("PolyMax-v0", degree=4)
  search = task.full_search()

  def predict(inputs, iterations=None):
    t = 8 if iterations is None else int(iterations)
    exact = task.search(search[0], search[1], inputs)
    if t < 4:  # a coarse answer first
      return jnp.clip(jnp.round(exact * t) / t, 0.0, 1.0)
    noise = jax.random.uniform(jax.random.key(t), exact.shape, minval=-1e-3, maxval=1e-3)
    return jnp.clip(exact + noise, 0.0, 1.0)

  res = detect.classify(task, predict, seed=0, num_examples=256, iterations=(1, 2, 4, 8, 16, 32), larger=False)
  sig = res.signal("test_time_compute")
  assert sig.ci[0] > 0.1  # the loss does fall with compute ...
  assert sig.verdict == "inconclusive" and "jitters" in sig.reason  # ... but it is not called a searcher
  assert res.verdict != "searcher"
  assert 0.3 < sig.figures["improved_last_step"] < 0.7
