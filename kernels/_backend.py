"""Backend plumbing shared by the Pallas kernels: implementation choice, size buckets, per-platform call options.

A kernel file writes its kernel once, over Refs, and asks this module how to launch it on a platform:

* ``"cuda"`` / ``"rocm"``: Triton (``pallas.triton.CompilerParams``). Passing Triton compiler params is what
  selects the Triton lowering; without them pallas_call on CUDA goes to Mosaic GPU, which rejects these kernels.
* ``"tpu"``: Mosaic TPU (``pallas.tpu.CompilerParams``), per-block scalars in SMEM.
* ``"interpret"``: the kernel body run as XLA ops on any backend (tests on CPU).
"""
from __future__ import annotations

from typing import Any

import jax
from jax.experimental import pallas as pl

from mesabench.kernels import _checks

IMPLS = ("pallas", "xla", "reference")
PLATFORMS = ("cuda", "rocm", "tpu", "interpret")


def check_impl(impl: str | None) -> None:
  """Raises ValueError unless ``impl`` is None (auto) or one of IMPLS."""
  _checks.check_choice("impl", impl, IMPLS, allow_none=True)


def default_backend() -> str:
  """jax's default backend: "cpu", "gpu" or "tpu"."""
  return jax.default_backend()


def pallas_platform(interpret: bool) -> str:
  """The pallas platform for this process: "interpret" when asked (or on CPU), else cuda / rocm / tpu."""
  backend = default_backend()
  if interpret or backend == "cpu":
    return "interpret"
  if backend == "tpu":
    return "tpu"
  devices = jax.devices()
  kind = devices[0].platform if devices else "gpu"
  return "rocm" if kind == "rocm" else "cuda"


def resolve_impl(impl: str | None, interpret: bool) -> str:
  """Auto choice: "xla" on CPU (measured fastest there, see results/kernels_bench.json), "pallas" elsewhere.

  ``interpret=True`` with ``impl=None`` picks "pallas" so that tests exercise the kernel body on CPU.
  """
  check_impl(impl)
  if impl is not None:
    return impl
  if interpret:
    return "pallas"
  return "xla" if default_backend() == "cpu" else "pallas"


def bucket(size: int, minimum: int) -> int:
  """The smallest power of two >= max(size, minimum): batch sizes padded to it compile once per bucket."""
  size = max(int(size), int(minimum), 1)
  return 1 << (size - 1).bit_length()


def compiler_params(platform: str, *, num_warps: int = 4) -> Any:
  """pallas_call compiler params for ``platform`` (None for interpret mode)."""
  if platform in ("cuda", "rocm"):
    from jax.experimental.pallas import triton as plgpu  # pylint: disable=g-import-not-at-top
    return plgpu.CompilerParams(num_warps=num_warps, num_stages=1)
  if platform == "tpu":
    from jax.experimental.pallas import tpu as pltpu  # pylint: disable=g-import-not-at-top
    return pltpu.CompilerParams(dimension_semantics=("parallel",))
  if platform == "interpret":
    return None
  raise ValueError(f"platform must be one of {PLATFORMS}, got {platform!r}")


def scalar_table_spec(platform: str) -> pl.BlockSpec:
  """BlockSpec of a small int32 table read whole (one entry per grid step): SMEM on TPU, a plain block elsewhere."""
  if platform == "tpu":
    from jax.experimental.pallas import tpu as pltpu  # pylint: disable=g-import-not-at-top
    return pl.BlockSpec(memory_space=pltpu.SMEM)
  return pl.BlockSpec()
