"""Training and evaluation: the one place where tasks, models and optimizers meet.

A *run* is one (seed, pool size) pair. ``run_experiment`` trains several runs of one model on one task in ONE jitted
computation, vmapped over the runs (seeds, pool sizes or both), and evaluates every run on the same splits:

    task = mesabench.tasks.make("ModSearch-v0", bits=10, width=12)
    model = mesabench.models.make("mlp", task.spec, width=64)
    runs = [Run(seed, pool) for pool in (64, 512) for seed in (0, 1, 2)]
    results = run_experiment(task, model, runs, TrainConfig(steps=500))   # one dict per run, in order

Data. ``pool_size=N``: every run draws its own pool of N distinct instances (``task.pool``, keyed by its seed) and
trains on minibatches drawn uniformly with replacement from it. ``pool_size=None`` ("fresh"): a stream of
min(steps * batch_size, config.fresh_size) generator samples per run, read in order (each example is seen once when
the stream is not capped). Pools of different sizes ride in one vmap: each is padded cyclically to the largest
size, and indices are drawn below the run's own size.

Keys. Run seed s uses jax.random.key(s), folded with 1 (pool), 2 (init), 3 (minibatches), 4 (held-out split),
5 (larger split), 6 (fresh stream), 7 (strata splits). The recipe's draws at step t (``TrainConfig.progressive_alpha``,
``iterations_range``) use fold_in(fold_in(minibatch key, t), 1). The same run gives the same metrics bit for bit on
the same backend.

Optimization. optax: clip_by_global_norm(grad_clip) then AdamW(weight_decay) with a linear warmup over
``warmup_fraction * steps`` steps followed by cosine decay to 1% (``schedule="cosine"``) or a constant rate. The
whole training loop is one ``jax.lax.fori_loop`` inside one jit (vmapped over runs); the Python side only
steps it from one learning-curve point to the next (log-spaced steps, one compile for all).

Devices. ``train_runs(mesh=...)`` (or a ``harness.distributed.use_mesh`` block) lays the runs axis out over a
device mesh (each device runs the one-device program on its block of runs: the same numbers, bit for bit, on any
number of devices), and/or each batch split over a ``data`` axis (gradients averaged; equal within float
tolerance); see ``harness.distributed``. No mesh (the default): one device. Every sweep program is compiled with
``distributed.compiler_options()`` (on CPU: no YNNPACK fusions), so that a run's numbers do not depend on how many
other runs share its sweep.

Checkpoints. ``train_runs(checkpoint=harness.checkpoints.TrainCheckpointer(dir, every))`` saves the training state
every ``every`` steps and at the end and, when the folder already holds a checkpoint of the same call, continues
from it (same final numbers bit for bit); see ``harness.checkpoints``.

Divergence. When the loss or the gradient norm of a run is not finite, that run's parameters freeze at their
last finite values, ``diverged_step`` records the step, and the other runs go on.

Evaluation splits (per run, ``eval_size`` examples each): "pool" (the first min(N, eval_size) pool instances:
seen), "heldout" (``task.sample_outside`` the run's pool: unseen; for fresh runs, a sample of the distribution),
"stratum:<name>" (the held-out examples in each difficulty stratum, with their count), "larger"
(``task.larger()``, when the task has one). Metrics: the mean of each of the task's per-example scores.
Iterative models also get test-time compute curves: held-out and larger loss after each of
1 .. ``test_iterations`` iterations.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mesabench.harness import checkpoints
from mesabench.harness import distributed
from mesabench.harness import references
from mesabench.models import base as model_base
from mesabench.models import costs
from mesabench.tasks import core as task_core

SCHEDULES = ("cosine", "constant")
NOT_ANSWERABLE = ("the model has a weight per input position and the larger split sets positions that are constant in "
                  "training")
MAX_STEPS = 10**7


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How runs are trained and evaluated (shared by every run of one ``run_experiment`` call).

  Attributes:
    steps: optimizer steps, 0..1e7 (0 evaluates the initial or fitted model).
    batch_size: examples per step, 1..65536.
    learning_rate: peak rate, in (0, 10].
    weight_decay: AdamW decoupled weight decay, in [0, 1].
    warmup_fraction: fraction of ``steps`` of linear warmup, in [0, 1).
    schedule: "cosine" (decay to 1% of the peak) or "constant" (after warmup).
    grad_clip: global-norm clip, > 0.
    eval_size: examples per evaluation split, 1..65536.
    curve_points: log-spaced learning-curve points (the last is ``steps``), 1..64.
    fresh_size: cap on the stream of fresh examples per run (pool_size None), 1..2**22.
    test_iterations: iterations of the test-time compute curve of iterative models (None: twice the training T).
    stratum_size: distinct instances per stratum split ("stratum:<name>"), outside the pool, 1..65536.
    progressive_alpha: the recurrent-network recipe's weight of the progressive loss, in [0, 1] (iterative models
      that support it, ``models.base.IterativeNetModel.recipe_loss``; 0 with no ``iterations_range``: the model's
      own loss).
    iterations_range: (lo, hi), 1 <= lo <= hi <= 1024: the iterations T of each training step drawn uniformly
      from lo..hi (the recipe's random T); None: the model's configured T (hi = lo = T when only
      ``progressive_alpha`` is set).
    The two recipe fields appear in ``to_dict`` only when set, so configs without them keep their entry ids.
    (Issue 13's study engine, which trains a recipe model beside its control and the ground truth and measures the
    compute curves and classify verdicts, is ``harness/searchers.py``: ``Part`` / ``run_part``.)
  """
  steps: int = 400
  batch_size: int = 64
  learning_rate: float = 3e-3
  weight_decay: float = 1e-4
  warmup_fraction: float = 0.05
  schedule: str = "cosine"
  grad_clip: float = 1.0
  eval_size: int = 256
  curve_points: int = 8
  fresh_size: int = 65536
  test_iterations: int | None = None
  stratum_size: int = 512
  progressive_alpha: float = 0.0
  iterations_range: tuple[int, int] | None = None

  def __post_init__(self):
    a = self.progressive_alpha
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not np.isfinite(a) or not 0.0 <= a <= 1.0:
      raise ValueError(f"progressive_alpha must be in [0, 1], got {a!r}")
    if self.iterations_range is not None:
      r = self.iterations_range
      if not isinstance(r, (tuple, list)) or len(r) != 2:
        raise ValueError(f"iterations_range must be None or (lo, hi) with 1 <= lo <= hi <= 1024, got {r!r}")
      model_base.check_int("iterations_range[1]", r[1], 1, 1024)
      model_base.check_int("iterations_range[0]", r[0], 1, r[1])
      object.__setattr__(self, "iterations_range", (int(r[0]), int(r[1])))
    model_base.check_int("steps", self.steps, 0, MAX_STEPS)
    model_base.check_int("batch_size", self.batch_size, 1, 65536)
    model_base.check_int("eval_size", self.eval_size, 1, 65536)
    model_base.check_int("curve_points", self.curve_points, 1, 64)
    model_base.check_int("fresh_size", self.fresh_size, 1, 2**22)
    model_base.check_int("stratum_size", self.stratum_size, 1, 65536)
    if self.test_iterations is not None:
      model_base.check_int("test_iterations", self.test_iterations, 1, 1024)
    model_base.check_choice("schedule", self.schedule, SCHEDULES)
    for name, lo, hi, lo_open in (("learning_rate", 0.0, 10.0, True), ("weight_decay", 0.0, 1.0, False),
                                  ("warmup_fraction", 0.0, 1.0, False), ("grad_clip", 0.0, 1e9, True)):
      v = getattr(self, name)
      if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v > hi or v < lo or (
          lo_open and v == lo) or (name == "warmup_fraction" and v >= 1.0):
        raise ValueError(f"{name} must be in {'(' if lo_open else '['}{lo}, {hi}{')' if name == 'warmup_fraction' else ']'}, got {v!r}")

  def to_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    if not self.uses_recipe:
      del out["progressive_alpha"], out["iterations_range"]
    elif out["iterations_range"] is not None:
      out["iterations_range"] = list(out["iterations_range"])
    return out

  @property
  def uses_recipe(self) -> bool:
    """Whether training uses the recurrent-network recipe (``progressive_alpha`` > 0 or an ``iterations_range``)."""
    return self.progressive_alpha > 0 or self.iterations_range is not None

  def recipe_range(self, model: model_base.Model) -> tuple[int, int]:
    """(lo, hi) of the training iterations for ``model`` (its configured T when no range is set)."""
    if self.iterations_range is not None:
      return self.iterations_range
    t = int(model.options.get("iterations", model.options.get("steps", 1)))
    return t, t


