"""icl_task_diversity: the task-diversity threshold of in-context regression (Raventós, Paul, Chen, Ganguli 2023,
"Pretraining task diversity and the emergence of non-Bayesian in-context learning for regression", NeurIPS;
code: mansheej/icl-task-diversity).

Setup (``Config``): sequences of ``tasks.linreg.sample_regression`` (x ~ N(0, I_D), y = w . x + N(0, sigma^2)),
with w uniform over a pool of M tasks (one pool per seed, nested across M: the pool of M is the first M rows of
the largest) or w ~ N(0, I_D) afresh ("M = inf"); a causal transformer from the zoo (``causal_transformer``, on
``tasks.linreg.interleave`` tokens) trained with Adam on the mean squared error of every position's prediction,
under the paper's triangle learning-rate schedule (linear warm-up to ``lr`` over ``warmup`` steps, linear decay to
0). Per seed, the runs of all M (and inf) train together in one vmapped jit, from the same initialization and on
the same x and noise draws (a paired design).

Evaluation per run on ``eval_size`` sequences of its own pool ("pool tasks", T_Pretrain) and on ``eval_size``
sequences of fresh Gaussian tasks ("fresh tasks", T_True; shared by the runs of a seed), per position k = 1..K:
  * error / D: mean (prediction - w . x_k)^2 / D against the noise-free target (the paper's "True" oracle), for
    the model, ridge (lambda = sigma^2: Bayes-optimal on fresh tasks) and dMMSE (the posterior mean over the
    run's pool: Bayes-optimal on pool tasks; for M = inf it is ridge);
  * distance / D: mean (model - baseline)^2 / D to ridge and to dMMSE (the paper's "Transformer | Ridge" and
    "Transformer | dMMSE").
M*: the smallest pool size from which the model's predictions on fresh tasks are closer to ridge than to dMMSE
(seed means of the position-averaged distances) at every larger measured M: ``harness.transitions``'s
sustained onset, with its bootstrap CI over seeds (``bootstrap_onset``); inf when the largest M fails.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import optax
import tqdm

from mesabench import models
from mesabench.harness import reproduce
from mesabench.harness import transitions
from mesabench.kernels._checks import check_int
from mesabench.models import causal_transformer  # noqa: F401  (registers the zoo id)
from mesabench.tasks import linreg

CITATION = ("A. Raventós, M. Paul, F. Chen, S. Ganguli. Pretraining task diversity and the emergence of "
            "non-Bayesian in-context learning for regression. NeurIPS 2023 (arXiv:2306.15063); code: "
            "github.com/mansheej/icl-task-diversity")
MODEL_ID = "causal_transformer"


@dataclasses.dataclass(frozen=True)
class Config:
  """An icl_task_diversity configuration. Where the "paper" preset's values come from (the authors'
  icl/configs/example.py, and the paper's Sec. 2-3):

  dim: D = 8 (``task.n_dims``).
  length: K = 16 examples per sequence (``task.n_points``).
  noise_std: sigma = 0.5, i.e. sigma^2 = 0.25 (``task.noise_scale``).
  pool_sizes: M = 2^0 .. 2^20 (the paper's sweep of the number of pretraining tasks; ``task.n_tasks`` up to
    1,048,576).
  include_gaussian: also train on w ~ N(0, I) ("M = inf", ``n_tasks = 0`` in their code).
  width, layers, heads, mlp_ratio: 128, 8, 2, 4 (``model.n_embd``, ``n_layer``, ``n_head``; GPT-2 MLP ratio 4).
  steps, batch_size: 500,000 steps of 256 sequences (``training.total_steps``, ``task.batch_size``).
  lr, warmup: Adam, triangle schedule peaking at 1e-3 after 250,000 steps (``training.lr``, ``warmup_steps``,
    ``schedule = "triangle"``).
  eval_size: sequences per evaluation set; the authors use 1,048,576 (``eval.n_samples``); evaluated in chunks of
    ``eval_chunk``.
  checkpoint_every: steps between checkpoints (ours).
  """
  dim: int = 8
  length: int = 16
  noise_std: float = 0.5
  pool_sizes: tuple[int, ...] = tuple(2**i for i in range(21))
  include_gaussian: bool = True
  width: int = 128
  layers: int = 8
  heads: int = 2
  mlp_ratio: int = 4
  steps: int = 500_000
  batch_size: int = 256
  lr: float = 1e-3
  warmup: int = 250_000
  eval_size: int = 1_048_576
  eval_chunk: int = 4096
  checkpoint_every: int = 10_000

  def __post_init__(self):
    check_int("dim", self.dim, 1, 256)
    check_int("length", self.length, 2, 1024)
    check_int("steps", self.steps, 1, 10**8)
    check_int("batch_size", self.batch_size, 1, 1 << 16)
    check_int("warmup", self.warmup, 0, self.steps - 1)
    check_int("eval_size", self.eval_size, 2, 1 << 24)
    check_int("eval_chunk", self.eval_chunk, 1, self.eval_size)
    check_int("checkpoint_every", self.checkpoint_every, 1, 10**8)
    if self.eval_size % self.eval_chunk:
      raise ValueError(f"eval_chunk must divide eval_size={self.eval_size}, got {self.eval_chunk}")
    sizes = tuple(self.pool_sizes)
    if not sizes or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in sizes) or any(
        b <= a for a, b in zip(sizes, sizes[1:])):
      raise ValueError(f"pool_sizes must be strictly increasing positive integers, got {self.pool_sizes!r}")
    if isinstance(self.noise_std, bool) or not isinstance(self.noise_std, (int, float)) or not (
        0 < self.noise_std < math.inf):
      raise ValueError(f"noise_std must be in (0, inf), got {self.noise_std!r}")
    if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr < math.inf:
      raise ValueError(f"lr must be in (0, inf), got {self.lr!r}")
    models.make(MODEL_ID, linreg.sequence_spec(self.dim, self.length), width=self.width, layers=self.layers,
                heads=self.heads, mlp_ratio=self.mlp_ratio)  # the model config's own checks

  def to_dict(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    d["pool_sizes"] = list(self.pool_sizes)
    return d

  @property
  def runs(self) -> tuple[float, ...]:
    """The training pools of one seed: the pool sizes, then inf when ``include_gaussian``."""
    return tuple(float(m) for m in self.pool_sizes) + ((math.inf,) if self.include_gaussian else ())


PAPER = Config()
CPU = Config(dim=3, length=8, pool_sizes=(1, 4, 16, 64, 256), width=32, layers=2, heads=2, mlp_ratio=4,
             steps=6000, batch_size=32, lr=3e-3, warmup=600, eval_size=2048, eval_chunk=1024, checkpoint_every=1000)
"""Scaled to 2 CPU cores (about 15-20 min for 3 seeds on the shared machine): D = 3 and K = 8 (the threshold
moves to small M with D; dMMSE stays distinguishable from ridge up to M = 256 at D = 3: their fresh-task errors
differ by about 10 % there and by 3 % at M = 1024, where the criterion would compare noise), a 2-layer, 32-wide
model, 6,000 steps of 32 sequences at a peak learning rate of 3e-3 (1e-3 under-trains at this budget), 10 %
warm-up."""
SMOKE = Config(dim=2, length=4, pool_sizes=(1, 4, 16), width=16, layers=1, heads=2, mlp_ratio=2, steps=30,
               batch_size=16, warmup=5, eval_size=64, eval_chunk=32, checkpoint_every=10)


# ------------------------------------------------------------------------------------------------- training


def _model(config: Config):
  return models.make(MODEL_ID, linreg.sequence_spec(config.dim, config.length), width=config.width,
                     layers=config.layers, heads=config.heads, mlp_ratio=config.mlp_ratio)


def _optimizer(config: Config) -> optax.GradientTransformation:
  schedule = optax.join_schedules(
      [optax.linear_schedule(0.0, config.lr, max(config.warmup, 1)),
       optax.linear_schedule(config.lr, 0.0, config.steps - config.warmup)], [config.warmup])
  return optax.adam(schedule)


def _sample(config: Config, key, batch: int, pool, pool_size, gaussian) -> linreg.Sequences:
  """Sequences of one run: w from ``pool[:pool_size]``, or fresh Gaussian w where ``gaussian``."""
  on_pool = linreg.sample_regression(key, batch, config.length, config.dim, config.noise_std, pool, pool_size)
  kw = jax.random.fold_in(key, 1)
  fresh_w = jax.random.normal(kw, (batch, config.dim), jnp.float32)
  w = jnp.where(gaussian, fresh_w, on_pool.w)
  noise = on_pool.y - jnp.einsum("bkd,bd->bk", on_pool.x, on_pool.w, precision=jax.lax.Precision.HIGHEST)
  y = jnp.einsum("bkd,bd->bk", on_pool.x, w, precision=jax.lax.Precision.HIGHEST) + noise
  return linreg.Sequences(on_pool.x, y, w)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _train_chunk(config: Config, length: int, state, pool, pool_sizes, gaussian):
  model, opt = _model(config), _optimizer(config)

  def one_run(params, opt_state, t, size, gauss):
    seq = _sample(config, jax.random.fold_in(state["rng"], t), config.batch_size, pool, size, gauss)
    grads = jax.grad(model.loss)(params, linreg.interleave(seq.x, seq.y), {"y": seq.y})
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  def step(carry, _):
    params, opt_state, t = carry
    params, opt_state = jax.vmap(one_run, in_axes=(0, 0, None, 0, 0))(params, opt_state, t, pool_sizes, gaussian)
    return (params, opt_state, t + 1), None

  (params, opt_state, t), _ = jax.lax.scan(step, (state["params"], state["opt_state"], state["step"]), None,
                                           length=length)
  return {**state, "params": params, "opt_state": opt_state, "step": t}


def _pool_arrays(config: Config):
  sizes = np.array([m if math.isfinite(m) else config.pool_sizes[-1] for m in config.runs], np.int32)
  gaussian = np.array([not math.isfinite(m) for m in config.runs])
  return jnp.asarray(sizes), jnp.asarray(gaussian)


def train_seed(config: Config, seed: int, workdir: str, resume: bool) -> tuple[Any, jax.Array, float]:
  """(stacked parameters of every run [G, ...], the seed's pool [max M, D], train seconds) of one seed."""
  key = jax.random.key(seed)
  k_init, k_pool, k_data = jax.random.split(key, 3)
  pool = linreg.task_pool(k_pool, config.pool_sizes[-1], config.dim)
  model, opt = _model(config), _optimizer(config)
  g = len(config.runs)
  params = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (g,) + a.shape), model.init(k_init))
  state = {"params": params, "opt_state": jax.vmap(opt.init)(params), "step": jnp.asarray(0, jnp.int32),
           "rng": k_data}
  sizes, gaussian = _pool_arrays(config)
  chunk = math.gcd(config.checkpoint_every, config.steps)
  start = time.perf_counter()
  with reproduce.Checkpointer(workdir, "icl_task_diversity", config, seed, every=config.checkpoint_every,
                              resume=resume) as ckpt:
    state = ckpt.restore(state)
    done = int(state["step"])
    with tqdm.tqdm(total=config.steps, initial=done, desc=f"icl_task_diversity seed {seed} ({g} runs)",
                   unit="step") as bar:
      while done < config.steps:
        state = _train_chunk(config, chunk, state, pool, sizes, gaussian)
        done = int(state["step"])
        ckpt.save(done, state, force=done == config.steps)
        bar.update(chunk)
  return state["params"], pool, time.perf_counter() - start


