"""Training-harness throughput (the library part of ``benchmarks/harness_bench``).

Task ModSearch-v0 (bits 10, width 12), a pool of 256 per seed, batch 64, ``SEEDS`` = 16 seeds. For each zoo network
(the default suite's configs):

- ``vmapped_s`` / ``separate_s``: one jit training the 16 seeds vmapped (``train.train_runs`` with 16 runs) against
  a Python loop of 16 single-seed runs through the same harness (each its own jitted fori_loop, compiled once and
  reused); both timed after a warm-up call that compiles them (steady state; data preparation excluded, the same
  data in both). ``speedup`` = separate_s / vmapped_s (wall clock); ``speedup_cpu`` the same ratio of process CPU
  time, which a machine shared with other jobs distorts less. examples/s = 16 * steps * batch / seconds.
- ``train_flops_per_example``: XLA's cost analysis of one jitted train step (forward, backward, AdamW) per example
  (``train.compute_costs``); ``achieved_flops_per_s`` = that * examples/s of the vmapped run, and its fraction of
  the device's peak (``device_peak``: on a CPU an estimate, cores x clock x fp32 FLOPs per cycle from the vector
  ISA, see there; on a GPU the vendor's fp32 figure for known devices).
- ``step``: one train step (gradient + AdamW update) of the 16 seeds, timed three ways in process CPU time: vmapped
  (what the harness does), ``lax.map`` over the seeds (sequential inside one jit: each seed runs the single-seed
  program) and 16 calls of the single-seed step. This isolates the vmapped program's own cost from the loop.

Sharded-sweep scaling (``scaling``): the mlp sweep of 16 seeds on 1, 2, 4 and 8 forced CPU host devices
(``--xla_force_host_platform_device_count``, one subprocess each: the flag must be set before the backend starts),
runs split over the mesh's "runs" axis (``harness.distributed``). On a 2-core machine the forced devices share the
same two cores, so this measures correctness (a digest of the trained parameters: equal for every device count)
and sharding overhead, not speed-up; on a GPU or TPU host the same code spreads the runs over real devices.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np
import optax

from mesabench import models, tasks
from mesabench.harness import distributed
from mesabench.harness import provenance
from mesabench.harness import suite
from mesabench.harness import train

TRANSFORMER_FINDING = (
    "Why 16 vmapped transformer seeds are slower than 16 sequential runs on XLA:CPU (jax 0.10.2; investigated on "
    "the 2-core CPU, process CPU time, machine load 12-17 from other jobs). Not extra work: XLA's cost analysis of "
    "one gradient step gives 94.2 MFLOP and 40.3 MB accessed for one seed against 94.0 MFLOP and 39.7 MB per seed "
    "vmapped. Not the attention core: QK^T, softmax and AV forward + backward (dot_generals with batch dims runs, "
    "batch, heads) cost the same vmapped as sequential (1.0x). By parts (gradient step, 16 seeds, vmapped vs 16 "
    "single): embedding + head 1.5x, + LayerNorm 1.8x, an MLP block 1.2x, flax attention with its projections "
    "1.05x, all together 0.5-0.6x: the whole is slower than its parts. A per-kernel XLA:CPU profile (TraceMe per "
    "thunk, one core) of the vmapped step is led by layout kernels that the single-seed program does not have: a "
    "materialized transpose of the activations [16,64,12,32] -> [16,32,768] feeding a batched weight-gradient dot "
    "(about 17% of kernel time), LayerNorm scales broadcast to [16,64,12,32], and [16,768,32] loop fusions; in the "
    "one-seed program the same layout changes are bitcasts or fused into 2-D GEMMs (no copy kernel above 2 ms). "
    "Tried: folding the tokens into the batch for every Dense ([B,L,W] -> [B*L,W]): 0.47x; XLA:CPU flags "
    "disabling the YNNPACK / XNNPACK library fusions: 0.66x / 0.53x; one thread: 0.52x; lax.map over the seeds "
    "inside one jit (each seed runs the single-seed program): 1.26x on one step, but that gain is the 16 "
    "per-call dispatches of the single-step loop, which 16 separate 200-step fori_loops do not pay (expected "
    "about 1x in training). Measured then (load 6-13 from other jobs): vmapped 15.2 CPU s vs 16 separate runs "
    "16.4 CPU s = 1.08x in CPU time. Since then every sweep program is compiled without XLA:CPU's YNNPACK "
    "fusions (harness.distributed.compiler_options, so that a run's numbers do not depend on the sweep's size); "
    "measured on the otherwise idle 2-core CPU: vmapped 11.9 CPU s vs 16 separate runs 14.8 CPU s = 1.25x in CPU "
    "time and 1.53x wall clock (7.8 s vs 12.0 s); one step vmapped 0.69x. "
    "Conclusion: on XLA:CPU "
    "the rank-4 batched layouts that vmap gives the transformer's [batch, tokens, width] activations are lowered "
    "to materialized transposes/broadcasts and batched small dots that run at a lower rate than one seed's 2-D "
    "GEMMs; no rewrite of the model that keeps its numbers avoids them, so the harness keeps vmap (the same "
    "program is 7.5x faster than sequential runs on an H200, results/harness_bench_h200.json). 1.5x is reached in "
    "wall clock on an idle machine, not in CPU time (1.25x).")

SEEDS = 16
POOL = 256
SCHEMA_VERSION = "mesabench.harness_bench/2"

# fp32 peak of GPUs we have measured on (vendor figures, non-tensor-core FP32).
_GPU_PEAK = {"NVIDIA H200": 67e12, "NVIDIA H100 80GB HBM3": 67e12, "NVIDIA A100-SXM4-80GB": 19.5e12}


def device_peak() -> dict[str, Any]:
  """The fp32 peak FLOP/s of this process's first device, and how it was obtained.

  CPU: usable cores (``os.sched_getaffinity``) x nominal clock (/proc/cpuinfo "cpu MHz") x fp32 FLOPs per cycle per
  core from the vector ISA: 64 with AVX-512 (two 16-lane FMA units), 32 with AVX2 + FMA (two 8-lane FMA units), 8
  otherwise. An upper bound (turbo clocks and one-FMA-unit parts make the true figure differ); XLA:CPU rarely
  reaches a tenth of it on small models. GPU: the vendor's fp32 figure for known device kinds (None otherwise).
  """
  dev = jax.devices()[0]
  if dev.platform == "cpu":
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mhz, flags = None, set()
    try:
      with open("/proc/cpuinfo", encoding="utf-8") as f:
        text = f.read()
      m = re.search(r"cpu MHz\s*:\s*([\d.]+)", text)
      mhz = float(m.group(1)) if m else None
      m = re.search(r"flags\s*:\s*(.*)", text)
      flags = set(m.group(1).split()) if m else set()
    except OSError:
      pass
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= flags else 8
    peak = cores * mhz * 1e6 * per_cycle if mhz else None
    return {"device": "cpu", "peak_flops_per_s": peak, "cores": cores, "clock_mhz": mhz,
            "flops_per_cycle_per_core": per_cycle,
            "how": "cores x nominal clock x fp32 FLOPs/cycle/core (AVX-512: 64, AVX2+FMA: 32, else 8); an upper "
                   "bound"}
  peak = _GPU_PEAK.get(dev.device_kind)
  return {"device": dev.device_kind, "peak_flops_per_s": peak,
          "how": "vendor fp32 (non-tensor-core) figure" if peak else "unknown device kind"}


def _setup(steps: int):
  task = tasks.make("ModSearch-v0", bits=10, width=12)
  config = train.TrainConfig(steps=steps, batch_size=64, curve_points=1)
  runs = [train.Run(s, POOL) for s in range(SEEDS)]
  return task, config, runs


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
  """(wall s, process CPU s) of one ``fn()`` call, blocked on its result."""
  w, c = time.perf_counter(), time.process_time()
  jax.block_until_ready(fn())
  return time.perf_counter() - w, time.process_time() - c


def _step_bench(task, model, config, data, reps: int = 5) -> dict[str, float]:
  """Process CPU seconds of one train step of the 16 seeds: vmapped, lax.map over seeds, 16 single-seed calls."""
  tx = train.make_optimizer(config)

  def step(params, opt_state, x, y):
    grads = jax.grad(model.loss)(params, x, y)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  runs = [train.Run(s, POOL) for s in range(SEEDS)]
  params = train._init_and_fit(model, runs, data)  # pylint: disable=protected-access
  opt = jax.vmap(tx.init)(params)
  b = config.batch_size
  x = data.inputs[:, :b]
  y = jax.tree_util.tree_map(lambda a: a[:, :b], data.targets)
  vm = jax.jit(jax.vmap(step))
  lm = jax.jit(lambda *a: jax.lax.map(lambda z: step(*z), a))
  one = jax.jit(step)
  singles = [jax.tree_util.tree_map(lambda a, i=i: a[i], (params, opt, x, y)) for i in range(SEEDS)]
  out = {}
  for name, call in (("vmapped", lambda: vm(params, opt, x, y)), ("lax_map", lambda: lm(params, opt, x, y)),
                     ("separate", lambda: [one(*s) for s in singles])):
    jax.block_until_ready(call())
    cpu = min(_timed(call)[1] for _ in range(reps))
    out[name + "_cpu_s"] = cpu
  out["vmapped_speedup_cpu"] = out["separate_cpu_s"] / out["vmapped_cpu_s"]
  out["lax_map_speedup_cpu"] = out["separate_cpu_s"] / out["lax_map_cpu_s"]
  return out


def bench_model(model_id: str, steps: int, peak: float | None, log: Callable[[str], None] = print) -> dict:
  """One model's row (see the module docstring)."""
  task, config, runs = _setup(steps)
  configs = {m["id"]: m["config"] for m in suite.DEFAULT_SUITE["models"]}
  model = models.make(model_id, task.spec, **configs[model_id])
  data = train.prepare_data(task, runs, config)
  singles = [train.Data(data.inputs[i:i + 1], jax.tree_util.tree_map(lambda a, i=i: a[i:i + 1], data.targets),
                        data.count[i:i + 1], data.fresh, data.pools[i:i + 1]) for i in range(SEEDS)]
  train.train_runs(task, model, runs, config, data=data)  # warm-up: compiles
  vmapped, vmapped_cpu = _timed(lambda: train.train_runs(task, model, runs, config, data=data).params)
  train.train_runs(task, model, runs[:1], config, data=singles[0])  # warm-up of the single-run program
  w, c = time.perf_counter(), time.process_time()
  for i in range(SEEDS):
    jax.block_until_ready(train.train_runs(task, model, runs[i:i + 1], config, data=singles[i]).params)
  separate, separate_cpu = time.perf_counter() - w, time.process_time() - c
  examples = SEEDS * steps * config.batch_size
  params_one = jax.tree_util.tree_map(lambda a: a[0], train._init_and_fit(model, runs[:1], singles[0]))  # pylint: disable=protected-access
  flops = train.compute_costs(task, model, config, params_one, data.inputs[0, :64])["train_flops_per_example"]
  achieved = flops * examples / vmapped
  row = {"model": model_id, "config": model.config_dict(), "vmapped_s": vmapped, "separate_s": separate,
         "vmapped_cpu_s": vmapped_cpu, "separate_cpu_s": separate_cpu,
         "vmapped_examples_per_s": examples / vmapped, "separate_examples_per_s": examples / separate,
         "speedup": separate / vmapped, "speedup_cpu": separate_cpu / vmapped_cpu,
         "train_flops_per_example": flops, "achieved_flops_per_s": achieved,
         "fraction_of_peak": achieved / peak if peak else None,
         "step": _step_bench(task, model, config, data)}
  log(f"{model_id}: vmapped {vmapped:.2f}s ({vmapped_cpu:.2f} CPU s), 16 separate {separate:.2f}s "
      f"({separate_cpu:.2f} CPU s), speed-up {row['speedup']:.2f}x wall / {row['speedup_cpu']:.2f}x CPU, "
      f"{row['vmapped_examples_per_s']:.0f} examples/s, {achieved / 1e9:.2f} GFLOP/s; one step: vmapped "
      f"{row['step']['vmapped_speedup_cpu']:.2f}x, lax.map {row['step']['lax_map_speedup_cpu']:.2f}x")
  return row


