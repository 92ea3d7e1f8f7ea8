"""Saved parameters (orbax): what a leaderboard entry's analyses load instead of re-training.

Layout. A leaderboard ``DIR/NAME.json`` keeps the parameters of its entries under ``DIR/NAME.params/``, one orbax
checkpoint folder per entry, named by the entry id's config hash (the id's last part): the entry's
``artifacts.params`` holds that folder's path relative to the leaderboard's folder. The checkpoint is the pytree
``{"seeds": [s0, s1, ...], "params": <stacked parameters, leading axis = the entry's seeds>}``.

``save_params`` writes atomically from a reader's point of view (orbax commits a finished checkpoint by renaming
it into place); ``load_params`` returns numpy-backed jax arrays with the saved dtypes.
"""
from __future__ import annotations

import os
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


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
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(folder, {"seeds": np.asarray(seeds, np.int64), "params": params})
  checkpointer.wait_until_finished()
  return os.path.relpath(folder, os.path.dirname(os.path.abspath(leaderboard_path)))


def load_params(leaderboard_path: str, relative: str) -> tuple[list[int], Any]:
  """(seeds, stacked parameters) saved by ``save_params`` (``relative``: the entry's ``artifacts.params``)."""
  folder = os.path.join(os.path.dirname(os.path.abspath(leaderboard_path)), relative)
  if not os.path.isdir(folder):
    raise ValueError(f"artifacts.params: no checkpoint at {folder!r}")
  tree = ocp.StandardCheckpointer().restore(folder)
  return [int(s) for s in np.asarray(tree["seeds"])], tree["params"]


def seed_params(params: Any, index: int) -> Any:
  """The parameters of the ``index``-th seed from stacked parameters."""
  return jax.tree_util.tree_map(lambda a: a[index], params)
