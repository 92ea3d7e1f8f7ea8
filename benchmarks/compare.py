r"""Compare two leaderboards: an aligned table of the entries they share, with deltas, and regressions flagged.

    python -m mesabench.benchmarks.compare OLD.json NEW.json
    python -m mesabench.benchmarks.compare OLD.json NEW.json --gate --metrics=heldout.loss,pool.loss --rtol=0.1

Entries are matched by id (the id hashes the full config, so only identical configs are compared). A metric is
"split.name" (e.g. heldout.loss, larger.regret, stratum:hard.loss, heldout.accuracy); loss and regret are better
lower, accuracy and hit higher. NEW regresses on a metric when it is worse than OLD by more than
atol + rtol * |OLD| (means over seeds). Exit status: 0, or 1 when --gate is given and a regression is flagged;
2 when a file is missing, is not JSON, has another schema version or a malformed field (the field's path is
printed, e.g. "$.entries[0].results.splits").
"""
from __future__ import annotations

import sys
from typing import Any

from absl import app
from absl import flags

from mesabench.benchmarks import leaderboard

HIGHER_IS_BETTER = ("accuracy", "hit")


def _mean(entry: dict, metric: str) -> float | None:
  split, _, name = metric.rpartition(".")
  stat = entry["results"]["splits"].get(split, {}).get(name)
  return None if stat is None else stat.get("mean")


def compare(old: dict[str, Any], new: dict[str, Any], metrics: list[str], rtol: float = 0.05,
            atol: float = 1e-3) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
  """(rows, regressions): one row per shared entry and metric: id, metric, old, new, delta (new - old), regressed."""
  for m in metrics:
    if "." not in m:
      raise ValueError(f"metrics must be 'split.name' (e.g. heldout.loss), got {m!r}")
  if rtol < 0 or atol < 0:
    raise ValueError(f"rtol and atol must be in [0, inf), got {rtol}, {atol}")
  old_by_id = {e["id"]: e for e in old["entries"]}
  rows, bad = [], []
  for e in new["entries"]:
    if e["id"] not in old_by_id:
      continue
    for m in metrics:
      a, b = _mean(old_by_id[e["id"]], m), _mean(e, m)
      if a is None or b is None:
        continue
      worse = (a - b) if m.rpartition(".")[2] in HIGHER_IS_BETTER else (b - a)
      row = {"id": e["id"], "metric": m, "old": a, "new": b, "delta": b - a,
             "regressed": worse > atol + rtol * abs(a)}
      rows.append(row)
      if row["regressed"]:
        bad.append(row)
  return rows, bad


def format_rows(rows: list[dict[str, Any]]) -> str:
  """An aligned plain-text table."""
  head = ("entry", "metric", "old", "new", "delta", "")
  cells = [head] + [(r["id"], r["metric"], f"{r['old']:.4g}", f"{r['new']:.4g}", f"{r['delta']:+.3g}",
                     "REGRESSION" if r["regressed"] else "") for r in rows]
  widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
  return "\n".join("  ".join(c[i].ljust(widths[i]) for i in range(len(head))).rstrip() for c in cells) + "\n"


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the binary's flags (only when run as a binary, so that importing the module defines none)."""
  flags.DEFINE_list("metrics", ["heldout.loss", "pool.loss", "larger.loss"], "Metrics to compare (split.name).")
  flags.DEFINE_float("rtol", 0.05, "Relative tolerance of a regression.", lower_bound=0.0)
  flags.DEFINE_float("atol", 1e-3, "Absolute tolerance of a regression.", lower_bound=0.0)
  flags.DEFINE_bool("gate", False, "Exit 1 when a regression is flagged.")


def main(argv):
  if len(argv) != 3:
    raise app.UsageError("usage: python -m mesabench.benchmarks.compare OLD.json NEW.json [--gate]")
  docs = []
  for path in argv[1:]:
    try:
      docs.append(leaderboard.read(path))
    except leaderboard.SchemaError as err:
      print(f"error: {path}: malformed leaderboard at {err.path}: {err}", file=sys.stderr)
      return 2
    except OSError as err:
      print(f"error: {path}: {err}", file=sys.stderr)
      return 2
  try:
    rows, bad = compare(docs[0], docs[1], FLAGS.metrics, FLAGS.rtol, FLAGS.atol)
  except ValueError as err:
    raise app.UsageError(str(err)) from err
  sys.stdout.write(format_rows(rows))
  print(f"{len({r['id'] for r in rows})} shared entries, {len(rows)} comparisons, {len(bad)} regression(s)")
  return 1 if (FLAGS.gate and bad) else 0


if __name__ == "__main__":
  define_flags()
  app.run(main)