def check_recipe(model: model_base.Model, config: TrainConfig) -> None:
  """ValueError unless ``model`` can be trained with ``config``'s recipe (iterative and ``supports_recipe``);
  baselines (not trainable) ignore it."""
  if not model.trainable:  # baselines are fitted, not trained: the recipe does not apply to them
    return
  if config.uses_recipe and not (model.iterative and getattr(model, "supports_recipe", False)):
    raise ValueError(f"progressive_alpha / iterations_range need an iterative model that supports the recipe "
                     f"(models with detach_before: looped, looped_transformer, recurrent_conv), got {model.model_id!r}")
  if config.uses_recipe:
    lo, hi = config.recipe_range(model)
    model_base.check_int("iterations_range[1]", hi, 1, model.max_iterations)


@dataclasses.dataclass(frozen=True)
class Run:
  """One training run: a seed (0 .. 2**31 - 1) and a pool size (None: fresh generator samples)."""
  seed: int
  pool_size: int | None = None

  def __post_init__(self):
    model_base.check_int("seed", self.seed, 0, 2**31 - 1)
    if self.pool_size is not None:
      model_base.check_int("pool_size", self.pool_size, 1, task_core.MAX_BATCH)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
  """clip_by_global_norm then AdamW with the configured warmup + schedule."""
  warmup = int(config.warmup_fraction * config.steps)
  lr = config.learning_rate
  if config.schedule == "cosine":
    sched = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(config.steps, warmup + 1), end_value=0.01 * lr)
  else:
    sched = optax.join_schedules([optax.linear_schedule(0.0, lr, max(warmup, 1)), optax.constant_schedule(lr)],
                                 [max(warmup, 1)])
  return optax.chain(optax.clip_by_global_norm(config.grad_clip),
                     optax.adamw(sched, weight_decay=config.weight_decay))