# ----------------------------------------------------------------------------------------------- evaluation


@functools.partial(jax.jit, static_argnums=(0,))
def _evaluate_chunk(config: Config, params, pool, size, gaussian, key):
  """Sums over one chunk of sequences, per position [K]: errors to the noise-free target of (model, ridge,
  dMMSE) and distances (model-ridge, model-dMMSE), on pool tasks and on fresh tasks."""
  model = _model(config)
  lam = config.noise_std**2
  out = {}
  for split, k in (("pool", jax.random.fold_in(key, 0)), ("fresh", jax.random.fold_in(key, 1))):
    seq = (_sample(config, k, config.eval_chunk, pool, size, gaussian) if split == "pool" else
           linreg.sample_regression(k, config.eval_chunk, config.length, config.dim, config.noise_std))
    truth = jnp.einsum("bkd,bd->bk", seq.x, seq.w, precision=jax.lax.Precision.HIGHEST)
    pred = model.predict(params, linreg.interleave(seq.x, seq.y))
    ridge = linreg.ridge_predictions(seq.x, seq.y, lam)
    dmmse = jnp.where(gaussian, ridge, linreg.dmmse_predictions(seq.x, seq.y, pool, config.noise_std, size))
    sq = lambda a, b: jnp.sum((a - b) ** 2, axis=0)
    out[split] = {"model": sq(pred, truth), "ridge": sq(ridge, truth), "dmmse": sq(dmmse, truth),
                  "model_ridge": sq(pred, ridge), "model_dmmse": sq(pred, dmmse)}
  return out


