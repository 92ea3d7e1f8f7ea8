r"""Throughput of the task generators and oracles against plain numpy implementations of the same thing.

    python -m mesabench.benchmarks.tasks_bench            # writes results/tasks_bench.json

Each row times one jitted mesabench function and the numpy code a user would write for the same job, in the same
run on the same machine, and reports examples/s of both and their ratio (mesabench / numpy; above 1 is faster).
Numpy baselines: ModSearch oracle -- per n, ``i = arange(1, K+1); argmax(i*i % n)`` in int64 (K by exact integer
arithmetic); PolyMax oracle -- per polynomial, real roots of P' with ``np.roots`` in float64 plus the endpoints
(what the seed's poster would write), and a vectorized float64 grid search (``polyval`` on 4,097 points, as
accurate as the grid allows); generators -- ``numpy.random`` draws followed by the numpy oracle.
"""
from __future__ import annotations


from absl import flags

from mesabench.harness import cli
from mesabench.harness import tasks_bench as tb
from mesabench.harness import provenance

_OUT = flags.DEFINE_string("out", "runs/tasks_bench.json", "Where to write the JSON results.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out.")
_BATCH = flags.DEFINE_integer("batch", 4096, "Batch size of the jitted functions.", lower_bound=16)
_NUMPY_BATCH = flags.DEFINE_integer("numpy_batch", 256, "Examples per numpy timing (per-example loops).",
                                    lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed.")


def main(argv):
  cli.check_output_path("out", _OUT.value, exists_ok=_OVERWRITE.value, suffix=".json")
  rows = tb.run(_BATCH.value, _NUMPY_BATCH.value, _SEED.value)
  provenance.write_json(_OUT.value, {
      "schema_version": 1, "benchmark": "tasks_bench",
      "config": {"batch": _BATCH.value, "numpy_batch": _NUMPY_BATCH.value, "seed": _SEED.value},
      "environment": provenance.environment(), "command": provenance.command_line("mesabench.benchmarks.tasks_bench"),
      "rows": rows})
  print(f"wrote {_OUT.value}")


if __name__ == "__main__":
  cli.run(main)