def curve_steps(steps: int, points: int) -> list[int]:
  """Log-spaced distinct steps in [1, steps] ending at ``steps`` (at most ``points`` of them; [] for 0 steps)."""
  if steps == 0:
    return []
  return sorted(set(int(round(s)) for s in np.geomspace(1, steps, points)) | {steps})


# ------------------------------------------------------------------------------------------------------- data


def _keys(seed: int) -> dict[str, jax.Array]:
  k = jax.random.key(seed)
  return {name: jax.random.fold_in(k, i) for i, name in
          enumerate(("pool", "init", "train", "heldout", "larger", "fresh", "strata"), start=1)}


def _stack(trees):
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def _cyclic(batch: task_core.Batch, size: int) -> tuple[jax.Array, dict[str, jax.Array]]:
  idx = jnp.arange(size) % batch.size
  return batch.inputs[idx], {k: v[idx] for k, v in batch.targets.items()}


@dataclasses.dataclass
class Data:
  """Training data of R runs: ``inputs`` [R, P, ...], ``targets`` (dict of [R, P, ...]), ``count`` [R] (each
  run's own size), ``fresh`` (read in order) and the runs' pools as Batches (None for fresh runs)."""
  inputs: jax.Array
  targets: dict[str, jax.Array]
  count: jax.Array
  fresh: bool
  pools: list[task_core.Batch]


def prepare_data(task: task_core.Task, runs: Sequence[Run], config: TrainConfig) -> Data:
  """Pools (or fresh streams) of every run, padded cyclically to a common size and stacked."""
  fresh = [r.pool_size is None for r in runs]
  if any(fresh) and not all(fresh):
    raise ValueError("runs must all have a pool_size or all be fresh (pool_size None) in one call")
  batches = []
  for r in runs:
    keys = _keys(r.seed)
    if r.pool_size is None:
      size = max(1, min(config.steps * config.batch_size, config.fresh_size))
      batches.append(task.sample(keys["fresh"], size))
    else:
      batches.append(task.pool(keys["pool"], r.pool_size))
  size = max(b.size for b in batches)
  padded = [_cyclic(b, size) for b in batches]
  return Data(inputs=jnp.stack([p[0] for p in padded]), targets=_stack([p[1] for p in padded]),
              count=jnp.asarray([b.size for b in batches], jnp.int32), fresh=all(fresh),
              pools=batches)


# --------------------------------------------------------------------------------------------------- training

_CACHE: dict[Any, Any] = {}


def _runner(model: model_base.Model, config: TrainConfig, fresh: bool, mesh=None):
  """jit(vmap(run steps [start, stop) of one run)), cached per (model, config, fresh, mesh). With a mesh (only
  meshes with a "data" axis of D > 1 devices come here; ``train_runs`` runs a runs-only mesh as this one-device
  program on every device) the runs axis is split over "runs" and each step's batch in D parts whose loss and
  gradients are averaged (``lax.pmean`` in ``jax.shard_map``)."""
  key = ("runner", model, config, fresh, mesh)
  if key in _CACHE:
    return _CACHE[key]
  tx = make_optimizer(config)
  bsz = config.batch_size
  dsize = distributed.axis_size(mesh, distributed.DATA)

  def one(state, inputs, targets, count, key, start, stop):
    def body(t, carry):
      params, opt_state, div, last = carry
      if fresh:
        idx = (t * bsz + jnp.arange(bsz, dtype=jnp.int32)) % count
      else:
        idx = jax.random.randint(jax.random.fold_in(key, t), (bsz,), 0, count, jnp.int32)  # same draws under x64
      if dsize > 1:  # this device's part of the batch
        idx = jax.lax.dynamic_slice_in_dim(idx, jax.lax.axis_index(distributed.DATA) * (bsz // dsize), bsz // dsize)
      x = inputs[idx]
      y = jax.tree_util.tree_map(lambda a: a[idx], targets)
      if config.uses_recipe:
        lo, hi = config.recipe_range(model)
        rkey = jax.random.fold_in(jax.random.fold_in(key, t), 1)
        loss, grads = jax.value_and_grad(model.recipe_loss)(params, x, y, rkey, float(config.progressive_alpha),
                                                           lo, hi)
      else:
        loss, grads = jax.value_and_grad(model.loss)(params, x, y)
      if dsize > 1:  # the batch mean is the mean of the equal parts' means
        loss, grads = jax.lax.pmean((loss, grads), distributed.DATA)
      updates, new_opt = tx.update(grads, opt_state, params)
      new_params = optax.apply_updates(params, updates)
      ok = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads)) & (div < 0)
      keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)
      div = jnp.where((div < 0) & ~ok, t, div)
      return keep(new_params, params), keep(new_opt, opt_state), div, jnp.where(ok, loss, last)
    return jax.lax.fori_loop(start, stop, body, state)

  fn = jax.vmap(one, in_axes=(0, 0, 0, 0, 0, None, None))
  opts = distributed.compiler_options()
  if mesh is None:
    fn = jax.jit(fn, compiler_options=opts)
  else:
    spec, rep = jax.sharding.PartitionSpec(distributed.RUNS), jax.sharding.PartitionSpec()
    fn = jax.shard_map(fn, mesh=mesh, in_specs=(spec,) * 5 + (rep, rep), out_specs=spec)
    runs_s, rep_s = distributed.runs_sharding(mesh), distributed.replicated(mesh)
    fn = jax.jit(fn, in_shardings=(runs_s,) * 5 + (rep_s, rep_s), out_shardings=runs_s, compiler_options=opts)
  _CACHE[key] = (fn, tx)
  return fn, tx


