"""The Maze part of the searchers study: dead-end filling and the BFS variables against plain Python references,
the preset checks, and a smoke run of the whole study (JSON, pictures, leaderboard)."""
import json
import os
import subprocess
import sys
from collections import deque

import jax
import numpy as np
import pytest

from mesabench import tasks
from mesabench.harness import leaderboard
from mesabench.harness import maze_study


@pytest.fixture(scope="module")
def batch():
  return tasks.make("Maze-v0", size=6).sample(jax.random.key(0), 24)


def _python_deadend(open_, start, goal):
  """Dead-end filling one round at a time with Python loops (the reference)."""
  s = open_.shape[0]
  dr, dc = (-1, 0, 1, 0), (0, 1, 0, -1)
  alive = {(r, c) for r in range(s) for c in range(s)}
  removed = np.full((s, s), maze_study.NEVER, np.int64)
  keep = {divmod(int(start), s), divmod(int(goal), s)}
  rnd = 0
  while True:
    rnd += 1
    drop = []
    for r, c in alive:
      if (r, c) in keep:
        continue
      deg = sum(1 for d in range(4) if open_[r, c, d] and (r + dr[d], c + dc[d]) in alive)
      if deg <= 1:
        drop.append((r, c))
    if not drop:
      return removed
    for cell in drop:
      removed[cell] = rnd
      alive.discard(cell)


def test_deadend_filling_against_python_and_leaves_exactly_the_path(batch):
  rounds = maze_study.deadend_rounds(batch.info["open"], batch.info["start"], batch.info["goal"])
  open_ = np.asarray(batch.info["open"])
  for i in range(batch.size):
    np.testing.assert_array_equal(rounds[i], _python_deadend(open_[i], batch.info["start"][i], batch.info["goal"][i]))
  np.testing.assert_array_equal((rounds == maze_study.NEVER).astype(np.int32), np.asarray(batch.targets["path"]))


def _python_bfs(open_, src):
  s = open_.shape[0]
  dist = np.full((s, s), -1)
  dist[src] = 0
  q = deque([src])
  while q:
    r, c = q.popleft()
    for d, (a, b) in enumerate(((-1, 0), (0, 1), (1, 0), (0, -1))):
      if open_[r, c, d] and dist[r + a, c + b] < 0:
        dist[r + a, c + b] = dist[r, c] + 1
        q.append((r + a, c + b))
  return dist


def test_bfs_frontier_variables_against_python_bfs(batch):
  open_ = np.asarray(batch.info["open"])
  for t, c in ((1, 1), (2, 3), (5, 2)):
    v = maze_study.maze_variables(batch, t, c)
    for i in range(0, batch.size, 5):
      ds = _python_bfs(open_[i], divmod(int(batch.info["start"][i]), 6))
      dg = _python_bfs(open_[i], divmod(int(batch.info["goal"][i]), 6))
      np.testing.assert_array_equal(v["reach_start"][i], (ds <= t * c).astype(np.int32))
      np.testing.assert_array_equal(v["reach_goal"][i], (dg <= t * c).astype(np.int32))


def test_ladder_and_bad_presets():
  assert maze_study.classify_ladder(8, 8) == [1, 2, 4, 8, 16, 32, 64]
  assert maze_study.classify_ladder(30, 8) == [3, 7, 15, 30, 60, 120, 240]
  assert maze_study.classify_ladder(3, 2) == [1, 3, 6]
  assert maze_study.classify_ladder(1, 4) == [1, 2, 4]
  for name in maze_study.PRESETS:  # every shipped preset is valid
    assert maze_study.check_preset(name)["seeds"]
  assert maze_study.check_preset("ca7")["model"]["state_bound"] == 6.0
  erase = maze_study.check_preset("erase")["model"]
  assert erase["monotone"] is True and erase["memory"] is False
  good = maze_study.check_preset("smoke")
  with pytest.raises(ValueError, match="checkpoint_every"):
    maze_study.check_preset(dict(good, checkpoint_every=0))
  for field, value, name in (("size", 1, "size"), ("larger_sizes", [3], "larger_sizes"), ("seeds", [0], "seeds"),
                             ("scales", [0], "scales"), ("multiple", 1, "multiple")):
    bad = dict(good, **{field: value})
    with pytest.raises(ValueError, match=name):
      maze_study.check_preset(bad)
  with pytest.raises(ValueError, match="iterations"):
    maze_study.check_preset(dict(good, model=dict(good["model"], iterations=0)))
  with pytest.raises(ValueError, match="progressive_alpha"):
    maze_study.check_preset(dict(good, train=dict(good["train"], progressive_alpha=1.5)))
  with pytest.raises(ValueError, match="preset"):
    maze_study.check_preset("huge")


