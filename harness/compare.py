r"""Compare two leaderboards: the entries they share, metric by metric, with deltas and regressions flagged.

Entries are matched by id (the id hashes the full config, so only identical configs are compared). A metric is
"split.name" (heldout.loss, larger.regret, stratum:hard.loss, heldout.accuracy). Whether higher or lower is better
is what the task declared when the entry was written (the entry's ``results.metrics``); loss-like metrics without
a declaration are lower-is-better. NEW regresses on a metric when it is worse than OLD by more than
atol + rtol * |OLD| (means over seeds).

A gate must never pass on nothing: ``Report.passed`` is False when a metric regressed, when a value present in OLD is
missing or non-finite (null) in NEW, when a metric name matches no split.metric of any shared entry, or when the
files share no entries at all.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

LOWER, HIGHER = "lower", "higher"


@dataclasses.dataclass(frozen=True)
class Row:
  """One shared entry x metric: old and new means (None when missing or non-finite), delta, verdict."""
  id: str
  metric: str
  old: float | None
  new: float | None
  delta: float | None
  status: str  # "ok" | "regressed" | "missing in new" | "non-finite in new" | "missing in old"


@dataclasses.dataclass(frozen=True)
class Report:
  rows: list[Row]
  shared_entries: int
  unknown_metrics: list[str]

  @property
  def regressions(self) -> list[Row]:
    return [r for r in self.rows if r.status == "regressed"]

  @property
  def failures(self) -> list[Row]:
    """Rows that fail a gate: regressions, and values present in OLD but missing or non-finite in NEW."""
    return [r for r in self.rows if r.status in ("regressed", "missing in new", "non-finite in new")]

  @property
  def compared(self) -> int:
    return sum(r.status in ("ok", "regressed") for r in self.rows)

  @property
  def passed(self) -> bool:
    return bool(self.shared_entries) and self.compared > 0 and not self.failures and not self.unknown_metrics


def _stat(entry: dict, metric: str) -> tuple[bool, float | None]:
  """(present, finite value or None) of a split.metric mean in an entry."""
  split, _, name = metric.rpartition(".")
  stat = entry["results"]["splits"].get(split, {}).get(name)
  if stat is None:
    return False, None
  mean = stat.get("mean")
  if mean is None or not math.isfinite(mean):
    return True, None
  return True, float(mean)


def _direction(entry: dict, metric: str) -> str:
  return entry["results"].get("metrics", {}).get(metric.rpartition(".")[2], LOWER)


def compare(old: dict[str, Any], new: dict[str, Any], metrics: list[str], rtol: float = 0.05,
            atol: float = 1e-3) -> Report:
  """The comparison of every shared entry on every metric (see the module docstring for the rules)."""
  if not metrics:
    raise ValueError("metrics must name at least one split.metric (e.g. heldout.loss)")
  for m in metrics:
    if "." not in m or m.startswith(".") or m.endswith("."):
      raise ValueError(f"metrics must be 'split.name' (e.g. heldout.loss), got {m!r}")
  for name, v in (("rtol", rtol), ("atol", atol)):
    if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
      raise ValueError(f"{name} must be in [0, inf), got {v!r}")
  old_by_id = {e["id"]: e for e in old["entries"]}
  shared = [e for e in new["entries"] if e["id"] in old_by_id]
  rows, seen = [], set()
  for e in shared:
    o = old_by_id[e["id"]]
    for m in metrics:
      (in_old, a), (in_new, b) = _stat(o, m), _stat(e, m)
      if in_old or in_new:
        seen.add(m)
      if not in_old and not in_new:
        continue
      if a is None:
        status = "missing in old"
      elif not in_new:
        status = "missing in new"
      elif b is None:
        status = "non-finite in new"
      else:
        worse = (a - b) if _direction(e, m) == HIGHER else (b - a)
        status = "regressed" if worse > atol + rtol * abs(a) else "ok"
      delta = None if (a is None or b is None) else b - a
      rows.append(Row(e["id"], m, a, b, delta, status))
  return Report(rows, len(shared), sorted(set(metrics) - seen) if shared else [])


def _num(x: float | None, fmt: str) -> str:
  return "n/a" if x is None else format(x, fmt)


def format_report(report: Report) -> str:
  """An aligned plain-text table and a summary line (what a gate decided, and why)."""
  head = ("entry", "metric", "old", "new", "delta", "")
  cells = [head] + [(r.id, r.metric, _num(r.old, ".4g"), _num(r.new, ".4g"), _num(r.delta, "+.3g"),
                     "" if r.status == "ok" else r.status.upper()) for r in report.rows]
  widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
  lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(head))).rstrip() for c in cells]
  lines.append(f"{report.shared_entries} shared entries, {report.compared} comparisons, "
               f"{len(report.regressions)} regression(s), {len(report.failures) - len(report.regressions)} missing "
               f"or non-finite in NEW")
  if not report.shared_entries:
    lines.append("FAIL: the two files share no entries (entry ids hash the full config)")
  elif report.unknown_metrics:
    lines.append(f"FAIL: no shared entry has metric(s) {report.unknown_metrics}")
  elif not report.compared:
    lines.append("FAIL: nothing was compared")
  return "\n".join(lines) + "\n"