def scaling_child(devices: int, steps: int) -> dict[str, Any]:
  """In a process started with ``devices`` forced CPU devices: the mlp sweep of 16 seeds on a runs:``devices``
  mesh (no mesh for 1), timed after a warm-up; a digest of the trained parameters and learning curve."""
  task, config, runs = _setup(steps)
  configs = {m["id"]: m["config"] for m in suite.DEFAULT_SUITE["models"]}
  model = models.make("mlp", task.spec, **configs["mlp"])
  mesh = distributed.make_mesh(devices)
  data = train.prepare_data(task, runs, config)
  train.train_runs(task, model, runs, config, data=data, mesh=mesh)
  wall, cpu = _timed(lambda: train.train_runs(task, model, runs, config, data=data, mesh=mesh).params)
  out = train.train_runs(task, model, runs, config, data=data, mesh=mesh)
  digest = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(out.params):
    digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  digest.update(json.dumps(out.curve["train_loss"]).encode())
  return {"devices": devices, "device_count": jax.device_count(), "padded_runs":
          distributed.padded_runs(SEEDS, devices), "seconds": wall, "cpu_s": cpu,
          "examples_per_s": SEEDS * steps * config.batch_size / wall, "digest": digest.hexdigest()[:16],
          "params": [np.asarray(leaf).tolist() for leaf in jax.tree_util.tree_leaves(out.params)][:1]}


