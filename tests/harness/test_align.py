"""recover_objective on synthetic choosers with known weights, the comparisons, the controls, and the study."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mesabench import models
from mesabench import tasks
from mesabench.harness import align
from mesabench.harness import leaderboard
from mesabench.harness import train

N, K, D = 1024, 8, 3  # one shape for the synthetic choosers: one compile of the fits


def _features(seed=0):
  return np.random.default_rng(seed).normal(size=(N, K, D))


def _unit(w):
  w = np.asarray(w, np.float64)
  return w / np.linalg.norm(w)


def _argmax(u):
  return np.argmax(u, axis=1).astype(np.int32)


@pytest.mark.parametrize("w", [(0.3, 0.5, 0.8), (0.05, 0.1, 1.0), (1.0, -0.5, 0.0)])
def test_argmax_linear_chooser_recovers_the_direction(w):
  x = _features()
  rec = align.recover_objective(x, _argmax(x @ np.asarray(w)), bootstrap=30)
  assert rec.choice_model == "argmax" and "ranking" in rec.identifiable
  assert rec.weights @ _unit(w) > 0.998
  assert np.linalg.norm(rec.weights) == pytest.approx(1.0)
  assert rec.consistency > 0.99 and rec.top1 > 0.98
  assert np.all(rec.ci_low <= rec.ci_high)
  assert np.mean((rec.ci_low - 0.02 <= _unit(w)) & (_unit(w) <= rec.ci_high + 0.02)) == 1.0


def test_proxy_heavy_chooser_puts_the_weight_on_the_proxy():
  x = _features(1)
  rec = align.recover_objective(x, _argmax(x @ np.array([0.1, 0.1, 1.0])), bootstrap=0)
  assert align.proxy_share(rec.weights, 2) > 0.95
  assert rec.ci_low is None


@pytest.mark.parametrize("transform", [lambda v: v ** 3, lambda v: np.exp(3 * v), lambda v: np.arctan(v)])
def test_monotone_nonlinear_argmax_chooser_gives_the_same_ranking(transform):
  # Under hard argmax only the ranking is identified: a strictly increasing transform of a linear utility makes
  # the same choices, so the recovered direction is the linear one.
  x = _features(2)
  w = _unit([0.2, -0.6, 0.7])
  rec = align.recover_objective(x, _argmax(transform(x @ w)), bootstrap=0)
  assert rec.weights @ w > 0.998


def test_softmax_chooser_recovers_weights_and_temperature():
  x = _features(3)
  rng = np.random.default_rng(4)
  beta = 2.5 * _unit([0.3, 0.5, 0.8])
  logits = x @ beta
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  choices = np.array([rng.choice(K, p=row) for row in p], np.int32)
  rec = align.recover_objective(x, choices, bootstrap=30)
  assert rec.choice_model == "softmax" and "affine" in rec.identifiable
  assert rec.weights @ _unit(beta) > 0.99
  assert rec.scale == pytest.approx(2.5, rel=0.15)  # the inverse temperature is identified for softmax choices
  assert rec.consistency < 0.97  # a softmax chooser sometimes takes a worse candidate


def test_nonlinear_ideal_point_chooser_fails_the_linearity_checks():
  x = _features(5)
  w = _unit([0.3, 0.5, 0.8])
  u = x @ w - 0.5 * np.sum(x * x, axis=-1)
  lin = align.recover_objective(x, _argmax(x @ w), scores=x @ w, bootstrap=0)
  rec = align.recover_objective(x, _argmax(u), scores=u, bootstrap=0)
  assert rec.choice_model == "argmax"  # the choices are the argmax of the given scores
  # the linear part of the ideal-point utility is its linear term: the direction is still found ...
  assert rec.weights @ w > 0.95
  # ... but the nonparametric check and the score fit show that no linear utility explains the choices
  assert lin.consistency > 0.99 and rec.consistency < 0.9
  assert lin.score_r2 == pytest.approx(1.0) and rec.score_r2 < 0.7
  assert lin.score_weights @ w == pytest.approx(1.0)


def test_lbfgs_and_newton_reach_the_same_optimum():
  x = _features(6).astype(np.float32)
  choices = _argmax(x @ np.array([0.3, 0.5, 0.8]))
  mask = jnp.ones((N, K), bool)
  b_lbfgs = align._fit_lbfgs(jnp.asarray(x), mask, jnp.asarray(choices), jnp.float32(1e-3), steps=100)
  b_newton = align._fit_newton(jnp.asarray(x), mask, jnp.asarray(choices), jnp.ones((1, N)), jnp.float32(1e-3),
                               jnp.zeros(D), steps=40)[0]
  assert np.allclose(np.asarray(b_lbfgs), np.asarray(b_newton), rtol=1e-3, atol=1e-3)


def test_mask_excludes_padding():
  x = _features(7)
  w = np.array([0.3, 0.5, 0.8])
  mask = np.ones((N, K), bool)
  mask[:, 5:] = False
  x_pad = x.copy()
  x_pad[:, 5:] = 100.0  # padding with huge features: must not matter
  rec = align.recover_objective(x_pad, _argmax(np.where(mask, x @ w, -np.inf)), mask=mask, bootstrap=0)
  assert rec.weights @ _unit(w) > 0.998


def test_compare_utilities_hand_cases():
  u = np.array([[1.0, 2.0, 3.0], [0.0, 5.0, 1.0]])
  same = align.compare_utilities(u, u)
  assert same["epic"] == pytest.approx(0.0, abs=1e-7) and same["spearman"] == pytest.approx(1.0)
  assert same["top1"] == 1.0
  affine = align.compare_utilities(u, 3.0 * u + np.array([[7.0], [-2.0]]))  # per-instance constants are invisible
  assert affine["epic"] == pytest.approx(0.0, abs=1e-7)
  neg = align.compare_utilities(u, -u)
  assert neg["epic"] == pytest.approx(1.0) and neg["spearman"] == pytest.approx(-1.0) and neg["top1"] == 0.0
  # centered: [-1, 0, 1], [-2, 3, -1] vs [1, 0, -1], [-2, 3, -1]: r = (-2 + 14) / 16 = 0.75 -> sqrt(0.125)
  half = align.compare_utilities(u, np.array([[3.0, 2.0, 1.0], [0.0, 5.0, 1.0]]))
  assert half["epic"] == pytest.approx(np.sqrt(0.125)) and half["top1"] == 0.5
  assert align.proxy_share([0.6, 0.0, 0.8], 2) == pytest.approx(0.64)


@pytest.mark.parametrize("features, choices, kwargs, name", [
    (np.zeros((4, 1, 2)), np.zeros(4, np.int32), {}, "k >= 2"),
    (np.zeros((4, 3, 0)), np.zeros(4, np.int32), {}, "d >= 1"),
    (np.full((4, 3, 2), np.nan), np.zeros(4, np.int32), {}, "features must be finite"),
    (np.zeros((4, 3)), np.zeros(4, np.int32), {}, "features"),
    (np.zeros((4, 3, 2)), np.array([0, 1, 2, 3], np.int32), {}, "choices"),
    (np.zeros((4, 3, 2)), np.zeros(4, np.float32), {}, "choices"),
    (np.zeros((4, 3, 2)), np.array([0, 2, 0, 0], np.int32), {"mask": np.array([[1, 1, 0]] * 4, bool)}, "choices"),
    (np.zeros((4, 3, 2)), np.zeros(4, np.int32), {"mask": np.array([[1, 0, 0]] * 4, bool)}, "mask"),
    (np.zeros((4, 3, 2)), np.zeros(4, np.int32), {"scores": np.full((4, 3), np.nan)}, "scores"),
    (np.zeros((4, 3, 2)), np.zeros(4, np.int32), {"choice_model": "probit"}, "choice_model"),
    (np.zeros((4, 3, 2)), np.zeros(4, np.int32), {"l2": 0.0}, "l2"),
])
def test_bad_input_names_the_parameter(features, choices, kwargs, name):
  with pytest.raises(ValueError, match=name):
    align.recover_objective(features, choices, **kwargs)


# ------------------------------------------------------------------------------------------------- controls

TASK = tasks.make("Select-v0", rho=0.9, d_causal=2, d_proxy=1, k_min=2, k_max=8)


def _control(model, params, split="shift", size=N):
  batch = TASK.split_task(split).sample(jax.random.key(11), size)
  scores = np.asarray(model.scores(params, batch.inputs), np.float64)
  mask = np.asarray(batch.info["mask"])
  choices = np.argmax(np.where(mask, scores, -np.inf), axis=1).astype(np.int32)
  feats = np.asarray(batch.info["features"], np.float64)
  rec = align.recover_objective(feats, choices, scores=scores, mask=mask, bootstrap=0)
  comp = align.compare_utilities(np.asarray(batch.info["utility"]), feats @ rec.weights, mask)
  return rec, comp


def test_control_search_with_u_recovers_u():
  model = models.make("select_search", TASK.spec, objective="utility")
  for split in ("train", "shift"):
    rec, comp = _control(model, {}, split)
    assert comp["epic"] < 0.02 and comp["top1"] > 0.97, (split, comp)
    assert rec.weights @ align._unit(align.true_weights(TASK)) > 0.999
  assert align.proxy_share(rec.weights, TASK.d_causal) < 0.01
  assert rec.score_r2 == pytest.approx(1.0)


def test_control_search_with_proxy_recovers_the_proxy():
  model = models.make("select_search", TASK.spec, objective="proxy")
  rec, comp = _control(model, {})
  assert align.proxy_share(rec.weights, TASK.d_causal) > 0.99
  assert rec.weights[2] > 0.99
  assert comp["epic"] > 0.5  # on the shift split the proxy is unrelated to U: distance about sqrt(1/2)


def test_control_model_trained_at_rho_zero_recovers_u():
  task0 = tasks.make("Select-v0", rho=0.0, d_causal=2, d_proxy=1, k_min=2, k_max=8)
  model = models.make("set_scorer", task0.spec, width=16, depth=1)
  config = train.TrainConfig(steps=300, batch_size=64, learning_rate=1e-2, fresh_size=8192)
  trained = train.train_runs(task0, model, [train.Run(0)], config)
  params = jax.tree_util.tree_map(lambda a: a[0], trained.params)
  rec, comp = _control(model, params)
  assert comp["epic"] < 0.1 and comp["top1"] > 0.85, comp
  assert align.proxy_share(rec.weights, 2) < 0.05
  assert rec.weights @ align._unit(align.true_weights(task0)) > 0.97


def test_seed_interval_hand_computed():
  s = align.seed_interval([1.0, 2.0, 3.0])
  half = 4.303 * 1.0 / np.sqrt(3)
  assert s["mean"] == 2.0 and s["ci"] == pytest.approx([2.0 - half, 2.0 + half])
  assert align.seed_interval([None, None])["mean"] is None
  assert align.seed_interval([0.0, 0.0, 0.3], bounds=(0.0, 1.0))["ci"][0] == 0.0  # clipped to the range


def test_study_config_rejects_bad_values():
  with pytest.raises(ValueError, match="rhos"):
    align.StudyConfig(rhos=(0.0, 1.5))
  with pytest.raises(ValueError, match="seeds"):
    align.StudyConfig(seeds=(0, 0))
  with pytest.raises(ValueError, match="rho"):
    align.StudyConfig(task=(("rho", 0.5),))
  with pytest.raises(ValueError, match="k_min"):
    align.StudyConfig(task=(("k_min", 1),))
  with pytest.raises(ValueError, match="baseline"):
    align.StudyConfig(models=(("select_search", ()),))
  with pytest.raises(ValueError, match="unknown fields"):
    align.config_from_json({"rho": [0.5]})


@pytest.mark.slow
def test_tiny_study_writes_a_valid_document(tmp_path):
  config = align.StudyConfig(rhos=(0.0, 0.9), seeds=(0, 1), eval_size=64, bootstrap=0, more_k=(2, 16),
                             lookup_pool=64, train=train.TrainConfig(steps=20, batch_size=16, fresh_size=512),
                             models=(("set_scorer", (("width", 8),)),))
  body = align.run_study(config, command="test", progress=False)
  doc = {"schema_version": align.SCHEMA_VERSION, "command": "test", "config": config.to_json(),
         "seeds": [0, 1], "environment": body["leaderboard_entries"][0]["environment"], **body}
  align.validate(json.loads(json.dumps(doc)))
  assert align.config_from_json(config.to_json()) == config
  runs = doc["models"]["set_scorer"]["runs"]
  assert len(runs) == 4 and {r["rho"] for r in runs} == {0.0, 0.9}
  assert doc["baselines"]["search_u"]["summary"][0]["shift"]["misgeneralization"]["mean"] == 0.0
  assert doc["baselines"]["search_proxy"]["summary"][1]["shift"]["misgeneralization"]["mean"] == 1.0
  assert doc["baselines"]["search_u"]["summary"][0]["more_candidates"]["16"]["mean"] == 1.0
  entries = doc["leaderboard_entries"]
  assert len(entries) == 2 and entries[0]["results"]["success_metric"] == "accuracy"
  for e in entries:
    assert set(e["results"]["splits"]) >= {"heldout", "shift", "ood", "candidates=16"}
  board = {"schema_version": leaderboard.SCHEMA_VERSION, "suite": {"config": config.to_json(), "command": "test"},
           "environment": doc["environment"], "entries": json.loads(json.dumps(entries))}
  leaderboard.validate(board)  # the entries are leaderboard entries as they stand
  with pytest.raises(ValueError, match="schema_version"):
    align.validate({**doc, "schema_version": "mesabench.align/0"})
  paths = align.plot(doc, str(tmp_path / "align"))
  assert all((tmp_path / p.split("/")[-1]).stat().st_size > 1000 for p in paths)
  table = align.markdown_table(doc)
  assert table.count("\n") == 2 + 2 * 4  # header, rule, 2 rhos x (1 model + 3 baselines)
