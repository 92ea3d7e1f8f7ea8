r"""Training-harness throughput: examples/s per model, and 16 seeds vmapped in one jit vs 16 separate runs.

    python -m mesabench.benchmarks.harness_bench [--out=results/harness_bench.json] [--steps=200]

Task ModSearch-v0 (bits 10, width 12), pool of 256 per seed, batch 64. For each zoo network (the default suite's
configs): (a) one jit training 16 seeds vmapped (``harness.train.train_runs`` with 16 runs) and (b) a Python
loop of 16 separate single-seed runs through the same harness (each its own jitted fori_loop, compiled once and
reused). Both are timed after a warm-up call that compiles them, so the figures are steady-state training time
(data preparation excluded, the same data in both); examples/s = 16 * steps * batch / seconds. The ratio (b)/(a)
is the speed-up of vmapped sweeps, measured in the same process on the same device.
"""
from __future__ import annotations

import sys
import time

from absl import flags

import jax

from mesabench import models, tasks
from mesabench.harness import cli
from mesabench.harness import provenance
from mesabench.harness import suite
from mesabench.harness import train

SEEDS = 16


def _time_train(task, model, runs, config, data):
  train.train_runs(task, model, runs, config, data=data)  # warm-up: compiles
  t0 = time.perf_counter()
  out = train.train_runs(task, model, runs, config, data=data)
  jax.block_until_ready(out.params)
  return time.perf_counter() - t0


def bench(steps: int = 200, model_ids=("mlp", "transformer", "looped", "memory"), log=print) -> dict:
  """The harness_bench document (see the module docstring)."""
  task = tasks.make("ModSearch-v0", bits=10, width=12)
  config = train.TrainConfig(steps=steps, batch_size=64, curve_points=1)
  configs = {m["id"]: m["config"] for m in suite.DEFAULT_SUITE["models"]}
  runs = [train.Run(s, 256) for s in range(SEEDS)]
  data = train.prepare_data(task, runs, config)
  singles = [train.Data(data.inputs[i:i + 1], jax.tree_util.tree_map(lambda a: a[i:i + 1], data.targets),
                        data.count[i:i + 1], data.fresh, data.pools[i:i + 1]) for i in range(SEEDS)]
  rows = []
  for model_id in model_ids:
    model = models.make(model_id, task.spec, **configs[model_id])
    vmapped = _time_train(task, model, runs, config, data)
    train.train_runs(task, model, runs[:1], config, data=singles[0])  # warm-up of the single-run program
    t0 = time.perf_counter()
    for i in range(SEEDS):
      jax.block_until_ready(train.train_runs(task, model, runs[i:i + 1], config, data=singles[i]).params)
    separate = time.perf_counter() - t0
    examples = SEEDS * steps * config.batch_size
    row = {"model": model_id, "config": model.config_dict(), "vmapped_s": vmapped, "separate_s": separate,
           "vmapped_examples_per_s": examples / vmapped, "separate_examples_per_s": examples / separate,
           "speedup": separate / vmapped}
    log(f"{model_id}: vmapped {vmapped:.2f}s, 16 separate {separate:.2f}s, speed-up {row['speedup']:.2f}x, "
        f"{row['vmapped_examples_per_s']:.0f} examples/s vmapped")
    rows.append(row)
  return {"schema_version": "mesabench.harness_bench/1", "task": {"id": task.task_id, "params": task.params()},
          "train": config.to_dict(), "seeds": SEEDS, "pool_size": 256, "results": rows,
          "environment": provenance.environment(), "command": provenance.command_line("mesabench.benchmarks.harness_bench")}


_OUT = flags.DEFINE_string("out", "runs/harness_bench.json", "Where to write the JSON.")
_STEPS = flags.DEFINE_integer("steps", 200, "Training steps per run (>= 1).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out.")


def main(argv):
  if _STEPS.value < 1:
    raise cli.UsageError(f"--steps: must be an integer >= 1, got {_STEPS.value}")
  out = cli.check_output_path("out", _OUT.value, exists_ok=_OVERWRITE.value, suffix=".json")
  doc = bench(_STEPS.value, log=lambda s: print(s, file=sys.stderr, flush=True))
  provenance.write_json(out, doc)
  print(f"wrote {out}")


if __name__ == "__main__":
  cli.run(main)