@pytest.mark.slow
def test_smoke_study_writes_everything(tmp_path):
  out = str(tmp_path / "s.json")
  doc = maze_study.run_study("smoke", out, command="test", log=lambda s: None)
  on_disk = json.load(open(out))
  assert on_disk["schema_version"] == maze_study.SCHEMA_VERSION and on_disk["preset"] == "smoke"
  p = maze_study.PRESETS["smoke"]
  t = p["model"]["iterations"]
  for size in [p["size"]] + p["larger_sizes"]:
    e = doc["curves"]["sizes"][str(size)]
    assert len(e["dense"]["loss"]) == p["multiple"] * t
    assert list(e["curve"]["iterations"]) == list(maze_study.test_time.ladder(t, p["multiple"]))
  assert len(doc["classify"]["model"]) == len(p["seeds"])
  kinds = {g["kind"] for g in doc["classify"]["ground_truth"]}
  assert kinds == {"memorizer", "heuristic", "searcher"}
  knob = [g for g in doc["classify"]["ground_truth"] if "knob" in g["name"]][0]
  assert knob["combined"] == "searcher"  # BFS with its depth as the knob: the positive control
  probe = doc["probes"]["sizes"][str(p["probe_sizes"][0])]
  assert set(probe["summary"]) >= {"path", "dist_goal", "reach_start@c=1", "deadend_alive@c=2", "best_scale"}
  for key in ("curves_png", "probes_png", "mazes_png", "anatomy_png"):
    assert os.path.getsize(os.path.join(tmp_path, doc["files"][key])) > 1000
  lb = leaderboard.read(os.path.join(tmp_path, doc["files"]["leaderboard"]))
  assert lb["entries"][0]["model"]["id"] == "recurrent_conv" and "detect" in lb["entries"][0]
  assert lb["entries"][0]["artifacts"]["params"]
  assert len(doc["extrapolation_table"]) == len(maze_study.PUBLISHED["rows"])
  # --resume reuses the saved parameters: same curves without training
  again = maze_study.run_study("smoke", out, command="test", log=lambda s: None, resume=True)
  assert again["training"]["resumed_from"].endswith("s_leaderboard.json")
  assert again["curves"]["sizes"] == doc["curves"]["sizes"]
  assert not os.path.exists(tmp_path / "s_leaderboard.ckpt")  # training state removed once the entry is written
  # A training interrupted after its checkpoint at step 2 continues from it under --resume: the same model.
  out2 = str(tmp_path / "k.json")

  class Killed(Exception):
    pass

  def kill(step):
    if step == 2:
      raise Killed

  with pytest.raises(Killed):
    maze_study.run_study("smoke", out2, command="test", log=lambda s: None, on_checkpoint=kill)
  assert not os.path.exists(out2) and os.listdir(tmp_path / "k_leaderboard.ckpt")
  saves, lines = [], []
  resumed = maze_study.run_study("smoke", out2, command="test", log=lines.append, resume=True,
                                 on_checkpoint=saves.append)
  assert saves == [p["train"]["steps"]] and any("continues from the checkpoint at step 2" in x for x in lines)
  assert resumed["curves"]["sizes"] == doc["curves"]["sizes"]
  assert resumed["classify"]["model"] == doc["classify"]["model"]
  assert not os.path.exists(tmp_path / "k_leaderboard.ckpt")


def test_binary_refuses_bad_flags_before_work(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = tmp_path / "x.json"
  out.write_text("{}")
  for args, field in ((["--seeds=0"], "seeds"), ([f"--out={out}"], "out"), (["--resume", "--overwrite"], "resume")):
    res = subprocess.run([sys.executable, "-m", "mesabench.benchmarks.searchers", *args], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 2, (args, res.stderr)
    assert res.stderr.strip().startswith("error:") and field in res.stderr, (args, res.stderr)


class _ScriptedModel:
  """A stand-in for a trained network whose errors are known: it marks the true path (the task's full BFS) but leaves
  out the start and the goal (distance 0 to an end), marks every first-round dead end (a non-end cell with one
  passage) as path, and reports a constant hidden state ``state``."""

  def __init__(self, state):
    self.state = state

  def outputs(self, params, inputs, iterations, return_states=False):
    del params
    size = inputs.shape[1]
    task = tasks.make("Maze-v0", size=size)
    jnp = jax.numpy  # traced: error_anatomy jits the model's outputs
    path = task.search("bfs", task.search_budget_range("bfs")[1], inputs) > 0
    ends = (inputs[..., 4] > 0) | (inputs[..., 5] > 0)
    dead1 = (inputs[..., :4].sum(-1) == 1) & ~ends
    logits = jnp.where((path & ~ends) | dead1, 5.0, -5.0).reshape(inputs.shape[0], -1)
    logits = jnp.broadcast_to(logits, (iterations,) + logits.shape)
    states = jnp.full((iterations,) + inputs.shape[:3] + (2,), self.state, jnp.float32)
    return logits, states


@pytest.mark.parametrize("state,runaway", [(5.0, 0.0), (2e3, 1.0)])
def test_error_anatomy_against_a_model_with_known_errors(state, runaway):
  a = maze_study.error_anatomy(_ScriptedModel(state), [None, None], [0, 1], [5, 7], train_t=2, multiple=2,
                               num_mazes=16)
  assert a["iterations"] == [2, 4]
  for size in ("5", "7"):
    for t in ("2", "4"):
      e = a["sizes"][size][t]
      assert e["exact_match"] == 0.0  # start and goal are always missing
      assert e["missing_path_rate"][0] == 1.0 and all(r in (0.0, None) for r in e["missing_path_rate"][1:])
      assert e["path_cells"][0] == 2 * 2 * 16  # start and goal, 16 mazes, 2 seeds
      assert e["false_path_rate"][0] == 1.0 and all(r in (0.0, None) for r in e["false_path_rate"][1:])
      assert e["state_max_quantiles"]["100"] == state and e["runaway_share"] == runaway
      assert sum(e["path_cells"]) + sum(e["dead_cells"]) == 2 * 16 * int(size) ** 2
      assert e["missing_path_share"] == pytest.approx(64 / sum(e["path_cells"]))  # the 64 start and goal cells
      assert e["false_path_share"] == pytest.approx(e["dead_cells"][0] / sum(e["dead_cells"]))
