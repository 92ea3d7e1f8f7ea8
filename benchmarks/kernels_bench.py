"""Kernel benchmark: throughput of the modsearch and polymax kernels against numpy and the unfused references.

    python -m mesabench.benchmarks.kernels_bench [--out results/kernels_bench.json] [--modsearch_batch 256] ...

Writes one JSON file (``record.write_json``) with the environment, the config, the command, and per kernel,
algorithm, impl and size: seconds per call, items per second, the ratio to (a) the numpy code a user would write
(per-n vectorized brute force ``argmax(i*i % n)``; per-row ``np.polyval`` on the grid + argmax) and (b) the unfused
jnp reference, both measured in the same run, and achieved element operations per second against a peak estimate
of the device. Pallas kernels on CPU run only in interpret mode, which is a test tool, so the CPU rows time the XLA
path (what ``impl=None`` picks there) and the references.
"""
from __future__ import annotations

import os
import re
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from mesabench.benchmarks import record
from mesabench.kernels import modsearch
from mesabench.kernels import polymax

SCHEMA_VERSION = 1

_OUT = flags.DEFINE_string("out", "results/kernels_bench.json", "Output JSON path.")
_MS_BATCH = flags.DEFINE_integer("modsearch_batch", 256, "n values per modsearch call.")
_MS_SIZES = flags.DEFINE_list("modsearch_log2", ["12", "20", "30"], "log2 of the n sizes (n in (7/8 * 2**e, 2**e]).")
_MS_NUMPY_SAMPLES = flags.DEFINE_integer("modsearch_numpy_samples", 8, "n values timed for the numpy baseline.")
_PM_BATCH = flags.DEFINE_integer("polymax_batch", 1024, "Polynomials per polymax call.")
_PM_DEGREE = flags.DEFINE_integer("polymax_degree", 8, "Polynomial degree.")
_PM_GRIDS = flags.DEFINE_list("polymax_grids", ["4096", "65536"], "Grid sizes G.")
_PM_NUMPY_ROWS = flags.DEFINE_integer("polymax_numpy_rows", 128, "Rows timed for the numpy baseline.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timing repeats (median).")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed of the inputs.")


def peak_ops_per_second() -> dict:
  """A peak estimate for 32-bit element operations: cores x clock x SIMD lanes x 2 vector ops per cycle (CPU).

  The clock is the largest 'cpu MHz' in /proc/cpuinfo (3 GHz when unknown); lanes are 16 with AVX-512, 8 with
  AVX2, 4 otherwise. This is an upper bound no integer/select-heavy kernel reaches; it says how far from the limit.
  """
  cores = os.cpu_count() or 1
  mhz, lanes = 3000.0, 4
  try:
    text = open("/proc/cpuinfo", encoding="utf-8").read()
    found = [float(m) for m in re.findall(r"cpu MHz\s*:\s*([0-9.]+)", text)]
    mhz = max(found) if found else mhz
    lanes = 16 if "avx512f" in text else (8 if "avx2" in text else 4)
  except OSError:
    pass
  return {"ops_per_second": cores * mhz * 1e6 * lanes * 2, "cores": cores, "mhz": mhz, "simd_lanes_32bit": lanes,
          "formula": "cores * clock * simd_lanes * 2"}


def numpy_seed(n: int) -> tuple[int, int]:
  """What a user writes: the seed program vectorized per n with numpy int64 (K exact by Python integers)."""
  kk = int(round(n**0.7))
  while kk**10 > n**7:
    kk -= 1
  while (kk + 1)**10 <= n**7:
    kk += 1
  i = np.arange(0, kk + 1, dtype=np.int64)
  res = i * i % n
  k = int(np.argmax(res))
  return k, int(res[k])


def numpy_polymax(coeffs: np.ndarray, grid_points: int):
  """What a user writes: np.polyval on a grid per row, then argmax (float64; no refinement)."""
  xs = np.linspace(0.0, 1.0, grid_points)
  out = []
  for row in coeffs:
    vals = np.polyval(row[::-1], xs)
    j = int(np.argmax(vals))
    out.append((vals[j], xs[j]))
  return out


def _timed(fn, repeats):
  return record.time_call(fn, repeats=repeats, min_time=0.2)


