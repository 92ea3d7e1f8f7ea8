"""On a machine with an NVIDIA GPU: run every Pallas kernel un-interpreted (Triton) against the exact references and
the seed program, then write one JSON report (device named) to the path given as the first argument.

    python .ci/gpu_check.py results/gpu_check_<device>.json

Checks (each recorded as passed/failed with the number of mismatches):
- modsearch.search(impl=IMPL, algorithm=brute|banded) == search_reference == a Python seed loop on edge n
  (1..64, m**10 +- 1, 2**k +- 1 up to 2**30) and on random n across the range;
- polymax.maximize(impl=IMPL) == maximize_reference (same grid, candidates, refinement and tie rule: argmax equal,
  value within 1e-6 * sum|c|) on random Bernstein-like polynomials and on flat/near-tie cases;
- polymax.evaluate(impl=IMPL) == evaluate_reference within 4 ulp * sum|c| (FMA contraction may differ).
It exits non-zero if a check fails. It is not a CI step (CI has no GPU); BUILD.md says when it last ran.
"""
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from mesabench.kernels import modsearch
from mesabench.kernels import polymax

IMPL = os.environ.get("GPU_CHECK_IMPL", "pallas")  # "xla" smoke-tests this script on a CPU


def seed_loop(n: int) -> tuple[int, int]:
  """The seed program in plain Python integers: the smallest k <= floor(n**0.7) maximizing k*k mod n."""
  big_k = int(modsearch.kmax(np.array([n]))[0])
  best_k, best_r = 0, 0
  for k in range(1, big_k + 1):
    r = k * k % n
    if r > best_r:
      best_k, best_r = k, r
  return best_k, best_r


def edge_ns() -> np.ndarray:
  ns = set(range(1, 65))
  for m in range(2, 9):
    for d in (-1, 0, 1):
      if 1 <= m**10 + d <= 2**30:
        ns.add(m**10 + d)
  for k in range(1, 31):
    for d in (-1, 0, 1):
      if 1 <= 2**k + d <= 2**30:
        ns.add(2**k + d)
  return np.array(sorted(ns), np.int32)


def check_modsearch(rng) -> list[dict]:
  rows = []
  edges = edge_ns()
  randoms = np.concatenate([rng.integers(1, 2**e, 256) for e in (12, 20, 30)]).astype(np.int32)
  small = edges[edges <= 2**22]
  truth = np.array([seed_loop(int(n)) for n in small])
  for alg in modsearch.ALGORITHMS:
    for name, ns in (("edges", edges), ("random", randoms)):
      t0 = time.perf_counter()
      k, r = jax.block_until_ready(modsearch.search(jnp.asarray(ns), impl=IMPL, algorithm=alg))
      seconds = time.perf_counter() - t0
      k_ref, r_ref = modsearch.search_reference(jnp.asarray(ns), algorithm=alg)
      bad = int(np.sum((np.asarray(k) != np.asarray(k_ref)) | (np.asarray(r) != np.asarray(r_ref))))
      row = {"check": f"modsearch.search[{alg}] == search_reference ({name}, {len(ns)} n)", "mismatches": bad,
             "seconds_first_call": seconds}
      if name == "edges":
        sel = np.isin(ns, small)
        seed_bad = int(np.sum((np.asarray(k)[sel] != truth[:, 0]) | (np.asarray(r)[sel] != truth[:, 1])))
        row["check"] += f" and == seed loop ({int(sel.sum())} n <= 2**22)"
        row["mismatches"] += seed_bad
      row["passed"] = row["mismatches"] == 0
      rows.append(row)
  return rows