def scaling(steps: int, counts: Sequence[int] = (1, 2, 4, 8), log: Callable[[str], None] = print) -> dict:
  """The sharded-sweep scaling table (see the module docstring), one subprocess per device count."""
  rows = []
  first = None
  for n in counts:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}").strip())
    code = ("import json; from mesabench.harness import harness_bench as h; "
            f"print('RESULT ' + json.dumps(h.scaling_child({n}, {steps})))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=1800,
                          check=False)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
      raise RuntimeError(f"scaling child with {n} devices failed: {proc.stderr[-2000:]}")
    row = json.loads(line[0][len("RESULT "):])
    first_leaf = np.asarray(row.pop("params")[0], np.float64)
    if first is None:
      first = first_leaf
    row["max_abs_diff_vs_1_device_first_leaf"] = float(np.max(np.abs(first_leaf - first)))
    rows.append(row)
    log(f"scaling: {n} devices: {row['seconds']:.2f}s wall, {row['cpu_s']:.2f} CPU s, digest {row['digest']}")
  base = rows[0]["seconds"]
  for row in rows:
    row["speedup_vs_1"] = base / row["seconds"]
  sharded = {r["digest"] for r in rows if r["devices"] > 1}
  return {"model": "mlp", "seeds": SEEDS, "steps": steps, "rows": rows,
          "sharded_digests_equal": len(sharded) == 1,
          "note": "forced CPU host devices share this machine's cores: correctness and overhead, not speed-up. "
                  "The digest covers every parameter and the learning curve: every device count gives the same "
                  "digest (each device runs the one-device program on its block of runs, compiled without "
                  "YNNPACK fusions: harness.distributed)."}


def bench(steps: int = 200, model_ids: Sequence[str] = ("mlp", "transformer", "looped", "memory"),
          scaling_counts: Sequence[int] = (1, 2, 4, 8), log: Callable[[str], None] = print) -> dict:
  """The harness_bench document (see the module docstring)."""
  task, config, _ = _setup(steps)
  peak = device_peak()
  rows = [bench_model(m, steps, peak["peak_flops_per_s"], log) for m in model_ids]
  doc = {"schema_version": SCHEMA_VERSION, "task": {"id": task.task_id, "params": task.params()},
         "train": config.to_dict(), "seeds": SEEDS, "pool_size": POOL, "peak": peak, "results": rows,
         "transformer_finding": TRANSFORMER_FINDING}
  if scaling_counts:
    doc["scaling"] = scaling(steps, scaling_counts, log)
  doc["environment"] = provenance.environment()
  try:
    doc["environment"]["load_average_at_end"] = list(os.getloadavg())
  except OSError:
    pass
  return doc
