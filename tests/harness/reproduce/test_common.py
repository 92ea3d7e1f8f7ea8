"""The common reproduce part: seed CIs, rows, the three output files and their schema, the study registry, and
the orbax Checkpointer (round trip with optimizer states and PRNG keys; fresh runs clear old checkpoints)."""
import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mesabench.harness import reproduce


@dataclasses.dataclass(frozen=True)
class _Cfg:
  a: int = 1

  def to_dict(self):
    return dataclasses.asdict(self)


def _study(plot=None):
  def run(config, seeds, workdir, resume):
    return reproduce.StudyResult([reproduce.row("q", "p", "c", [1.0, 2.0, 3.0], "d")], {"x": [1, 2]})

  def default_plot(result, path):
    with open(path, "wb") as f:
      f.write(b"\x89PNG fake")

  return reproduce.Study("capacity", "T", "Ref", {"cpu": _Cfg(), "paper": _Cfg(2)}, {"cpu": 60.0, "paper": None},
                         run, plot or default_plot)


def test_seed_ci_t_interval_by_hand():
  mean, (lo, hi) = reproduce.seed_ci([1.0, 2.0, 3.0])
  half = 4.302652729911275 * 1.0 / np.sqrt(3)  # t_{0.975, 2} * s / sqrt(n), s = 1
  assert mean == 2.0 and lo == pytest.approx(2 - half, abs=1e-9) and hi == pytest.approx(2 + half, abs=1e-9)
  assert reproduce.seed_ci([5.0]) == (5.0, None)
  m, (blo, bhi) = reproduce.seed_ci([1.0, 2.0, 3.0, 4.0], method="bootstrap")
  assert m == 2.5 and 1.0 <= blo < 2.5 < bhi <= 4.0
  for bad in ([], [1.0, float("nan")]):
    with pytest.raises(ValueError, match="values"):
      reproduce.seed_ci(bad)
  with pytest.raises(ValueError, match="method"):
    reproduce.seed_ci([1.0, 2.0], method="z")


def test_rows_validate():
  r = reproduce.row("q", "p", "c", None, "not run")
  assert r.ours is None and r.ci is None
  with pytest.raises(ValueError, match="quantity"):
    reproduce.Row("", "p", "c", 1.0, None, "")
  with pytest.raises(ValueError, match="ci"):
    reproduce.Row("q", "p", "c", 1.0, (2.0, 1.0), "")
  with pytest.raises(ValueError, match="ours"):
    reproduce.Row("q", "p", "c", float("inf"), None, "")
  assert reproduce.Row.from_json(r.to_json()) == r


def test_write_three_files_and_read_back(tmp_path):
  study = _study()
  result = study.run(_Cfg(), (0, 1, 2), str(tmp_path), False)
  result.rows.append(reproduce.row("not measured one", "p", "c", None, "why"))
  out = str(tmp_path / "sub" / "repro_capacity.json")
  paths = reproduce.write(out, study, "cpu", _Cfg(), [0, 1, 2], result, "python -m x", wall_s=12.5)
  assert paths == (out, out[:-5] + ".md", out[:-5] + ".png") and all(os.path.isfile(p) for p in paths)
  doc, back = reproduce.read(out)
  assert doc["schema_version"] == reproduce.SCHEMA_VERSION and doc["budget_s"] == 60.0 and doc["wall_s"] == 12.5
  assert doc["config"] == {"a": 1} and doc["seeds"] == [0, 1, 2] and doc["environment"]["git_commit"]
  assert back.rows == result.rows and back.data == {"x": [1, 2]}
  md = open(paths[1]).read()
  assert "| q | p (c) | 2 [" in md and "| not measured one | p (c) | not measured | why |" in md
  assert "repro_capacity.png" in md
  md_text = open(paths[1]).read()
  os.unlink(paths[1])
  os.unlink(paths[2])
  assert reproduce.redraw(out, study) == paths[1:]
  assert open(paths[1]).read() == md_text and os.path.isfile(paths[2])
  bad = dict(doc, rows=[])
  with pytest.raises(ValueError, match="rows"):
    reproduce.validate(bad)
  with pytest.raises(ValueError, match=r"\.json"):
    reproduce.write(str(tmp_path / "x.txt"), study, "cpu", _Cfg(), [0], result, "c")


def test_a_failing_plot_writes_nothing(tmp_path):
  def broken(result, path):
    raise RuntimeError("no picture")

  study = _study(broken)
  out = str(tmp_path / "r.json")
  with pytest.raises(RuntimeError):
    reproduce.write(out, study, "cpu", _Cfg(), [0], study.run(_Cfg(), (0,), "", False), "c")
  assert os.listdir(tmp_path) == []


def test_get_and_study_checks():
  assert reproduce.get("gd_in_context").name == "gd_in_context"
  assert reproduce.get("icl_task_diversity").presets["cpu"].to_dict()
  with pytest.raises(ValueError, match="study must be one of"):
    reproduce.get("nope")
  with pytest.raises(ValueError, match="presets"):
    reproduce.Study("capacity", "T", "R", {"cpu": _Cfg()}, {}, None, None)


def _state(seed):
  params = {"w": jax.random.normal(jax.random.key(seed), (3, 2))}
  opt = optax.adam(1e-2)
  return {"params": params, "opt_state": opt.init(params), "step": jnp.asarray(0, jnp.int32),
          "rng": jax.random.key(seed + 10)}, opt


def test_checkpointer_round_trip_and_fresh_runs(tmp_path):
  state, opt = _state(0)
  grads = {"w": jnp.ones((3, 2))}
  updates, opt_state = opt.update(grads, state["opt_state"], state["params"])
  later = {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state,
           "step": jnp.asarray(4, jnp.int32), "rng": jax.random.fold_in(state["rng"], 4)}
  with reproduce.Checkpointer(str(tmp_path), "capacity", _Cfg(), 3, every=2, resume=False) as ck:
    assert not ck.save(3, later)           # not a multiple of every
    assert ck.save(4, later)
    assert ck.latest_step == 4
    assert ck.directory.endswith(os.path.join("capacity", reproduce.config_hash(_Cfg()), "seed_3"))
  with reproduce.Checkpointer(str(tmp_path), "capacity", _Cfg(), 3, every=2, resume=True) as ck:
    back = ck.restore(state)
  for a, b in zip(jax.tree_util.tree_leaves(back["params"]) + jax.tree_util.tree_leaves(back["opt_state"]),
                  jax.tree_util.tree_leaves(later["params"]) + jax.tree_util.tree_leaves(later["opt_state"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert int(back["step"]) == 4
  np.testing.assert_array_equal(jax.random.normal(back["rng"], (4,)), jax.random.normal(later["rng"], (4,)))
  with reproduce.Checkpointer(str(tmp_path), "capacity", _Cfg(), 3, every=2, resume=False) as ck:
    assert ck.latest_step is None and ck.restore(state) is state  # a fresh run forgets the old checkpoints
  other = reproduce.Checkpointer(str(tmp_path), "capacity", _Cfg(2), 3, every=2, resume=True)
  assert other.latest_step is None  # another config never resumes this one
  other.close()
  with pytest.raises(ValueError, match="every"):
    reproduce.Checkpointer(str(tmp_path), "capacity", _Cfg(), 0, every=0, resume=False)
  assert json.loads(json.dumps(reproduce.config_hash(_Cfg())))
