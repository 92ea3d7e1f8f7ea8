"""Counts read off a compiled network's structure: sizes, FLOPs per query, and the primitives of a traced forward.

Conventions (shared with ``mesabench.models.costs``): num_params = weights + biases of the affine layers;
num_connections = nonzero weights; num_units = all units, copies included; num_mul_units = products of two
activations (no parameters; 2 activations read each); depth = layers. FLOPs per example: 2 per connection
(multiply, add), 1 per bias, 1 per ReLU, 1 per Mul unit (copies are free).
"""
from __future__ import annotations

from typing import Sequence

from mesabench.models.compiled.ir import Layer


def stack_sizes(layers: Sequence[Layer]) -> dict[str, int]:
  """{"num_params", "num_connections", "num_units", "num_mul_units", "depth"} of a layer stack (conventions above)."""
  e = sum(l.num_connections for l in layers)
  u_affine = sum(l.out_dim for l in layers if not l.is_mul)
  return {"num_params": e + u_affine, "num_connections": e, "num_units": sum(l.out_dim for l in layers),
          "num_mul_units": sum(l.num_mul_units for l in layers), "depth": len(layers)}


def stack_flops(layers: Sequence[Layer], mul_only: bool = False) -> int:
  """FLOPs of one forward pass for one example (conventions above). mul_only: the Mul units' FLOPs alone."""
  mul = sum(l.num_mul_units for l in layers)
  if mul_only:
    return mul
  return mul + sum(2 * l.num_connections + l.out_dim + (l.out_dim if l.relu else 0)
                   for l in layers if not l.is_mul)


def primitives(jaxpr) -> set[str]:
  """Names of all primitives in a (closed) jaxpr, recursing into sub-jaxprs (scan bodies, pjit calls)."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  names = set()
  for eqn in jaxpr.eqns:
    names.add(eqn.primitive.name)
    for v in eqn.params.values():
      subs = v if isinstance(v, (list, tuple)) else [v]
      for s in subs:
        if hasattr(s, "eqns") or hasattr(s, "jaxpr"):
          names |= primitives(s)
  return names