def _init_and_fit(model, runs, data):
  key = ("init", model)
  if key not in _CACHE:
    _CACHE[key] = jax.jit(jax.vmap(lambda k, x, y: model.fit(model.init(k), x, y)),
                          compiler_options=distributed.compiler_options())
  keys = jnp.stack([_keys(r.seed)["init"] for r in runs])
  return _CACHE[key](keys, data.inputs, data.targets)


def _predictor(model, iterations: int | None = None):
  key = ("predict", model, iterations)
  if key not in _CACHE:
    if iterations is None:
      f = lambda p, x: model.predict(p, x)
    else:
      f = lambda p, x: model.predict_iterations(p, x, iterations)
    _CACHE[key] = jax.jit(jax.vmap(f), compiler_options=distributed.compiler_options())
  return _CACHE[key]


@dataclasses.dataclass
class Trained:
  """Output of ``train_runs``: stacked params [R, ...], the step at which each run diverged (-1: never), the
  learning curves (``curve``: step, train_loss [P][R], pool_loss, heldout_loss), and timings in seconds."""
  params: Any
  diverged_step: np.ndarray
  curve: dict[str, Any]
  timing: dict[str, float]


def train_runs(task: task_core.Task, model: model_base.Model, runs: Sequence[Run], config: TrainConfig,
               data: Data | None = None, splits: dict[str, list[task_core.Batch]] | None = None, *,
               mesh: Any = None, checkpoint: checkpoints.TrainCheckpointer | None = None) -> Trained:
  """Trains (or fits, for baselines) every run in one vmapped jit; see the module docstring for data and keys.

  ``splits`` (from ``eval_splits``) adds pool and held-out task loss to the learning curve at each curve step.
  mesh: a ``harness.distributed.make_mesh`` mesh (None: ``distributed.current_mesh()``, None outside a
    ``use_mesh`` block: one device). The runs are padded to ``distributed.padded_runs`` and the copies dropped.
  checkpoint: save the training state at its boundaries and resume from its latest checkpoint (fingerprint of
    task, model, runs, config and whether ``splits`` are given checked).
  Returned params live on the default device.
  """
  if not runs:
    raise ValueError("runs must hold at least one Run")
  check_recipe(model, config)
  data = data or prepare_data(task, runs, config)
  timing = {"compile_s": 0.0, "train_s": 0.0}
  t0 = time.perf_counter()
  params = _init_and_fit(model, runs, data)
  r = len(runs)
  div = np.full(r, -1, np.int64)
  curve: dict[str, Any] = {"step": [], "train_loss": [], "pool_loss": [], "heldout_loss": []}
  if not model.trainable or config.steps == 0:
    jax.block_until_ready(params)
    timing["train_s"] = time.perf_counter() - t0
    return Trained(params, div, curve, timing)
  mesh = distributed.current_mesh() if mesh is None else mesh
  if r == 1 and distributed.axis_size(mesh, distributed.DATA) == 1:
    mesh = None  # one run is never split over devices (harness.distributed: the batch of one)
  dsize = distributed.axis_size(mesh, distributed.DATA)
  if config.batch_size % dsize:
    raise ValueError(f"batch_size must be divisible by the mesh's data axis ({dsize} devices), got "
                     f"{config.batch_size}")
  per_device = mesh is not None and dsize == 1  # runs axis only: every device runs the one-device program
  fn, tx = _runner(model, config, data.fresh, None if per_device else mesh)
  opt_state = jax.jit(jax.vmap(tx.init))(params)
  state = (params, opt_state, jnp.full((r,), -1, jnp.int32), jnp.zeros((r,), jnp.float32))
  keys = jnp.stack([_keys(run.seed)["train"] for run in runs])
  args = (data.inputs, data.targets, data.count, keys)
  start, stamp = 0, None
  if checkpoint is not None:
    stamp = checkpoints.fingerprint("train_runs", task.task_id, task.params(), model.config_dict(), repr(model),
                                    [(run.seed, run.pool_size) for run in runs], config.to_dict(), splits is not None)
    got = checkpoint.restore({"train": state, "rng": jax.random.key_data(keys)}, stamp)
    if got is not None:
      start, saved, meta = got
      if not np.array_equal(saved["rng"], np.asarray(jax.random.key_data(keys))):
        raise ValueError(f"checkpoint: {checkpoint.directory!r} was saved with other minibatch keys")
      state = jax.tree_util.tree_map(jnp.asarray, saved["train"])
      curve = meta["curve"]
  rp = r if mesh is None else distributed.padded_runs(r, distributed.axis_size(mesh, distributed.RUNS))
  unpad = (lambda tree: tree) if rp == r else (lambda tree: jax.tree_util.tree_map(lambda a: a[:r], tree))
  if per_device:  # pad with copies of the last run; each device gets its block of the runs axis
    state = distributed.device_blocks(distributed.pad_leading(state, rp), mesh)
    args = distributed.device_blocks(distributed.pad_leading(args, rp), mesh)
    host = distributed.join_blocks
  else:
    if mesh is not None:  # pad with copies of the last run, split over the runs axis (and the data axis)
      state = distributed.put_runs(distributed.pad_leading(state, rp), mesh)
      args = distributed.put_runs(distributed.pad_leading(args, rp), mesh)
    state, args, host = [state], [args], (lambda blocks: blocks[0])
  jax.block_until_ready(state)
  t1 = time.perf_counter()
  with jax.enable_x64(False):  # traced in 32 bits: under x64 optax computes its rate and bias corrections in
    compiled = [fn.lower(s, *a, jnp.int32(0), jnp.int32(1)).compile()  # float64 (ulp-level drift)
                for s, a in zip(state, args)]  # one executable per device of a runs-only mesh
  timing["compile_s"] = time.perf_counter() - t1
  eval_s, t2 = 0.0, time.perf_counter()
  points = curve_steps(config.steps, config.curve_points)
  due = set(checkpoint.boundaries(config.steps)) if checkpoint is not None else set()
  for stop in sorted(set(points) | due):
    if stop <= start:  # done before the checkpoint we resumed from
      continue
    state = [c(s, *a, jnp.int32(start), jnp.int32(stop)) for c, s, a in zip(compiled, state, args)]  # async
    jax.block_until_ready(state)
    start = stop
    view = host(state)
    if stop in points:
      curve["step"].append(stop)
      curve["train_loss"].append(np.asarray(view[3])[:r].tolist())
      if splits is not None:
        t3 = time.perf_counter()
        for name in ("pool", "heldout"):
          counts = splits["pool_count"] if name == "pool" else None
          losses = _split_metrics(task, model, unpad(view[0]), splits[name], counts)
          curve[name + "_loss"].append([None if m is None else m["loss"] for m in losses])
        eval_s += time.perf_counter() - t3
    if stop in due:
      checkpoint.save(stop, {"train": jax.tree_util.tree_map(np.asarray, unpad(view)),
                             "rng": jax.random.key_data(keys)}, {"fingerprint": stamp, "step": stop, "curve": curve})
  timing["train_s"] = (t1 - t0) + (time.perf_counter() - t2) - eval_s
  timing["curve_eval_s"] = eval_s
  view = host(state)
  params = view[0] if mesh is None else jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)), unpad(view[0]))
  return Trained(params, np.asarray(view[2])[:r].astype(np.int64), curve, timing)


