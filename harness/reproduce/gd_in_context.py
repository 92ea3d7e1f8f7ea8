"""gd_in_context: a trained linear self-attention layer against one step of gradient descent (von Oswald et al.
2023, "Transformers learn in-context by gradient descent", ICML; code: google-research/self-organising-systems,
transformers_learn_icl_by_gd).

Setup (``Config``; the "paper" preset is the authors' notebook ``constructed_token_setup.ipynb`` with one layer):
tasks of ``tasks.linreg.sample_uniform_tasks`` (d = 10, N = 10, w ~ N(0, I), x ~ U(-0.5, 0.5): the code's law,
see ``tasks.linreg``), tokens e_i = (x_i, y_i) and the query (x, 0); one linear self-attention layer
(``models.lsa``, no softmax, one head, key size d + 1) trained with Adam on 0.5 * squared error of the query's
prediction, fresh tasks every step.

The GD construction: ``models.lsa.gd_params`` with the step size eta* that minimizes the squared error of one GD
step on ``tune_tasks`` held-out tasks (closed form, ``tasks.linreg.tune_gd_eta``; the authors scan a grid of
eta on their evaluation tasks).

Measured per seed, on ``eval_tasks`` fresh tasks (their own key per seed):
  * loss_trained, loss_gd: 0.5 * mean squared error of the query prediction (the authors' loss);
  * cosine: mean over tasks of the cosine between the prediction sensitivities d y_hat / d x_query of the trained
    layer and of the construction (the authors' "model cos");
  * grad_diff: mean over tasks of || d y_hat_trained / d x_query - d y_hat_gd / d x_query ||_2 ("model diff");
  * pred_diff: mean over tasks of | y_hat_trained - y_hat_gd | ("preds diff");
  * the products W_KQ = W_Q W_K^T and W_PV = W_V W_P of the trained layer, normalized by c = the mean diagonal of
    W_KQ's x block (W_KQ / c, c W_PV: the same function), next to the construction's diag(1_d, 0) and
    diag(0_d, -eta*/N); ``weight_match`` = the relative Frobenius distance of the normalized pair from the
    construction's (0: the construction exactly).
Curves of the loss and the three comparisons every ``eval_every`` steps on the first ``curve_tasks`` tasks.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import optax
import tqdm

from mesabench.harness import reproduce
from mesabench.kernels._checks import check_int
from mesabench.models import lsa
from mesabench.tasks import linreg

CITATION = ("J. von Oswald, E. Niklasson, E. Randazzo, J. Sacramento, A. Mordvintsev, A. Zhmoginov, M. Vladymyrov. "
            "Transformers learn in-context by gradient descent. ICML 2023 (arXiv:2212.07677); code: "
            "github.com/google-research/self-organising-systems/tree/master/transformers_learn_icl_by_gd")


@dataclasses.dataclass(frozen=True)
class Config:
  """A gd_in_context configuration. Field by field, where the "paper" preset's value comes from (the authors'
  src/config.py, overridden by constructed_token_setup.ipynb with one layer, ``recurrent_Transformer = True``):

  dim: d = 10 (``config.input_size``; paper Sec. 3).
  context: N = 10 context pairs (``config.dataset_size``).
  input_range: x ~ U(-input_range/2, input_range/2); 1 (notebook ``config.input_range = 1``, i.e. U(-0.5, 0.5);
    the text writes U(-1, 1), which is input_range 2 and gives a GD loss of 0.82, not the published 0.20).
  weight_scale: w ~ N(0, weight_scale^2 I); 1 (``config.weight_scale``).
  init_scale: VarianceScaling scale of the layer's weights; 0.002 (``config.init_scale = 0.002 / num_layers``).
  steps: Adam steps; 5000 (notebook: ``training_steps = 5000 if config.deq``).
  batch_size: tasks per step; 2048 (notebook ``config.bs``).
  lr, b1, b2: Adam; 1e-3 (``config.lr``), 0.9, 0.98 (src/config.py ``b1``, ``b2``; weight decay 0).
  grad_clip: global-norm clip before Adam; 0.001 (notebook: ``grad_clip_value = 0.001`` for <= 2 layers).
  eval_tasks: tasks of the final comparison; 10000 (notebook ``eval_data``: 10000 tasks).
  tune_tasks: held-out tasks on which eta* is fitted; 10000 (the authors scan eta on 10000 tasks).
  eval_every, curve_tasks: the curves' step spacing and size; 100 (the notebook logs every 100 steps), 1000 (ours).
  checkpoint_every: steps between checkpoints (ours).
  """
  dim: int = 10
  context: int = 10
  input_range: float = 1.0
  weight_scale: float = 1.0
  init_scale: float = 0.002
  steps: int = 5000
  batch_size: int = 2048
  lr: float = 1e-3
  b1: float = 0.9
  b2: float = 0.98
  grad_clip: float = 0.001
  eval_tasks: int = 10000
  tune_tasks: int = 10000
  eval_every: int = 100
  curve_tasks: int = 1000
  checkpoint_every: int = 1000

  def __post_init__(self):
    check_int("dim", self.dim, 1, 256)
    check_int("context", self.context, 1, 4096)
    check_int("steps", self.steps, 1, 10**7)
    check_int("batch_size", self.batch_size, 1, 1 << 20)
    check_int("eval_tasks", self.eval_tasks, 2, 1 << 20)
    check_int("tune_tasks", self.tune_tasks, 2, 1 << 20)
    check_int("eval_every", self.eval_every, 1, self.steps)
    check_int("curve_tasks", self.curve_tasks, 1, self.eval_tasks)
    check_int("checkpoint_every", self.checkpoint_every, 1, 10**7)
    if self.steps % self.eval_every:
      raise ValueError(f"eval_every must divide steps={self.steps}, got {self.eval_every}")
    for name in ("input_range", "weight_scale", "init_scale", "lr", "grad_clip"):
      v = getattr(self, name)
      if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
        raise ValueError(f"{name} must be in (0, inf), got {v!r}")
    for name in ("b1", "b2"):
      v = getattr(self, name)
      if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
        raise ValueError(f"{name} must be in [0, 1), got {v!r}")

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


PAPER = Config()
CPU = dataclasses.replace(PAPER, steps=3000)
"""The paper's setup with 3,000 instead of 5,000 Adam steps (the trained loss meets GD's by about 1,500 steps;
5,000 steps of 3 seeds take about 10 min on the shared 2-core CPU, the budget's edge)."""
SMOKE = Config(steps=40, batch_size=64, eval_tasks=256, tune_tasks=256, eval_every=20, curve_tasks=64,
               checkpoint_every=20)