def check_polymax(rng) -> list[dict]:
  rows = []
  for degree, batch in ((4, 1024), (8, 1024), (16, 256)):
    c = rng.uniform(-1, 1, (batch, degree + 1)).astype(np.float32)
    c[:8] = 0.0
    c[8:16, 0] = 1.0  # constants: every x ties, the answer is x = 0
    c[16:24] = np.array([0.25, -1.0, 1.0] + [0.0] * (degree - 2), np.float32)  # (x - 1/2)**2 flat-ish
    scale = np.abs(c).sum(axis=1)
    for g in (polymax.default_grid_points(degree), 4097):
      t0 = time.perf_counter()
      v, x = jax.block_until_ready(polymax.maximize(jnp.asarray(c), impl=IMPL, grid_points=g))
      seconds = time.perf_counter() - t0
      v_r, x_r = polymax.maximize_reference(jnp.asarray(c), grid_points=g)
      dv = np.abs(np.asarray(v, np.float64) - np.asarray(v_r, np.float64))
      bad_x = int(np.sum(np.asarray(x) != np.asarray(x_r)))
      bad_v = int(np.sum(dv > 1e-6 * np.maximum(1.0, scale)))
      rows.append({"check": f"polymax.maximize degree {degree} G={g} == maximize_reference ({batch} rows)",
                   "mismatches": bad_x + bad_v, "argmax_mismatches": bad_x, "value_mismatches": bad_v,
                   "max_value_diff": float(dv.max()), "seconds_first_call": seconds,
                   "passed": bad_x + bad_v == 0})
    xs = rng.uniform(0, 1, (batch, 128)).astype(np.float32)
    p = np.asarray(polymax.evaluate(jnp.asarray(c), jnp.asarray(xs), impl=IMPL), np.float64)
    p_r = np.asarray(polymax.evaluate_reference(jnp.asarray(c), jnp.asarray(xs)), np.float64)
    tol = 4 * 2.0**-24 * (degree + 1) * np.maximum(1.0, scale)[:, None]
    bad = int(np.sum(np.abs(p - p_r) > tol))
    rows.append({"check": f"polymax.evaluate degree {degree} == evaluate_reference ({batch}x128)",
                 "mismatches": bad, "max_abs_diff": float(np.abs(p - p_r).max()), "passed": bad == 0})
  return rows


def _seconds(fn, repeats: int = 5) -> float:
  jax.block_until_ready(fn())
  samples = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    samples.append(time.perf_counter() - t0)
  return float(np.median(samples))


def timings(rng) -> list[dict]:
  """Seconds per call of every impl (pallas, xla, the unfused reference) on the same inputs, medians of 5 after a
  warm-up call; ratios against the reference measured in the same run."""
  rows = []
  for alg, e in (("banded", 20), ("banded", 30), ("brute", 12), ("brute", 20)):
    n = jnp.asarray(rng.integers(2**e - 2**(e - 3), 2**e, 4096).astype(np.int32))
    ref = _seconds(lambda: modsearch.search_reference(n, algorithm=alg))
    for impl in ("pallas", "xla"):
      s = _seconds(lambda impl=impl: modsearch.search(n, impl=impl, algorithm=alg))
      rows.append({"kernel": "modsearch.search", "algorithm": alg, "impl": impl, "n_log2": e, "batch": 4096,
                   "seconds_per_call": s, "reference_seconds": ref, "speedup_vs_reference": ref / s})
  for g in (4096, 65536):
    c = jnp.asarray(rng.uniform(-1, 1, (16384, 9)).astype(np.float32))
    ref = _seconds(lambda: polymax.maximize_reference(c, grid_points=g))
    for impl in ("pallas", "xla"):
      s = _seconds(lambda impl=impl: polymax.maximize(c, impl=impl, grid_points=g))
      rows.append({"kernel": "polymax.maximize", "impl": impl, "degree": 8, "grid_points": g, "batch": 16384,
                   "seconds_per_call": s, "reference_seconds": ref, "speedup_vs_reference": ref / s})
  return rows


def main(argv) -> int:
  out = argv[1] if len(argv) > 1 else "gpu_check.json"
  rng = np.random.default_rng(0)
  devices = jax.devices()
  start = time.perf_counter()
  rows = []
  for fn in (check_modsearch, check_polymax):
    try:
      rows.extend(fn(rng))
    except Exception as err:  # pylint: disable=broad-except
      rows.append({"check": fn.__name__, "passed": False, "error": f"{type(err).__name__}: {str(err)[:3000]}"})
  try:
    timing_rows = timings(rng) if IMPL == "pallas" else []
  except Exception as err:  # pylint: disable=broad-except
    timing_rows = [{"error": f"{type(err).__name__}: {str(err)[:3000]}"}]
  doc = {"schema_version": "mesabench.gpu_check/1", "backend": jax.default_backend(),
         "device_kind": devices[0].device_kind, "device_count": len(devices),
         "versions": {"jax": jax.__version__, "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__")
                      else "", "numpy": np.__version__, "python": platform.python_version()},
         "rows": rows, "timings": timing_rows, "passed": all(r["passed"] for r in rows), "wall_seconds": time.perf_counter() - start}
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, "w", encoding="utf-8") as f:
    json.dump(doc, f, indent=1)
  for r in rows:
    print(("ok   " if r["passed"] else "FAIL ") + r["check"] + ("" if r["passed"] else f": {r}"))
  for t in timing_rows:
    print(t)
  print(f"GPU check on {doc['device_kind']}: {sum(r['passed'] for r in rows)} of {len(rows)} passed")
  return 0 if doc["passed"] else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv))
