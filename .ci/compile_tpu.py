"""Compile-only check: every Pallas kernel through the real Mosaic TPU compiler, on a machine without a TPU.

Run in a virtual environment with ``jax[tpu]`` (libtpu) installed; JAX_PLATFORMS=cpu keeps execution on the CPU
while ``get_topology_desc`` provides an abstract v5e device to compile for. Exits non-zero if any kernel fails.
"""
import os
import sys

# pylint: disable=protected-access

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
from jax.experimental import topologies
from jax.sharding import SingleDeviceSharding

from mesabench.kernels import modsearch, polymax


def main() -> int:
  device = topologies.get_topology_desc("v5e:2x2", "tpu").devices[0]
  sharding = SingleDeviceSharding(device)
  n_spec = jax.ShapeDtypeStruct((1024,), jnp.int32, sharding=sharding)
  c_spec = jax.ShapeDtypeStruct((1024, 9), jnp.float32, sharding=sharding)
  x_spec = jax.ShapeDtypeStruct((1024, 128), jnp.float32, sharding=sharding)
  # The padded entry points take the platform explicitly: the public ones would pick interpret mode on a CPU host.
  checks = {
      f"modsearch.search[{alg}]": (
          lambda n, alg=alg: modsearch._search_padded(n, algorithm=alg, impl="pallas", platform="tpu"), n_spec)
      for alg in modsearch.ALGORITHMS
  }
  checks["polymax.maximize"] = (
      lambda c: polymax._maximize_padded(c, grid_points=polymax.default_grid_points(8), impl="pallas",
                                         platform="tpu"), c_spec)
  checks["polymax.evaluate"] = (
      lambda c, x: polymax._evaluate_padded(c, x, impl="pallas", platform="tpu"), (c_spec, x_spec))
  failed = 0
  for name, (fn, specs) in checks.items():
    specs = specs if isinstance(specs, tuple) else (specs,)
    try:
      jax.jit(fn).trace(*specs).lower(lowering_platforms=("tpu",)).compile()
      print(f"compiled for {device.device_kind}: {name}")
    except Exception as e:  # pylint: disable=broad-except
      failed += 1
      print(f"FAILED to compile for {device.device_kind}: {name}: {type(e).__name__}: {str(e)[:2000]}")
  print(f"TPU compile-only: {len(checks) - failed} compiled, {failed} failed")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
