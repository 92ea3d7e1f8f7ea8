"""Leaderboard schema and validation, the suite runner's resume, compare and tables (library and binaries)."""
import copy
import json
import os
import subprocess
import sys

import pytest

from mesabench.benchmarks import compare, leaderboard, record, run, tables

SUITE = {"config_version": 1, "tasks": [{"id": "ModSearch-v0", "params": {"bits": 6, "width": 8}}],
         "models": [{"id": "mlp", "config": {"width": 8, "depth": 1}}, {"id": "lookup", "config": {}}],
         "pool_sizes": [8, 16], "seeds": [0, 1],
         "train": {"steps": 6, "batch_size": 8, "eval_size": 16, "curve_points": 2}}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def full(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("lb") / "full.json")
  run.run_suite(SUITE, path, command="test", log=lambda s: None)
  return path


def test_suite_writes_a_valid_leaderboard(full):
  doc = leaderboard.read(full)
  assert [e["id"].split("/")[:3] for e in doc["entries"]] == [
      ["ModSearch-v0", "mlp", "pool=8"], ["ModSearch-v0", "mlp", "pool=16"],
      ["ModSearch-v0", "lookup", "pool=8"], ["ModSearch-v0", "lookup", "pool=16"]]
  entry = doc["entries"][0]
  assert entry["command"].startswith("python -m mesabench.benchmarks.run --config_json=")
  assert entry["model"]["config"]["head"] == "classes" and entry["train"]["steps"] == 6
  assert entry["results"]["splits"]["heldout"]["loss"]["per_seed"][1] is not None


def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(full, tmp_path):
  path = str(tmp_path / "resumed.json")
  partial = run.run_suite(SUITE, path, command="test", max_entries=3, log=lambda s: None)
  assert len(leaderboard.read(path)["entries"]) == 3 == len(partial["entries"])
  run.run_suite(SUITE, path, resume=True, command="test", log=lambda s: None)
  assert leaderboard.comparable(leaderboard.read(path)) == leaderboard.comparable(leaderboard.read(full))


def test_schema_file_is_the_schema():
  assert provenance.read_json(os.path.join(REPO, "results", "leaderboard.schema.json")) == leaderboard.SCHEMA


@pytest.mark.parametrize("mutate,path", [
    (lambda d: d.update(schema_version="mesabench.leaderboard/0"), "$.schema_version"),
    (lambda d: d["entries"][1].pop("command"), "$.entries[1].command"),
    (lambda d: d["entries"][0]["results"]["splits"]["pool"]["loss"].update(mean="low"),
     "$.entries[0].results.splits.pool.loss.mean"),
    (lambda d: d["entries"][2].update(status="great"), "$.entries[2].status"),
    (lambda d: d["entries"][0].update(extra=1), "$.entries[0].extra"),
    (lambda d: d["entries"].append(copy.deepcopy(d["entries"][0])), "$.entries[4].id")])
def test_validation_rejects_bad_files_naming_the_field(full, mutate, path):
  doc = leaderboard.read(full)
  mutate(doc)
  with pytest.raises(leaderboard.SchemaError) as err:
    leaderboard.validate(doc)
  assert err.value.path == path


def test_compare_flags_regressions_and_tables_render(full, tmp_path):
  old = leaderboard.read(full)
  new = copy.deepcopy(old)
  new["entries"][0]["results"]["splits"]["heldout"]["loss"]["mean"] += 0.5
  rows, bad = compare.compare(old, new, ["heldout.loss", "pool.accuracy"])
  assert len(rows) == 8 and [b["id"] for b in bad] == [old["entries"][0]["id"]]
  assert "REGRESSION" in compare.format_rows(rows)
  md = tables.markdown(old)
  assert md.count("\n") == 2 + 4 and "| ModSearch-v0 | lookup | 16 |" in md
  tex = tables.latex(old)
  assert tex.startswith(r"\begin{tabular}") and r"\pm" in tex
  # The binaries: exit 1 when gating a regression, 2 on a malformed file (with the field's path), 0 otherwise.
  new_path, bad_path = str(tmp_path / "new.json"), str(tmp_path / "bad.json")
  leaderboard.write(new_path, new)
  broken = copy.deepcopy(old)
  del broken["entries"][0]["results"]["compute"]
  with open(bad_path, "w") as f:
    json.dump(broken, f)
  py = [sys.executable, "-m", "mesabench.benchmarks.compare", full]
  assert subprocess.run(py + [new_path, "--gate"], capture_output=True).returncode == 1
  assert subprocess.run(py + [new_path], capture_output=True).returncode == 0
  res = subprocess.run(py + [bad_path], capture_output=True, text=True)
  assert res.returncode == 2 and "$.entries[0].results.compute" in res.stderr
