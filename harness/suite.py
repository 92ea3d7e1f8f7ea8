r"""The main job: train and evaluate the zoo on the tasks, and write the leaderboard.

    python -m mesabench.benchmarks.run                       # the quick default suite (2-core CPU: minutes)
    python -m mesabench.benchmarks.run --tasks=ModSearch-v0 --models=mlp,lookup --steps=1000 --seeds=0,1,2
    python -m mesabench.benchmarks.run --config=suite.json --out=/tmp/lb.json --resume

Start a config file from the default suite:
    python -c "import json; from mesabench.harness import suite; print(json.dumps(suite.DEFAULT_SUITE, indent=1))" \
        > suite.json

A suite config (``config_version`` 1) is a JSON object:
    {"config_version": 1,
     "tasks":  [{"id": "ModSearch-v0", "params": {"bits": 10, "width": 12}}, ...],
     "models": [{"id": "mlp", "config": {"width": 64}}, ...],
     "pool_sizes": [64, 512],          # distinct training instances per seed; null = fresh samples
     "seeds": [0, 1],
     "train": {"steps": 300, ...}}      # harness.train.TrainConfig fields (missing ones take its defaults)
Flags override it: --tasks/--models pick ids (keeping the config's params for ids it lists), --steps,
--pool_sizes (ints or "fresh"), --seeds. Every task x model pair trains all its pool sizes and seeds in one
vmapped jit (``harness.train.run_experiment``) and gives one leaderboard entry per pool size. After each entry
the leaderboard is validated and written atomically; --resume keeps the finished entries of --out and runs the
rest (a pair with some entries missing is re-run whole, so a resumed file equals an uninterrupted one).
At the end it prints the results table (``harness.tables``) and writes it as Markdown next to --out.

Long runs: --checkpoint_every=N saves each group's training state every N steps and at the end
(``harness.checkpoints.TrainCheckpointer``, under NAME.ckpt/ beside --out, removed once the group's entries are
written); after a kill, --resume continues the interrupted group from its last checkpoint (same numbers bit for bit).
Devices: --devices / --mesh lay each group's runs out over local devices (``harness.distributed``). Processes:
under ``jax.distributed`` every process runs every P-th group (round robin over the groups still to do), writes
its entries to NAME.shards/process-K.json only, and process 0 merges the shards into --out (atomically) after a
barrier; the merged file equals a single-process run's (each group is trained exactly as in one process).
"""
from __future__ import annotations

import copy
import json
import os
import shlex
import sys
import time
from typing import Any, Callable

import jax
import numpy as np
import tqdm

from mesabench import models as zoo
from mesabench import tasks as task_registry
from mesabench.harness import checkpoints
from mesabench.harness import distributed
from mesabench.harness import leaderboard
from mesabench.harness import provenance
from mesabench.harness import train
from mesabench.tasks import core as task_core

CONFIG_VERSION = 1

DEFAULT_RUNS_DIR = "runs"
"""Where user runs write by default (git-ignored); the committed results/ change only when asked."""

DEFAULT_SUITE: dict[str, Any] = {
    "config_version": CONFIG_VERSION,
    "tasks": [{"id": "PolyMax-v0", "params": {"degree": 4}},
              {"id": "ModSearch-v0", "params": {"bits": 16, "width": 20}}],
    "models": [{"id": "mlp", "config": {"width": 64, "depth": 2, "head": "bits"}},
               {"id": "transformer", "config": {"width": 32, "heads": 2, "layers": 2, "head": "bits"}},
               {"id": "looped", "config": {"width": 64, "iterations": 4, "head": "bits"}},
               {"id": "memory", "config": {"width": 32, "mem_width": 16, "steps": 4, "head": "bits"}},
               {"id": "lookup", "config": {}},
               {"id": "lookup_instance", "config": {}},
               {"id": "heuristic", "config": {}},
               {"id": "search", "config": {}}],
    "pool_sizes": [64, 512],
    "seeds": [0, 1],
    "train": {"steps": 300, "batch_size": 64, "learning_rate": 3e-3, "eval_size": 256, "curve_points": 8},
}
"""The quick default suite: both tasks x the zoo and its three kinds of ground truth (memorizers lookup and
lookup_instance, the task's first non-search heuristic, its full search) x 2 pool sizes x 2 seeds. ModSearch at
bits 16: its answer table (``task.table_bits()``, 667,880 bits) is far more than the trained models can hold at
4 bits per parameter, so memorizing everything is impossible (issue 11 section 3). That needs the "bits" head
(k as its bits, LSB first): a "classes" head over the 16,384 answers of 20-bit inputs would alone have about a
million parameters. The head option only concerns integer answers (PolyMax ignores it). Every entry states
``compute.table_bits`` against ``compute.params``."""