def bench_modsearch(rng, peak, repeats):
  rows = []
  batch = _MS_BATCH.value
  for e in [int(v) for v in _MS_SIZES.value]:
    hi = 2**e
    n_np = rng.integers(hi - hi // 8 + 1, hi + 1, size=batch).astype(np.int64)
    n = jnp.asarray(n_np, jnp.int32)
    sample = n_np[:_MS_NUMPY_SAMPLES.value]
    start = time.perf_counter()
    truth = [numpy_seed(int(v)) for v in sample]
    numpy_per_n = (time.perf_counter() - start) / len(sample)
    kk = np.asarray(modsearch.kmax(n)).astype(np.int64)
    bands = np.asarray(modsearch.sqmod(jnp.asarray(kk, jnp.int32), n)[0]).astype(np.int64) + 1
    work = {"brute": float(kk.sum()), "banded": float(bands.sum())}
    ops_per_item = {"brute": modsearch._BRUTE_OPS_PER_CANDIDATE, "banded": modsearch._BANDED_OPS_PER_BAND}
    results = {}
    combos = [(a, i) for a in ("banded", "brute") for i in ("xla", "reference")]
    for algorithm, impl in record.progress(combos, desc=f"modsearch n~2^{e}", every=0.0):
      if impl == "reference" and algorithm == "brute" and e >= 30:
        continue  # the unfused brute reference takes minutes per batch here; the fused xla brute is the row
      fn = lambda: modsearch.search(n, impl=impl, algorithm=algorithm)  # pylint: disable=cell-var-from-loop
      k, r = fn()
      got = list(zip(np.asarray(k)[:len(sample)].tolist(), np.asarray(r)[:len(sample)].tolist()))
      assert got == truth, (e, algorithm, impl)
      seconds = _timed(fn, repeats)
      results[(algorithm, impl)] = seconds
      ops = work[algorithm] * ops_per_item[algorithm] / seconds
      rows.append({
          "kernel": "modsearch", "algorithm": algorithm, "impl": impl, "size": {"n_log2": e, "batch": batch},
          "seconds_per_call": seconds, "n_per_second": batch / seconds,
          "numpy_seconds_per_n": numpy_per_n, "ratio_vs_numpy": numpy_per_n * batch / seconds,
          "items_per_n": work[algorithm] / batch, "achieved_ops_per_second": ops,
          "fraction_of_peak": ops / peak["ops_per_second"],
      })
    for row in rows:
      if row["kernel"] == "modsearch" and row["size"]["n_log2"] == e:
        ref = results.get((row["algorithm"], "reference")) or results.get(("banded", "reference"))
        row["ratio_vs_reference"] = ref / row["seconds_per_call"]
        row["reference_for_ratio"] = ("reference/" + row["algorithm"]
                                      if (row["algorithm"], "reference") in results else "reference/banded")
  return rows


def _temp_bytes(fn, *args):
  try:
    analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
    return int(analysis.temp_size_in_bytes) if analysis is not None else None
  except Exception:  # pylint: disable=broad-except
    return None


def bench_polymax(rng, peak, repeats):
  rows = []
  batch, degree = _PM_BATCH.value, _PM_DEGREE.value
  coeffs_np = rng.standard_normal((batch, degree + 1)).astype(np.float32)
  coeffs = jnp.asarray(coeffs_np)
  for g in record.progress([int(v) for v in _PM_GRIDS.value], desc="polymax grids", every=0.0):
    sub = coeffs_np[:_PM_NUMPY_ROWS.value].astype(np.float64)
    start = time.perf_counter()
    numpy_polymax(sub, g)
    numpy_per_row = (time.perf_counter() - start) / len(sub)
    seconds = {}
    for impl in ("xla", "reference"):
      fn = lambda: polymax.maximize(coeffs, impl=impl, grid_points=g)  # pylint: disable=cell-var-from-loop
      seconds[impl] = _timed(fn, repeats)
    v_x, x_x = polymax.maximize(coeffs, impl="xla", grid_points=g)
    v_r, _ = polymax.maximize_reference(coeffs, grid_points=g)
    max_diff = float(jnp.max(jnp.abs(v_x - v_r)))
    seg = -(-g // polymax.XLA_LANES)
    flops = batch * polymax.XLA_LANES * (seg + 2) * (2 * degree + 8)
    mem = {
        "xla": _temp_bytes(lambda c: polymax._maximize_padded(c, grid_points=g, impl="xla", platform="xla"), coeffs),
        "reference": _temp_bytes(lambda c: polymax._grid_values(c, g), coeffs),
    }
    for impl in ("xla", "reference"):
      s = seconds[impl]
      rows.append({
          "kernel": "polymax", "algorithm": "grid+refine", "impl": impl,
          "size": {"batch": batch, "degree": degree, "grid_points": g},
          "seconds_per_call": s, "polynomials_per_second": batch / s,
          "numpy_seconds_per_row": numpy_per_row, "ratio_vs_numpy": numpy_per_row * batch / s,
          "ratio_vs_reference": seconds["reference"] / s,
          "achieved_ops_per_second": flops / s, "fraction_of_peak": flops / s / peak["ops_per_second"],
          "temp_bytes": mem[impl], "max_abs_value_diff_vs_reference": max_diff,
      })
  return rows


def main(argv):
  del argv
  rng = np.random.default_rng(_SEED.value)
  peak = peak_ops_per_second()
  start = time.perf_counter()
  rows = bench_modsearch(rng, peak, _REPEATS.value) + bench_polymax(rng, peak, _REPEATS.value)
  config = {name: flags.FLAGS[name].value for name in (
      "modsearch_batch", "modsearch_log2", "modsearch_numpy_samples", "polymax_batch", "polymax_degree",
      "polymax_grids", "polymax_numpy_rows", "repeats", "seed")}
  out = {
      "schema_version": SCHEMA_VERSION,
      "config": config,
      "environment": record.environment(),
      "command": record.command_line("mesabench.benchmarks.kernels_bench"),
      "peak_estimate": peak,
      "notes": ("CPU rows: impl=xla is what impl=None runs on CPU; Pallas runs only in interpret mode there. "
                "ratio_vs_numpy = numpy seconds per item * batch / seconds per call. Timings on a shared 2-core "
                "machine are noisy."),
      "results": rows,
      "wall_seconds": time.perf_counter() - start,
  }
  record.write_json(_OUT.value, out)
  for row in rows:
    print(f"{row['kernel']:9s} {row['algorithm']:11s} {row['impl']:9s} {str(row['size']):55s} "
          f"x{row['ratio_vs_numpy']:8.1f} vs numpy  x{row['ratio_vs_reference']:6.2f} vs reference")
  print("wrote", _OUT.value)


if __name__ == "__main__":
  app.run(main)
