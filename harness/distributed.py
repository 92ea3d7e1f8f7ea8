"""Devices and processes for sweeps: the device mesh, the runs' layout on it, and multi-process setup.

Mesh. A sweep's mesh has two axes, ``runs`` and ``data`` (``make_mesh``; ``jax.make_mesh`` with Auto axes over
this process's local devices):

- ``runs``: the leading (runs) axis of ``harness.train.train_runs``' vmapped state and data is laid out over the
  devices of this axis with ``NamedSharding(mesh, PartitionSpec("runs"))`` (``device_blocks``), and every device
  runs the one-device program (the same jit as without a mesh, one executable per device, dispatched
  asynchronously so the devices run at once) on its block of runs; no communication. A run's numbers are the same
  bit for bit on any number of devices (tested: 1, 2 and 8 forced CPU devices, 5, 3 and 2 runs per device; and the
  mlp's 16 seeds on 1, 2, 4 and 8: results/harness_bench.json, "scaling"), and on one device they do not depend
  on the sweep's size (tested: 2 runs alone equal their rows of a 5-run sweep). Three XLA:CPU behaviours shape
  this:
  * YNNPACK fusions. XLA:CPU hands an elementwise or reduce fusion of at least 4,096 elements to YNNPACK, which
    sums in another order than XLA's own loops; a vmapped sweep's fusions cross that size at some number of runs
    per device (an [8, 128] per-run sum: at 4 runs), so a run's last ulp depended on the sweep's size and on the
    device count. ``compiler_options`` switches those fusions off for the sweep programs
    (``xla_cpu_experimental_ynn_fusion_type`` empty, per jit, nothing else in the process affected); with it, 2,
    3, 4, ..., 64 runs per device sum in the same order.
  * Batch of one. XLA rewrites a one-run vmap (a batch-of-one dot or reduce) as the plain op, with other rounding.
    So every device gets at least two runs (padding below), and a sweep of ONE run is never sharded: it trains on
    one device, as without a mesh, whatever --devices says (tested: 1 and 8 devices equal).
  * The partitioned program. Compiled as one SPMD-partitioned program (``jax.jit`` with the runs sharding, or
    ``jax.shard_map``), the sweep is NOT bit-identical to the one-device program: the partitioned module's
    simplifier leaves x / broadcast(per-run scalar) as a division where the unpartitioned one rewrites it as
    x * broadcast(1 / scalar) (found in the HLO pass dumps; AdamW's bias corrections, the gradient clip, softmax;
    measured: up to 6e-8 apart after 24 steps; a plain-SGD mlp is equal). That is why a runs-only mesh runs the
    one-device program per device; the price is one compilation per device.
- ``data``: each step's minibatch of a run is split across the devices of this axis and the gradients (and the
  loss) are averaged with ``lax.pmean`` inside ``jax.shard_map``; parameters and optimizer state are replicated.
  The mean of equal-sized shard means is the batch mean, but float sums are reordered, so results agree with one
  device within a tolerance, not bit for bit (tests: first loss within 1e-5 relative; after 24 steps within 5e-3,
  measured 6e-4, as Adam's normalized updates amplify the reordering). Needs the model's loss
  to be a mean over the batch's examples (every zoo model's is) and ``batch_size`` divisible by the axis size.

Padding. When the number of runs R is not a multiple of the ``runs`` axis size D, the runs are padded to
``padded_runs(R, D)`` by repeating the last run (its data, keys and initial state), and the copies' results are
dropped after training: they cost compute, never numbers. Every device also gets at least two runs (the batch of
one above).

Defaults. ``--devices=1`` (the default of every sweep binary) builds no mesh: the sweep runs on one device, with
the same ``compiler_options`` as every sweep program. ``--devices=all`` uses every local device on the ``runs``
axis; ``--mesh=runs:4,data:2`` gives the shape.

Processes. ``initialize`` calls ``jax.distributed.initialize`` when asked (flags, or JAX's own cluster
auto-detection under SLURM, Open MPI, a TPU pod slice ...); it is off by default. Several processes split a
sweep's groups (``shard``): each trains its own groups on its local devices, writes only its own shard file, and
process 0 merges the shards after a barrier (``barrier``: ``multihost_utils.sync_global_devices``, which needs
CPU collectives, "gloo", on CPU-only hosts). No array spans processes, so a group's numbers are those of a
single-process run.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Any, Iterator, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

RUNS = "runs"
DATA = "data"
AXES = (RUNS, DATA)

_CURRENT: contextvars.ContextVar[Mesh | None] = contextvars.ContextVar("mesabench_sweep_mesh", default=None)


def parse_devices(value: str | int | None) -> int | None:
  """``--devices``: "all" (None: every local device) or an integer >= 1; ValueError naming ``devices``."""
  if value is None or value == "all":
    return None
  try:
    n = int(value)
  except (TypeError, ValueError):
    n = 0
  if isinstance(value, bool) or n < 1:
    raise ValueError(f"devices must be 'all' or an integer >= 1, got {value!r}")
  return n


def parse_mesh(value: str | None) -> dict[str, int] | None:
  """``--mesh``: "runs:R,data:D" (either axis may be left out: size 1) -> {"runs": R, "data": D}; None for None or
  ""; ValueError naming ``mesh`` otherwise."""
  if value is None or value == "":
    return None
  shape = {RUNS: 1, DATA: 1}
  seen = set()
  for part in value.split(","):
    name, _, size = part.strip().partition(":")
    if name not in AXES or name in seen or not size.strip().isdigit() or int(size) < 1:
      raise ValueError(f"mesh must be 'runs:R,data:D' with positive sizes (each axis at most once), got {value!r}")
    seen.add(name)
    shape[name] = int(size)
  return shape


def make_mesh(devices: str | int | None = 1, shape: dict[str, int] | None = None,
              available: Sequence[Any] | None = None) -> Mesh | None:
  """The sweep mesh over this process's local devices (``available``, default ``jax.local_devices()``).

  devices: "all"/None (every local device), or an int: the first that many. shape: axis sizes {"runs", "data"}
  (``parse_mesh``); with a shape the mesh has prod(shape) devices, and ``devices`` must be 1 (the default), "all"
  or that product. Without one, all devices lie on ``runs``. Returns None for a single device without a data axis
  (the unsharded default path). ValueError naming ``devices`` or ``mesh`` when the machine has too few devices or
  the shape does not fit.
  """
  local = list(jax.local_devices() if available is None else available)
  n = devices if isinstance(devices, int) and not isinstance(devices, bool) else parse_devices(devices)
  if n is not None and n < 1:
    raise ValueError(f"devices must be 'all' or an integer >= 1, got {devices!r}")
  if shape is not None:
    sizes = {a: int(shape.get(a, 1)) for a in AXES}
    want = sizes[RUNS] * sizes[DATA]
    if n not in (None, 1, want):
      raise ValueError(f"mesh must have as many devices as --devices ({n}), got runs:{sizes[RUNS]},"
                       f"data:{sizes[DATA]}")
    n = want
  else:
    n = len(local) if n is None else n
    sizes = {RUNS: n, DATA: 1}
  if n > len(local):
    raise ValueError(f"devices must be at most the {len(local)} local devices of this process, got {n}")
  if n == 1:
    return None
  return jax.make_mesh((sizes[RUNS], sizes[DATA]), AXES, axis_types=(AxisType.Auto, AxisType.Auto),
                       devices=local[:n])


@contextlib.contextmanager
def use_mesh(mesh: Mesh | None) -> Iterator[Mesh | None]:
  """Within the block, ``harness.train`` lays every sweep out on ``mesh`` (None: one device, the default)."""
  token = _CURRENT.set(mesh)
  try:
    yield mesh
  finally:
    _CURRENT.reset(token)


def current_mesh() -> Mesh | None:
  """The mesh set by the innermost ``use_mesh`` block (None outside any)."""
  return _CURRENT.get()


def axis_size(mesh: Mesh | None, axis: str) -> int:
  """Size of ``axis`` ("runs" or "data") of ``mesh``; 1 for no mesh."""
  return 1 if mesh is None else int(mesh.shape[axis])


_NO_YNN = {"xla_cpu_experimental_ynn_fusion_type": ""}
_OPTIONS: dict[str, dict[str, str]] = {}


def compiler_options() -> dict[str, str]:
  """XLA options for the sweep programs (``jax.jit(..., compiler_options=...)``): on the CPU backend, YNNPACK
  fusions off, so that a run's numbers do not depend on how many runs share its device (module docstring); {} on
  other backends, or when this XLA does not know the option (checked once by compiling a one-line program)."""
  backend = jax.default_backend()
  if backend not in _OPTIONS:
    opts: dict[str, str] = {}
    if backend == "cpu":
      try:
        jax.jit(lambda x: x + 1, compiler_options=_NO_YNN).lower(jax.numpy.float32(0)).compile()
        opts = dict(_NO_YNN)
      except Exception:  # noqa: BLE001  (an XLA without the option: keep its defaults; tests catch the drift)
        opts = {}
    _OPTIONS[backend] = opts
  return dict(_OPTIONS[backend])


def padded_runs(runs: int, devices: int) -> int:
  """Runs after padding for a ``runs`` axis of ``devices`` devices: the smallest multiple of ``devices`` that is
  >= ``runs`` and gives every device at least two runs (``runs`` itself for one device)."""
  if runs < 1 or devices < 1:
    raise ValueError(f"runs and devices must be >= 1, got {runs} and {devices}")
  if devices == 1:
    return runs
  return max(-(-runs // devices), 2) * devices


def pad_leading(tree: Any, size: int) -> Any:
  """Every leaf of ``tree`` padded along its leading axis to ``size`` rows by repeating its last row."""
  def pad(a):
    n = a.shape[0]
    if n == size:
      return a
    if n > size:
      raise ValueError(f"size must be >= the {n} rows to pad, got {size}")
    return jax.numpy.concatenate([a, jax.numpy.repeat(a[-1:], size - n, axis=0)])
  return jax.tree_util.tree_map(pad, tree)


def runs_sharding(mesh: Mesh) -> NamedSharding:
  """Leading axis split over ``runs``, replicated over ``data``."""
  return NamedSharding(mesh, PartitionSpec(RUNS))


def device_blocks(tree: Any, mesh: Mesh) -> list[Any]:
  """``tree`` (leaves leading with the padded runs) laid out with ``runs_sharding(mesh)`` on a runs-only mesh (data
  axis of size 1), returned as one pytree per device, in the runs axis' order: each device's block of rows,
  committed to that device."""
  if axis_size(mesh, DATA) != 1:
    raise ValueError(f"mesh must have a data axis of size 1 for device_blocks, got {dict(mesh.shape)}")
  leaves, treedef = jax.tree_util.tree_flatten(put_runs(tree, mesh))
  blocks = []
  for device in mesh.devices.flat:
    mine = [next(s.data for s in leaf.addressable_shards if s.device == device) for leaf in leaves]
    blocks.append(jax.tree_util.tree_unflatten(treedef, mine))
  return blocks


def join_blocks(blocks: Sequence[Any]) -> Any:
  """The inverse of ``device_blocks``: one host (numpy) pytree with the blocks' rows in order."""
  return jax.tree_util.tree_map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *blocks)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def put_runs(tree: Any, mesh: Mesh) -> Any:
  """``tree`` (leaves leading with the padded runs) placed on ``mesh``, split over its ``runs`` axis."""
  return jax.device_put(tree, runs_sharding(mesh))