PRESETS: dict[str, dict[str, Any]] = {
    "default": DEFAULT_SUITE,
    "smoke": {**copy.deepcopy(DEFAULT_SUITE),
              "tasks": [{"id": "PolyMax-v0", "params": {"degree": 4}},
                        {"id": "ModSearch-v0", "params": {"bits": 10, "width": 12}}],
              "models": [{"id": "mlp", "config": {"width": 32, "depth": 2}}, {"id": "lookup", "config": {}},
                         {"id": "heuristic", "config": {}}, {"id": "search", "config": {}}],
              "train": {**DEFAULT_SUITE["train"], "steps": 100}},
}
"""Named suites: "default" (the main job) and "smoke" (bits 10, a quick check that everything runs; at bits 10 the
whole ModSearch answer table fits in a small model, so it cannot tell memorization from search)."""

_FIELDS = ("config_version", "tasks", "models", "pool_sizes", "seeds", "train")


def check_suite(config: Any) -> dict[str, Any]:
  """The suite config with train defaults filled in; ValueError naming the bad field otherwise."""
  if not isinstance(config, dict):
    raise ValueError(f"config must be a JSON object, got {type(config).__name__}")
  if config.get("config_version") != CONFIG_VERSION:
    raise ValueError(f"config.config_version must be {CONFIG_VERSION}, got {config.get('config_version')!r}")
  extra = sorted(set(config) - set(_FIELDS))
  if extra:
    raise ValueError(f"config has unknown fields {extra}; allowed: {list(_FIELDS)}")
  out = copy.deepcopy(config)
  for field, known in (("tasks", task_registry.registered()), ("models", zoo.registered())):
    items = out.get(field)
    if not isinstance(items, list) or not items:
      raise ValueError(f"config.{field} must be a non-empty list")
    sub = "params" if field == "tasks" else "config"
    for i, item in enumerate(items):
      if not isinstance(item, dict) or item.get("id") not in known:
        raise ValueError(f"config.{field}[{i}].id must be one of {list(known)}, got {item!r}")
      item.setdefault(sub, {})
      if not isinstance(item[sub], dict):
        raise ValueError(f"config.{field}[{i}].{sub} must be an object")
  pools = out.get("pool_sizes")
  if not isinstance(pools, list) or not pools:
    raise ValueError("config.pool_sizes must be a non-empty list of positive integers or null (fresh)")
  for i, p in enumerate(pools):
    if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p < 1):
      raise ValueError(f"config.pool_sizes[{i}] must be a positive integer or null, got {p!r}")
  seeds = out.get("seeds")
  if not isinstance(seeds, list) or not seeds or any(
      isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**31 for s in seeds):
    raise ValueError(f"config.seeds must be a non-empty list of integers in [0, 2**31), got {seeds!r}")
  if len(set(seeds)) != len(seeds) or len(set(map(str, pools))) != len(pools):
    raise ValueError("config.seeds and config.pool_sizes must not repeat values")
  if not isinstance(out.get("train", {}), dict):
    raise ValueError("config.train must be an object")
  try:
    out["train"] = train.TrainConfig(**out.get("train", {})).to_dict()
  except TypeError as err:
    raise ValueError(f"config.train: {err}") from err
  return out


def entry_command(task: dict, model: dict, train_cfg: dict, pool_size, seeds: list[int]) -> str:
  """The command that re-runs one entry alone (into rerun.json)."""
  one = {"config_version": CONFIG_VERSION, "tasks": [task], "models": [model], "pool_sizes": [pool_size],
         "seeds": list(seeds), "train": train_cfg}
  blob = json.dumps(one, sort_keys=True, separators=(",", ":"))
  return f"python -m mesabench.benchmarks.run --config_json={shlex.quote(blob)} --out=rerun.json"