# ------------------------------------------------------------------------------------------------- training


def _optimizer(config: Config) -> optax.GradientTransformation:
  return optax.chain(optax.clip_by_global_norm(config.grad_clip), optax.adam(config.lr, b1=config.b1, b2=config.b2))


def _tasks(config: Config, key: jax.Array, n: int) -> linreg.UniformTasks:
  return linreg.sample_uniform_tasks(key, n, config.dim, config.context, config.input_range, config.weight_scale)


def _loss(params, tasks: linreg.UniformTasks) -> jax.Array:
  pred = lsa.predict(params, linreg.query_tokens(tasks.x, tasks.y, tasks.x_query))
  return 0.5 * jnp.mean((pred - tasks.y_query) ** 2)


def compare(params, gd, tasks: linreg.UniformTasks) -> dict[str, jax.Array]:
  """The trained layer ``params`` against the construction ``gd`` on ``tasks``: loss_trained, loss_gd, cosine,
  grad_diff, pred_diff (module docstring), float32 scalars."""
  def pred(p, xq, x, y):
    return lsa.predict(p, linreg.query_tokens(x[None], y[None], xq[None]))[0]

  sens = jax.vmap(jax.grad(pred, argnums=1), in_axes=(None, 0, 0, 0))
  g_t = sens(params, tasks.x_query, tasks.x, tasks.y)
  g_c = sens(gd, tasks.x_query, tasks.x, tasks.y)
  tokens = linreg.query_tokens(tasks.x, tasks.y, tasks.x_query)
  p_t, p_c = lsa.predict(params, tokens), lsa.predict(gd, tokens)
  norm_t, norm_c = jnp.linalg.norm(g_t, axis=1), jnp.linalg.norm(g_c, axis=1)
  cos = jnp.sum(g_t * g_c, axis=1) / (norm_t * norm_c + 1e-12)
  return {"loss_trained": 0.5 * jnp.mean((p_t - tasks.y_query) ** 2),
          "loss_gd": 0.5 * jnp.mean((p_c - tasks.y_query) ** 2), "cosine": jnp.mean(cos),
          "grad_diff": jnp.mean(jnp.linalg.norm(g_t - g_c, axis=1)), "pred_diff": jnp.mean(jnp.abs(p_t - p_c))}


