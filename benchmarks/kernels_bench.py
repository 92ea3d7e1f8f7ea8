"""Kernel benchmark: throughput of the modsearch and polymax kernels against numpy and the unfused references.

    python -m mesabench.benchmarks.kernels_bench [--out results/kernels_bench.json] [--modsearch_batch 256] ...

Writes one JSON file (``provenance.write_json``) with the environment, the config, the command, and per kernel,
algorithm, impl and size: seconds per call, items per second, the ratio to (a) the numpy code a user would write
(per-n vectorized brute force ``argmax(i*i % n)``; per-row ``np.polyval`` on the grid + argmax) and (b) the unfused
jnp reference, both measured in the same run, and achieved element operations per second against a peak estimate
of the device. Pallas kernels on CPU run only in interpret mode, which is a test tool, so the CPU rows time the XLA
path (what ``impl=None`` picks there) and the references.
"""
from __future__ import annotations

import os
import time

from absl import flags
import numpy as np

from mesabench.harness import cli
from mesabench.harness import kernels_bench as kb
from mesabench.harness import provenance

SCHEMA_VERSION = 1

_OUT = flags.DEFINE_string("out", "runs/kernels_bench.json", "Output JSON path.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out.")
_MS_BATCH = flags.DEFINE_integer("modsearch_batch", 256, "n values per modsearch call.")
_MS_SIZES = flags.DEFINE_list("modsearch_log2", ["12", "20", "30"], "log2 of the n sizes (n in (7/8 * 2**e, 2**e]).")
_MS_NUMPY_SAMPLES = flags.DEFINE_integer("modsearch_numpy_samples", 8, "n values timed for the numpy baseline.")
_PM_BATCH = flags.DEFINE_integer("polymax_batch", 1024, "Polynomials per polymax call.")
_PM_DEGREE = flags.DEFINE_integer("polymax_degree", 8, "Polynomial degree.")
_PM_GRIDS = flags.DEFINE_list("polymax_grids", ["4096", "65536"], "Grid sizes G.")
_PM_NUMPY_ROWS = flags.DEFINE_integer("polymax_numpy_rows", 128, "Rows timed for the numpy baseline.")
_PM_ROUNDS = flags.DEFINE_integer("polymax_rounds", 7, "Interleaved timing rounds of polymax and numpy (median).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timing repeats (median).")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed of the inputs.")


def ints(flag) -> list[int]:
  return cli.split_list(flag.name, flag.value, int, "integers")


def main(argv):
  cli.check_output_path("out", _OUT.value, exists_ok=_OVERWRITE.value, suffix=".json")
  rng = np.random.default_rng(_SEED.value)
  peak = kb.peak_ops_per_second()
  start = time.perf_counter()
  load_before = os.getloadavg()
  rows = (kb.bench_modsearch(rng, peak, _REPEATS.value, batch=_MS_BATCH.value, sizes=ints(_MS_SIZES), numpy_samples=_MS_NUMPY_SAMPLES.value)
          + kb.bench_polymax(rng, peak, _PM_ROUNDS.value, batch=_PM_BATCH.value, degree=_PM_DEGREE.value, grids=ints(_PM_GRIDS), numpy_rows=_PM_NUMPY_ROWS.value))
  config = {name: flags.FLAGS[name].value for name in (
      "modsearch_batch", "modsearch_log2", "modsearch_numpy_samples", "polymax_batch", "polymax_degree",
      "polymax_grids", "polymax_numpy_rows", "polymax_rounds", "repeats", "seed")}
  out = {
      "schema_version": SCHEMA_VERSION,
      "config": config,
      "environment": provenance.environment(),
      "command": provenance.command_line("mesabench.benchmarks.kernels_bench"),
      "peak_estimate": peak,
      "notes": ("CPU rows: impl=xla is what impl=None runs on CPU; Pallas runs only in interpret mode there "
                "(polymax rows 'pallas-interpret', a test tool). ratio_vs_numpy = numpy seconds per item * batch / "
                "seconds per call. polymax: numpy, xla, reference and pallas-interpret are timed in interleaved "
                "rounds (median of the rounds; samples listed); working_bytes is XLA's temp (+ materialized grid for "
                "the reference) buffer size. Timings on a shared 2-core machine are noisy; see load_average."),
      "results": rows,
      "wall_seconds": time.perf_counter() - start,
      "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
  }
  provenance.write_json(_OUT.value, out)
  for row in rows:
    print(f"{row['kernel']:9s} {row['algorithm']:21s} {row['impl']:16s} {str(row['size']):55s} "
          f"x{row['ratio_vs_numpy']:8.1f} vs numpy  x{row['ratio_vs_reference']:6.2f} vs reference")
  print("wrote", _OUT.value)


if __name__ == "__main__":
  cli.run(main)
