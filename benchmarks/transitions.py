"""Phase diagram of pool size x model size with two transitions: N*_gen (generalizes) and N*_search (searches).

    python -m mesabench.benchmarks.transitions                       # preset "modsearch" (bits 16) -> runs/
    python -m mesabench.benchmarks.transitions --preset=polymax --out=runs/transitions_polymax.json
    python -m mesabench.benchmarks.transitions --preset=modsearch-smoke --steps=200 --widths=16 --pool_sizes=16,64
    python -m mesabench.benchmarks.transitions --model=looped --model_config='{"iterations": 8}' --widths=32,64

A preset (``harness.transitions.PRESETS``) gives the task, its parameters, widths, pool sizes and seeds; any of
--task, --task_params, --widths, --pool_sizes, --seeds overrides it. The definitions of both N* are in
``mesabench.harness.transitions``; the picture in ``mesabench.harness.plots``.
"""
from __future__ import annotations

import json
import os

from absl import flags

from mesabench import tasks
from mesabench.harness import cli
from mesabench.harness import distributed
from mesabench.harness import leaderboard
from mesabench.harness import plots
from mesabench.harness import provenance
from mesabench.harness import train
from mesabench.harness import transitions

_PRESET = flags.DEFINE_enum("preset", "modsearch", sorted(transitions.PRESETS), "Diagram preset.")
_TASK = flags.DEFINE_string("task", None, "Task id (default: the preset's).")
_TASK_PARAMS = flags.DEFINE_string("task_params", None, "Task parameters as a JSON object (default: the preset's).")
_MODEL = flags.DEFINE_string("model", "mlp", "Zoo model id of the family (its size is set by --widths).")
_WIDTHS = flags.DEFINE_list("widths", None, "Model widths, one row each (default: the preset's).")
_MODEL_CONFIG = flags.DEFINE_string("model_config", "{}", "Model config shared by every size, as a JSON object "
                                    "(e.g. '{\"depth\": 3}' for mlp, '{\"iterations\": 8}' for looped).")
_POOLS = flags.DEFINE_list("pool_sizes", None, "Pool sizes, the log grid (default: the preset's).")
_SEEDS = flags.DEFINE_list("seeds", None, "Seeds, vmapped together (default: the preset's).")
_STEPS = flags.DEFINE_integer("steps", 1500, "Training steps per run.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Examples per step.")
_LR = flags.DEFINE_float("learning_rate", 3e-3, "Peak AdamW learning rate.")
_WD = flags.DEFINE_float("weight_decay", 0.0, "AdamW weight decay.")
_EVAL = flags.DEFINE_integer("eval_size", 256, "Examples per evaluation split.")
_REFINE = flags.DEFINE_integer("refine_steps", 2, "Bisection rounds near each N*.")
_STRATUM = flags.DEFINE_string("stratum", "hard", "The task's search-requiring stratum (N*_search).")
_CLASSIFY_REFS = flags.DEFINE_bool("classify_references", True, "Judge the reference searcher with the detector at "
                                    "every pool size and seed (N*_search's positive control; the costliest part).")
_SEQUENTIAL = flags.DEFINE_bool("sequential", False, "Also train every grid run alone to time the vmapped speed-up.")
_OUT = flags.DEFINE_string("out", "runs/transitions.json", "Output JSON.")
_PNG = flags.DEFINE_string("png", None, "Output phase diagram (default: --out with .png).")
_LEADERBOARD = flags.DEFINE_string("leaderboard", "", "If set, a leaderboard JSON whose entries are replaced or "
                                   "extended with this job's grid entries.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out / --png.")
_DIST = distributed.define_flags(processes=False)


def main(argv):
  devices = distributed.check_flags(_DIST)
  preset = transitions.PRESETS[_PRESET.value]
  widths = cli.split_list("widths", _WIDTHS.value, int, "positive integers") or preset["widths"]
  pools = cli.split_list("pool_sizes", _POOLS.value, int, "positive integers") or preset["pool_sizes"]
  seeds = cli.split_list("seeds", _SEEDS.value, int, "integers in [0, 2**31)") or preset["seeds"]
  try:
    task_params = json.loads(_TASK_PARAMS.value) if _TASK_PARAMS.value is not None else preset["task_params"]
  except json.JSONDecodeError as err:
    raise cli.UsageError(f"--task_params: must be a JSON object ({err})") from err
  if not isinstance(task_params, dict):
    raise cli.UsageError(f"--task_params: must be a JSON object, got {_TASK_PARAMS.value!r}")
  task = tasks.make(_TASK.value or preset["task"], **task_params)
  search = transitions.SearchCriterion(stratum=_STRATUM.value)
  if search.stratum not in task.strata:
    raise cli.UsageError(f"--stratum: must be one of {task.strata}, got {search.stratum!r}")
  try:
    shared = json.loads(_MODEL_CONFIG.value)
  except json.JSONDecodeError as err:
    raise cli.UsageError(f"--model_config: must be a JSON object ({err})") from err
  if not isinstance(shared, dict) or "width" in shared:
    raise cli.UsageError(f"--model_config: must be a JSON object without 'width' (--widths sets it), got "
                         f"{_MODEL_CONFIG.value!r}")
  sizes = [{**shared, "width": w} for w in widths]
  out = cli.check_output_path("out", _OUT.value, exists_ok=_OVERWRITE.value, suffix=".json")
  png = cli.check_output_path("png", _PNG.value or os.path.splitext(out)[0] + ".png", exists_ok=_OVERWRITE.value)
  if _LEADERBOARD.value:
    leaderboard.read(_LEADERBOARD.value)
  cfg = train.TrainConfig(steps=_STEPS.value, batch_size=_BATCH.value, learning_rate=_LR.value,
                          weight_decay=_WD.value, eval_size=_EVAL.value, curve_points=2)
  transitions.check_diagram(task, _MODEL.value, sizes, pools, seeds, cfg)
  with distributed.use_mesh(distributed.start(devices)):  # every vmapped sweep of the diagram on these devices
    diagram = transitions.run_phase_diagram(
        task=task, model_id=_MODEL.value, sizes=sizes, pool_sizes=pools, seeds=seeds, train_config=cfg,
        refine_steps=_REFINE.value, sequential=_SEQUENTIAL.value, search_criterion=search,
        classify_references=_CLASSIFY_REFS.value,
        command=provenance.command_line("mesabench.benchmarks.transitions"))
  doc = diagram.to_json()
  doc["config"]["preset"] = _PRESET.value
  plots.plot_from_json(doc, png)
  doc["figure"] = os.path.relpath(png, os.path.dirname(os.path.abspath(out)))
  provenance.write_json(out, doc)
  if _LEADERBOARD.value:
    transitions.merge_into_leaderboard(_LEADERBOARD.value, diagram.leaderboard_entries)
  print(transitions.summary(diagram, out, png))


if __name__ == "__main__":
  cli.run(main)
