r"""A tour of the tasks: sample a batch of each, print instances with oracle answers and difficulty, time it.

    python -m mesabench.benchmarks.tour                       # every registered task, default parameters
    python -m mesabench.benchmarks.tour --task=ModSearch-v0 --batch=4096 --seed=3
    python -m mesabench.benchmarks.tour --task=PolyMax-v0 --params='{"degree": 8, "encoding": "binary"}'
"""
from __future__ import annotations

import json
import time

from absl import flags
import jax
import numpy as np

from mesabench import tasks
from mesabench.harness import cli

_TASK = flags.DEFINE_string("task", None, "Task id to tour (default: every registered task).")
_PARAMS = flags.DEFINE_string("params", "{}", "Task parameters as a JSON object (with --task).")
_BATCH = flags.DEFINE_integer("batch", 1024, "Batch size to sample and time.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed.")
_SHOW = flags.DEFINE_integer("show", 5, "Instances to print per task.", lower_bound=0)


def describe_instance(task: tasks.Task, batch: tasks.Batch, i: int) -> str:
  """One line: the instance and the oracle's answer (``task.describe``), then its difficulty features."""
  diff = ", ".join(f"{k}={_fmt(v[i])}" for k, v in batch.info["difficulty"].items())
  strata = [name for name, mask in batch.info["strata"].items() if bool(mask[i])]
  return f"{task.describe(batch, i)}\n      difficulty: {diff}; strata: {strata or ['-']}"


def _fmt(v):
  v = np.asarray(v)
  return f"{float(v):.3g}" if v.dtype.kind == "f" else str(int(v))


def tour(task_ids, params: dict, batch_size: int, seed: int, show: int) -> list[dict]:
  """Samples each task once to compile and once timed; returns one summary dict per task (and prints it)."""
  out = []
  for task_id in task_ids:
    task = tasks.make(task_id, **(params if len(task_ids) == 1 else {}))
    key = jax.random.key(seed)
    start = time.perf_counter()
    jax.block_until_ready(task.sample(jax.random.fold_in(key, 1), batch_size))
    first = time.perf_counter() - start
    start = time.perf_counter()
    batch = jax.block_until_ready(task.sample(key, batch_size))
    timed = time.perf_counter() - start
    print(f"\n== {task_id} {task.params()}")
    print(f"   spec: inputs {task.spec.input_shape} ({task.spec.input_kind}), output {task.spec.output_kind}"
          + (f", {task.spec.num_classes} classes" if task.spec.num_classes else ""))
    for i in range(min(show, batch_size)):
      print(f"   [{i}] " + describe_instance(task, batch, i))
    fractions = {name: float(np.mean(mask)) for name, mask in batch.info["strata"].items()}
    print(f"   strata fractions: {fractions}")
    print(f"   sample({batch_size}): {timed * 1e3:.1f} ms ({batch_size / timed:,.0f} examples/s, oracle included); "
          f"first call with compilation {first:.2f} s")
    out.append({"task": task_id, "params": task.params(), "examples_per_s": batch_size / timed,
                "strata": fractions})
  return out


def main(argv):
  if _TASK.value and _TASK.value not in tasks.registered():
    raise cli.UsageError(f"--task: must be one of {', '.join(tasks.registered())}, got {_TASK.value!r}")
  try:
    params = json.loads(_PARAMS.value)
  except json.JSONDecodeError as err:
    raise cli.UsageError(f"--params: must be a JSON object ({err})") from err
  if not isinstance(params, dict) or (params and not _TASK.value):
    raise cli.UsageError("--params: must be a JSON object, and given only with --task")
  ids = [_TASK.value] if _TASK.value else list(tasks.registered())
  for task_id in ids:  # every parameter is checked before any sampling
    tasks.make(task_id, **params)
  tour(ids, params, _BATCH.value, _SEED.value, _SHOW.value)


if __name__ == "__main__":
  cli.run(main)
