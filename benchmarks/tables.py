r"""Paper tables from a leaderboard: one row per entry (task, model, pool size), mean ± std over seeds.

    python -m mesabench.benchmarks.tables results/leaderboard.json --format=md
    python -m mesabench.benchmarks.tables results/leaderboard.json --format=latex --out=table.tex

Columns: task, model, pool (N or fresh), params, forward FLOPs per example, task loss on the pool (seen), held-out
(unseen) and larger (extrapolation) splits, the hard/easy held-out loss ratio, the held-out success rate (PolyMax:
hit, |x̂ - x*| <= 1e-3; ModSearch: accuracy), and the status. "—" marks a split the entry does not have.
"""
from __future__ import annotations

import sys
from typing import Any

from absl import app
from absl import flags

from mesabench.benchmarks import leaderboard

FORMATS = ("md", "latex")
HEADER = ("task", "model", "pool", "params", "FLOPs/ex", "pool loss", "held-out loss", "larger loss", "hard/easy",
          "held-out success", "status")


def _num(x: float | None) -> str:
  if x is None:
    return "—"
  if x == 0:
    return "0"
  return f"{x:.3g}"


def _stat(stat: dict | None, latex: bool) -> str:
  if not stat or stat.get("mean") is None:
    return "—"
  mean, std = stat["mean"], stat.get("std") or 0.0
  if latex:
    return f"${_num(mean)} \\pm {_num(std)}$"
  return f"{_num(mean)} ± {_num(std)}"


def rows(doc: dict[str, Any], latex: bool = False) -> list[list[str]]:
  """Table cells, one row per entry, in the leaderboard's order."""
  out = []
  for e in doc["entries"]:
    sp = e["results"]["splits"]
    loss = lambda split: sp.get(split, {}).get("loss")
    hard, easy = loss("stratum:hard"), loss("stratum:easy")
    ratio = None
    if hard and easy and hard.get("mean") is not None and easy.get("mean"):
      ratio = hard["mean"] / easy["mean"]
    held = sp.get("heldout", {})
    success = held.get("accuracy", held.get("hit"))
    comp = e["results"]["compute"]
    out.append([e["task"]["id"], e["model"]["id"], "fresh" if e["pool_size"] is None else str(e["pool_size"]),
                f"{int(round(comp['params'])):,}", _num(comp["flops_per_example"]), _stat(loss("pool"), latex),
                _stat(loss("heldout"), latex), _stat(loss("larger"), latex), _num(ratio),
                _stat(success, latex), e["status"]])
  return out


def markdown(doc: dict[str, Any]) -> str:
  """A GitHub Markdown table of the leaderboard."""
  lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
  lines += ["| " + " | ".join(r) + " |" for r in rows(doc)]
  return "\n".join(lines) + "\n"


def latex(doc: dict[str, Any]) -> str:
  """A LaTeX tabular (booktabs) of the leaderboard."""
  esc = lambda s: s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&").replace("#", r"\#")
  head = " & ".join(esc(h) for h in HEADER) + r" \\"
  body = [" & ".join(esc(c) if not c.startswith("$") else c for c in r) + r" \\" for r in rows(doc, latex=True)]
  return "\n".join([r"\begin{tabular}{" + "ll" + "r" * (len(HEADER) - 3) + "l}", r"\toprule", head, r"\midrule",
                    *body, r"\bottomrule", r"\end{tabular}"]) + "\n"


def render(doc: dict[str, Any], fmt: str) -> str:
  if fmt not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
  return markdown(doc) if fmt == "md" else latex(doc)


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the binary's flags (only when run as a binary, so that importing the module defines none)."""
  flags.DEFINE_enum("format", "md", list(FORMATS), "Table format.")
  flags.DEFINE_string("out", None, "Write the table here (default: stdout).")


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: python -m mesabench.benchmarks.tables LEADERBOARD.json [--format=md|latex]")
  try:
    doc = leaderboard.read(argv[1])
  except (OSError, leaderboard.SchemaError) as err:
    print(f"error: {argv[1]}: {err}", file=sys.stderr)
    return 2
  text = render(doc, FLAGS.format)
  if FLAGS.out:
    with open(FLAGS.out, "w", encoding="utf-8") as f:
      f.write(text)
  else:
    sys.stdout.write(text)
  return 0


if __name__ == "__main__":
  define_flags()
  app.run(main)