# ------------------------------------------------------------------------------------------------- evaluation


def eval_splits(task: task_core.Task, runs: Sequence[Run], data: Data, config: TrainConfig,
                model: model_base.Model | None = None) -> dict[str, Any]:
  """Per-run evaluation batches, each split a list of R Batches (None where the split is not applicable to a run):

  "pool" (``eval_size`` examples cycling over the run's training instances; "pool_count" of them are distinct and
  scored); "heldout" (``eval_size`` instances OUTSIDE the run's training instances, for fresh runs too: outside the
  stream it read; None when the training instances cover the task's whole space); "stratum:<name>" for every
  stratum (``stratum_size`` DISTINCT instances of the stratum outside the training instances, by stratified
  sampling; None when the stratum has fewer); "larger" (``task.larger()``, only when ``model`` can answer it by
  construction, ``models.base.answers_larger``). ``not_applicable`` maps each split that is None for some run, or
  absent, to the reason.
  """
  e = config.eval_size
  out: dict[str, Any] = {"pool": [], "pool_count": [], "heldout": []}
  reasons: dict[str, str] = {}
  strata = ["stratum:" + s for s in task.strata]
  for name in strata:
    out[name] = []
  larger = task.larger()
  if larger is None:
    reasons["larger"] = "the task has no larger split at these parameters"
  elif model is not None and not model_base.answers_larger(model, task):
    larger = None
    reasons["larger"] = NOT_ANSWERABLE
  if larger is not None:
    out["larger"] = []
  for i, r in enumerate(runs):
    keys = _keys(r.seed)
    pool = data.pools[i]
    out["pool"].append(pool.take(jnp.arange(e) % pool.size))
    out["pool_count"].append(min(pool.size, e))
    if pool.size < task.space_size:
      out["heldout"].append(task.sample_outside(keys["heldout"], e, pool))
    else:
      out["heldout"].append(None)
      reasons["heldout"] = "the training instances cover the task's whole instance space"
    for j, name in enumerate(strata):
      try:
        out[name].append(task.sample_outside(jax.random.fold_in(keys["strata"], j), config.stratum_size, pool,
                                             stratum=name.split(":", 1)[1]))
      except ValueError as err:  # fewer distinct instances of the stratum than asked for outside the pool
        out[name].append(None)
        reasons[name] = f"fewer than stratum_size={config.stratum_size} distinct instances outside the pool ({err})"
    if larger is not None:
      out["larger"].append(larger.sample(keys["larger"], e))
  out["not_applicable"] = reasons
  return out


