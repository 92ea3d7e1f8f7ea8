r"""Training-harness throughput: examples/s and achieved FLOP/s per model, 16 seeds vmapped vs 16 separate runs, one
train step vmapped vs lax.map vs separate, and the sharded-sweep scaling over 1/2/4/8 forced CPU devices.

    python -m mesabench.benchmarks.harness_bench [--out=runs/harness_bench.json] [--steps=200] [--models=mlp,...]

What each figure means is in ``mesabench.harness.harness_bench``.
"""
from __future__ import annotations

import sys

from absl import flags

from mesabench.harness import cli
from mesabench.harness import harness_bench
from mesabench.harness import provenance

_MODELS = ("mlp", "transformer", "looped", "memory")
_OUT = flags.DEFINE_string("out", "runs/harness_bench.json", "Where to write the JSON.")
_STEPS = flags.DEFINE_integer("steps", 200, "Training steps per run (>= 1).")
_MODEL_IDS = flags.DEFINE_list("models", list(_MODELS), f"Zoo networks to time, among {', '.join(_MODELS)}.")
_SCALING = flags.DEFINE_list("scaling_devices", ["1", "2", "4", "8"], "Forced CPU device counts of the sharded-sweep "
                             "scaling (one subprocess each); 'none' to skip.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out.")


def main(argv):
  if _STEPS.value < 1:
    raise cli.UsageError(f"--steps: must be an integer >= 1, got {_STEPS.value}")
  ids = cli.split_list("models", _MODEL_IDS.value, allowed=", ".join(_MODELS))
  bad = [m for m in ids if m not in _MODELS]
  if bad:
    raise cli.UsageError(f"--models: must be among {', '.join(_MODELS)}, got {bad}")
  counts = [] if _SCALING.value == ["none"] else cli.split_list("scaling_devices", _SCALING.value, int,
                                                                 "integers in [1, 64] or 'none'")
  if any(not 1 <= n <= 64 for n in counts):
    raise cli.UsageError(f"--scaling_devices: must be integers in [1, 64] or 'none', got {counts}")
  out = cli.check_output_path("out", _OUT.value, exists_ok=_OVERWRITE.value, suffix=".json")
  doc = harness_bench.bench(_STEPS.value, ids, counts, log=lambda s: print(s, file=sys.stderr, flush=True))
  doc["command"] = provenance.command_line("mesabench.benchmarks.harness_bench")
  provenance.write_json(out, doc)
  print(f"wrote {out}")


if __name__ == "__main__":
  cli.run(main)
