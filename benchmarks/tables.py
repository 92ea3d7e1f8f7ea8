"""Render a leaderboard as the paper table (Markdown or LaTeX).

    python -m mesabench.benchmarks.tables results/leaderboard.json --format=md
    python -m mesabench.benchmarks.tables results/leaderboard.json --format=latex --out=table.tex

The columns are explained by ``mesabench.harness.tables.LEGEND`` (printed under the Markdown table).
"""
from __future__ import annotations

import sys

from absl import flags

from mesabench.harness import cli
from mesabench.harness import leaderboard
from mesabench.harness import provenance
from mesabench.harness import tables

_FORMAT = flags.DEFINE_enum("format", "md", list(tables.FORMATS), "Table format.")
_OUT = flags.DEFINE_string("out", None, "Write the table here (default: stdout).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out.")


def main(argv):
  if _OUT.value:
    cli.check_output_path("out", _OUT.value, exists_ok=_OVERWRITE.value)
  doc = leaderboard.read(argv[1])
  text = tables.render(doc, _FORMAT.value)
  if _OUT.value:
    provenance.write_text(_OUT.value, text)
  else:
    sys.stdout.write(text)
    if _FORMAT.value == "md":
      print(tables.LEGEND)


if __name__ == "__main__":
  cli.run(main, positional=("LEADERBOARD.json",))
