"""Kernel benchmark library: throughput of the modsearch and polymax kernels against numpy and the unfused references
(the binary is ``python -m mesabench.benchmarks.kernels_bench``; see its docstring for what the rows hold)."""
from __future__ import annotations

import os
import re
import sys
import time
import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from mesabench.harness import provenance
from mesabench.kernels import modsearch
from mesabench.kernels import polymax


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
  return provenance.time_call(fn, repeats=repeats, min_time=0.2)


def bench_modsearch(rng, peak, repeats, *, batch: int = 256, sizes=(12, 20, 30), numpy_samples: int = 8):
  """Rows of the modsearch benchmark: every algorithm x impl at n in (7/8 * 2**e, 2**e] for e in ``sizes``."""
  rows = []
  for e in [int(v) for v in sizes]:
    hi = 2**e
    n_np = rng.integers(hi - hi // 8 + 1, hi + 1, size=batch).astype(np.int64)
    n = jnp.asarray(n_np, jnp.int32)
    sample = n_np[:numpy_samples]
    start = time.perf_counter()
    truth = [numpy_seed(int(v)) for v in sample]
    numpy_per_n = (time.perf_counter() - start) / len(sample)
    kk = np.asarray(modsearch.kmax(n)).astype(np.int64)
    bands = np.asarray(modsearch.sqmod(jnp.asarray(kk, jnp.int32), n)[0]).astype(np.int64) + 1
    work = {"brute": float(kk.sum()), "banded": float(bands.sum())}
    ops_per_item = {"brute": modsearch._BRUTE_OPS_PER_CANDIDATE, "banded": modsearch._BANDED_OPS_PER_BAND}
    results = {}
    combos = [(a, i) for a in ("banded", "brute") for i in ("xla", "reference")]
    for algorithm, impl in tqdm.tqdm(combos, desc=f"modsearch n~2^{e}", file=sys.stderr):
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


def _memory(fn, *args):
  """XLA's buffer accounting of ``jax.jit(fn)`` on ``args``: (temp bytes, output bytes), None where unavailable."""
  try:
    analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
  except Exception:  # pylint: disable=broad-except
    return None, None
  if analysis is None:
    return None, None
  return int(analysis.temp_size_in_bytes), int(analysis.output_size_in_bytes)


def bench_polymax(rng, peak, rounds, *, batch: int = 1024, degree: int = 8, grids=(4096, 65536),
                  numpy_rows: int = 128):
  """Rows of the polymax benchmark: numpy, xla, reference and pallas-interpret in interleaved rounds per G."""
  """polymax rows per grid size: impl "xla" (what impl=None runs on CPU), "reference" (materializes [B, G]) and
  "pallas-interpret" (the Pallas kernel body as XLA ops: a test tool, never the CPU dispatch), all timed in
  interleaved rounds together with the numpy baseline so that load changes on the shared machine hit them alike."""
  rows = []
  coeffs_np = rng.standard_normal((batch, degree + 1)).astype(np.float32)
  coeffs = jnp.asarray(coeffs_np)
  sub = coeffs_np[:numpy_rows].astype(np.float64)
  for g in tqdm.tqdm([int(v) for v in grids], desc="polymax grids", file=sys.stderr):
    fns = {
        "xla": lambda: polymax.maximize(coeffs, impl="xla", grid_points=g),  # pylint: disable=cell-var-from-loop
        "reference": lambda: polymax.maximize(  # pylint: disable=cell-var-from-loop
            coeffs, impl="reference", grid_points=g),
        "pallas-interpret": lambda: polymax.maximize(  # pylint: disable=cell-var-from-loop
            coeffs, impl="pallas", interpret=True, grid_points=g),
    }
    answers = {impl: fn() for impl, fn in fns.items()}  # compiles
    v_r, x_r = answers["reference"]
    samples = {impl: [] for impl in fns}
    numpy_samples = []
    for _ in range(rounds):
      start = time.perf_counter()
      numpy_polymax(sub, g)
      numpy_samples.append((time.perf_counter() - start) / len(sub))
      for impl, fn in fns.items():
        samples[impl].append(provenance.time_call(fn, repeats=1, min_time=0.2))
    numpy_per_row = float(np.median(numpy_samples))
    seconds = {impl: float(np.median(v)) for impl, v in samples.items()}
    points = batch * polymax.SEGMENTS * (polymax.segment_length(g) + 2)
    flops = points * (2 * degree + 6)
    xla_temp, _ = _memory(lambda c: polymax._maximize_padded(c, grid_points=g, impl="xla", platform="xla"), coeffs)
    grid_temp, grid_out = _memory(lambda c: polymax._grid_values(c, g), coeffs)
    ref_temp, _ = _memory(lambda c, v: polymax._maximize_from_grid(c, v, g), coeffs,
                          jax.ShapeDtypeStruct((batch, g), jnp.float32))
    working = {
        "xla": xla_temp,
        "reference": None if None in (grid_temp, grid_out, ref_temp) else grid_temp + grid_out + ref_temp,
        "pallas-interpret": None,
    }
    for impl, s in seconds.items():
      v, x = answers[impl]
      rows.append({
          "kernel": "polymax", "algorithm": "segment-maxima+refine", "impl": impl,
          "size": {"batch": batch, "degree": degree, "grid_points": g},
          "seconds_per_call": s, "seconds_samples": samples[impl], "polynomials_per_second": batch / s,
          "numpy_seconds_per_row": numpy_per_row, "numpy_seconds_samples": numpy_samples,
          "ratio_vs_numpy": numpy_per_row * batch / s,
          "ratio_vs_reference": seconds["reference"] / s,
          "achieved_ops_per_second": flops / s, "fraction_of_peak": flops / s / peak["ops_per_second"],
          "working_bytes": working[impl],
          "rows_block": polymax.xla_rows_block(batch, g) if impl == "xla" else None,
          "max_abs_value_diff_vs_reference": float(jnp.max(jnp.abs(v - v_r))),
          "argmax_equal_to_reference": bool(jnp.all(x == x_r)),
      })
  return rows
