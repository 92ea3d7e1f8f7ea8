"""Devices, processes and mid-training checkpoints: flag parsing, padding and sharding rules (in process); sweeps on
1/2/8 forced CPU devices, a 2-process suite and a SIGKILLed-then-resumed suite (in subprocesses, whose backends
start with the settings they need; the child is ``tests/harness/distributed_child.py``)."""
import os
import signal
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesabench.harness import checkpoints
from mesabench.harness import distributed
from mesabench.harness import leaderboard

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHILD = [sys.executable, "-m", "tests.harness.distributed_child"]


def _env(devices: int | None = None) -> dict[str, str]:
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  flags = [f for f in env.get("XLA_FLAGS", "").split() if "force_host_platform_device_count" not in f]
  if devices:
    flags.append(f"--xla_force_host_platform_device_count={devices}")
  env["XLA_FLAGS"] = " ".join(flags)
  return env


def _run(args, timeout, devices=None):
  proc = subprocess.run(CHILD + args, cwd=ROOT, env=_env(devices), capture_output=True, text=True, timeout=timeout)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


# ------------------------------------------------------------------------------------------------- in process


def test_flag_parsing():
  assert distributed.parse_devices("all") is None and distributed.parse_devices("3") == 3
  for bad in ("0", "-1", "x", "1.5"):
    with pytest.raises(ValueError, match="devices"):
      distributed.parse_devices(bad)
  assert distributed.parse_mesh("runs:4,data:2") == {"runs": 4, "data": 2}
  assert distributed.parse_mesh("data:2") == {"runs": 1, "data": 2}
  assert distributed.parse_mesh(None) is None
  for bad in ("runs:0", "runs:2,runs:2", "model:2", "runs=2", "runs:"):
    with pytest.raises(ValueError, match="mesh"):
      distributed.parse_mesh(bad)


def test_one_device_builds_no_mesh_and_too_many_devices_is_an_error():
  assert distributed.make_mesh(1) is None  # the default: the unsharded path, unchanged
  assert distributed.make_mesh("1", None) is None
  with pytest.raises(ValueError, match="devices"):
    distributed.make_mesh(len(jax.local_devices()) + 1)
  with pytest.raises(ValueError, match="mesh"):
    distributed.make_mesh(4, {"runs": 2, "data": 1})


