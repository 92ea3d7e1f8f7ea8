"""harness.compare: the CI gate never passes on nothing, on a missing or non-finite value, or on a typo."""
import copy
import math

import pytest

from mesabench.harness import compare
from mesabench.harness import leaderboard
from mesabench.harness import suite
from mesabench.harness import tables

SUITE = {"config_version": 1, "tasks": [{"id": "ModSearch-v0", "params": {"bits": 6, "width": 8}}],
         "models": [{"id": "lookup", "config": {}}], "pool_sizes": [8, 16], "seeds": [0, 1],
         "train": {"steps": 0, "eval_size": 16, "curve_points": 2}}


@pytest.fixture(scope="module")
def old(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("lb") / "old.json")
  suite.run_suite(SUITE, path, command="test", log=lambda s: None, save_params=False)
  return leaderboard.read(path)


def _heldout(doc, i=0):
  return doc["entries"][i]["results"]["splits"]["heldout"]


def test_identical_files_pass(old):
  report = compare.compare(old, copy.deepcopy(old), ["heldout.loss", "heldout.accuracy"])
  assert report.passed and report.compared == 4 and not report.failures


def test_a_worse_loss_and_a_lower_accuracy_are_regressions(old):
  new = copy.deepcopy(old)
  _heldout(new)["loss"]["mean"] += 0.5
  _heldout(new, 1)["accuracy"]["mean"] -= 0.5
  report = compare.compare(old, new, ["heldout.loss", "heldout.accuracy"])
  assert [(r.id, r.metric) for r in report.regressions] == [
      (old["entries"][0]["id"], "heldout.loss"), (old["entries"][1]["id"], "heldout.accuracy")]
  assert not report.passed and "REGRESSED" in compare.format_report(report)
  better = copy.deepcopy(old)
  _heldout(better)["accuracy"]["mean"] += 0.5  # higher accuracy is better: no regression
  assert compare.compare(old, better, ["heldout.accuracy"]).passed


@pytest.mark.parametrize("value", [None, math.nan])
def test_a_null_or_nan_new_value_fails_the_gate(old, value):
  new = copy.deepcopy(old)
  _heldout(new)["loss"]["mean"] = value
  report = compare.compare(old, new, ["heldout.loss"])
  assert not report.passed and report.failures[0].status == "non-finite in new"


def test_a_metric_missing_in_new_fails_the_gate(old):
  new = copy.deepcopy(old)
  del _heldout(new)["loss"]
  assert compare.compare(old, new, ["heldout.loss"]).failures[0].status == "missing in new"


def test_a_mistyped_metric_fails_the_gate(old):
  report = compare.compare(old, copy.deepcopy(old), ["heldout.los"])
  assert not report.passed and report.unknown_metrics == ["heldout.los"]
  assert "heldout.los" in compare.format_report(report)


def test_files_sharing_no_entries_fail_the_gate(old):
  new = copy.deepcopy(old)
  for e in new["entries"]:
    e["id"] += "x"
  report = compare.compare(old, new, ["heldout.loss"])
  assert not report.passed and report.shared_entries == 0 and "share no entries" in compare.format_report(report)


@pytest.mark.parametrize("kwargs,name", [({"metrics": []}, "metrics"), ({"metrics": ["loss"]}, "metrics"),
                                         ({"rtol": -1.0}, "rtol"), ({"atol": math.inf}, "atol")])
def test_bad_arguments_name_the_parameter(old, kwargs, name):
  args = {"metrics": ["heldout.loss"], **kwargs}
  with pytest.raises(ValueError, match=name):
    compare.compare(old, old, **args)


def test_tables_render_and_show_non_finite_as_n_a(old):
  md = tables.markdown(old)
  assert md.count("\n") == 2 + 2 and "| ModSearch-v0 | lookup | 16 |" in md
  doc = copy.deepcopy(old)
  doc["entries"][0]["results"]["compute"]["params"] = None
  _heldout(doc)["loss"]["mean"] = None
  row = tables.rows(doc)[0]
  assert row[3] == "n/a" and row[6] == "n/a"
  tex = tables.latex(old)
  assert tex.startswith(r"\begin{tabular}") and r"\pm" in tex