# ---------------------------------------------------------------------------------------------------- processes

_ENV = {"coordinator": "MESABENCH_COORDINATOR", "num_processes": "MESABENCH_NUM_PROCESSES",
        "process_id": "MESABENCH_PROCESS_ID"}


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
               *, auto: bool = False, timeout_s: int = 300) -> bool:
  """Joins a multi-process JAX job; returns whether this process is part of one.

  Explicit settings come from the arguments (the binaries' --coordinator, --num_processes, --process_id) or the
  environment (MESABENCH_COORDINATOR, MESABENCH_NUM_PROCESSES, MESABENCH_PROCESS_ID); ``auto`` lets JAX detect the
  cluster itself (SLURM, Open MPI, Kubernetes, Cloud TPU: ``jax.distributed.initialize()`` with no arguments).
  Neither given: nothing happens (single process, the default). CPU collectives ("gloo") are switched on unless
  set otherwise, so that the barrier can run on CPU-only hosts (GPU and TPU collectives are unaffected). ValueError naming the bad setting.
  """
  coordinator = coordinator or os.environ.get(_ENV["coordinator"]) or None
  if num_processes is None and os.environ.get(_ENV["num_processes"]):
    num_processes = _env_int("num_processes")
  if process_id is None and os.environ.get(_ENV["process_id"]):
    process_id = _env_int("process_id")
  explicit = coordinator is not None or num_processes is not None or process_id is not None
  if not explicit and not auto:
    return False
  if explicit:
    if not coordinator or ":" not in coordinator:
      raise ValueError(f"coordinator must be 'host:port', got {coordinator!r}")
    if num_processes is None or num_processes < 1:
      raise ValueError(f"num_processes must be an integer >= 1, got {num_processes!r}")
    if process_id is None or not 0 <= process_id < num_processes:
      raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id!r}")
  if jax.config.jax_cpu_collectives_implementation in (None, "", "none"):  # CPU devices need them for the barrier
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if explicit:
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=timeout_s)
  else:
    jax.distributed.initialize(initialization_timeout=timeout_s)
  return True


