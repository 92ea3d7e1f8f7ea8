"""Every compiled architecture by name: ``build(name, **cfg)`` returns the network.

Names: the ModSearch archs "recurrent", "unrolled", "wide", "banded" (cfg: ``n_max``) and "polymax" (cfg:
``grid_points``, ``degree``, ``refine_steps``, ``zoom``, ``coeff_bound``). An unknown name raises ValueError listing
the known ones; registering a name twice is an error. Unknown or bad cfg fields raise the builder's ValueError.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from mesabench.models.compiled import modsearch
from mesabench.models.compiled import polymax

_BUILDERS: dict[str, Callable[..., Any]] = {}


def register(name: str, builder: Callable[..., Any]) -> None:
  """Adds ``builder`` (keyword config -> network) under ``name``; ValueError if the name is taken."""
  if name in _BUILDERS:
    raise ValueError(f"compiled architecture {name!r} is already registered")
  _BUILDERS[name] = builder


def registered() -> tuple[str, ...]:
  """The known architecture names, in registration order."""
  return tuple(_BUILDERS)


def build(name: str, **cfg):
  """The network ``name`` built with keyword config ``cfg`` (see the module docstring)."""
  if name not in _BUILDERS:
    raise ValueError(f"compiled architecture must be one of {list(_BUILDERS)}, got {name!r}")
  builder = _BUILDERS[name]
  allowed = [p for p in inspect.signature(builder).parameters if p != "arch"]
  unknown = sorted(set(cfg) - set(allowed))
  if unknown:
    raise ValueError(f"config of {name!r}: unknown field(s) {unknown}; allowed: {allowed}")
  return builder(**cfg)


def _modsearch_builder(arch: str) -> Callable[..., Any]:
  def builder(n_max: int = modsearch.N_MAX):
    return modsearch.modsearch_net(arch, n_max)
  return functools.update_wrapper(builder, modsearch.modsearch_net, assigned=("__doc__",))


for _arch in modsearch.ARCHS:
  register(_arch, _modsearch_builder(_arch))
register("polymax", polymax.polymax_net)
