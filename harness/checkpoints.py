"""Saved parameters (orbax): what a leaderboard entry's analyses load instead of re-training.

Layout. A leaderboard ``DIR/NAME.json`` keeps the parameters of its entries under ``DIR/NAME.params/``, one orbax
checkpoint folder per entry, named by the entry id's config hash (the id's last part): the entry's
``artifacts.params`` holds that folder's path relative to the leaderboard's folder. The checkpoint is the pytree
``{"seeds": [s0, s1, ...], "params": <stacked parameters, leading axis = the entry's seeds>}``.

``save_params`` writes atomically from a reader's point of view (orbax commits a finished checkpoint by renaming
it into place); ``load_params`` returns numpy arrays with the saved dtypes (whichever process saved them).

Mid-training checkpoints (``TrainCheckpointer``). ``harness.train.train_runs`` given a ``TrainCheckpointer``
saves, every ``every`` steps and at the end, the whole training state of its runs: parameters, optimizer state,
each run's divergence step and last loss, the step reached, the learning curve so far, and the runs' minibatch
keys (the "RNG state": step t of a run draws its minibatch from ``fold_in(key, t)`` and a fresh stream reads rows
t*B..(t+1)*B-1, so key + step is the whole data position). A restarted call with the same checkpointer continues
from the last finished checkpoint and ends with the numbers of an uninterrupted call, bit for bit on one backend.
Layout: ``DIR/<step>/{state,meta}`` (orbax ``CheckpointManager``, the two newest kept); a checkpoint is committed
by orbax's rename, so a process killed while saving leaves the previous one as the latest. ``meta`` holds a
fingerprint of the call (task, model, runs, train config): a checkpoint of another call is refused, not resumed.
The suite keeps one such folder per task x model group beside its leaderboard (``training_dir``) and removes it
once the group's entries are written; the entries' final parameters are saved with ``save_params`` as before.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


def _this_process_only() -> ocp.options.MultiprocessingOptions:
  """Orbax options for a checkpoint that this process writes alone: in a multi-process job each process saves its
  own entries (orbax's default would wait for every process to join each save)."""
  k = jax.process_index()
  return ocp.options.MultiprocessingOptions(primary_host=k, active_processes={k},
                                            barrier_sync_key_prefix=f"mesabench-process-{k}")


def _restore_numpy(checkpointer: Any, folder: str) -> Any:
  """The saved pytree as numpy arrays, whatever process saved it (a numpy target: no device placement)."""
  meta = checkpointer.metadata(folder)
  tree = getattr(meta, "item_metadata", meta)
  tree = getattr(tree, "tree", tree)
  target = jax.tree_util.tree_map(lambda m: np.zeros(m.shape, m.dtype), tree,
                                  is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"))
  return checkpointer.restore(folder, target)


def params_dir(leaderboard_path: str) -> str:
  """The folder beside a leaderboard file that holds its entries' parameters (``NAME.params``)."""
  return os.path.splitext(os.path.abspath(leaderboard_path))[0] + ".params"


def entry_folder(leaderboard_path: str, entry_id: str) -> str:
  """Absolute path of one entry's checkpoint folder."""
  if not entry_id or "/" not in entry_id:
    raise ValueError(f"entry_id must be a leaderboard id 'task/model/pool=N/hash', got {entry_id!r}")
  return os.path.join(params_dir(leaderboard_path), entry_id.rsplit("/", 1)[1])


def save_params(leaderboard_path: str, entry_id: str, seeds: list[int], params: Any) -> str:
  """Saves the stacked parameters of an entry's seeds (leading axis = seeds); returns the path relative to the
  leaderboard's folder (what ``artifacts.params`` stores). An existing checkpoint of the same entry is replaced."""
  leaves = jax.tree_util.tree_leaves(params)
  if not leaves or any(np.shape(leaf)[:1] != (len(seeds),) for leaf in leaves):
    raise ValueError(f"params must be a non-empty pytree whose leaves lead with the {len(seeds)} seeds")
  folder = entry_folder(leaderboard_path, entry_id)
  if os.path.exists(folder):
    shutil.rmtree(folder)
  os.makedirs(os.path.dirname(folder), exist_ok=True)
  checkpointer = ocp.StandardCheckpointer(multiprocessing_options=_this_process_only())
  checkpointer.save(folder, jax.tree_util.tree_map(np.asarray, {"seeds": np.asarray(seeds, np.int64),
                                                                  "params": params}))
  checkpointer.wait_until_finished()
  return os.path.relpath(folder, os.path.dirname(os.path.abspath(leaderboard_path)))


def write_handoff(shard_path: str, entry_id: str, seeds: list[int], params: Any) -> str:
  """Writes an entry's stacked parameters to a transient file beside a process's shard file (pickled numpy
  arrays; read back by ``read_handoff`` on process 0, which saves them with ``save_params``: orbax saves
  collectively across the processes of a job, so a process cannot save a checkpoint of its own). Returns its path."""
  folder = os.path.dirname(os.path.abspath(shard_path))
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, "params-" + entry_id.rsplit("/", 1)[-1] + ".pkl")
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    pickle.dump({"seeds": [int(s) for s in seeds], "params": jax.tree_util.tree_map(np.asarray, params)}, f)
  os.replace(tmp, path)
  return path


def read_handoff(path: str) -> tuple[list[int], Any]:
  """(seeds, stacked parameters) written by ``write_handoff``."""
  with open(path, "rb") as f:
    blob = pickle.load(f)  # our own transient file (write_handoff), never a downloaded one
  return blob["seeds"], blob["params"]


def load_params(leaderboard_path: str, relative: str) -> tuple[list[int], Any]:
  """(seeds, stacked parameters) saved by ``save_params`` (``relative``: the entry's ``artifacts.params``)."""
  folder = os.path.join(os.path.dirname(os.path.abspath(leaderboard_path)), relative)
  if not os.path.isdir(folder):
    raise ValueError(f"artifacts.params: no checkpoint at {folder!r}")
  tree = _restore_numpy(ocp.StandardCheckpointer(multiprocessing_options=_this_process_only()), folder)
  return [int(s) for s in np.asarray(tree["seeds"])], tree["params"]


def seed_params(params: Any, index: int) -> Any:
  """The parameters of the ``index``-th seed from stacked parameters."""
  return jax.tree_util.tree_map(lambda a: a[index], params)


# ------------------------------------------------------------------------------------------- training checkpoints


def training_dir(leaderboard_path: str, key: str) -> str:
  """Folder of the mid-training checkpoints of one unit of work (``key``, e.g. a group's entry ids) of a
  leaderboard: ``NAME.ckpt/<hash of key>``."""
  digest = hashlib.sha256(key.encode()).hexdigest()[:12]
  return os.path.join(os.path.splitext(os.path.abspath(leaderboard_path))[0] + ".ckpt", digest)


def fingerprint(*parts: Any) -> str:
  """A short hash of JSON-serializable ``parts`` (what a checkpoint must match to be resumed)."""
  blob = json.dumps(parts, sort_keys=True, default=repr, separators=(",", ":"))
  return hashlib.sha256(blob.encode()).hexdigest()[:16]


class TrainCheckpointer:
  """Mid-training checkpoints of one ``train_runs`` call in ``directory`` (see the module docstring).

  every: save when the step reaches a multiple of ``every`` (1..1e7) and at the last step; None: only at the end.
  on_save: called with the step after each save (progress reports; tests that kill a run mid-training).
  """

  def __init__(self, directory: str, every: int | None = None, keep: int = 2, on_save: Any = None):
    if jax.process_count() > 1:
      raise ValueError("checkpoint_every: mid-training checkpoints need a single-process run (orbax saves "
                       "collectively across the processes of a job, and each process trains its own groups)")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= 10**7):
      raise ValueError(f"checkpoint_every must be an integer in [1, 1e7] or None, got {every!r}")
    if not directory:
      raise ValueError("directory must be a folder path")
    self.directory = os.path.abspath(directory)
    self.every = every
    self._keep = keep
    self._manager = None
    self.saved_steps: list[int] = []
    self._on_save = on_save

  def _mngr(self):
    if self._manager is None:
      os.makedirs(self.directory, exist_ok=True)
      options = ocp.CheckpointManagerOptions(max_to_keep=self._keep, enable_async_checkpointing=False, create=False,
                                             multiprocessing_options=_this_process_only())
      self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))
    return self._manager

  def boundaries(self, steps: int) -> list[int]:
    """The steps in (0, steps] at which a save falls due (multiples of ``every`` and ``steps``)."""
    if steps <= 0:
      return []
    out = set(range(self.every, steps, self.every)) if self.every else set()
    return sorted(out | {steps})

  def latest_step(self) -> int | None:
    if not os.path.isdir(self.directory):
      return None
    return self._mngr().latest_step()

  def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
    """Saves ``state`` (a pytree of arrays; copied to the host first) and ``meta`` (JSON) as step ``step``."""
    self._mngr().save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(jax.tree_util.tree_map(np.asarray, state)),
                                                    meta=ocp.args.JsonSave(meta)), force=True)
    self._mngr().wait_until_finished()
    self.saved_steps.append(step)
    if self._on_save is not None:
      self._on_save(step)

  def restore(self, like: Any, fingerprint_: str) -> tuple[int, Any, dict[str, Any]] | None:
    """(step, state shaped like ``like`` as numpy arrays, meta) of the latest checkpoint; None when there is none.
    ValueError when its fingerprint is not ``fingerprint_`` (a checkpoint of another call)."""
    step = self.latest_step()
    if step is None:
      return None
    target = jax.tree_util.tree_map(lambda a: np.zeros(np.shape(a), np.asarray(a).dtype), like)
    got = self._mngr().restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                                             meta=ocp.args.JsonRestore()))
    meta = dict(got["meta"])
    if meta.get("fingerprint") != fingerprint_:
      raise ValueError(f"checkpoint: {self.directory!r} holds a checkpoint of another training call (fingerprint "
                       f"{meta.get('fingerprint')!r}, expected {fingerprint_!r}); remove it or use another --out")
    return step, got["state"], meta

  def close(self) -> None:
    if self._manager is not None:
      self._manager.close()
      self._manager = None

  def remove(self) -> None:
    """Deletes the folder (after its results are safely written elsewhere)."""
    self.close()
    if os.path.isdir(self.directory):
      shutil.rmtree(self.directory)
