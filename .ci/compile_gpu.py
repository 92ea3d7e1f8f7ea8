"""Compile-only check: every Pallas kernel through the real XLA:GPU + Triton compiler for an sm_90 (H200) target, on
a machine without a GPU.

Run in a virtual environment with ``jax[cuda12]`` (the CUDA PJRT plugin, and ptxas from nvidia-cuda-nvcc-cu12).
``JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1`` lets the plugin load without a driver; ``get_topology_desc("cuda", ...)``
with an explicit GPU target config (the device description XLA would read from a real H200: compute capability
9.0, 132 SMs, shared memory and register limits) gives an abstract device to compile for, and ``JAX_PLATFORMS=cpu``
keeps everything else on the CPU. Each kernel is traced with the Triton compiler parameters its GPU dispatch uses,
lowered for "cuda" and compiled: Pallas -> Triton IR -> PTX -> cubin (ptxas) inside XLA. The executable cannot run
here. Exits non-zero if any kernel fails.
"""
import os
import sys

# pylint: disable=protected-access

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "1")

import jax  # pylint: disable=g-import-not-at-top
import jax.numpy as jnp
from jax.experimental import topologies
from jax.sharding import SingleDeviceSharding

from mesabench.kernels import modsearch, polymax

# The GPU target: what XLA's device description of an NVIDIA H200 (sm_90) holds; XLA:GPU reads the compute
# capability, SM count and the shared-memory / register limits from it when it compiles.
H200_TARGET = """
gpu_device_info {
  threads_per_block_limit: 1024
  threads_per_warp: 32
  shared_memory_per_block: 49152
  shared_memory_per_core: 233472
  threads_per_core_limit: 2048
  core_count: 132
  fpus_per_core: 128
  block_dim_limit_x: 2147483647
  block_dim_limit_y: 65535
  block_dim_limit_z: 65535
  memory_bandwidth: 4800000000000
  l2_cache_size: 52428800
  clock_rate_ghz: 1.98
  device_memory_size: 150121283584
  shared_memory_per_block_optin: 232448
  cuda_compute_capability {
    major: 9
    minor: 0
  }
  registers_per_core_limit: 65536
  registers_per_block_limit: 65536
}
platform_name: "CUDA"
dnn_version_info {
  major: 9
  minor: 8
}
device_description_str: "NVIDIA H200"
"""


def main() -> int:
  device = topologies.get_topology_desc(platform="cuda", topology_name="", target_config=H200_TARGET,
                                        topology="1x1x1").devices[0]
  sharding = SingleDeviceSharding(device)
  # Power-of-2 sizes (Triton's block shapes): the padded entry points are what the public functions call on GPU.
  n_spec = jax.ShapeDtypeStruct((1024,), jnp.int32, sharding=sharding)
  c_spec = jax.ShapeDtypeStruct((1024, 8), jnp.float32, sharding=sharding)
  x_spec = jax.ShapeDtypeStruct((1024, 128), jnp.float32, sharding=sharding)
  checks = {
      f"modsearch.search[{alg}]": (
          lambda n, alg=alg: modsearch._search_padded(n, algorithm=alg, impl="pallas", platform="cuda"), n_spec)
      for alg in modsearch.ALGORITHMS
  }
  checks["polymax.maximize"] = (
      lambda c: polymax._maximize_padded(c, grid_points=polymax.default_grid_points(8), impl="pallas",
                                         platform="cuda"), c_spec)
  checks["polymax.evaluate"] = (
      lambda c, x: polymax._evaluate_padded(c, x, impl="pallas", platform="cuda"), (c_spec, x_spec))
  failed = 0
  for name, (fn, specs) in checks.items():
    specs = specs if isinstance(specs, tuple) else (specs,)
    try:
      compiled = jax.jit(fn).trace(*specs).lower(lowering_platforms=("cuda",)).compile()
      triton = compiled.as_text().count("__gpu$xla.gpu.triton")
      print(f"compiled for {device.device_kind} (sm_90): {name} ({triton} Triton kernel call(s) in the executable)")
      if not triton:
        raise RuntimeError("no Triton kernel in the compiled program: the Pallas call did not lower to Triton")
    except Exception as e:  # pylint: disable=broad-except
      failed += 1
      print(f"FAILED to compile for {device.device_kind}: {name}: {type(e).__name__}: {str(e)[:2000]}")
  print(f"GPU compile-only: {len(checks) - failed} compiled, {failed} failed")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
