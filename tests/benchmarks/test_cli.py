"""Every binary keeps the command-line contract (harness.cli): --help exits 0; bad input gives ONE line naming the
field and exit 2, with no traceback and before any work; existing results are not overwritten.

The binaries are found by listing the package, so a new binary is covered without editing this file. All the
processes of one test start together (each pays Python + JAX start-up, about 2 s) and are awaited with a timeout.
"""
import json
import os
import pkgutil
import subprocess
import sys


from mesabench import benchmarks

BINARIES = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_"))
TIMEOUT_S = 120


def _run_all(cases, cwd):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
  procs = [subprocess.Popen([sys.executable, "-m", "mesabench.benchmarks." + name, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name, args in cases]
  out = []
  for p in procs:
    stdout, stderr = p.communicate(timeout=TIMEOUT_S)
    out.append((p.returncode, stdout, stderr))
  return out


def _assert_one_line_error(case, result, needle):
  rc, _, stderr = result
  lines = [line for line in stderr.splitlines() if line.strip()]
  assert rc == 2, (case, rc, stderr[-2000:])
  assert "Traceback" not in stderr, (case, stderr[-2000:])
  assert len(lines) == 1 and lines[0].startswith("error: "), (case, stderr[-2000:])
  assert needle in lines[0], (case, lines[0])


def test_there_are_binaries():
  assert {"run", "compare", "tables", "detect", "transitions", "tour"} <= set(BINARIES)


def test_help_exits_zero_and_an_unknown_flag_is_one_line_exit_2(tmp_path):
  cases = [(b, ["--help"]) for b in BINARIES] + [(b, ["--no_such_flag=1"]) for b in BINARIES]
  results = _run_all(cases, str(tmp_path))
  for case, res in zip(cases, results):
    if case[1] == ["--help"]:
      assert res[0] == 0 and "Traceback" not in res[2], (case, res[2][-2000:])
      assert "--" in res[1], case  # the flags are listed
    else:
      _assert_one_line_error(case, res, "no_such_flag")
  assert not os.listdir(tmp_path)  # nothing was written


def test_bad_values_are_refused_before_any_work(tmp_path):
  existing = tmp_path / "existing.json"
  existing.write_text("{}")
  (tmp_path / "folder.json").mkdir()
  (tmp_path / "latin1.json").write_bytes(b'{"schema_version": "caf\xe9"}')
  bad_config = json.dumps({"config_version": 1, "tasks": [{"id": "ModSearch-v0", "params": {"bits": 40}}],
                           "models": [{"id": "mlp"}], "pool_sizes": [8], "seeds": [0], "train": {}})
  cases = [
      (("run", ["--seeds="]), "--seeds"),
      (("run", ["--pool_sizes="]), "--pool_sizes"),
      (("run", ["--tasks="]), "--tasks"),
      (("run", ["--out=board.md"]), "--out"),
      (("run", [f"--out={existing}"]), "--resume"),
      (("run", [f"--out={tmp_path / 'folder.json'}"]), "folder"),
      (("run", ["--out=/proc/no/such/dir/x.json"]), "--out"),
      (("run", [f"--config_json={bad_config}", "--out=a.json"]), "bits"),
      (("run", ["--config=missing.json", "--out=b.json"]), "config"),
      (("run", ["--tasks=ModSearch-v0", "--models=lookup", "--pool_sizes=65535", "--out=c.json"]), "pool_sizes"),
      (("run", ["--models=nope", "--out=d.json"]), "config.models"),
      (("run", ["--seeds=1,x", "--out=e.json"]), "--seeds"),
      (("compare", ["missing_a.json", "missing_b.json"]), "cannot read"),
      (("compare", ["only_one.json"]), "exactly OLD.json NEW.json"),
      (("run", ["extra"]), "unexpected arguments"),
      (("tables", ["missing.json"]), "cannot read"),
      (("tables", ["latin1.json"]), "not UTF-8"),
      (("compare", ["latin1.json", "latin1.json"]), "not UTF-8"),
      (("detect", []), "--entry"),
      (("transitions", ["--seeds="]), "--seeds"),
      (("transitions", ["--task_params={bad"]), "--task_params"),
      (("tour", ["--task=NoSuchTask-v0"]), "--task"),
      (("tour", ["--task=ModSearch-v0", "--params={\"bits\": 99}"]), "bits"),
  ]
  results = _run_all([c for c, _ in cases], str(tmp_path))
  for (case, needle), res in zip(cases, results):
    _assert_one_line_error(case, res, needle)
  assert existing.read_text() == "{}"
  assert sorted(os.listdir(tmp_path)) == ["existing.json", "folder.json", "latin1.json"]  # no result was started