CURVE_FIELDS = ("loss_trained", "loss_gd", "cosine", "grad_diff", "pred_diff")


@functools.partial(jax.jit, static_argnums=(0, 1))
def _train_chunk(config: Config, length: int, state, gd, curve_tasks):
  opt = _optimizer(config)

  def step(carry, _):
    params, opt_state, t = carry
    tasks = _tasks(config, jax.random.fold_in(state["rng"], t), config.batch_size)
    grads = jax.grad(_loss)(params, tasks)
    updates, opt_state = opt.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state, t + 1), None

  (params, opt_state, t), _ = jax.lax.scan(step, (state["params"], state["opt_state"], state["step"]), None,
                                           length=length)
  metrics = compare(params, gd, curve_tasks)
  row = jnp.stack([metrics[f] for f in CURVE_FIELDS])
  curve = state["curve"].at[t // config.eval_every].set(row)
  return {**state, "params": params, "opt_state": opt_state, "step": t, "curve": curve}


def normalized_products(params) -> tuple[np.ndarray, np.ndarray, float]:
  """(W_KQ / c, c W_PV, c) with c the mean diagonal of W_KQ's x block (float64 numpy)."""
  kq, pv = (np.asarray(a, np.float64) for a in lsa.products(params))
  d = kq.shape[0] - 1
  c = float(np.mean(np.diag(kq)[:d]))
  return kq / c, pv * c, c


def weight_match(params, gd) -> float:
  """|| (W_KQ/c, c W_PV) - (W_KQ_gd, W_PV_gd) ||_F / || (W_KQ_gd, W_PV_gd) ||_F (0: the construction)."""
  kq, pv, _ = normalized_products(params)
  kq_g, pv_g = (np.asarray(a, np.float64) for a in lsa.products(gd))
  num = np.sum((kq - kq_g) ** 2) + np.sum((pv - pv_g) ** 2)
  return float(np.sqrt(num / (np.sum(kq_g**2) + np.sum(pv_g**2))))


def run_seed(config: Config, seed: int, workdir: str, resume: bool, progress: bool = True) -> dict[str, Any]:
  """Trains one seed's layer (checkpointed, resumable) and compares it with the GD construction."""
  key = jax.random.key(seed)
  k_init, k_data, k_tune, k_eval = jax.random.split(key, 4)
  tune = _tasks(config, k_tune, config.tune_tasks)
  eta = linreg.tune_gd_eta(tune.x, tune.y, tune.x_query, tune.y_query)
  gd = lsa.gd_params(config.dim, config.context, eta)
  evals = _tasks(config, k_eval, config.eval_tasks)
  curve_tasks = jax.tree_util.tree_map(lambda a: a[:config.curve_tasks], evals)
  params = lsa.init(k_init, config.dim, config.init_scale)
  points = config.steps // config.eval_every + 1
  init_row = compare(params, gd, curve_tasks)
  curve = jnp.full((points, len(CURVE_FIELDS)), jnp.nan, jnp.float32).at[0].set(
      jnp.stack([init_row[f] for f in CURVE_FIELDS]))
  state = {"params": params, "opt_state": _optimizer(config).init(params), "step": jnp.asarray(0, jnp.int32),
           "rng": k_data, "curve": curve}
  start = time.perf_counter()
  with reproduce.Checkpointer(workdir, "gd_in_context", config, seed, every=config.checkpoint_every,
                              resume=resume) as ckpt:
    state = ckpt.restore(state)
    done = int(state["step"])
    with tqdm.tqdm(total=config.steps, initial=done, desc=f"gd_in_context seed {seed}", unit="step",
                   disable=not progress) as bar:
      while done < config.steps:
        state = _train_chunk(config, config.eval_every, state, gd, curve_tasks)
        done = int(state["step"])
        ckpt.save(done, state, force=done == config.steps)
        bar.update(config.eval_every)
  final = {k: float(v) for k, v in jax.jit(compare)(state["params"], gd, evals).items()}
  kq, pv, c = normalized_products(state["params"])
  kq_g, pv_g = (np.asarray(a, np.float64) for a in lsa.products(gd))
  return {"seed": seed, "eta": eta, **final, "weight_match": weight_match(state["params"], gd), "scale_c": c,
          "w_kq": kq.tolist(), "w_pv": pv.tolist(), "w_kq_gd": kq_g.tolist(), "w_pv_gd": pv_g.tolist(),
          "curve": {"step": (np.arange(points) * config.eval_every).tolist(),
                    **{f: np.asarray(state["curve"][:, i]).tolist() for i, f in enumerate(CURVE_FIELDS)}},
          "train_s": time.perf_counter() - start}


# ------------------------------------------------------------------------------------------------- the study


def _differences(config: Config) -> str:
  diffs = [f"{name}={getattr(config, name)} (paper {getattr(PAPER, name)})" for name in
           ("dim", "context", "input_range", "steps", "batch_size", "lr", "eval_tasks")
           if getattr(config, name) != getattr(PAPER, name)]
  return "; ".join(diffs) if diffs else "none (the paper's setup)"


def run(config: Config, seeds: tuple[int, ...], workdir: str, resume: bool) -> reproduce.StudyResult:
  """Trains and compares one layer per seed (module docstring); returns the table and the per-seed data."""
  per_seed = [run_seed(config, int(s), workdir, resume) for s in seeds]
  col = lambda name: [r[name] for r in per_seed]
  diff = _differences(config)
  tuned = "eta* fitted in closed form on held-out tasks (the authors scan a grid on their evaluation tasks)"
  fig2 = "von Oswald et al. 2023, Fig. 2"
  rows = [
      reproduce.row("test loss of the trained LSA layer (0.5 MSE, query)",
                    "meets the GD line at about 0.2 after 5,000 Adam steps (d=10, N=10)", fig2,
                    col("loss_trained"), diff),
      reproduce.row("test loss of one GD step, eta tuned on held-out tasks",
                    "0.2047 (d=10, N=10; the GD reference line of the authors' notebooks)",
                    fig2 + "; code normal_token_construct.ipynb", col("loss_gd"), f"{diff}; {tuned}"),
      reproduce.row("cosine of the sensitivities d y_hat / d x_query, trained vs GD",
                    "close to 1 at the end of training", fig2 + " (model cos)", col("cosine"), diff),
      reproduce.row("norm of the sensitivity difference, trained vs GD",
                    "close to 0 at the end of training", fig2 + " (model diff)", col("grad_diff"), diff),
      reproduce.row("norm of the prediction difference |y_hat_trained - y_hat_GD|",
                    "close to 0 at the end of training", fig2 + " (preds diff)", col("pred_diff"), diff),
      reproduce.row("relative distance of the trained (W_KQ, W_PV) from the construction (after rescaling)",
                    "the trained products match the construction (pictures of W_KQ, W_PV)", fig2,
                    col("weight_match"), diff + "; a number of ours (the paper shows the matrices)"),
  ]
  data = {"per_seed": per_seed, "fields": {
      "eta": "eta* of the GD construction (closed-form least squares on tune_tasks)",
      "loss_trained/loss_gd/cosine/grad_diff/pred_diff": "final comparison on eval_tasks (module docstring)",
      "w_kq/w_pv": "trained W_KQ / c and c W_PV (c = scale_c, the mean x-block diagonal of W_KQ)",
      "w_kq_gd/w_pv_gd": "the construction's products", "curve": "every eval_every steps on curve_tasks"},
      "png": "top: test loss (trained vs GD) and the three comparisons over training, all seeds; bottom: seed "
             + str(seeds[0]) + "'s normalized W_KQ and W_PV next to the construction's"}
  return reproduce.StudyResult(rows, data)


def plot(result: reproduce.StudyResult, png_path: str) -> None:
  """Writes the loss / alignment curves and the weight matrices (trained next to the construction) to png_path."""
  matplotlib.use("Agg")
  per_seed = result.data["per_seed"]
  fig = plt.figure(figsize=(16, 7.5))
  grid = fig.add_gridspec(2, 4, hspace=0.35, wspace=0.3)
  ax = fig.add_subplot(grid[0, :2])
  for i, r in enumerate(per_seed):
    c = r["curve"]
    ax.plot(c["step"], c["loss_trained"], color="C0", alpha=0.8, label="trained LSA" if i == 0 else None)
    ax.plot(c["step"], c["loss_gd"], color="C3", ls="--", alpha=0.8, label="1 GD step (tuned eta)" if i == 0 else None)
  ax.set_yscale("log")
  ax.set_xlabel("training step")
  ax.set_ylabel("test loss (0.5 MSE)")
  ax.legend()
  ax.set_title("loss")
  ax = fig.add_subplot(grid[0, 2:])
  ax2 = ax.twinx()
  for i, r in enumerate(per_seed):
    c = r["curve"]
    ax.plot(c["step"], c["grad_diff"], color="C1", alpha=0.8, label="sensitivity diff (L2)" if i == 0 else None)
    ax.plot(c["step"], c["pred_diff"], color="C2", alpha=0.8, label="prediction diff" if i == 0 else None)
    ax2.plot(c["step"], c["cosine"], color="C4", alpha=0.8, label="cosine of sensitivities" if i == 0 else None)
  ax.set_xlabel("training step")
  ax.set_ylabel("norm of difference")
  ax2.set_ylabel("cosine")
  ax2.set_ylim(-0.05, 1.05)
  lines = ax.get_legend_handles_labels()
  lines2 = ax2.get_legend_handles_labels()
  ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right")
  ax.set_title("trained vs GD construction")
  first = per_seed[0]
  mats = [("trained W_KQ / c", first["w_kq"]), ("GD W_KQ", first["w_kq_gd"]), ("trained c W_PV", first["w_pv"]),
          ("GD W_PV", first["w_pv_gd"])]
  for j, (title, mat) in enumerate(mats):
    ax = fig.add_subplot(grid[1, j])
    m = np.asarray(mat)
    lim = float(np.max(np.abs(m))) or 1.0
    im = ax.imshow(m, cmap="RdBu", vmin=-lim, vmax=lim)
    ax.set_title(title + f" (seed {first['seed']})")
    fig.colorbar(im, ax=ax, shrink=0.8)
  fig.suptitle("gd_in_context: one linear self-attention layer vs one GD step (von Oswald et al. 2023)")
  fig.savefig(png_path, dpi=110, bbox_inches="tight")
  plt.close(fig)


STUDY = reproduce.Study(
    name="gd_in_context",
    title="Transformers learn in-context by gradient descent: one trained LSA layer vs one GD step",
    citation=CITATION,
    presets={"cpu": CPU, "paper": PAPER, "smoke": SMOKE},
    budget_s={"cpu": 600.0, "paper": 600.0, "smoke": 60.0},
    run=run,
    plot=plot,
)
