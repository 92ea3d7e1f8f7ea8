"""Task benchmark library: generators and oracles against the numpy code a user would write (the binary is
``python -m mesabench.benchmarks.tasks_bench``)."""
from __future__ import annotations

import math
import sys
import time
import jax
import numpy as np
import tqdm
from mesabench import tasks
from mesabench.harness import provenance
from mesabench.kernels import modsearch as kernel_modsearch
from mesabench.tasks import modsearch, polymax


def numpy_modsearch(ns: np.ndarray) -> np.ndarray:
  """The seed loop vectorized per n in numpy int64 (what a user would write); returns k."""
  out = np.empty(len(ns), np.int64)
  for j, n in enumerate(ns.tolist()):
    i = np.arange(1, kernel_modsearch.kmax_int(n) + 1, dtype=np.int64)
    r = i * i % n
    out[j] = 0 if r.size == 0 or r.max() == 0 else int(i[np.argmax(r)])
  return out


def numpy_polymax_roots(coeffs: np.ndarray) -> np.ndarray:
  """Per polynomial: real roots of P' in [0, 1] with np.roots, plus endpoints; returns the maxima (float64)."""
  out = np.empty(len(coeffs))
  for j, c in enumerate(coeffs.astype(np.float64)):
    p = np.polynomial.Polynomial(c)
    r = p.deriv().roots() if len(c) > 2 else np.array([])
    r = r[np.abs(r.imag) < 1e-9].real
    xs = np.concatenate([[0.0, 1.0], r[(r >= 0) & (r <= 1)]])
    out[j] = p(xs).max()
  return out


def numpy_polymax_grid(coeffs: np.ndarray, grid_points: int = 4097) -> np.ndarray:
  """Vectorized float64 grid search: max of P over grid_points points (Horner over the batch)."""
  xs = np.linspace(0.0, 1.0, grid_points)
  acc = np.zeros((len(coeffs), grid_points))
  for j in range(coeffs.shape[1] - 1, -1, -1):
    acc = acc * xs + coeffs[:, j : j + 1].astype(np.float64)
  return acc.max(axis=1)


def _rate(seconds: float, examples: int) -> float:
  return examples / seconds


def _row(name, config, ours_s, ours_n, base_s, base_n, baseline):
  ours, base = _rate(ours_s, ours_n), _rate(base_s, base_n)
  print(f"{name:<34} {ours:>12,.0f}/s  vs {baseline:<28} {base:>10,.0f}/s  ratio {ours / base:8.1f}x")
  return {"name": name, "config": config, "examples_per_s": ours, "baseline": baseline,
          "baseline_examples_per_s": base, "ratio": ours / base}


def _time_numpy(fn, *args, repeats: int = 3) -> float:
  best = math.inf
  for _ in range(repeats):
    start = time.perf_counter()
    fn(*args)
    best = min(best, time.perf_counter() - start)
  return best


def run(batch: int, numpy_batch: int, seed: int) -> list[dict]:
  """All rows of the benchmark (see the module docstring)."""
  rng = np.random.default_rng(seed)
  key = jax.random.key(seed)
  rows = []
  for bits in tqdm.tqdm([12, 20, 30], desc="modsearch", file=sys.stderr):
    task = tasks.make("ModSearch-v0", bits=bits)
    ns = np.asarray(task.sample(key, batch).info["n"])
    small = max(8, numpy_batch // (1 if bits <= 12 else 16 if bits <= 20 else 128))
    t_ours = provenance.time_call(lambda: modsearch.solve(ns), repeats=3)
    t_np = _time_numpy(numpy_modsearch, ns[:small], repeats=1 if bits >= 30 else 3)
    rows.append(_row(f"ModSearch oracle, bits={bits}", {"bits": bits, "batch": batch}, t_ours, batch, t_np, small,
                     "numpy per-n brute force"))
    t_gen = provenance.time_call(lambda: task.sample(key, batch), repeats=3)
    t_np_gen = _time_numpy(lambda: numpy_modsearch(rng.integers(1, 2**bits, small)), repeats=1)
    rows.append(_row(f"ModSearch sample, bits={bits}", {"bits": bits, "batch": batch}, t_gen, batch, t_np_gen,
                     small, "numpy draw + brute force"))
  for degree in tqdm.tqdm([6, 12], desc="polymax", file=sys.stderr):
    task = tasks.make("PolyMax-v0", degree=degree, distribution="uniform")
    coeffs = np.asarray(task.sample(key, batch).info["coeffs"])
    t_ours = provenance.time_call(lambda: polymax.solve(coeffs), repeats=3)
    t_roots = _time_numpy(numpy_polymax_roots, coeffs[:numpy_batch])
    rows.append(_row(f"PolyMax oracle, degree={degree}", {"degree": degree, "batch": batch}, t_ours, batch,
                     t_roots, numpy_batch, "numpy np.roots per polynomial"))
    t_grid = _time_numpy(numpy_polymax_grid, coeffs)
    rows.append(_row(f"PolyMax oracle, degree={degree}", {"degree": degree, "batch": batch}, t_ours, batch,
                     t_grid, batch, "numpy float64 grid (4097 pts)"))
    t_gen = provenance.time_call(lambda: task.sample(key, batch), repeats=3)
    t_np_gen = _time_numpy(lambda: numpy_polymax_roots(rng.uniform(-1, 1, (numpy_batch, degree + 1))))
    rows.append(_row(f"PolyMax sample, degree={degree}", {"degree": degree, "batch": batch}, t_gen, batch,
                     t_np_gen, numpy_batch, "numpy draw + np.roots"))
  return rows