def plan(config: dict[str, Any]) -> list[dict[str, Any]]:
  """The suite's task x model groups in order: built task and model, their full configs, and the entry ids."""
  groups = []
  for t in config["tasks"]:
    task = task_registry.make(t["id"], **t["params"])
    task_desc = {"id": t["id"], "params": json.loads(json.dumps(task.params()))}
    table_bits = float(task.table_bits())
    for m in config["models"]:
      model = zoo.make(m["id"], task.spec, **m["config"])
      model_desc = {"id": m["id"], "config": model.config_dict()}
      ids = [leaderboard.entry_key(task_desc, model_desc, config["train"], p, config["seeds"])
             for p in config["pool_sizes"]]
      groups.append({"task": task, "model": model, "task_desc": task_desc, "model_desc": model_desc, "ids": ids,
                     "table_bits": table_bits})
  return groups


def check_resources(config: dict[str, Any]) -> list[dict[str, Any]]:
  """Builds every task and model of a checked suite config and checks each pool size against the task's instance
  space, so that a bad parameter fails before any training. Returns ``plan(config)``; ValueError naming the
  field otherwise."""
  for i, t in enumerate(config["tasks"]):
    try:
      task = task_registry.make(t["id"], **t["params"])
    except (TypeError, ValueError) as err:
      raise ValueError(f"config.tasks[{i}].params ({t['id']}): {err}") from err
    for j, p in enumerate(config["pool_sizes"]):
      if p is not None and p >= task.space_size:
        raise ValueError(f"config.pool_sizes[{j}] must be below the {task.space_size} distinct instances of "
                         f"{t['id']} with {task.params()} (at least one is needed for the held-out split), got {p}")
    runs = [train.Run(s, p) for p in config["pool_sizes"] for s in config["seeds"]]
    tcfg = train.TrainConfig(**config["train"])
    limit = task_core.memory_limit_bytes()
    for j, m in enumerate(config["models"]):
      try:
        model = zoo.make(m["id"], task.spec, **m["config"])
      except (TypeError, ValueError) as err:
        raise ValueError(f"config.models[{j}].config ({m['id']} on {t['id']}): {err}") from err
      need = train.estimate_bytes(task, model, runs, tcfg)
      if need > limit:
        raise ValueError(f"config.models[{j}] ({m['id']} on {t['id']}) needs about {need / 2**30:.1f} GiB for "
                         f"{len(runs)} runs at pool sizes {config['pool_sizes']} (harness.train.estimate_bytes), more "
                         f"than the {limit / 2**30:.1f} GiB this machine has; use fewer runs, smaller pools, "
                         f"batch_size or eval sizes")
  return plan(config)