def _env_int(name: str) -> int:
  value = os.environ[_ENV[name]]
  try:
    return int(value)
  except ValueError as err:
    raise ValueError(f"{name} ({_ENV[name]}) must be an integer, got {value!r}") from err


def process_index() -> int:
  return jax.process_index()


def process_count() -> int:
  return jax.process_count()


def shard(items: Sequence[Any], index: int | None = None, count: int | None = None) -> list[Any]:
  """This process's share of ``items``: every ``count``-th item from the ``index``-th (round robin, in order)."""
  index = process_index() if index is None else index
  count = process_count() if count is None else count
  if not 0 <= index < count:
    raise ValueError(f"index must be in [0, {count}), got {index}")
  return [x for i, x in enumerate(items) if i % count == index]


def barrier(name: str) -> None:
  """Waits until every process of the job reaches the barrier ``name`` (no-op in a single process)."""
  if process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)


# ------------------------------------------------------------------------------------------------ binaries' flags


def define_flags(processes: bool = True) -> dict[str, Any]:
  """Defines the sweep binaries' device flags (--devices, --mesh) and, with ``processes``, the multi-process ones
  (--coordinator, --num_processes, --process_id, --distributed); call once at a binary's module level."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  out = {
      "devices": flags.DEFINE_string("devices", "1", "Local devices for each sweep's runs: an integer or 'all' "
                                     "(runs split across them; default 1: one device, as before)."),
      "mesh": flags.DEFINE_string("mesh", None, "Mesh shape 'runs:R,data:D' (data > 1: each batch split across D "
                                  "devices, gradients averaged); default: every device on runs."),
  }
  if processes:
    out.update(
        coordinator=flags.DEFINE_string("coordinator", None, "host:port of process 0 of a multi-process run "
                                        "(jax.distributed; or env MESABENCH_COORDINATOR). Off by default."),
        num_processes=flags.DEFINE_integer("num_processes", None, "Processes of a multi-process run (or env "
                                           "MESABENCH_NUM_PROCESSES)."),
        process_id=flags.DEFINE_integer("process_id", None, "This process's index in [0, num_processes) (or env "
                                        "MESABENCH_PROCESS_ID)."),
        distributed=flags.DEFINE_bool("distributed", False, "Join a multi-process run that JAX detects itself "
                                      "(SLURM, Open MPI, Kubernetes, Cloud TPU pod slice)."))
  return out


def check_flags(holders: dict[str, Any]) -> dict[str, Any]:
  """Validates the flags of ``define_flags`` without touching a backend: {"devices", "mesh", ...}; ValueError
  naming the flag."""
  try:
    devices = parse_devices(holders["devices"].value)
  except ValueError as err:
    raise ValueError(f"--devices: {err}") from err
  try:
    mesh = parse_mesh(holders["mesh"].value)
  except ValueError as err:
    raise ValueError(f"--mesh: {err}") from err
  out = {"devices": "all" if devices is None else devices, "mesh": mesh}
  if "coordinator" in holders:
    n, k = holders["num_processes"].value, holders["process_id"].value
    if n is not None and n < 1:
      raise ValueError(f"--num_processes: must be an integer >= 1, got {n}")
    if k is not None and (k < 0 or (n is not None and k >= n)):
      raise ValueError(f"--process_id: must be in [0, num_processes), got {k}")
    c = holders["coordinator"].value
    if c is not None and ":" not in c:
      raise ValueError(f"--coordinator: must be 'host:port', got {c!r}")
    out.update(coordinator=c, num_processes=n, process_id=k, auto=holders["distributed"].value)
  return out


def start(checked: dict[str, Any]) -> Mesh | None:
  """Joins the multi-process job when asked (``initialize``), then builds this process's mesh (``make_mesh``)."""
  if "coordinator" in checked:
    initialize(checked["coordinator"], checked["num_processes"], checked["process_id"], auto=checked["auto"])
  return make_mesh(checked["devices"], checked["mesh"])
