"""Compiled networks: the seed programs written as ReLU networks with weights set by construction (no training).

``modsearch_net(arch, n_max)`` compiles the ModSearch loop (question 2 of the seed) into one of ``ARCHS``;
``polymax_net(grid_points, degree, refine_steps)`` compiles grid search (plus optional zooming refinement) for
PolyMax (ReLU layers plus named multiplicative units for the refinement). See ``mesabench.models.compiled.modsearch``
and ``.polymax`` for the constructions and their bounds, ``.layers`` for the number format (float64 integers below
2**52: exact; PolyMax's comparisons run on the integer codes of float64 values within one binade).
"""
from mesabench.models.compiled.modsearch import ARCHS
from mesabench.models.compiled.modsearch import ModSearchNet
from mesabench.models.compiled.modsearch import kmax_int
from mesabench.models.compiled.modsearch import modsearch_net
from mesabench.models.compiled.modsearch import seed_loop
from mesabench.models.compiled.polymax import PolyMaxNet
from mesabench.models.compiled.polymax import polymax_net

__all__ = ["ARCHS", "ModSearchNet", "PolyMaxNet", "kmax_int", "modsearch_net", "polymax_net", "seed_loop"]