def run_suite(config: dict[str, Any], out: str, *, resume: bool = False, command: str | None = None,
              max_entries: int | None = None, log: Callable[[str], None] | None = None,
              save_params: bool = True, checkpoint_every: int | None = None, mesh: Any = None,
              on_checkpoint: Callable[[int], None] | None = None) -> dict[str, Any]:
  """Runs the suite ``config`` and writes the leaderboard to ``out`` after every entry; returns the document.

  resume: keep the entries of an existing ``out`` (validated; each keeps its own ``environment``, so a file resumed
    on another machine says per entry where each number was measured) and run only the missing ones.
  max_entries: stop (returning the partial document) after writing this many new entries (for tests of resume).
  save_params: save each entry's trained parameters with orbax beside ``out`` (``harness.checkpoints``), recorded
    in the entry's ``artifacts.params``.
  checkpoint_every: save mid-training checkpoints every this many steps (and at the end); None: none.
  mesh: ``harness.distributed.make_mesh`` mesh for every group's runs (None: one device).
  on_checkpoint: called with the step after each mid-training checkpoint (progress; tests).
  Under several processes (``jax.process_count() > 1``) see the module docstring; the returned document is the
  merged one on process 0 and this process's shard elsewhere.
  """
  log = log or (lambda s: print(s, file=sys.stderr, flush=True))
  config = check_suite(config)
  command = command or provenance.command_line("mesabench.benchmarks.run")
  groups = plan(config)
  order = [i for g in groups for i in g["ids"]]
  done: dict[str, dict] = {}
  pid, pcount = distributed.process_index(), distributed.process_count()
  shards = [shard_path(out, k, pcount) for k in range(pcount)] if pcount > 1 else []
  if resume:
    for path in [out] + shards:
      if os.path.exists(path):
        for e in leaderboard.read(path)["entries"]:
          done[e["id"]] = e
    log(f"resume: {sum(i in done for i in order)} of {len(order)} entries already in {out}")
  environment = provenance.environment()
  doc = {"schema_version": leaderboard.SCHEMA_VERSION, "suite": {"config": config, "command": command},
         "environment": environment, "entries": []}

  rank = {i: n for n, i in enumerate(order)}
  mine: set[str] = set()
  handoff: dict[str, str] = {}
  if resume and pcount > 1 and os.path.exists(_handoff_index(shards[pid])):
    handoff.update(provenance.read_json(_handoff_index(shards[pid])))

  def flush():
    if pcount > 1:  # this process's own entries only, into its own shard file (+ where their parameters wait)
      doc["entries"] = sorted((done[i] for i in mine), key=lambda e: rank.get(e["id"], len(order)))
      leaderboard.write(shards[pid], doc)
      if handoff:
        provenance.write_json(_handoff_index(shards[pid]), handoff)
      return
    doc["entries"] = sorted(done.values(), key=lambda e: rank.get(e["id"], len(order)))
    leaderboard.write(out, doc)

  written = 0
  tcfg = train.TrainConfig(**config["train"])
  todo = distributed.shard([g for g in groups if any(i not in done for i in g["ids"])], pid, pcount)
  start = time.perf_counter()
  for g in tqdm.tqdm(todo, desc="suite", unit="group", file=sys.stderr, disable=pid > 0):
    pools = config["pool_sizes"]
    runs = [train.Run(s, p) for p in pools for s in config["seeds"]]
    t0 = time.perf_counter()
    # Fresh and pool runs cannot share one vmap; a fresh pool size is run as its own call.
    results: list[dict] = []
    ckpts = []
    for kind in (False, True):
      part = [r for r in runs if (r.pool_size is None) == kind]
      if part:
        ckpt = None
        if checkpoint_every is not None:
          ckpt = checkpoints.TrainCheckpointer(checkpoints.training_dir(out, "|".join(g["ids"]) + f"|fresh={kind}"),
                                               checkpoint_every, on_save=on_checkpoint)
          ckpts.append(ckpt)
        results.extend(train.run_experiment(g["task"], g["model"], part, tcfg, keep_params=save_params,
                                            with_references=True, mesh=mesh, checkpoint=ckpt))
    by_run = {(r.seed, r.pool_size): r for r in results}
    for p, entry_id in zip(pools, g["ids"]):
      if entry_id in done:
        continue
      seeds = config["seeds"]
      cmd = entry_command(g["task_desc"], g["model_desc"], config["train"], p, seeds)
      task = g["task"]
      seed_results = [by_run[(s, p)] for s in seeds]
      entry = leaderboard.make_entry(g["task_desc"], g["model_desc"], config["train"], p, seeds, seed_results, cmd,
                                     success_metric=task.success_metric,
                                     metric_directions=dict(task.metric_directions), environment=environment,
                                     reference_family=task.search_family().strategy)
      entry["results"]["compute"]["table_bits"] = g["table_bits"]
      if save_params and jax.tree_util.tree_leaves(seed_results[0].params):
        stacked = jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]),
                                         *[r.params for r in seed_results])
        if pid == 0:
          entry["artifacts"] = {"params": checkpoints.save_params(out, entry_id, seeds, stacked)}
        else:  # orbax saves collectively across processes: process 0 saves this entry's parameters at the merge
          handoff[entry_id] = checkpoints.write_handoff(shard_path(out, pid, pcount), entry_id, seeds, stacked)
      done[entry_id] = entry
      mine.add(entry_id)
      flush()
      written += 1
      held = entry["results"]["splits"].get("heldout", {}).get("loss", {}).get("mean")
      seen = entry["results"]["splits"].get("pool", {}).get("loss", {}).get("mean")
      log(f"  {entry_id}: pool loss {seen if seen is None else f'{seen:.4g}'}, held-out loss "
          f"{held if held is None else f'{held:.4g}'}, {entry['status']} ({time.perf_counter() - t0:.1f}s)")
      if max_entries is not None and written >= max_entries:
        return doc
    for ckpt in ckpts:  # the group's entries (and final parameters) are written: its training state is not needed
      ckpt.remove()
  flush()
  if pcount > 1:
    distributed.barrier("mesabench-suite-shards-written")
    if pid == 0:  # merge every process's shard into --out
      for path in shards:
        for e in leaderboard.read(path)["entries"]:
          done[e["id"]] = e
        if os.path.exists(_handoff_index(path)):
          for entry_id, where in provenance.read_json(_handoff_index(path)).items():
            seeds, stacked = checkpoints.read_handoff(where)
            done[entry_id]["artifacts"] = {"params": checkpoints.save_params(out, entry_id, seeds, stacked)}
            os.remove(where)
          os.remove(_handoff_index(path))
      doc["entries"] = sorted(done.values(), key=lambda e: rank.get(e["id"], len(order)))
      leaderboard.write(out, doc)
      for path in shards:
        os.remove(path)
      try:
        os.rmdir(os.path.dirname(shards[0]))
      except OSError:  # not empty: something else was left there
        pass
    distributed.barrier("mesabench-suite-merged")
  log(f"suite: {len(order)} entries in {out} ({time.perf_counter() - start:.1f}s)")
  return doc