def _predict_stacked(model, params, batches, iterations=None):
  present = [b for b in batches if b is not None]
  if not present:
    return None
  width = max(b.size for b in present)
  inputs = jnp.stack([(b if b is not None else present[0]).inputs[:width] for b in batches])
  return np.asarray(_predictor(model, iterations)(params, inputs))


def _split_scores(task, model, params, batches, counts=None) -> list[dict[str, np.ndarray] | None]:
  """Per-example task scores (float64 [m] per metric) per run on ``batches`` (the first ``counts[i]`` examples);
  None for a run whose batch is None (split not applicable)."""
  preds = _predict_stacked(model, params, batches)
  out = []
  for i, b in enumerate(batches):
    if b is None:
      out.append(None)
      continue
    m = b.size if counts is None else counts[i]
    scores = task.score(b.take(jnp.arange(m)), jnp.asarray(preds[i][:m]))
    out.append({k: np.asarray(v, np.float64) for k, v in scores.items()})
  return out


def _split_metrics(task, model, params, batches, counts=None) -> list[dict[str, float] | None]:
  """Mean task scores per run on ``batches`` (see ``_split_scores``)."""
  return [None if s is None else _means(s) for s in _split_scores(task, model, params, batches, counts)]


def _means(scores: dict[str, np.ndarray], mask=None) -> dict[str, float] | None:
  if mask is not None:
    mask = np.asarray(mask, bool)
    if not mask.any():
      return None
  res = {}
  for k, v in scores.items():
    v = np.asarray(v, np.float64)
    res[k] = float(v[mask].mean() if mask is not None else v.mean())
  res["count"] = int(mask.sum()) if mask is not None else int(next(iter(scores.values())).shape[0])
  return res


def evaluate_runs(task: task_core.Task, model: model_base.Model, params: Any, splits: dict[str, Any],
                  test_iterations: int | None = None, *, keep_per_example: bool = False) -> list[dict[str, Any]]:
  """Per-run split metrics {"splits": {split: {metric: mean, "count": n}}} (+ "iterations" for iterative models,
  + "per_example" {split: {metric: [E]}} with ``keep_per_example``). A split with no batch for a run (None) is not
  applicable to that run and is left out."""
  r = len(splits["pool"])
  results: list[dict[str, Any]] = [{"splits": {}} for _ in range(r)]
  names = [("pool", splits["pool_count"]), ("heldout", None), ("larger", None)]
  names += [("stratum:" + s, None) for s in task.strata]
  for name, counts in names:
    if name not in splits:
      continue
    for i, sc in enumerate(_split_scores(task, model, params, splits[name], counts)):
      if sc is None:
        continue
      results[i]["splits"][name] = _means(sc)
      if keep_per_example:
        results[i].setdefault("per_example", {})[name] = sc
  if model.iterative:
    t = test_iterations or 2 * model.options.get("iterations", model.options.get("steps", 1))
    for name in ("heldout", "larger"):
      if name not in splits:
        continue
      preds = _predict_stacked(model, params, splits[name], iterations=t)  # [R, T, E]
      if preds is None:
        continue
      for i, b in enumerate(splits[name]):
        if b is None:
          continue
        losses = [float(np.mean(np.asarray(task.score(b, jnp.asarray(preds[i][j]))["loss"], np.float64)))
                  for j in range(t)]
        results[i].setdefault("iterations", {"iteration": list(range(1, t + 1))})[name + "_loss"] = losses
  return results


