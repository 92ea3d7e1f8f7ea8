"""The compiled binary: one line and exit 2 on bad input, before any work; outputs under --out only."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def run(*args, cwd):
  return subprocess.run([sys.executable, "-m", "mesabench.benchmarks.compiled", *args], cwd=cwd,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args,field", [
    ([], "--explain, --size_law"), (["--explain", "--size_law"], "--explain, --size_law"),
    (["--explain", "--arch=lstm"], "arch"), (["--explain", "--n=0"], "n must"),
    (["--explain", "--arch=polymax", "--coeffs=1,x"], "--coeffs"),
    (["--explain", "--arch=polymax", "--grid_points=2"], "grid_points"),
    (["--size_law", "--max_exp=40"], "--max_exp"), (["--explain", "extra"], "unexpected")])
def test_bad_input_is_one_line_and_exit_2(args, field, tmp_path):
  r = run(*args, f"--out={tmp_path}", cwd=tmp_path)
  assert r.returncode == 2, r.stderr
  assert r.stderr.count("\n") == 1 and field in r.stderr
  assert os.listdir(tmp_path) == []


def test_explain_writes_under_out_and_refuses_to_overwrite(tmp_path):
  out = tmp_path / "runs"
  r = run("--explain", "--arch=banded", "--n=100", f"--out={out}", cwd=tmp_path)
  assert r.returncode == 0, r.stderr
  path = out / "compiled_explain_banded_n100.txt"
  assert path.read_text() in r.stdout and "equal" in r.stdout
  again = run("--explain", "--arch=banded", "--n=100", f"--out={out}", cwd=tmp_path)
  assert again.returncode == 2 and "overwrite" in again.stderr
  assert run("--explain", "--arch=banded", "--n=100", f"--out={out}", "--overwrite", cwd=tmp_path).returncode == 0
