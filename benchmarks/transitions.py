"""The memorization -> generalization transition: a phase diagram of pool size x model size, and N*.

    python -m mesabench.benchmarks.transitions                                  # ModSearch, results/transitions.*
    python -m mesabench.benchmarks.transitions --task=PolyMax-v0 --task_params='{"degree": 4}' \
        --pool_sizes=16,64,256,1024,4096 --seeds=0,1,2,3,4 --out=runs/transitions_polymax.json

The maths (N* with a seed-bootstrap CI, bisection, the capacity view) is ``mesabench.harness.transitions``.
"""
from __future__ import annotations

import json
import os

from absl import flags

from mesabench.harness import cli
from mesabench.harness import leaderboard
from mesabench.harness import provenance
from mesabench.harness import train
from mesabench.harness import transitions

_TASK = flags.DEFINE_string("task", "ModSearch-v0", "Task id of the diagram.")
_TASK_PARAMS = flags.DEFINE_string("task_params", "", "Task parameters as a JSON object (default for ModSearch: "
                                   "from --bits).")
_BITS = flags.DEFINE_integer("bits", 10, "ModSearch instance bits (n < 2**bits), when --task_params is not given.")
_MODEL = flags.DEFINE_string("model", "mlp", "Zoo model id of the family (its size is set by --widths).")
_WIDTHS = flags.DEFINE_list("widths", ["4", "16", "64", "256"], "Model widths (one row of the diagram each).")
_DEPTH = flags.DEFINE_integer("depth", 2, "Model depth.")
_POOLS = flags.DEFINE_list("pool_sizes", ["16", "32", "64", "128", "256", "512"], "Pool sizes (the log grid).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (vmapped together).")
_STEPS = flags.DEFINE_integer("steps", 1500, "Training steps per run.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Examples per step.")
_LR = flags.DEFINE_float("learning_rate", 3e-3, "Peak AdamW learning rate.")
_WD = flags.DEFINE_float("weight_decay", 0.0, "AdamW weight decay.")
_EVAL = flags.DEFINE_integer("eval_size", 256, "Examples per evaluation split.")
_REFINE = flags.DEFINE_integer("refine_steps", 2, "Bisection steps near N*.")
_SEQUENTIAL = flags.DEFINE_bool("sequential", True, "Also train every grid run alone to measure the vmapped speed-up.")
_OUT = flags.DEFINE_string("out", "runs/transitions.json", "Output JSON.")
_PNG = flags.DEFINE_string("png", None, "Output phase diagram (default: --out with .png).")
_LEADERBOARD = flags.DEFINE_string("leaderboard", "", "If set, a leaderboard JSON whose entries are replaced or "
                                   "extended with this job's grid entries.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out / --png.")


def main(argv):
  if len(argv) > 1:
    raise cli.UsageError(f"unexpected arguments {argv[1:]}; all inputs are --flags")
  widths = cli.split_list("widths", _WIDTHS.value, int, "positive integers")
  pools = cli.split_list("pool_sizes", _POOLS.value, int, "positive integers")
  seeds = cli.split_list("seeds", _SEEDS.value, int, "integers in [0, 2**31)")
  try:
    task_params = json.loads(_TASK_PARAMS.value) if _TASK_PARAMS.value else None
  except json.JSONDecodeError as err:
    raise cli.UsageError(f"--task_params: must be a JSON object ({err})") from err
  out = cli.check_output_path("out", _OUT.value, exists_ok=_OVERWRITE.value, suffix=".json")
  png = cli.check_output_path("png", _PNG.value or os.path.splitext(out)[0] + ".png", exists_ok=_OVERWRITE.value)
  if _LEADERBOARD.value:
    leaderboard.read(_LEADERBOARD.value)
  cfg = train.TrainConfig(steps=_STEPS.value, batch_size=_BATCH.value, learning_rate=_LR.value,
                          weight_decay=_WD.value, eval_size=_EVAL.value, curve_points=2)
  doc, _ = transitions.run_phase_diagram(
      task_id=_TASK.value, task_params=task_params, bits=_BITS.value, model_id=_MODEL.value,
      sizes=[{"width": w, "depth": _DEPTH.value} for w in widths], pool_sizes=pools, seeds=seeds,
      train_config=cfg, refine_steps=_REFINE.value, sequential=_SEQUENTIAL.value,
      command=provenance.command_line("mesabench.benchmarks.transitions"))
  transitions.plot_from_doc(doc, png)
  doc["figure"] = os.path.relpath(png, os.path.dirname(os.path.abspath(out)))
  provenance.write_json(out, doc)
  if _LEADERBOARD.value:
    transitions.merge_into_leaderboard(_LEADERBOARD.value, doc)
  print(transitions.summary(doc, out, png))


if __name__ == "__main__":
  cli.run(main)
