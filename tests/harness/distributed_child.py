"""Child processes of the device, multi-process and kill/resume tests (run as ``python -m tests.harness.distributed_child``).

Modes:
  sweep OUT.npz          toy sweeps on 1 device (no mesh) and on meshes runs:2, runs:8, runs:4,data:2, the first two
                         runs alone on 1 device, and the first run alone on 1 and on 8 devices (the parent sets
                         --xla_force_host_platform_device_count=8 in XLA_FLAGS); saves params and curves.
  suite OUT.json [--process_id K --num_processes N --port P] [--resume] [--checkpoint_every S] [--pause T]
                         the toy suite below through ``harness.suite.run_suite``; with --pause, prints
                         "CHECKPOINT <step>" after each mid-training save and sleeps T seconds (the parent kills).
"""
import argparse
import os
import sys
import time

TOY_SUITE = {
    "config_version": 1,
    "tasks": [{"id": "ModSearch-v0", "params": {"bits": 6, "width": 8}}],
    "models": [{"id": "mlp", "config": {"width": 8, "depth": 1}}, {"id": "lookup", "config": {}}],
    "pool_sizes": [16],
    "seeds": [0, 1],
    "train": {"steps": 60, "batch_size": 8, "eval_size": 16, "curve_points": 3, "stratum_size": 4},
}


def sweep(out):
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np
  from mesabench import models, tasks
  from mesabench.harness import distributed, train
  assert jax.device_count() == 8, jax.devices()
  task = tasks.make("ModSearch-v0", bits=8, width=10)
  config = train.TrainConfig(steps=24, batch_size=8, curve_points=3)
  model = models.make("mlp", task.spec, width=8, depth=1)
  runs = [train.Run(s, 32) for s in range(5)]  # 5 runs: padded on 2 and 8 devices
  arrays = {}
  for name, shape, part in (("one", None, runs), ("runs2", {"runs": 2}, runs), ("runs8", {"runs": 8}, runs),
                            ("runs4data2", {"runs": 4, "data": 2}, runs), ("first2", None, runs[:2]),
                            ("lone", None, runs[:1]), ("lone8", {"runs": 8}, runs[:1])):
    mesh = None if shape is None else distributed.make_mesh(shape=shape)
    trained = train.train_runs(task, model, part, config, mesh=mesh)
    for j, leaf in enumerate(jax.tree_util.tree_leaves(trained.params)):
      arrays[f"{name}/params/{j}"] = np.asarray(leaf)
    arrays[f"{name}/train_loss"] = np.asarray(trained.curve["train_loss"], np.float64)
    arrays[f"{name}/diverged"] = np.asarray(trained.diverged_step)
  np.savez(out, **arrays)


def suite(args):
  from mesabench.harness import distributed, suite as suite_lib  # pylint: disable=g-import-not-at-top
  if args.num_processes:
    distributed.initialize(f"localhost:{args.port}", args.num_processes, args.process_id, timeout_s=60)

  def report(step):
    print(f"CHECKPOINT {step}", flush=True)
    if args.pause:
      time.sleep(args.pause)

  config = dict(TOY_SUITE, train=dict(TOY_SUITE["train"], steps=args.steps))
  suite_lib.run_suite(config, args.out, resume=args.resume, command="test", log=lambda s: None,
                      checkpoint_every=args.checkpoint_every, on_checkpoint=report)
  print("DONE", flush=True)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("mode", choices=("sweep", "suite"))
  parser.add_argument("out")
  parser.add_argument("--process_id", type=int, default=0)
  parser.add_argument("--num_processes", type=int, default=0)
  parser.add_argument("--port", type=int, default=0)
  parser.add_argument("--resume", action="store_true")
  parser.add_argument("--checkpoint_every", type=int, default=None)
  parser.add_argument("--pause", type=float, default=0.0)
  parser.add_argument("--steps", type=int, default=TOY_SUITE["train"]["steps"])
  args = parser.parse_args()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  if args.mode == "sweep":
    sweep(args.out)
  else:
    suite(args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