@given(runs=st.integers(1, 100), devices=st.integers(1, 16))
def test_padding_gives_every_device_the_same_number_of_runs_and_at_least_two(runs, devices):
  padded = distributed.padded_runs(runs, devices)
  if devices == 1:
    assert padded == runs
    return
  brute = next(p for p in range(runs, 10**4) if p % devices == 0 and p // devices >= 2)
  assert padded == brute


def test_pad_leading_repeats_the_last_row():
  tree = {"a": np.arange(6).reshape(3, 2), "b": np.arange(3)}
  out = distributed.pad_leading(tree, 5)
  np.testing.assert_array_equal(out["a"], [[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]])
  np.testing.assert_array_equal(out["b"], [0, 1, 2, 2, 2])


def test_sweep_programs_sum_in_one_order_whatever_the_number_of_runs():
  """With ``compiler_options`` (YNNPACK fusions off on CPU), a per-run sum over an [8, 128] block gives the same
  float32 bits for 2, 3, 4, 8 and 32 runs in the vmap, and equals the plain left-to-right float32 sum (numpy loop);
  XLA:CPU's default hands the >= 4,096-element fusions of 4+ runs to YNNPACK, which sums in another order."""
  opts = distributed.compiler_options()
  if jax.default_backend() == "cpu":
    assert opts == {"xla_cpu_experimental_ynn_fusion_type": ""}
  x = np.random.default_rng(0).standard_normal((32, 8, 128)).astype(np.float32)
  f = jax.jit(jax.vmap(lambda a: a.sum(0)), compiler_options=opts)
  seq = x[:2, 0].copy()
  for i in range(1, 8):
    seq = (seq + x[:2, i]).astype(np.float32)
  for r in (2, 3, 4, 8, 32):
    np.testing.assert_array_equal(np.asarray(f(x[:r]))[:2], seq, err_msg=f"{r} runs")


def test_round_robin_shares_cover_every_item_once():
  items = list(range(11))
  shares = [distributed.shard(items, k, 3) for k in range(3)]
  assert sorted(sum(shares, [])) == items and shares[1] == [1, 4, 7, 10]
  with pytest.raises(ValueError, match="index"):
    distributed.shard(items, 3, 3)


def test_initialize_is_off_by_default_and_checks_explicit_settings(monkeypatch):
  for name in ("MESABENCH_COORDINATOR", "MESABENCH_NUM_PROCESSES", "MESABENCH_PROCESS_ID"):
    monkeypatch.delenv(name, raising=False)
  assert distributed.initialize() is False
  with pytest.raises(ValueError, match="coordinator"):
    distributed.initialize("nohostport", 2, 0)
  with pytest.raises(ValueError, match="process_id"):
    distributed.initialize("localhost:1", 2, 2)
  monkeypatch.setenv("MESABENCH_NUM_PROCESSES", "two")
  with pytest.raises(ValueError, match="num_processes"):
    distributed.initialize("localhost:1")


# ------------------------------------------------------------------------------------------------ subprocesses


@pytest.mark.slow
def test_sweeps_on_1_2_and_8_devices(tmp_path):
  """5 runs (padded to 2 per device): on one device and split over 2 and over 8 devices (3 and 2 runs per device),
  bit for bit the same; the first two runs alone on one device equal their rows of the 5-run sweep (a run's
  numbers do not depend on the sweep's size: YNNPACK fusions off); one run alone is never sharded (1 and 8 devices
  equal); data parallel (runs:4,data:2): the first loss within 1e-5 relative, after 24 steps within 5e-3 (measured
  6e-4: Adam's normalized updates amplify the reordered sums)."""
  out = str(tmp_path / "sweep.npz")
  _run(["sweep", out], timeout=600, devices=8)
  z = np.load(out)
  keys = [k.split("/", 1)[1] for k in z.files if k.startswith("one/")]
  for k in keys:
    np.testing.assert_array_equal(z["runs2/" + k], z["runs8/" + k], err_msg=k)
    np.testing.assert_array_equal(z["lone/" + k], z["lone8/" + k], err_msg=k)
    np.testing.assert_array_equal(z["runs2/" + k], z["one/" + k], err_msg=k)
    if k.startswith("params"):
      np.testing.assert_array_equal(z["first2/" + k], z["one/" + k][:2], err_msg=k)
  np.testing.assert_array_equal(z["first2/train_loss"], z["one/train_loss"][:, :2])
  np.testing.assert_allclose(z["runs4data2/train_loss"][0], z["one/train_loss"][0], rtol=1e-5)  # step 1
  np.testing.assert_allclose(z["runs4data2/train_loss"], z["one/train_loss"], rtol=5e-3)  # measured 6e-4 at step 24
  assert not np.array_equal(z["runs4data2/train_loss"], z["one/train_loss"])  # a real data-parallel computation
  assert z["one/train_loss"].shape == (3, 5)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
  """The toy suite in one process, uninterrupted, no checkpoints: the reference."""
  out = str(tmp_path_factory.mktemp("single") / "lb.json")
  _run(["suite", out], timeout=600)
  return out


@pytest.mark.slow
def test_two_processes_merge_into_the_single_process_leaderboard(tmp_path, single_process):
  out = str(tmp_path / "lb.json")
  port = _free_port()
  procs = [subprocess.Popen(CHILD + ["suite", out, "--process_id", str(k), "--num_processes", "2", "--port",
                                     str(port)], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for k in range(2)]
  try:
    outs = [p.communicate(timeout=600) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
  merged, alone = leaderboard.read(out), leaderboard.read(single_process)
  assert [e["id"] for e in merged["entries"]] == [e["id"] for e in alone["entries"]]
  assert leaderboard.comparable(merged) == leaderboard.comparable(alone)
  assert not os.path.exists(os.path.splitext(out)[0] + ".shards/process-0-of-2.json")  # merged, then removed
  for e, f in zip(merged["entries"], alone["entries"]):  # saved parameters: what detect --entry loads
    if "artifacts" in e:
      a = checkpoints.load_params(out, e["artifacts"]["params"])
      b = checkpoints.load_params(single_process, f["artifacts"]["params"])
      assert a[0] == b[0]
      jax.tree_util.tree_map(np.testing.assert_array_equal, a[1], b[1])


@pytest.mark.slow
def test_a_run_killed_mid_training_resumes_to_the_same_numbers(tmp_path, single_process):
  out = str(tmp_path / "lb.json")
  child = subprocess.Popen(CHILD + ["suite", out, "--checkpoint_every", "10", "--pause", "2"], cwd=ROOT, env=_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  seen = []
  try:
    for line in child.stdout:
      if line.startswith("CHECKPOINT"):
        seen.append(int(line.split()[1]))
        if len(seen) == 2:  # the child now sleeps after its second save: kill it mid-training
          os.kill(child.pid, signal.SIGKILL)
          break
  finally:
    child.kill()
    child.wait(timeout=60)
  assert seen == [10, 20] and child.returncode == -signal.SIGKILL
  assert not os.path.exists(out)  # killed before its first entry was written
  ckpt_root = os.path.splitext(out)[0] + ".ckpt"
  (folder,) = os.listdir(ckpt_root)
  assert checkpoints.TrainCheckpointer(os.path.join(ckpt_root, folder)).latest_step() == 20
  proc = _run(["suite", out, "--checkpoint_every", "10", "--resume"], timeout=600)
  steps = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("CHECKPOINT")]
  assert steps == [30, 40, 50, 60]  # continued from step 20, not from 0
  assert leaderboard.comparable(leaderboard.read(out)) == leaderboard.comparable(leaderboard.read(single_process))
  assert not os.listdir(ckpt_root)  # removed once the group's entries were written
  resumed, alone = leaderboard.read(out), leaderboard.read(single_process)
  for e, f in zip(resumed["entries"], alone["entries"]):
    if "artifacts" in e:
      a = checkpoints.load_params(out, e["artifacts"]["params"])[1]
      b = checkpoints.load_params(single_process, f["artifacts"]["params"])[1]
      jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_the_binaries_refuse_bad_device_and_process_flags_in_one_line(tmp_path):
  cases = [
      (["run", "--devices=0"], "--devices"),
      (["run", "--mesh=runs:0"], "--mesh"),
      (["run", "--devices=64"], "devices"),
      (["run", "--devices=4", "--mesh=runs:2"], "mesh"),
      (["run", "--checkpoint_every=0"], "--checkpoint_every"),
      (["run", "--num_processes=2", "--process_id=2"], "--process_id"),
      (["run", "--coordinator=nohost"], "--coordinator"),
      (["run", "--num_processes=2", "--checkpoint_every=5"], "--checkpoint_every"),
      (["transitions", "--mesh=model:2"], "--mesh"),
  ]
  env = _env()
  procs = [subprocess.Popen([sys.executable, "-m", "mesabench.benchmarks." + args[0], *args[1:],
                             f"--out={tmp_path / ('out%d.json' % i)}"], cwd=str(tmp_path), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i, (args, _) in enumerate(cases)]
  for (args, needle), p in zip(cases, procs):
    _, stderr = p.communicate(timeout=180)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, stderr[-2000:])
    assert needle in lines[0], (args, lines[0])
  assert not [f for f in os.listdir(tmp_path) if f.endswith(".json")]
