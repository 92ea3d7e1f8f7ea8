"""The reproduce binary: every bad flag is one line on stderr and exit 2 before any work; a smoke run writes the
JSON, the Markdown table and the picture, and refuses to overwrite them."""
import json
import os
import subprocess
import sys

import pytest

TIMEOUT_S = 300


def _run(args, cwd):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
  return subprocess.Popen([sys.executable, "-m", "mesabench.benchmarks.reproduce", *args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_bad_flags_are_one_line_exit_2(tmp_path):
  (tmp_path / "exists.json").write_text("{}")
  (tmp_path / "afile").write_text("x")
  cases = [
      ([], "--study"),
      (["--study=nope"], "--study"),
      (["--study=gd_in_context", "--preset=huge"], "--preset"),
      (["--study=gd_in_context", "--seeds=1,1"], "--seeds"),
      (["--study=gd_in_context", "--seeds=1,x"], "--seeds"),
      (["--study=gd_in_context", "--seeds=-3"], "--seeds"),
      (["--study=gd_in_context", "--out=r.txt"], "--out"),
      (["--study=gd_in_context", f"--out={tmp_path / 'exists.json'}"], "--resume"),
      (["--study=gd_in_context", "--resume", "--overwrite"], "--resume"),
      (["--study=icl_task_diversity", f"--workdir={tmp_path / 'afile'}"], "--workdir"),
      (["--study=gd_in_context", "extra"], "unexpected arguments"),
      (["--plot_only", "--out=missing.json"], "--plot_only"),
      (["--plot_only", f"--out={tmp_path / 'exists.json'}"], "$"),
  ]
  procs = [_run(args, str(tmp_path)) for args, _ in cases]
  for (args, needle), p in zip(cases, procs):
    _, stderr = p.communicate(timeout=TIMEOUT_S)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert p.returncode == 2, (args, stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (args, stderr[-2000:])
  assert sorted(os.listdir(tmp_path)) == ["afile", "exists.json"]  # nothing written


@pytest.mark.slow
def test_smoke_run_writes_three_files(tmp_path):
  args = ["--study=gd_in_context", "--preset=smoke", "--seeds=0", "--out=o/repro.json", "--workdir=w"]
  p = _run(args, str(tmp_path))
  out, err = p.communicate(timeout=TIMEOUT_S)
  assert p.returncode == 0, err[-3000:]
  doc = json.loads((tmp_path / "o" / "repro.json").read_text())
  assert doc["study"] == "gd_in_context" and doc["preset"] == "smoke" and doc["seeds"] == [0]
  assert "mesabench.benchmarks.reproduce" in doc["command"] and doc["wall_s"] > 0
  assert (tmp_path / "o" / "repro.png").stat().st_size > 10_000
  assert "| test loss of one GD step" in (tmp_path / "o" / "repro.md").read_text()
  assert "| quantity |" in out
  again = _run(args, str(tmp_path))
  _, err = again.communicate(timeout=TIMEOUT_S)
  assert again.returncode == 2 and "--resume" in err
  (tmp_path / "o" / "repro.png").unlink()
  redraw = _run(["--plot_only", "--out=o/repro.json"], str(tmp_path))
  _, err = redraw.communicate(timeout=TIMEOUT_S)
  assert redraw.returncode == 0 and (tmp_path / "o" / "repro.png").stat().st_size > 10_000, err[-2000:]