# ------------------------------------------------------------------------------------------------------- memory


def estimate_bytes(task: task_core.Task, model: model_base.Model, runs: Sequence[Run], config: TrainConfig) -> int:
  """Estimated peak bytes of ``run_experiment(task, model, runs, config)`` (an estimate, not a bound).

  R runs, each with its padded pool of N rows, P parameters (``jax.eval_shape``, no allocation; for baselines
  that store the pool, the fitted state at N rows) and per-example working bytes from XLA's memory analysis on
  64 examples (A: the jitted forward pass, memorizers' distance rows scaling with N; G: the jitted loss gradient,
  which keeps every layer's activations): R * (N * row + 16 P (params, gradients, two Adam moments)
  + A * max(eval_size, stratum_size) + G * batch_size), plus the task's own sampling memory for the largest pool
  (``task.memory_bytes``). The check costs two small compiles per (task, model).
  """
  r = len(runs)
  sizes = [run.pool_size if run.pool_size is not None else max(1, min(config.steps * config.batch_size,
                                                                       config.fresh_size)) for run in runs]
  n = max(sizes)
  one = task.dummy_targets(1)
  row = int(np.prod(model.spec.input_shape)) * 4 + sum(int(np.prod(v.shape[1:]) or 1) * v.dtype.itemsize
                                                       for v in one.values())
  inputs = jax.ShapeDtypeStruct((n,) + tuple(model.spec.input_shape), jnp.float32)
  targets = {k: jax.ShapeDtypeStruct((n,) + v.shape[1:], v.dtype) for k, v in task.dummy_targets(1).items()}
  params = jax.eval_shape(lambda k, x, y: model.fit(model.init(k), x, y), jax.random.key(0), inputs, targets)
  p = sum(int(np.prod(leaf.shape)) * leaf.dtype.itemsize for leaf in jax.tree_util.tree_leaves(params)) // 4
  probe = jax.ShapeDtypeStruct((64,) + tuple(model.spec.input_shape), jnp.float32)
  analysis = jax.jit(model.predict).lower(params, probe).compile().memory_analysis()
  act = (analysis.temp_size_in_bytes + analysis.output_size_in_bytes) / 64 if analysis is not None else 4 * p
  per_run = n * row + 16 * p + act * max(config.eval_size, config.stratum_size)
  if model.trainable and config.steps > 0:  # the backward pass keeps every layer's activations
    y = {k: jax.ShapeDtypeStruct((64,) + v.shape[1:], v.dtype) for k, v in task.dummy_targets(1).items()}
    grad = jax.jit(jax.value_and_grad(model.loss)).lower(params, probe, y).compile().memory_analysis()
    if grad is not None:
      per_run += grad.temp_size_in_bytes / 64 * config.batch_size
  return int(r * per_run + task.memory_bytes(n))


# ------------------------------------------------------------------------------------------------------ compute


def compute_costs(task: task_core.Task, model: model_base.Model, config: TrainConfig, params_one: Any,
                  sample_inputs: jax.Array) -> dict[str, float]:
  """params, forward FLOPs per example (XLA), train-step FLOPs per example, and per-run totals
  (training_flops = steps * batch_size * train FLOPs per example; examples_seen = steps * batch_size)."""
  out = {"params": model.param_count(params_one),
         "flops_per_example": model.flops_per_example(params_one, sample_inputs)}
  if model.trainable and config.steps > 0:
    key = ("train_flops", model, config)
    if key not in _CACHE:
      tx = make_optimizer(config)

      def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(model.loss)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

      b = config.batch_size
      x = jnp.zeros((b,) + tuple(model.spec.input_shape), jnp.float32)
      y = task.dummy_targets(b)
      _CACHE[key] = costs.xla_flops(step, params_one, tx.init(params_one), x, y) / b
    out["train_flops_per_example"] = _CACHE[key]
    out["examples_seen"] = config.steps * config.batch_size
    out["training_flops"] = out["train_flops_per_example"] * out["examples_seen"]
  else:
    out.update(train_flops_per_example=0.0, examples_seen=0, training_flops=0.0)
  return out


# ------------------------------------------------------------------------------------------------- experiment


