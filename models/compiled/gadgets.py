"""Reusable constructions over the IR: the argmax tournament (the comparison and select idioms of ``ir`` combined).

A gadget appends layer steps (``ir.Step``) to a list and returns ``Expr`` s over the last layer it appends, so that
the caller's next step can read its results.
"""
from __future__ import annotations

import numpy as np

from mesabench.models.compiled.ir import Expr
from mesabench.models.compiled.ir import select


def tournament(steps: list, y: Expr, k: Expr, m: float, carry: tuple[str, ...] = ()) -> tuple[Expr, Expr]:
  """Appends to ``steps`` the layers of an argmax tournament over entries (y, k) in index order and returns
  Exprs (y_win, k_win) over the last appended layer: y_win = max y; k_win = the k of the first entry (smallest
  index) attaining it. y and k are Exprs over the layout the first appended layer reads; every y must be an
  integer in [0, 2**52) and every k an integer in [0, m/2) (the big-M select needs M > 2 max k), or the result is
  not exact. ``carry`` names non-negative groups carried alongside, unchanged.

  Each round pairs entries 2p (left) and 2p+1 (right): g = 1[yL >= yR] = relu(yL - yR + 1) - relu(yL - yR);
  y = yR + relu(yL - yR) = max; k = g ? kL : kR (an affine function of g while k is constant, a big-M select
  otherwise). An odd count gets a dummy (y = 0, k = 0) on the right, which loses every tie. Rounds: ceil(log2
  count); layers: 2 per round while k is constant, then 3.
  """
  state = {"y": y, "k": k}
  rnd = 0
  while state["y"].count > 1:
    rnd += 1
    y, k = state["y"], state["k"]
    if y.count % 2:
      y = Expr.concat([y, Expr.constant(1, 0.0)])
      k = Expr.concat([k, Expr.constant(1, 0.0)])
    left, right = np.arange(0, y.count, 2), np.arange(1, y.count, 2)
    p = left.size
    yl, yr, kl, kr = y.take(left), y.take(right), k.take(left), k.take(right)
    k_const = not kl.terms and not kr.terms

    def compare(lb, yl=yl, yr=yr, kl=kl, kr=kr, k_const=k_const, rnd=rnd):
      lb.add("d1", yl - yr + 1, f"round {rnd}: relu(yL - yR + 1)")
      lb.add("d2", yl - yr, f"round {rnd}: relu(yL - yR) (also max(yL, yR) - yR)")
      lb.add("yr", yr, f"round {rnd}: yR (carried)")
      if not k_const:
        lb.add("kl", kl, f"round {rnd}: kL (carried)")
        lb.add("kr", kr, f"round {rnd}: kR (carried)")
      lb.carry(*carry)

    def step_and_max(lb, k_const=k_const, p=p, rnd=rnd):
      lb.add("g", Expr.unit("d1", p) - Expr.unit("d2", p), f"round {rnd}: g = 1[yL >= yR], 0/1")
      lb.add("y", Expr.unit("yr", p) + Expr.unit("d2", p), f"round {rnd}: y = yR + relu(yL - yR) = max(yL, yR)")
      if not k_const:
        lb.carry("kl", "kr")
      lb.carry(*carry)

    steps += [compare, step_and_max]
    if k_const:
      state = {"y": Expr.unit("y", p), "k": Expr(p, [("g", np.arange(p), kl.const - kr.const)], kr.const)}
    else:
      def pick(lb, p=p, rnd=rnd):
        g = Expr.unit("g", p)
        lb.add("kn", select(Expr.unit("kl", p), g, m, keep_when=1), f"round {rnd}: kL if g else 0")
        lb.add("ko", select(Expr.unit("kr", p), g, m, keep_when=0), f"round {rnd}: kR if not g else 0")
        lb.carry("y")
        lb.carry(*carry)
      steps.append(pick)
      state = {"y": Expr.unit("y", p), "k": Expr.unit("kn", p) + Expr.unit("ko", p)}
  return state["y"], state["k"]