def evaluate_run(config: Config, params, pool, size: int, gaussian: bool, key) -> dict[str, dict[str, list]]:
  """Per-position means / D (module docstring) of one run: {"pool"|"fresh": {"model", "ridge", "dmmse",
  "model_ridge", "model_dmmse": [K] floats}}."""
  total = None
  for c in range(config.eval_size // config.eval_chunk):
    part = _evaluate_chunk(config, params, pool, jnp.int32(size), jnp.bool_(gaussian), jax.random.fold_in(key, c))
    total = part if total is None else jax.tree_util.tree_map(jnp.add, total, part)
  return jax.tree_util.tree_map(lambda a: (np.asarray(a, np.float64) / (config.eval_size * config.dim)).tolist(),
                                total)


def threshold(pool_sizes, model_ridge, model_dmmse, *, num_resamples: int = 1000, level: float = 0.95,
              seed: int = 0) -> transitions.Onset:
  """M*: the sustained onset (``transitions.bootstrap_onset``) of "the seed-mean distance to ridge is below the
  seed-mean distance to dMMSE" over ``pool_sizes`` [P]; the distances are [P, S] (position-averaged, fresh
  tasks), the CI a bootstrap over the S seed columns."""
  r = np.asarray(model_ridge, np.float64)
  d = np.asarray(model_dmmse, np.float64)
  if r.shape != d.shape or r.ndim != 2 or r.shape[0] != len(pool_sizes):
    raise ValueError(f"model_ridge and model_dmmse must both have shape [len(pool_sizes), seeds], got {r.shape} "
                     f"and {d.shape}")
  return transitions.bootstrap_onset(np.asarray(pool_sizes), r.shape[1],
                                     lambda cols: r[:, cols].mean(1) < d[:, cols].mean(1),
                                     num_resamples=num_resamples, level=level, seed=seed)


# ------------------------------------------------------------------------------------------------- the study


def _differences(config: Config) -> str:
  names = ("dim", "length", "noise_std", "width", "layers", "heads", "steps", "batch_size", "warmup", "eval_size")
  diffs = [f"{n}={getattr(config, n)} (paper {getattr(PAPER, n)})" for n in names
           if getattr(config, n) != getattr(PAPER, n)]
  if tuple(config.pool_sizes) != PAPER.pool_sizes:
    diffs.append(f"M in {list(config.pool_sizes)} (paper 2^0..2^20)")
  return "; ".join(diffs) if diffs else "none (the paper's setup)"


def run(config: Config, seeds: tuple[int, ...], workdir: str, resume: bool) -> reproduce.StudyResult:
  """Trains every (M, seed) run, evaluates it against ridge and dMMSE, finds M* (module docstring)."""
  runs = config.runs
  evals: list[list[dict]] = []  # [seed][run]
  train_s = []
  for s in seeds:
    params, pool, secs = train_seed(config, int(s), workdir, resume)
    train_s.append(secs)
    key = jax.random.fold_in(jax.random.key(int(s)), 7)
    per_run = []
    for j, m in enumerate(runs):
      p = jax.tree_util.tree_map(lambda a, j=j: a[j], params)
      size = int(m) if math.isfinite(m) else config.pool_sizes[-1]
      per_run.append(evaluate_run(config, p, pool, size, not math.isfinite(m), key))
    evals.append(per_run)
  avg = lambda split, field: np.array([[float(np.mean(evals[si][j][split][field])) for si in range(len(seeds))]
                                       for j in range(len(runs))])  # [G, S]
  finite = [j for j, m in enumerate(runs) if math.isfinite(m)]
  onset = threshold([int(runs[j]) for j in finite], avg("fresh", "model_ridge")[finite],
                    avg("fresh", "model_dmmse")[finite])
  diff = _differences(config)
  cite2 = "Raventós et al. 2023, Fig. 2"
  m_star = None if not math.isfinite(onset.n_star) else onset.n_star
  ci = None if m_star is None or not all(math.isfinite(v) for v in onset.ci) else onset.ci
  rows = [reproduce.Row(
      "task-diversity threshold M* (fresh tasks: model closer to ridge than to dMMSE from M* on)",
      "a sharp threshold; for D=8, K=16, sigma^2=0.25 the PT leaves dMMSE and approaches ridge between about "
      "2^13 and 2^15 pretraining tasks (read from the figure)", cite2, m_star, ci,
      diff + f"; CI: bootstrap over {len(seeds)} seeds ({onset.ci[0]:g}, {onset.ci[1]:g}), "
      f"transition probability {onset.transition_probability:.2f}"
      + ("" if m_star is not None else "; no sustained transition within the measured M"))]
  j_small, j_large = finite[0], finite[-1]
  per_seed = lambda split, field, j: avg(split, field)[j].tolist()
  rows.append(reproduce.row(
      f"distance / D of the model from dMMSE on pool tasks at the smallest M = {int(runs[j_small])}",
      "about 0: below the threshold the PT behaves like dMMSE (the Bayes estimator with the pretraining prior)",
      cite2, per_seed("pool", "model_dmmse", j_small), diff))
  rows.append(reproduce.row(
      f"model error / D on fresh tasks at M = {int(runs[j_small])}, over ridge's",
      "well above 1: below the threshold the PT cannot solve new tasks", cite2,
      list(np.asarray(per_seed("fresh", "model", j_small)) / np.asarray(per_seed("fresh", "ridge", j_small))),
      diff))
  rows.append(reproduce.row(
      f"model error / D on fresh tasks at the largest M = {int(runs[j_large])}, over ridge's",
      "about 1: above the threshold the PT matches ridge on new tasks", cite2,
      list(np.asarray(per_seed("fresh", "model", j_large)) / np.asarray(per_seed("fresh", "ridge", j_large))),
      diff))
  if config.include_gaussian:
    j_inf = len(runs) - 1
    rows.append(reproduce.row(
        "distance / D of the model trained on N(0, I) tasks (M = inf) from ridge, fresh tasks",
        "about 0: trained on the Gaussian prior, the PT matches ridge (the Bayes estimator)", cite2,
        per_seed("fresh", "model_ridge", j_inf), diff))
  data = {
      "runs": [m if math.isfinite(m) else "inf" for m in runs],
      "seeds": list(seeds),
      "per_seed_per_run": evals,
      "position_mean": {split: {f: avg(split, f).tolist() for f in ("model", "ridge", "dmmse", "model_ridge",
                                                                    "model_dmmse")}
                        for split in ("pool", "fresh")},
      "threshold": onset.to_json(),
      "train_s": train_s,
      "fields": {"per_seed_per_run[s][r][split][f]": "per-position means / D over eval_size sequences (module "
                                                     "docstring); split pool | fresh",
                 "position_mean[split][f]": "[run, seed] averages over positions",
                 "threshold": "harness.transitions.Onset of M* over the finite pool sizes"},
      "png": "left: distance / D of the model from ridge and from dMMSE on fresh tasks vs M (seed means, M* "
             "marked); middle and right: per-position error / D on fresh and on pool tasks for the smallest M, "
             "the largest M and M = inf, with ridge and dMMSE"}
  return reproduce.StudyResult(rows, data)


def plot(result: reproduce.StudyResult, png_path: str) -> None:
  """Writes the threshold picture and the per-position errors (``data["png"]``) to png_path."""
  matplotlib.use("Agg")
  d = result.data
  runs = d["runs"]
  finite = [j for j, m in enumerate(runs) if m != "inf"]
  xs = [runs[j] for j in finite]
  pm = d["position_mean"]["fresh"]
  fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
  ax = axes[0]
  for field, label, color in (("model_ridge", "model vs ridge", "C0"), ("model_dmmse", "model vs dMMSE", "C3")):
    arr = np.asarray(pm[field])[finite]
    ax.plot(xs, arr.mean(1), marker="o", color=color, label=label)
    for s in range(arr.shape[1]):
      ax.plot(xs, arr[:, s], color=color, alpha=0.25, lw=0.8)
  n_star = d["threshold"]["n_star"]
  if n_star is not None and math.isfinite(n_star):
    ax.axvline(n_star, color="k", ls="--", lw=1, label=f"M* = {n_star:g}")
  else:
    ax.plot([], [], color="k", ls="--", lw=1, label="no M* within the grid")
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set_xlabel("number of pretraining tasks M")
  ax.set_ylabel("distance / D (fresh tasks)")
  ax.legend()
  ax.set_title("which Bayes estimator the model follows")
  picks = [finite[0], finite[-1]] + ([len(runs) - 1] if runs[-1] == "inf" else [])
  name = lambda j: "inf" if runs[j] == "inf" else f"{runs[j]:g}"
  per = d["per_seed_per_run"]
  for ax, split in ((axes[1], "fresh"), (axes[2], "pool")):
    k = np.arange(1, len(per[0][0][split]["model"]) + 1)
    for c, j in enumerate(picks):
      mean = np.mean([per[s][j][split]["model"] for s in range(len(per))], 0)
      ax.plot(k, mean, marker="o", ms=3, color=f"C{c}", label=f"model, M = {name(j)}")
      dm = np.mean([per[s][j][split]["dmmse"] for s in range(len(per))], 0)
      if runs[j] != "inf":
        ax.plot(k, dm, ls=":", color=f"C{c}", label=f"dMMSE, M = {name(j)}")
    ridge = np.mean([per[s][picks[0]][split]["ridge"] for s in range(len(per))], 0)
    ax.plot(k, ridge, color="k", ls="--", label="ridge" if split == "fresh" else f"ridge (pool of M = {name(picks[0])})")
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-4)  # dMMSE on a pool of 1 is exact (error ~1e-14) from the second position on
    ax.set_xlabel("position k (examples seen: k - 1)")
    ax.set_ylabel("error / D vs noise-free target")
    ax.set_title(f"{split} tasks" + (" (of each run's own pool)" if split == "pool" else " (w ~ N(0, I))"))
    ax.legend(fontsize=7)
  fig.suptitle("icl_task_diversity: pretraining task diversity and in-context regression (Raventós et al. 2023)")
  fig.savefig(png_path, dpi=110, bbox_inches="tight")
  plt.close(fig)


STUDY = reproduce.Study(
    name="icl_task_diversity",
    title="Pretraining task diversity and the emergence of non-Bayesian in-context regression",
    citation=CITATION,
    presets={"cpu": CPU, "paper": PAPER, "smoke": SMOKE},
    budget_s={"cpu": 1200.0, "paper": None, "smoke": 120.0},
    run=run,
    plot=plot,
)
