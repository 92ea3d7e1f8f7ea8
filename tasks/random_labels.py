"""Random labels: the data law of a memorization-capacity measurement (nothing to generalize, only to store).

Plain pure functions, not a registered ``Task``: inputs x ~ N(0, I_dim) (float32) and labels y uniform on
{0, .., classes - 1}, independent of x, so a model's only way to beat chance on them is to store them. The labels
of n examples carry exactly n * log2(classes) bits (``label_bits``).

``spec(dim, classes)`` is the ``Spec`` a zoo model is built for (input ``(dim,)`` real, ``classes`` integer answers);
``sample(seed, n, dim, classes)`` draws a data set, deterministic in (seed, n, dim, classes): numpy's PCG64 seeded
with all four, so data sets of different sizes are independent draws.
"""
from __future__ import annotations

import math

import numpy as np

from mesabench.tasks.core import Spec

TASK_ID = "RandomLabels"


def _check(name, value, lo, hi) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
    raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
  return int(value)


def spec(dim: int, classes: int) -> Spec:
  """The model-facing spec: inputs float32 [dim] (1 <= dim <= 4096), integer answers in [0, classes)
  (2 <= classes <= 4096)."""
  dim, classes = _check("dim", dim, 1, 4096), _check("classes", classes, 2, 4096)
  return Spec(TASK_ID, (dim,), "real", "integer", num_classes=classes, output_bits=math.ceil(math.log2(classes)),
              task_params=(("classes", classes), ("dim", dim)))


def sample(seed: int, n: int, dim: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
  """(x float32 [n, dim] ~ N(0, 1) i.i.d., y int32 [n] uniform on [0, classes)), independent; n in [1, 2^24]."""
  seed, n = _check("seed", seed, 0, 2**63 - 1), _check("n", n, 1, 2**24)
  dim, classes = _check("dim", dim, 1, 4096), _check("classes", classes, 2, 4096)
  rng = np.random.default_rng([seed, n, dim, classes])
  x = rng.standard_normal((n, dim), dtype=np.float32)
  y = rng.integers(0, classes, n).astype(np.int32)
  return x, y


def label_bits(n: int, classes: int) -> float:
  """Information in n uniform labels over ``classes`` classes: n * log2(classes) bits."""
  return float(n) * math.log2(_check("classes", classes, 2, 4096))
