r"""The main job: train and evaluate the zoo on the tasks, write the leaderboard and print its table.

    python -m mesabench.benchmarks.run                       # the quick default suite -> runs/leaderboard.json
    python -m mesabench.benchmarks.run --tasks=ModSearch-v0 --models=mlp,lookup --steps=1000 --seeds=0,1,2
    python -m mesabench.benchmarks.run --config=suite.json --out=/tmp/lb.json --resume
    python -m mesabench.benchmarks.run --steps=20000 --checkpoint_every=1000 --devices=all  # long: checkpointed
    python -m mesabench.benchmarks.run --coordinator=host0:1234 --num_processes=2 --process_id=0   # one per host

Devices, processes and checkpoints: ``mesabench.harness.distributed`` and ``mesabench.harness.suite``; launch
recipes (multi-GPU node, SLURM, TPU pod slice) in BUILD.md.

The suite config and what each entry holds are documented in ``mesabench.harness.suite`` and
``mesabench.harness.leaderboard``. User runs write into ``runs/`` (git-ignored); the committed ``results/`` change
only when asked (``--out=results/leaderboard.json --overwrite``).
"""
from __future__ import annotations

import os

from absl import flags

from mesabench import models as zoo
from mesabench.harness import cli
from mesabench.harness import distributed
from mesabench.harness import provenance
from mesabench.harness import suite
from mesabench.harness import tables

_TASKS = flags.DEFINE_list("tasks", None, "Task ids to run (default: the config's).")
_MODELS = flags.DEFINE_list("models", None, f"Model ids (default: the config's); known: {', '.join(zoo.registered())}.")
_STEPS = flags.DEFINE_integer("steps", None, "Training steps (overrides the config's train.steps).")
_POOLS = flags.DEFINE_list("pool_sizes", None, "Pool sizes: positive integers or 'fresh' (overrides the config's).")
_SEEDS = flags.DEFINE_list("seeds", None, "Seeds: integers in [0, 2**31) (overrides the config's).")
_OUT = flags.DEFINE_string("out", os.path.join(suite.DEFAULT_RUNS_DIR, "leaderboard.json"),
                           "Leaderboard JSON to write (a .json path).")
_CONFIG = flags.DEFINE_string("config", None, "A suite config JSON file (config_version 1); default: --preset.")
_PRESET = flags.DEFINE_enum("preset", "default", sorted(suite.PRESETS), "Named suite when no --config is given.")
_CONFIG_JSON = flags.DEFINE_string("config_json", None, "A suite config as a JSON string (what entry commands use).")
_RESUME = flags.DEFINE_bool("resume", False, "Keep the finished entries of --out and run only the missing ones.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out.")
_CHECKPOINT_EVERY = flags.DEFINE_integer("checkpoint_every", None, "Save each group's training state every N steps "
                                         "and at the end (NAME.ckpt/ beside --out); --resume continues from it.")
_DIST = distributed.define_flags()
_MARKDOWN = flags.DEFINE_string("markdown", None, "Where to write the Markdown table (default: --out with .md).")


def _pool(value: str):
  return None if value == "fresh" else int(value)


def main(argv):
  if _RESUME.value and _OVERWRITE.value:
    raise cli.UsageError("--resume and --overwrite: give at most one")
  devices = distributed.check_flags(_DIST)
  config = suite.with_overrides(
      suite.load_config(_CONFIG.value, _CONFIG_JSON.value, _PRESET.value),
      tasks=cli.split_list("tasks", _TASKS.value, allowed="task ids"),
      models=cli.split_list("models", _MODELS.value, allowed="model ids"),
      steps=_STEPS.value,
      pool_sizes=cli.split_list("pool_sizes", _POOLS.value, _pool, "positive integers or 'fresh'"),
      seeds=cli.split_list("seeds", _SEEDS.value, int, "integers in [0, 2**31)"))
  out = cli.check_output_path("out", _OUT.value, exists_ok=_RESUME.value or _OVERWRITE.value, suffix=".json",
                               resumable=True)
  md = _MARKDOWN.value or os.path.splitext(out)[0] + ".md"
  cli.check_output_path("markdown", md, exists_ok=True)
  if _CHECKPOINT_EVERY.value is not None and not 1 <= _CHECKPOINT_EVERY.value <= 10**7:
    raise cli.UsageError(f"--checkpoint_every: must be an integer in [1, 1e7], got {_CHECKPOINT_EVERY.value}")
  if _CHECKPOINT_EVERY.value is not None and (devices.get("num_processes") or 1) > 1:
    raise cli.UsageError("--checkpoint_every: needs a single-process run (orbax saves checkpoints collectively "
                         "across processes, and each process trains its own groups)")
  mesh = distributed.start(devices)
  suite.check_resources(config)
  doc = suite.run_suite(config, out, resume=_RESUME.value, checkpoint_every=_CHECKPOINT_EVERY.value, mesh=mesh,
                        command=provenance.command_line("mesabench.benchmarks.run"))
  if distributed.process_index() > 0:  # process 0 wrote the merged leaderboard and prints it
    return
  text = tables.markdown(doc)
  print(text)
  print(tables.LEGEND)
  provenance.write_text(md, text)
  print(f"wrote {out} and {md}")


if __name__ == "__main__":
  cli.run(main)
