"""Compiled networks: the seed programs written as ReLU networks with weights set by construction (no training).

A compiler in named stages, as tracr is:
  * ``ir``: the layers (sparse affine-then-ReLU, and Mul layers), ``Expr`` and the builders; ``gadgets``: the argmax
    tournament;
  * ``modsearch`` / ``polymax``: the programs' constructions (each a sequence of named stages);
  * ``jax_engine`` / ``numpy_engine``: two executors of one layer stack (exact in float64);
  * ``analysis``: sizes and FLOPs; ``validate``: the rules a compiled stack must keep, as a list of violations;
  * ``registry``: ``build(name, **cfg)`` for every architecture; ``explain`` / ``size_law``: what the networks do,
    unit by unit, and how their size grows.

``modsearch_net(arch, n_max)`` compiles the ModSearch loop (question 2 of the seed) into one of ``ARCHS``;
``polymax_net(grid_points, degree, refine_steps)`` compiles grid search (plus optional zooming refinement) for
PolyMax. See ``ir`` for the number format (float64 integers below 2**52: exact; PolyMax's comparisons run on the
integer codes of float64 values within one binade).
"""
from mesabench.models.compiled.modsearch import ARCHS
from mesabench.models.compiled.modsearch import ModSearchNet
from mesabench.models.compiled.modsearch import kmax_int
from mesabench.models.compiled.modsearch import modsearch_net
from mesabench.models.compiled.modsearch import seed_loop
from mesabench.models.compiled.polymax import PolyMaxNet
from mesabench.models.compiled.polymax import polymax_net
from mesabench.models.compiled.registry import build
from mesabench.models.compiled.registry import registered

__all__ = ["ARCHS", "ModSearchNet", "PolyMaxNet", "build", "kmax_int", "modsearch_net", "polymax_net", "registered",
           "seed_loop"]
