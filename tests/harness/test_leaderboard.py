"""harness.leaderboard: the schema (jsonschema), validation naming the bad field, one rule for non-finite values,
atomic writes readable by others; and harness.provenance's writers."""
import copy
import json
import math
import os
import stat

import pytest

from mesabench.harness import leaderboard
from mesabench.harness import provenance
from mesabench.harness import suite

SUITE = {"config_version": 1, "tasks": [{"id": "ModSearch-v0", "params": {"bits": 6, "width": 8}}],
         "models": [{"id": "lookup", "config": {}}], "pool_sizes": [8, 16], "seeds": [0, 1],
         "train": {"steps": 0, "eval_size": 16, "curve_points": 2}}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def board(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("lb") / "board.json")
  suite.run_suite(SUITE, path, command="test", log=lambda s: None, save_params=False)
  return path


def test_schema_file_is_the_schema():
  assert provenance.read_json(os.path.join(REPO, "results", "leaderboard.schema.json")) == leaderboard.SCHEMA


@pytest.mark.parametrize("mutate,path", [
    (lambda d: d.update(schema_version="mesabench.leaderboard/1"), "$.schema_version"),
    (lambda d: d["entries"][1].pop("command"), "$.entries[1]"),
    (lambda d: d["entries"][0]["results"]["splits"]["pool"]["loss"].update(mean="low"),
     "$.entries[0].results.splits.pool.loss.mean"),
    (lambda d: d["entries"][0].update(status="great"), "$.entries[0].status"),
    (lambda d: d["entries"][0].update(extra=1), "$.entries[0]"),
    (lambda d: d["entries"][0]["results"]["compute"].update(params="many"), "$.entries[0].results.compute.params"),
    (lambda d: d["entries"].append(copy.deepcopy(d["entries"][0])), "$.entries[2].id")])
def test_validation_rejects_bad_files_naming_the_field(board, mutate, path):
  doc = leaderboard.read(board)
  mutate(doc)
  with pytest.raises(leaderboard.SchemaError) as err:
    leaderboard.validate(doc)
  assert err.value.path == path


def test_non_finite_values_are_written_as_null_and_read_back(board, tmp_path):
  doc = leaderboard.read(board)
  doc["entries"][0]["results"]["splits"]["heldout"]["loss"]["mean"] = math.inf
  doc["entries"][0]["results"]["compute"]["params"] = math.nan
  path = str(tmp_path / "inf.json")
  leaderboard.write(path, doc)
  back = leaderboard.read(path)  # the writer's output is always readable
  assert back["entries"][0]["results"]["splits"]["heldout"]["loss"]["mean"] is None
  assert back["entries"][0]["results"]["compute"]["params"] is None


def test_read_errors_are_value_errors_naming_the_file(tmp_path):
  bad = tmp_path / "latin1.json"
  bad.write_bytes(b'{"schema_version": "caf\xe9"}')
  with pytest.raises(leaderboard.SchemaError, match="not UTF-8"):
    leaderboard.read(str(bad))
  with pytest.raises(ValueError, match="cannot read"):
    leaderboard.read(str(tmp_path / "missing.json"))
  (tmp_path / "trunc.json").write_text('{"schema_version": ')
  with pytest.raises(leaderboard.SchemaError, match="not valid JSON"):
    leaderboard.read(str(tmp_path / "trunc.json"))


def test_results_are_written_atomically_and_readable_by_others(tmp_path):
  path = str(tmp_path / "r.json")
  old = os.umask(0o022)
  try:
    provenance.write_json(path, {"a": 1})
    provenance.write_text(str(tmp_path / "t.md"), "| x |\n")
  finally:
    os.umask(old)
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
  assert stat.S_IMODE(os.stat(tmp_path / "t.md").st_mode) == 0o644
  assert sorted(os.listdir(tmp_path)) == ["r.json", "t.md"]  # no temporary left behind
  with open(path, encoding="utf-8") as f:
    assert json.load(f) == {"a": 1}


def test_comparable_drops_only_what_varies_between_runs(board):
  doc = leaderboard.read(board)
  comp = leaderboard.comparable(doc)
  assert "environment" not in comp and "command" not in comp["suite"]
  assert all("timing" not in e and "environment" not in e for e in comp["entries"])
  assert comp["entries"][0]["results"] == doc["entries"][0]["results"]
