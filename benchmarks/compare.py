"""Compare two leaderboards entry by entry and gate on regressions (for CI).

    python -m mesabench.benchmarks.compare OLD.json NEW.json
    python -m mesabench.benchmarks.compare OLD.json NEW.json --gate --metrics=heldout.loss,pool.loss --rtol=0.1

Exit codes: 0 fine; 1 with --gate when a metric regressed, is missing or non-finite in NEW, or nothing was compared;
2 on bad input (a missing file, another schema version, a malformed field: one line naming it).
"""
from __future__ import annotations

import sys

from absl import flags

from mesabench.harness import cli
from mesabench.harness import compare
from mesabench.harness import leaderboard

_METRICS = flags.DEFINE_list("metrics", ["heldout.loss", "pool.loss", "larger.loss"],
                             "Metrics to compare, as split.metric.")
_RTOL = flags.DEFINE_float("rtol", 0.05, "Relative tolerance of a regression (>= 0).", lower_bound=0.0)
_ATOL = flags.DEFINE_float("atol", 1e-3, "Absolute tolerance of a regression (>= 0).", lower_bound=0.0)
_GATE = flags.DEFINE_bool("gate", False, "Exit 1 when a regression, a missing or non-finite value, or an empty "
                          "comparison is found.")


def main(argv):
  metrics = cli.split_list("metrics", _METRICS.value, allowed="split.metric names")
  old, new = (leaderboard.read(path) for path in argv[1:])
  report = compare.compare(old, new, metrics, _RTOL.value, _ATOL.value)
  sys.stdout.write(compare.format_report(report))
  return 1 if (_GATE.value and not report.passed) else 0


if __name__ == "__main__":
  cli.run(main, positional=("OLD.json", "NEW.json"))
