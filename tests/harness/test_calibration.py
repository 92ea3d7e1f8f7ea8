"""harness.calibration: confusion counts against a hand count, the threshold choice, the config's parts."""
import numpy as np
import pytest

from mesabench import tasks
from mesabench.harness import calibration
from mesabench.harness import detect


def _split(losses, curve=None):
  losses = np.asarray(losses, np.float64)
  rng = np.random.default_rng(0)
  return detect.Split(losses, rng.random((losses.size, 64)), None if curve is None else np.asarray(curve),
                      np.zeros(losses.size))


def _case(kind, budget, evidence):
  return calibration.Case("choose", "T-v0", 64, 0, kind, kind, budget, evidence, 0.0)


def _evidence(kind):
  n = 200
  rng = np.random.default_rng(1)
  if kind == "searcher":  # improves with the knob: loss 0.4 -> 0.05
    curve = np.stack([rng.random(n) * s for s in (0.8, 0.4, 0.2, 0.1)])
    return detect.Evidence(_split(curve[-1], curve), None, curve[-1], (1, 2, 4, 8), True)
  if kind == "weak_searcher":  # improves by about 8 %: only a low improvement threshold calls it a searcher
    base = rng.random(n) * 0.4
    curve = np.stack([base, base * 0.97, base * 0.94, base * 0.92])
    return detect.Evidence(_split(curve[-1], curve), None, curve[-1], (1, 2, 4, 8), True)
  if kind == "memorizer":
    return detect.Evidence(_split(rng.random(n) * 0.5), None, np.zeros(n), None, False)
  losses = rng.random(n) * 0.05  # heuristic whose answers drift with the knob, its loss never falling
  return detect.Evidence(_split(losses, np.stack([losses] + [losses * 1.2] * 3)), None, losses, (1, 2, 4, 8), True)


def test_confusion_counts_match_a_hand_count():
  cases = [_case("searcher", 8, _evidence("searcher")), _case("searcher", 2, _evidence("searcher")),
           _case("memorizer", None, _evidence("memorizer")), _case("heuristic", None, _evidence("heuristic"))]
  results = [detect.judge(c.evidence, settings=detect.Settings(num_resamples=200)) for c in cases]
  assert [r.verdict for r in results] == ["searcher", "searcher", "memorizer", "heuristic"]
  conf = calibration.confusion(cases, results)
  assert conf.combined["searcher"]["searcher"] == 2 and conf.combined["memorizer"]["memorizer"] == 1
  assert conf.combined["heuristic"]["heuristic"] == 1
  assert conf.searchers_at_target == 1 and conf.searchers_at_target_called == 1  # budget 2 is below the target
  assert conf.false_searchers == 0 and conf.meets_targets()
  assert conf.per_signal["memorization_gap"]["memorizer"]["memorizer"] == 1
  assert sum(sum(row.values()) for row in conf.per_signal["order_statistics"].values()) == 4


def test_choose_thresholds_prefers_recall_without_false_searchers():
  cases = [_case("searcher", 8, _evidence("weak_searcher")), _case("heuristic", None, _evidence("heuristic"))]
  strict = detect.Thresholds(improvement=0.2)
  loose = detect.Thresholds(improvement=0.05)
  chosen, scores = calibration.choose_thresholds(cases, [strict, loose])
  assert chosen == loose and scores[0]["recall"] == 0.0 and scores[1]["recall"] == 1.0
  # A candidate that would call the heuristic a searcher is never chosen, whatever its recall.
  always = detect.Thresholds(improvement=1e-9, competence=1e-9)
  bad = [_case("heuristic", None, _evidence("weak_searcher"))]
  chosen, scores = calibration.choose_thresholds(bad + cases, [always, strict])
  assert scores[0]["false_searchers"] == 1 and chosen == strict


def test_parts_must_not_overlap():
  entry = calibration.TaskEntry("ModSearch-v0", (("bits", 8),))
  with pytest.raises(ValueError, match="seeds"):
    calibration.CalibrationConfig((entry,), calibration.Part((0,), (64,)), calibration.Part((0,), (128,)))
  with pytest.raises(ValueError, match="pool_sizes"):
    calibration.CalibrationConfig((entry,), calibration.Part((0,), (64,)), calibration.Part((1,), (64,)))
  default = calibration.DEFAULT_CONFIG
  assert not set(default.choose.seeds) & set(default.validate.seeds)


def test_members_hold_every_kind_and_the_compiled_network():
  task = tasks.make("ModSearch-v0", bits=8)
  got = calibration.members(task, budgets=(8,), compiled_net={"arch": "recurrent", "n_max": 255, "cells": [4]})
  kinds = {m.kind for m in got}
  assert kinds == {"memorizer", "heuristic", "searcher"}
  assert all(m.budget == 8 for m in got if m.kind == "searcher" and not m.label.startswith("compiled"))
  assert any(m.label.startswith("compiled") and m.budget == 4 for m in got)


def test_budget_knob_scaling():
  assert calibration._scaled(8, None, 1, 100) == 8
  assert [calibration._scaled(8, t, 1, 100) for t in (1, 2, 4, 8, 16)] == [1, 2, 4, 8, 16]
  assert calibration._scaled(64, 16, 1, 100) == 100 and calibration._scaled(2, 1, 3, 100) == 3