@dataclasses.dataclass
class RunResult:
  """One run's results, as ``run_experiment`` returns them.

  Attributes:
    seed, pool_size: the run (pool_size None: fresh samples).
    diverged_step: None, or the step at which the loss or gradient norm stopped being finite.
    splits: split -> metric -> mean over the split's examples ("count": examples scored). A split absent here is
      not applicable to this run (no instance outside a pool that covers the whole space; no larger task).
    curve: learning curve {"step", "train_loss", "pool_loss", "heldout_loss"} at log-spaced steps.
    iterations: iterative models: {"iteration": [1..T], "<split>_loss": [T]} test-time compute curves; else None.
    compute: ``compute_costs`` (params, FLOPs per example, training FLOPs, examples seen).
    timing: seconds shared by the call (data_s, compile_s, train_s, eval_s, runs).
    params: the run's trained (or fitted) parameters, when ``run_experiment(keep_params=True)``; else None.
    per_example: split -> metric -> float64 [E] per-example scores, when ``keep_per_example=True``; else None.
    not_applicable: split -> why it is absent (or absent for some run of the call).
    references: ``harness.references.RunReferences`` when ``with_references=True``; else None.
  """
  seed: int
  pool_size: int | None
  diverged_step: int | None
  splits: dict[str, dict[str, float]]
  curve: dict[str, Any]
  compute: dict[str, float]
  timing: dict[str, float]
  iterations: dict[str, Any] | None = None
  params: Any = None
  per_example: dict[str, dict[str, np.ndarray]] | None = None
  not_applicable: dict[str, str] = dataclasses.field(default_factory=dict)
  references: Any = None

  @property
  def run(self) -> Run:
    return Run(self.seed, self.pool_size)


def run_experiment(task: task_core.Task, model: model_base.Model, runs: Sequence[Run], config: TrainConfig, *,
                   keep_params: bool = False, keep_per_example: bool = False,
                   with_references: bool = False, mesh: Any = None,
                   checkpoint: checkpoints.TrainCheckpointer | None = None) -> list[RunResult]:
  """Trains and evaluates every run (one vmapped jit); returns one ``RunResult`` per run, in order.

  with_references: also score the task's search family and heuristics on each run's held-out and stratum splits
  (``harness.references``; cached per task, runs and config, so the models of one suite share them).
  mesh, checkpoint: passed to ``train_runs`` (devices; mid-training checkpoints and resume).
  """
  runs = list(runs)
  t0 = time.perf_counter()
  data_key = ("data", task, tuple(runs), config.steps, config.batch_size, config.fresh_size, config.eval_size,
              config.stratum_size)
  if data_key not in _CACHE:  # the models of one suite share their data and evaluation splits
    data = prepare_data(task, runs, config)
    _CACHE[data_key] = (data, eval_splits(task, runs, data, config))
    while sum(k[0] == "data" for k in _CACHE) > 4:  # keep the few most recent
      del _CACHE[next(k for k in _CACHE if k[0] == "data")]
  data, splits = _CACHE[data_key]
  if "larger" in splits and not model_base.answers_larger(model, task):
    splits = dict(splits, not_applicable=dict(splits["not_applicable"]))
    del splits["larger"]
    splits["not_applicable"]["larger"] = NOT_ANSWERABLE
  data_s = time.perf_counter() - t0
  trained = train_runs(task, model, runs, config, data=data, splits=splits, mesh=mesh, checkpoint=checkpoint)
  t1 = time.perf_counter()
  evals = evaluate_runs(task, model, trained.params, splits, config.test_iterations,
                        keep_per_example=keep_per_example)
  eval_s = time.perf_counter() - t1
  refs = [None] * len(runs)
  if with_references:
    t2 = time.perf_counter()
    key = ("references", task, tuple(runs), config.eval_size, config.stratum_size, config.steps, config.batch_size,
           config.fresh_size)
    if key not in _CACHE:
      _CACHE[key] = references.measure(task, data.pools, splits, [r.seed for r in runs])
    refs = _CACHE[key]
    eval_s += time.perf_counter() - t2
  timing = {"data_s": data_s, "eval_s": eval_s, "runs": len(runs), **trained.timing}
  results = []
  shared_costs = None
  for i, r in enumerate(runs):
    params_i = jax.tree_util.tree_map(lambda a: a[i], trained.params)
    if not model.trainable:  # the baseline's own (unpadded) memory
      pool = data.pools[i]
      params_i = model.fit(model.init(_keys(r.seed)["init"]), pool.inputs, pool.targets)
      comp = compute_costs(task, model, config, params_i, splits["heldout"][i].inputs[:64]
                           if splits["heldout"][i] is not None else pool.inputs[:64])
    else:
      if shared_costs is None:
        shared_costs = compute_costs(task, model, config, params_i, splits["pool"][i].inputs[:64])
      comp = shared_costs
    div = int(trained.diverged_step[i])
    curve = {"step": list(trained.curve["step"])}
    for k in ("train_loss", "pool_loss", "heldout_loss"):
      curve[k] = [row[i] for row in trained.curve[k]]
    results.append(RunResult(
        seed=r.seed, pool_size=r.pool_size, diverged_step=None if div < 0 else div, splits=evals[i]["splits"],
        curve=curve, compute=comp, timing=timing, iterations=evals[i].get("iterations"),
        params=params_i if keep_params else None, per_example=evals[i].get("per_example"),
        not_applicable=dict(splits["not_applicable"]), references=refs[i]))
  return results
