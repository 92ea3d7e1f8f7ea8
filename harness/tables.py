r"""Paper tables from a leaderboard: one row per entry (task, model, pool size), mean ± std over seeds.

    python -m mesabench.benchmarks.tables results/leaderboard.json --format=md
    python -m mesabench.benchmarks.tables results/leaderboard.json --format=latex --out=table.tex

Columns: task, model, pool (N or fresh), params, forward FLOPs per example, task loss on the pool (seen), held-out
(unseen) and larger (extrapolation) splits, the hard/easy held-out loss ratio, the held-out success rate (PolyMax:
hit, |x̂ - x*| <= 1e-3; ModSearch: accuracy; the entry names it in ``results.success_metric``), and the status.
"—" marks a split the entry does not have; "n/a" a value that is missing or non-finite.
"""
from __future__ import annotations

import math
from typing import Any

FORMATS = ("md", "latex")
HEADER = ("task", "model", "pool", "params", "FLOPs/ex", "pool loss", "held-out loss", "larger loss", "hard/easy",
          "held-out success", "eq. budget", "vs heuristic", "status")


LEGEND = ("columns: params = trained parameters; FLOPs/ex = forward FLOPs per example (XLA cost analysis); "
          "pool / held-out / larger loss = the task's loss (mean ± std over seeds) on seen pool instances, unseen "
          "instances and the extrapolation split; hard/easy = held-out loss on the 'hard' stratum over the 'easy' "
          "one (stratified samples of 512 distinct unseen instances each); held-out success = the task's success "
          "rate on unseen instances; eq. budget = the budget at which the task's budgeted-search family matches the "
          "held-out loss (log-log interpolation; < / > : outside the family's budgets); vs heuristic = the best "
          "non-search heuristic's held-out loss minus the entry's (> 0: the entry beats every heuristic); "
          "— = split not applicable; n/a = missing or non-finite.")


def _num(x: float | None) -> str:
  if x is None or (isinstance(x, float) and not math.isfinite(x)):
    return "n/a"
  if x == 0:
    return "0"
  return f"{x:.3g}"


def _count(x) -> str:
  if x is None or not math.isfinite(x):
    return "n/a"
  return f"{int(round(x)):,}"


def _stat(stat: dict | None, latex: bool) -> str:
  if not stat:
    return "—"
  if stat.get("mean") is None:
    return "n/a"
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
    success = held.get(e["results"].get("success_metric", ""))
    comp = e["results"]["compute"]
    ref = e["results"].get("references", {}).get("heldout", {})
    eq = ref.get("equivalent_budget")
    eq_text = "—" if eq is None else (_num(eq["budget"]) if eq["relation"] == "=" else
                                      f"{eq['relation']} {_num(eq['budget'])}")
    margin = ref.get("margin_over_heuristic")
    margin_text = "—" if "margin_over_heuristic" not in ref else (_num(margin) if margin is None or margin <= 0
                                                                   else "+" + _num(margin))
    out.append([e["task"]["id"], e["model"]["id"], "fresh" if e["pool_size"] is None else str(e["pool_size"]),
                _count(comp.get("params")), _num(comp["flops_per_example"]), _stat(loss("pool"), latex),
                _stat(loss("heldout"), latex), _stat(loss("larger"), latex), _num(ratio),
                _stat(success, latex), eq_text.replace("<", "$<$").replace(">", "$>$") if latex else eq_text,
                margin_text, e["status"]])
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
