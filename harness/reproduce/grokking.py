"""Grokking on modular addition (Nanda, Chan, Lieberum, Smith, Steinhardt 2023, "Progress measures for grokking
via mechanistic interpretability", ICLR 2023; code:
github.com/mechanistic-interpretability-grokking/progress-measures-paper).

A one-layer transformer (``models.onelayer``) is trained full-batch with AdamW on a fixed fraction of the p * p
pairs of a + b mod p (``tasks.modular``) and evaluated on the rest. Per seed the study reports:

* ``step_train_99``: the first evaluated step at which train accuracy is >= 99 %;
* ``step_test_95``: the first evaluated step at which test accuracy is > 95 % (None when it never is);
* the embedding's Fourier norms (``embedding_fourier_norms``: for each frequency k = 1 .. p // 2 the norm of
  W_E's projection on the cos k and sin k directions over the p number tokens, as the paper's Fig. 3) and its KEY
  frequencies (``key_frequencies``: norm^2 at least ``key_factor`` times the mean norm^2 over frequencies; a
  random embedding has every ratio near 1, chi-square with 2 d degrees of freedom over its mean);
* the fraction of MLP neurons dominated by one frequency (``neuron_frequency_fractions``: the authors'
  ``calculate_key_freqs`` measure: center each neuron's last-position activation over all p * p inputs, take its
  2-D Fourier transform over (a, b), and for each k the share of its variance in the 3 x 3 block of constant /
  cos k / sin k terms of a and b, i.e. its linear and quadratic terms of frequency k; a neuron is dominated when
  one k holds more than ``neuron_threshold`` = 0.85 of it). Dead neurons (zero variance) are never dominated.

Accuracies are evaluated every ``eval_every`` steps, so the two steps are known to that resolution. Presets:
"paper" is the published setup (field by field in ``GrokkingConfig``), ~2 h per seed on the 2-core CPU; "cpu" is
scaled down (p, width, train fraction, steps) to fit 15 minutes for 3 seeds, and times one paper step on the same
machine so its cost is measured, not guessed; "smoke" is a toy for tests.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from mesabench.harness import reproduce
from mesabench.models import onelayer
from mesabench.tasks import modular

CITATION = ("Neel Nanda, Lawrence Chan, Tom Lieberum, Jess Smith, Jacob Steinhardt. Progress measures for grokking "
            "via mechanistic interpretability. ICLR 2023 (arXiv:2301.05217).")
PAPER = "Nanda et al. 2023"


@dataclasses.dataclass(frozen=True)
class GrokkingConfig:
  """One grokking run per seed. The defaults are the ``paper`` preset; where each value comes from:

  p: 113, the modulus (paper §3; code ``Config.p``). Must be odd (a prime in the paper).
  frac_train: 0.3, the fraction of the p^2 pairs trained on (paper §3; code ``frac_train``); the train set is
    floor(0.3 * 113^2) = 3,830 pairs, the test set the other 8,939.
  d_model: 128 (code ``d_model``); heads: 4 of d_model / 4 = 32 (code ``num_heads``, ``d_head``);
  d_mlp: 512 = 4 * d_model, ReLU, no LayerNorm (code ``d_mlp``, ``act_type='ReLU'``, ``use_ln=False``);
  lr: 1e-3; weight_decay: 1.0; beta1, beta2: 0.9, 0.98 (code: ``optim.AdamW(lr=1e-3, weight_decay=1.0,
    betas=(0.9, 0.98))``; torch and optax AdamW both decay by lr * weight_decay * w per step);
  warmup_steps: 10, linear warm-up from 0 (code: ``LambdaLR(lambda step: min(step / 10, 1))``);
  steps: 40,000 full-batch steps (paper: 40k epochs of full-batch training; the code's default is 50,000);
  eval_every: accuracies are recorded every this many steps (the authors log losses every step; 100 here);
  checkpoint_every: steps between checkpoints (a multiple of eval_every);
  key_factor: a frequency is key when its embedding norm^2 >= key_factor * the mean over frequencies (ours);
  neuron_threshold: 0.85, the share of a neuron's variance one frequency must explain (the criterion of the
    issue; the authors' code records each neuron's best share);
  time_paper_steps: when > 0, also time this many full-batch steps of the PAPER config on this machine (the cpu
    preset does, to put a measured paper cost beside its own).
  """
  p: int = 113
  frac_train: float = 0.3
  d_model: int = 128
  heads: int = 4
  d_mlp: int = 512
  lr: float = 1e-3
  weight_decay: float = 1.0
  beta1: float = 0.9
  beta2: float = 0.98
  warmup_steps: int = 10
  steps: int = 40_000
  eval_every: int = 100
  checkpoint_every: int = 5_000
  key_factor: float = 4.0
  neuron_threshold: float = 0.85
  time_paper_steps: int = 0

  def __post_init__(self):
    modular.check_p(self.p)
    if self.p % 2 == 0:
      raise ValueError(f"p must be odd (the Fourier analyses need it), got {self.p}")
    modular.check_frac(self.frac_train)
    for name, lo, hi in (("d_model", 4, 2048), ("heads", 1, 64), ("d_mlp", 1, 16384), ("warmup_steps", 0, 10**6),
                         ("steps", 1, 10**7), ("eval_every", 1, 10**6), ("checkpoint_every", 1, 10**7),
                         ("time_paper_steps", 0, 10**4)):
      v = getattr(self, name)
      if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")
    if self.d_model % self.heads:
      raise ValueError(f"d_model must be divisible by heads={self.heads}, got {self.d_model}")
    if self.steps % self.eval_every or self.checkpoint_every % self.eval_every:
      raise ValueError(f"steps and checkpoint_every must be multiples of eval_every={self.eval_every}, got "
                       f"steps={self.steps}, checkpoint_every={self.checkpoint_every}")
    for name, lo, hi in (("lr", 0.0, 10.0), ("weight_decay", 0.0, 100.0), ("beta1", 0.0, 1.0), ("beta2", 0.0, 1.0),
                         ("key_factor", 1.0, 1e6), ("neuron_threshold", 0.0, 1.0)):
      v = getattr(self, name)
      if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {v!r}")

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


PRESETS = {
    "paper": GrokkingConfig(),
    # p 59, half the pairs, half the width, same optimizer. Measured on the shared 2-core CPU: 20-45 ms a step
    # (load-dependent) against 125-365 ms for the paper config. At 40 % of the pairs one seed of three had not
    # generalized after 7,000 steps (test accuracy 49 %); at 50 % that seed passes 95 % at 2,750.
    "cpu": GrokkingConfig(p=59, frac_train=0.5, d_model=64, heads=4, d_mlp=256, steps=5_000, eval_every=50,
                          checkpoint_every=1_000, time_paper_steps=20),
    "smoke": GrokkingConfig(p=11, frac_train=0.5, d_model=16, heads=2, d_mlp=32, lr=3e-3, steps=60, eval_every=10,
                            checkpoint_every=20),
}
BUDGET_S = {"paper": None, "cpu": 900.0, "smoke": 60.0}


# -------------------------------------------------------------------------------------------------- analyses


def embedding_fourier_norms(w_e: np.ndarray, p: int) -> np.ndarray:
  """Norms of the number tokens' embedding in the Fourier basis: float64 [p // 2, 2], row k - 1 holding the norms
  of F_cos_k @ W and F_sin_k @ W for W = w_e[:p] (the p number tokens; rows past p, such as "=", ignored). The
  frequency-k norm is the root sum of squares of its row."""
  w = np.asarray(w_e, np.float64)
  if w.ndim != 2 or w.shape[0] < p:
    raise ValueError(f"w_e must be [>= p, d] (p = {p}), got shape {w.shape}")
  coeffs = modular.fourier_basis(p) @ w[:p]                                   # [p, d]
  norms = np.linalg.norm(coeffs, axis=1)
  return np.stack([norms[1::2], norms[2::2]], axis=1)


def key_frequencies(norms: np.ndarray, key_factor: float) -> list[int]:
  """The frequencies k (1-based) whose energy (sum of squared cos/sin norms, ``embedding_fourier_norms``) is at
  least ``key_factor`` times the mean energy over all frequencies, ascending."""
  energy = np.sum(np.asarray(norms, np.float64) ** 2, axis=-1)
  if energy.ndim != 1 or energy.size < 1:
    raise ValueError(f"norms must be [p // 2, 2], got shape {np.shape(norms)}")
  mean = energy.mean()
  if mean <= 0:
    return []
  return [int(k) + 1 for k in np.flatnonzero(energy >= key_factor * mean)]


def neuron_frequency_fractions(acts: np.ndarray, p: int) -> np.ndarray:
  """For each neuron, the share of its variance over all p * p inputs in each frequency's linear and quadratic
  terms: float64 [n, p // 2] in [0, 1], rows summing to <= 1 (0 for a neuron of zero variance).

  acts: [p * p, n] activations, row a * p + b for input (a, b) (``tasks.modular.pairs`` order). Each column is
  centered, mapped to the 2-D Fourier basis (F A F^T over (a, b)); the share of frequency k is the squared mass of
  the 3 x 3 block with row and column indices {0, 2k - 1, 2k} over the total squared mass.
  """
  a = np.asarray(acts, np.float64)
  if a.ndim != 2 or a.shape[0] != p * p:
    raise ValueError(f"acts must be [p * p, n] = [{p * p}, n], got shape {a.shape}")
  basis = modular.fourier_basis(p)
  grid = (a - a.mean(axis=0, keepdims=True)).reshape(p, p, -1)
  four = np.einsum("fx,xyn,gy->fgn", basis, grid, basis) ** 2                 # [p, p, n]
  total = four.sum(axis=(0, 1))
  out = np.zeros((a.shape[1], p // 2))
  for k in range(1, p // 2 + 1):
    idx = np.array([0, 2 * k - 1, 2 * k])
    out[:, k - 1] = four[idx[:, None], idx[None, :]].sum(axis=(0, 1))
  alive = total > 1e-12 * max(1.0, float(total.max(initial=0.0)))
  out[alive] /= total[alive][:, None]
  out[~alive] = 0.0
  return out


def first_step(steps: np.ndarray, values: np.ndarray, threshold: float, strict: bool) -> int | None:
  """The first step whose value is > threshold (``strict``) or >= threshold; None when none is."""
  hit = np.asarray(values) > threshold if strict else np.asarray(values) >= threshold
  idx = np.flatnonzero(hit)
  return int(np.asarray(steps)[idx[0]]) if idx.size else None


# --------------------------------------------------------------------------------------------------- training


def _model(config: GrokkingConfig) -> onelayer.OneLayerTransformer:
  return onelayer.OneLayerTransformer(vocab=config.p + 1, n_ctx=3, d_model=config.d_model, heads=config.heads,
                                      d_mlp=config.d_mlp)


def _optimizer(config: GrokkingConfig) -> optax.GradientTransformation:
  warm = max(config.warmup_steps, 0)
  schedule = (lambda count: config.lr * jnp.minimum(count / warm, 1.0)) if warm else config.lr
  return optax.adamw(schedule, b1=config.beta1, b2=config.beta2, weight_decay=config.weight_decay)


@functools.lru_cache(maxsize=8)
def _programs(config: GrokkingConfig):
  """(init, chunk, toks), compiled once per config: init(seed) -> state; chunk(state, train_idx) -> (state after
  eval_every full-batch steps on the pairs ``train_idx``, [train acc, test acc, train loss, test loss] on all
  pairs after them)."""
  model, opt = _model(config), _optimizer(config)
  ab = modular.pairs(config.p)
  toks = jnp.asarray(modular.tokens(config.p, ab))
  labels = jnp.asarray(modular.answers(config.p, ab))

  def loss_fn(params, train_idx):
    logits = model.apply({"params": params}, toks[train_idx])
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels[train_idx]))

  def init(seed: int):
    params = model.init(jax.random.key(seed), toks[:1])["params"]
    return {"params": params, "opt_state": opt.init(params), "step": jnp.zeros((), jnp.int32)}

  @jax.jit
  def chunk(state, train_idx):
    def body(carry, _):
      params, opt_state = carry
      grads = jax.grad(loss_fn)(params, train_idx)
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None
    (params, opt_state), _ = jax.lax.scan(body, (state["params"], state["opt_state"]), None,
                                          length=config.eval_every)
    logits = model.apply({"params": params}, toks)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    hit = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
    mask = jnp.zeros(labels.shape, jnp.float32).at[train_idx].set(1.0)
    n_tr, n_te = jnp.sum(mask), mask.size - jnp.sum(mask)
    metrics = jnp.stack([jnp.sum(hit * mask) / n_tr, jnp.sum(hit * (1 - mask)) / n_te,
                         jnp.sum(ce * mask) / n_tr, jnp.sum(ce * (1 - mask)) / n_te])
    return {"params": params, "opt_state": opt_state, "step": state["step"] + config.eval_every}, metrics

  return init, chunk, toks


def time_steps(config: GrokkingConfig, steps: int, seed: int = 0) -> float:
  """Seconds per full-batch training step of ``config`` on this machine: the mean over ``steps`` steps after one
  compiled warm-up chunk (a float > 0)."""
  cfg = dataclasses.replace(config, eval_every=steps, steps=steps, checkpoint_every=steps, time_paper_steps=0)
  train_idx = jnp.asarray(modular.split(cfg.p, cfg.frac_train, seed)[0])
  init, chunk, _ = _programs(cfg)
  state = init(seed)
  jax.block_until_ready(chunk(state, train_idx))
  t0 = time.perf_counter()
  jax.block_until_ready(chunk(state, train_idx))
  return (time.perf_counter() - t0) / steps


def train_seed(config: GrokkingConfig, seed: int, workdir: str, resume: bool, bar=None) -> dict[str, Any]:
  """Trains one seed (checkpointed under ``workdir``; resumed from its latest checkpoint with ``resume``) and
  returns its curves and analyses (JSON-able)."""
  train_idx, test_idx = modular.split(config.p, config.frac_train, seed)
  init, chunk, toks = _programs(config)
  train_dev = jnp.asarray(train_idx)
  n_evals = config.steps // config.eval_every
  template = {**init(seed), "history": np.full((n_evals, 4), np.nan, np.float32), "train_s": np.zeros(())}
  with reproduce.Checkpointer(workdir, "grokking", config, seed, every=config.checkpoint_every,
                              resume=resume) as ckpt:
    state = ckpt.restore(template)
    history = np.asarray(state.pop("history")).copy()
    train_s = float(state.pop("train_s"))        # training seconds of earlier (resumed) runs
    t0 = time.perf_counter()
    start = int(state["step"]) // config.eval_every
    if bar is not None:
      bar.update(start * config.eval_every)
    steps_run = 0
    for i in range(start, n_evals):
      state, metrics = chunk(state, train_dev)
      history[i] = np.asarray(metrics)
      steps_run += config.eval_every
      if bar is not None:
        bar.update(config.eval_every)
        bar.set_postfix(seed=seed, train=f"{history[i, 0]:.3f}", test=f"{history[i, 1]:.3f}")
      elapsed = train_s + time.perf_counter() - t0
      ckpt.save(int(state["step"]), {**state, "history": history.copy(), "train_s": np.asarray(elapsed)},
                force=i == n_evals - 1)
    train_s += time.perf_counter() - t0
  steps = (np.arange(n_evals) + 1) * config.eval_every
  params = jax.device_get(state["params"])
  _, neurons = _model(config).apply({"params": params}, toks, return_neurons=True)
  norms = embedding_fourier_norms(np.asarray(params["W_E"]), config.p)
  keys = key_frequencies(norms, config.key_factor)
  energy = (norms ** 2).sum(axis=1)
  fracs = neuron_frequency_fractions(np.asarray(neurons), config.p)
  best = fracs.max(axis=1)
  dominated = best > config.neuron_threshold
  dom_freq = fracs.argmax(axis=1) + 1
  return {
      "seed": int(seed), "train_size": int(train_idx.size), "test_size": int(test_idx.size),
      "steps": steps.tolist(), "train_acc": history[:, 0].tolist(), "test_acc": history[:, 1].tolist(),
      "train_loss": history[:, 2].tolist(), "test_loss": history[:, 3].tolist(),
      "step_train_99": first_step(steps, history[:, 0], 0.99, strict=False),
      "step_test_95": first_step(steps, history[:, 1], 0.95, strict=True),
      "final_train_acc": float(history[-1, 0]), "final_test_acc": float(history[-1, 1]),
      "embedding_fourier_norms": norms.tolist(), "key_frequencies": keys,
      "key_energy_fraction": float(energy[[k - 1 for k in keys]].sum() / energy.sum()) if keys else 0.0,
      "neuron_best_fraction": best.tolist(), "neuron_dominant_frequency": dom_freq.tolist(),
      "fraction_neurons_dominated": float(dominated.mean()),
      "fraction_dominated_by_key": float(np.mean(dominated & np.isin(dom_freq, keys))),
      "train_s": train_s, "steps_run": steps_run, "s_per_step": train_s / config.steps,
  }


def _differences(config: GrokkingConfig) -> str:
  paper = PRESETS["paper"]
  diff = [f"{name} {getattr(config, name)} (paper {getattr(paper, name)})"
          for name in ("p", "frac_train", "d_model", "heads", "d_mlp", "lr", "weight_decay", "steps")
          if getattr(config, name) != getattr(paper, name)]
  out = "; ".join(diff) if diff else "the paper's setup"
  return out + f"; accuracies every {config.eval_every} steps; float32 cross-entropy (authors: float64)"


def _rows(config: GrokkingConfig, per_seed: list[dict[str, Any]]) -> list[reproduce.Row]:
  diff = _differences(config)
  n = len(per_seed)

  def reached(key):
    vals = [s[key] for s in per_seed if s[key] is not None]
    return (vals or None), f"{len(vals)} of {n} seeds reach it within {config.steps} steps"

  train99, note99 = reached("step_train_99")
  test95, note95 = reached("step_test_95")
  return [
      reproduce.row("step where train accuracy first reaches 99 %",
                    "memorization phase ends at about 1.4k epochs (p = 113, 30 % train, full batch)",
                    f"{PAPER}, progress-measure phases (section/figure number not checked)", train99,
                    f"{note99}; {diff}"),
      reproduce.row("step where test accuracy first exceeds 95 %",
                    "test loss falls during cleanup, 9.4k-13.3k epochs (circuit formation 1.4k-9.4k)",
                    f"{PAPER}, progress-measure phases (section/figure number not checked)", test95,
                    f"{note95}; {diff}"),
      reproduce.row("final test accuracy", "about 100 % after 40k epochs", f"{PAPER}, abstract and training curves",
                    [s["final_test_acc"] for s in per_seed], diff),
      reproduce.row("number of key frequencies in the embedding (norm^2 >= "
                    f"{config.key_factor:g} x mean over frequencies)",
                    "5 for the mainline run: 14, 35, 41, 42, 52 (p = 113)", f"{PAPER}, Fig. 3 (Fourier norms)",
                    [len(s["key_frequencies"]) for s in per_seed],
                    f"frequencies per seed in data.per_seed[*].key_frequencies; {diff}"),
      reproduce.row("share of the embedding's Fourier energy in the key frequencies",
                    "the embedding is sparse in the Fourier basis: a handful of frequencies carry it",
                    f"{PAPER}, Fig. 3 (Fourier norms)", [s["key_energy_fraction"] for s in per_seed], diff),
      reproduce.row(f"fraction of MLP neurons with > {config.neuron_threshold:g} of their variance in one "
                    "frequency's linear + quadratic terms",
                    "neurons cluster by a single key frequency (the authors' calculate_key_freqs measure; "
                    "no single figure checked here)", f"{PAPER}, code transformers.py (calculate_key_freqs)",
                    [s["fraction_neurons_dominated"] for s in per_seed], diff),
  ]


def run(config: GrokkingConfig, seeds: tuple[int, ...], workdir: str, resume: bool) -> reproduce.StudyResult:
  """Trains every seed (sequentially, each checkpointed), analyses the final weights, returns the table and the
  per-seed data (curves, Fourier norms, neuron shares, timing)."""
  if not isinstance(config, GrokkingConfig):
    raise ValueError(f"config must be a GrokkingConfig, got {type(config).__name__}")
  seeds = tuple(int(s) for s in seeds)
  if not seeds:
    raise ValueError("seeds must hold at least one seed")
  t0 = time.perf_counter()
  with tqdm(total=config.steps * len(seeds), desc="grokking", unit="step") as bar:
    per_seed = [train_seed(config, s, workdir, resume, bar) for s in seeds]
  timing = {"wall_s": time.perf_counter() - t0, "train_s": [s["train_s"] for s in per_seed],
            "s_per_step": [s["s_per_step"] for s in per_seed],
            "params": onelayer.num_params(config.p + 1, config.d_model, config.d_mlp)}
  if config.time_paper_steps:
    paper = PRESETS["paper"]
    sec = time_steps(paper, config.time_paper_steps)
    timing.update({"paper_s_per_step": sec, "paper_params": onelayer.num_params(paper.p + 1, paper.d_model,
                                                                                paper.d_mlp),
                   "paper_estimated_s_per_seed": sec * paper.steps,
                   "note": "paper_s_per_step: full-batch steps of the paper config timed on this machine after "
                           "this run; its 40k steps x seeds is what the paper preset would take here"})
  data = {"per_seed": per_seed, "timing": timing,
          "picture": "left: train (dashed) and test (solid) accuracy per seed against the step (log axis); "
                     "right: the embedding's Fourier norm per frequency (each seed), key frequencies marked"}
  return reproduce.StudyResult(_rows(config, per_seed), data)


def plot(result: reproduce.StudyResult, png_path: str) -> None:
  """Accuracy curves (log steps) and the embedding's Fourier norms per seed, as a PNG at ``png_path``."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  per_seed = result.data["per_seed"]
  fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.2))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for i, s in enumerate(per_seed):
    c = colors[i % len(colors)]
    ax0.plot(s["steps"], s["train_acc"], "--", color=c, lw=1.2, label=f"seed {s['seed']} train")
    ax0.plot(s["steps"], s["test_acc"], "-", color=c, lw=1.5, label=f"seed {s['seed']} test")
    norms = np.sqrt((np.asarray(s["embedding_fourier_norms"]) ** 2).sum(axis=1))
    k = np.arange(1, norms.size + 1)
    width = 0.8 / max(len(per_seed), 1)
    ax1.bar(k - 0.4 + width * (i + 0.5), norms, width=width, color=c, label=f"seed {s['seed']}: key "
            f"{', '.join(map(str, s['key_frequencies'])) or 'none'}")
  ax0.set_xscale("log")
  ax0.set_xlabel("training step")
  ax0.set_ylabel("accuracy")
  ax0.set_ylim(-0.02, 1.02)
  ax0.axhline(0.95, color="gray", lw=0.6, ls=":")
  ax0.legend(fontsize=7, ncol=2)
  ax0.set_title("train (dashed) / test (solid) accuracy")
  ax1.set_xlabel("frequency k")
  ax1.set_ylabel("norm of W_E in the cos k / sin k directions")
  ax1.set_title("embedding Fourier norms after training")
  ax1.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(png_path, dpi=110, format="png")
  plt.close(fig)


STUDY = reproduce.Study(
    name="grokking",
    title="Grokking on modular addition: delayed generalization and Fourier features",
    citation=CITATION,
    presets=PRESETS,
    budget_s=BUDGET_S,
    run=run,
    plot=plot,
)
