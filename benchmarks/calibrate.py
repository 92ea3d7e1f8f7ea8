"""Calibrates the behavioural detectors on known memorizers, heuristics and budgeted searchers.

    python -m mesabench.benchmarks.calibrate                         # the default set -> runs/calibration.json
    python -m mesabench.benchmarks.calibrate --out=results/calibration.json --overwrite

Measures every member of ``mesabench.harness.calibration.DEFAULT_CONFIG`` on its choosing part, chooses the
detectors' thresholds there, judges the validation part with them, and writes the confusion matrices (per signal
and combined), every case and the provenance as JSON (schema ``mesabench.calibration/1``); prints the validation
part's combined confusion matrix as Markdown. About 10 minutes on 2 CPU cores.
"""
from __future__ import annotations

import os
import time

from absl import flags

from mesabench.harness import calibration
from mesabench.harness import cli
from mesabench.harness import provenance

_OUT = flags.DEFINE_string("out", os.path.join("runs", "calibration.json"), "Result JSON to write (a .json path).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out.")
_NUM_EXAMPLES = flags.DEFINE_integer("num_examples", calibration.DEFAULT_CONFIG.num_examples,
                                     "Held-out instances per member and split (>= 32).")


def main(argv):
  if _NUM_EXAMPLES.value < 32:
    raise cli.UsageError(f"--num_examples: must be an integer >= 32, got {_NUM_EXAMPLES.value}")
  out = cli.check_output_path("out", _OUT.value, exists_ok=_OVERWRITE.value, suffix=".json")
  config = calibration.CalibrationConfig(**{**calibration.DEFAULT_CONFIG.__dict__,
                                            "num_examples": _NUM_EXAMPLES.value})
  t0 = time.perf_counter()
  doc = calibration.run(config)
  doc["seconds"] = round(time.perf_counter() - t0, 1)
  doc["environment"] = provenance.environment()
  doc["command"] = provenance.command_line("mesabench.benchmarks.calibrate")
  provenance.write_json(out, doc)
  for part in ("choose", "validate"):
    print(f"{part} part:")
    for signal in (None, *doc[part]["per_signal"]):
      print(calibration.markdown(doc, part, signal) + "\n")
  print(f"validation targets met: {doc['validate']['meets_targets']}\nwrote {out}")


if __name__ == "__main__":
  cli.run(main)
