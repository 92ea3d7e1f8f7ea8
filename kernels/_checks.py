"""Argument checks shared by the kernels: concrete values are validated, traced values are left to the caller.

Every public entry point of mesabench validates what it can see. Inside ``jax.jit`` the values of an array are
not known at trace time, so range checks apply to concrete (non-traced) arrays only; shapes and dtypes are checked
always.
"""
from __future__ import annotations

import jax
import numpy as np


def is_concrete(x) -> bool:
  """True when ``x`` holds values (a numpy/jax array or scalar), False for a tracer under jit/vmap/grad."""
  return not isinstance(x, jax.core.Tracer)


def check_int_range(name: str, x, lo: int, hi: int) -> None:
  """Raises ValueError naming ``name`` unless every element of concrete ``x`` is an integer in [lo, hi]."""
  if not is_concrete(x):
    return
  arr = np.asarray(x)
  if arr.dtype.kind not in "iu":
    if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
      arr = arr.astype(np.int64)
    else:
      raise ValueError(f"{name} must hold integers in [{lo}, {hi}], got dtype {arr.dtype}")
  if arr.size == 0:
    return
  bad = (arr < lo) | (arr > hi)
  if np.any(bad):
    first = arr[bad].reshape(-1)[0]
    raise ValueError(f"{name} must be in [{lo}, {hi}], got {int(first)} ({int(bad.sum())} value(s) out of range)")


def check_finite(name: str, x) -> None:
  """Raises ValueError naming ``name`` if concrete ``x`` holds NaN or inf."""
  if not is_concrete(x):
    return
  arr = np.asarray(x)
  if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
    raise ValueError(f"{name} must be finite (no NaN or inf); {int((~np.isfinite(arr)).sum())} value(s) are not")


def check_int(name: str, value, lo: int, hi: int) -> int:
  """``value`` as int; raises ValueError naming ``name`` unless it is an integer (not a bool) in [lo, hi]."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
    raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
  return int(value)


def check_positive_int(name: str, value, hi: int | None = None) -> int:
  """Returns ``value`` as int; raises ValueError naming ``name`` unless it is an integer in [1, hi]."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f"{name} must be a positive integer, got {value!r}")
  value = int(value)
  upper = "inf" if hi is None else str(hi)
  if value < 1 or (hi is not None and value > hi):
    raise ValueError(f"{name} must be in [1, {upper}], got {value}")
  return value


def check_bool(name: str, value) -> bool:
  """``value`` as bool; raises ValueError naming ``name`` unless it is a bool (True/False, numpy bools included)."""
  if not isinstance(value, (bool, np.bool_)):
    raise ValueError(f"{name} must be True or False, got {value!r}")
  return bool(value)


def check_choice(name: str, value, choices: tuple, allow_none: bool = False):
  """``value``; raises ValueError naming ``name`` unless it is one of ``choices`` (strings) or, when
  ``allow_none``, None. Never compares arrays or unhashable values element-wise."""
  if (allow_none and value is None) or (isinstance(value, str) and value in choices):
    return value
  allowed = f"None (auto) or one of {choices}" if allow_none else f"one of {choices}"
  raise ValueError(f"{name} must be {allowed}, got {value!r}")