def _handoff_index(shard: str) -> str:
  return os.path.splitext(shard)[0] + ".params.json"


def shard_path(out: str, index: int, count: int) -> str:
  """Where process ``index`` of ``count`` writes its entries of the leaderboard ``out``."""
  return os.path.join(os.path.splitext(out)[0] + ".shards", f"process-{index}-of-{count}.json")


# ------------------------------------------------------------------------------------------------ overrides


def load_config(path: str | None = None, text: str | None = None, preset: str = "default") -> dict[str, Any]:
  """The suite config from a JSON file (``path``), a JSON string (``text``) or a named preset (neither)."""
  if path and text:
    raise ValueError("config: give at most one of --config and --config_json")
  if preset not in PRESETS:
    raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
  if path:
    try:
      config = provenance.read_json(path)
    except OSError as err:
      raise ValueError(f"config: cannot read {path!r} ({err.strerror or err})") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
      raise ValueError(f"config: {path!r} is not a JSON file ({err})") from err
  elif text:
    try:
      config = json.loads(text)
    except json.JSONDecodeError as err:
      raise ValueError(f"config_json: not a JSON object ({err})") from err
  else:
    config = copy.deepcopy(PRESETS[preset])
  if not isinstance(config, dict):
    raise ValueError("config must be a JSON object")
  return config


def with_overrides(config: dict[str, Any], *, tasks: list[str] | None = None, models: list[str] | None = None,
                   steps: int | None = None, pool_sizes: list | None = None,
                   seeds: list[int] | None = None) -> dict[str, Any]:
  """``config`` with the command line's overrides applied (ids keep the config's params when it lists them),
  checked by ``check_suite``."""
  config = copy.deepcopy(config)
  if tasks is not None:
    have = {t.get("id"): t for t in config.get("tasks", []) if isinstance(t, dict)}
    config["tasks"] = [have.get(i, {"id": i, "params": {}}) for i in tasks]
  if models is not None:
    have = {m.get("id"): m for m in config.get("models", []) if isinstance(m, dict)}
    config["models"] = [have.get(i, {"id": i, "config": {}}) for i in models]
  if steps is not None:
    config.setdefault("train", {})["steps"] = steps
  if pool_sizes is not None:
    config["pool_sizes"] = pool_sizes
  if seeds is not None:
    config["seeds"] = seeds
  return check_suite(config)
