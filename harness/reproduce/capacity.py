"""Memorization capacity: bits stored per parameter by zoo MLPs on random labels, as the width grows.

The measurement (every number in the result follows it):

1. Data: N inputs x ~ N(0, I_dim) with labels uniform over C classes, independent of x (``tasks.random_labels``);
   the labels hold N * log2(C) bits and nothing about them can be inferred: whatever a model gets right it stored.
2. Model: the zoo ``mlp`` (``models.mlp``: ``depth`` GELU layers of ``width``, a C-way classes head) with P
   parameters, trained full batch with Adam (learning rate ``lr``, cosine decay to 0 over ``steps``) on the mean
   cross-entropy of the N examples.
3. Bits stored (``stored_bits``, the compression bound of Morris et al. 2025): the code length of the labels under
   the uniform prior minus their code length under the trained model, N * log2(C) - sum_i CE_i / ln 2 (CE in nats,
   on the training examples). It is N * log2(C) for a model that puts probability 1 on every label, 0 for the
   uniform prediction, and negative for a model worse than chance.
4. N is swept at ``label_bits_per_param`` = r: N = round(r * P / log2(C)) (labels holding r bits per parameter),
   r = 1 .. 8 in the cpu preset; the capacity of a (width, seed) is the MAXIMUM of the bits stored over the grid
   (the plateau of Morris et al.: beyond capacity more data does not add stored bits), and its bits per parameter
   that maximum over P.
5. The summary figure is the least-squares slope through the origin of capacity against P over the widths (per
   seed; mean and t interval over seeds): bits per parameter of the family. Also reported: the coarse
   exact-memorization capacity (label bits per parameter at the largest grid N with train accuracy >= 99 %) and a
   convergence check (bits stored at steps / 2 against steps).

The measured figure feeds ``harness.transitions``' capacity view (``bits_per_param``), in place of the 4 bits per
parameter it credited a model with before.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from mesabench import models
from mesabench.harness import provenance
from mesabench.harness import reproduce
from mesabench.tasks import random_labels

CITATION = ("Memorization capacity of zoo MLPs on random labels, against: J. Collins, J. Sohl-Dickstein, D. Sussillo. "
            "Capacity and trainability in recurrent neural networks. ICLR 2017 (arXiv:1611.09913); Z. Allen-Zhu, "
            "Y. Li. Physics of language models: Part 3.3, knowledge capacity scaling laws. ICLR 2025 "
            "(arXiv:2404.05405); J. X. Morris, C. Sitawarin, C. Guo, N. Kokhlikyan, G. E. Suh, A. M. Rush, "
            "K. Chaudhuri, S. Mahloujifar. How much do language models memorize? 2025 (arXiv:2505.24950).")
RESULT_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "results",
                           "repro_capacity.json")
"""The committed result of the cpu preset, which ``bits_per_param`` reads."""


@dataclasses.dataclass(frozen=True)
class CapacityConfig:
  """A capacity sweep. No paper trains zoo MLPs: the ``paper`` preset is the protocol of the literature (Collins
  et al. 2017: capacity measured at the best data size after long, tuned training) at sizes for a GPU; the values:

  dim: 16, input dimension (ours; random inputs in general position make it irrelevant once N > dim).
  classes: 16, label classes (4 bits per example; Collins et al. sweep the bits per example, Morris et al. use
    uniform random token sequences).
  depth: 2, the zoo mlp's default hidden layers.
  widths: hidden widths swept (4-6 of them; parameters from ~170 to ~2,100 in the cpu preset).
  label_bits_per_param: the grid of N, as label bits per parameter (step 4 of the module docstring).
  steps: full-batch Adam steps (3,000 cpu; 20,000 paper); lr: 1e-2, the peak of the cosine schedule.
  memorized_threshold: 0.99, train accuracy that counts as exact memorization.
  """
  dim: int = 16
  classes: int = 16
  depth: int = 2
  widths: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
  label_bits_per_param: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
  steps: int = 20_000
  lr: float = 1e-2
  memorized_threshold: float = 0.99

  def __post_init__(self):
    random_labels.spec(self.dim, self.classes)              # checks dim and classes
    for name in ("depth", "steps"):
      v = getattr(self, name)
      if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= (16 if name == "depth" else 10**7):
        raise ValueError(f"{name} must be an integer in [1, {16 if name == 'depth' else 10**7}], got {v!r}")
    if self.steps % 2:
      raise ValueError(f"steps must be even (bits are also measured at steps / 2), got {self.steps}")
    if (not isinstance(self.widths, tuple) or not self.widths or any(
        isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= 4096 for w in self.widths)
        or len(set(self.widths)) != len(self.widths)):
      raise ValueError(f"widths must be a non-empty tuple of distinct integers in [1, 4096], got {self.widths!r}")
    if (not isinstance(self.label_bits_per_param, tuple) or not self.label_bits_per_param or any(
        isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1000
        for r in self.label_bits_per_param)):
      raise ValueError("label_bits_per_param must be a non-empty tuple of numbers in (0, 1000], got "
                       f"{self.label_bits_per_param!r}")
    for name, lo, hi in (("lr", 0.0, 10.0), ("memorized_threshold", 0.0, 1.0)):
      v = getattr(self, name)
      if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo < v <= hi:
        raise ValueError(f"{name} must be in ({lo}, {hi}], got {v!r}")

  def to_dict(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    d["widths"], d["label_bits_per_param"] = list(self.widths), list(self.label_bits_per_param)
    return d


PRESETS = {
    "paper": CapacityConfig(),
    "cpu": CapacityConfig(widths=(4, 8, 16, 24, 32), label_bits_per_param=(1.0, 2.0, 4.0, 8.0), steps=3_000),
    "smoke": CapacityConfig(dim=4, classes=4, widths=(2, 4), label_bits_per_param=(1.0, 4.0), steps=100),
}
BUDGET_S = {"paper": None, "cpu": 600.0, "smoke": 60.0}


# ---------------------------------------------------------------------------------------------- the formulas


def stored_bits(cross_entropy_nats, classes: int) -> float:
  """Bits of N uniform labels over ``classes`` classes stored by a model with per-example cross-entropies
  ``cross_entropy_nats`` [N] (nats, each >= 0): N * log2(classes) - sum(CE) / ln 2, in (-inf, N * log2(classes)]."""
  ce = np.asarray(cross_entropy_nats, np.float64).reshape(-1)
  if ce.size < 1 or not np.all(np.isfinite(ce)) or np.any(ce < 0):
    raise ValueError("cross_entropy_nats must be a non-empty array of finite values >= 0")
  return random_labels.label_bits(ce.size, classes) - float(ce.sum()) / math.log(2.0)


def sizes(params: int, config: CapacityConfig) -> list[int]:
  """The data sizes N = max(1, round(r * params / log2(classes))) for r in ``config.label_bits_per_param``."""
  return [max(1, int(round(r * params / math.log2(config.classes)))) for r in config.label_bits_per_param]


def slope_through_origin(params, bits) -> float:
  """Least-squares slope b of bits ~ b * params (no intercept): sum(P * bits) / sum(P^2)."""
  p, b = np.asarray(params, np.float64), np.asarray(bits, np.float64)
  return float(np.sum(p * b) / np.sum(p * p))


def bits_per_param(path: str | None = None) -> float:
  """The measured bits per parameter of zoo MLPs (the slope of a capacity result, seed mean; ``path`` defaults to
  the committed ``RESULT_PATH``); ValueError when ``path`` holds no capacity result."""
  path = RESULT_PATH if path is None else path
  if not os.path.exists(path):
    raise ValueError(f"path: no capacity result at {path!r}; run python -m mesabench.benchmarks.reproduce "
                     "--study=capacity --out=results/repro_capacity.json")
  doc = provenance.read_json(path)
  if doc.get("study") != "capacity":
    raise ValueError(f"path: {path!r} is not a capacity result (study {doc.get('study')!r})")
  return float(doc["data"]["bits_per_param"]["mean"])


# --------------------------------------------------------------------------------------------------- training


def _model(config: CapacityConfig, width: int):
  return models.make("mlp", random_labels.spec(config.dim, config.classes), width=width, depth=config.depth,
                     head="classes")


def num_params(config: CapacityConfig, width: int) -> int:
  """Parameters of the zoo mlp of ``width`` for this config (counted from its initialized pytree)."""
  params = jax.eval_shape(_model(config, width).init, jax.random.key(0))
  return int(sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(params)))


@functools.lru_cache(maxsize=16)
def _program(config: CapacityConfig, width: int):
  """train(keys [R], x [R, Nmax, dim], y [R, Nmax], mask [R, Nmax]) -> [R, 3]: (sum CE at steps / 2, sum CE at
  steps, train accuracy at steps) per run, the R runs vmapped in one jit."""
  model = _model(config, width)
  opt = optax.adam(optax.cosine_decay_schedule(config.lr, config.steps))

  def per_example(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(model.outputs(params, x), y)

  def one(key, x, y, mask):
    params = model.init(key)
    state = opt.init(params)
    n = jnp.sum(mask)

    def body(carry, _):
      params, state = carry
      grads = jax.grad(lambda p: jnp.sum(per_example(p, x, y) * mask) / n)(params)
      updates, state = opt.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), None

    (params, state), _ = jax.lax.scan(body, (params, state), None, length=config.steps // 2)
    half = jnp.sum(per_example(params, x, y) * mask)
    (params, state), _ = jax.lax.scan(body, (params, state), None, length=config.steps // 2)
    ce = per_example(params, x, y) * mask
    acc = jnp.sum((jnp.argmax(model.outputs(params, x), -1) == y) * mask) / n
    return jnp.stack([half, jnp.sum(ce), acc])

  return jax.jit(jax.vmap(one))


def train_width(config: CapacityConfig, width: int, seed: int) -> np.ndarray:
  """[R, 3] for the grid of N at ``width``: (total train CE in nats at steps / 2, at steps, train accuracy)."""
  p = num_params(config, width)
  ns = sizes(p, config)
  n_max = max(ns)
  r = len(ns)
  x = np.zeros((r, n_max, config.dim), np.float32)
  y = np.zeros((r, n_max), np.int32)
  mask = np.zeros((r, n_max), np.float32)
  for i, n in enumerate(ns):
    x[i, :n], y[i, :n] = random_labels.sample(seed, n, config.dim, config.classes)
    mask[i, :n] = 1.0
  base = jax.random.fold_in(jax.random.key(seed), width)
  keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(r))
  return np.asarray(_program(config, width)(keys, x, y, mask), np.float64)


def _seed_results(config: CapacityConfig, seed: int, workdir: str, resume: bool, bar) -> np.ndarray:
  """[W, R, 3] of ``train_width`` for every width, checkpointed after each width (resume skips finished ones)."""
  w, r = len(config.widths), len(config.label_bits_per_param)
  template = {"done": np.zeros((), np.int32), "results": np.zeros((w, r, 3), np.float64)}  # numpy: float64 kept
  with reproduce.Checkpointer(workdir, "capacity", config, seed, every=1, resume=resume) as ckpt:
    state = ckpt.restore(template)
    done, results = int(state["done"]), np.asarray(state["results"], np.float64).copy()
    bar.update(done)
    for i in range(done, w):
      results[i] = train_width(config, config.widths[i], seed)
      bar.update(1)
      bar.set_postfix(seed=seed, width=config.widths[i])
      ckpt.save(i + 1, {"done": np.asarray(i + 1, np.int32), "results": results.copy()}, force=True)
  return results


def analyse(config: CapacityConfig, params: list[int], results: np.ndarray) -> dict[str, Any]:
  """Per-seed numbers from ``results`` [W, R, 3] (``train_width`` per width): bits stored per (width, N), the
  capacity (max over N), bits per parameter, the slope over widths, exact memorization, convergence."""
  log2c, ln2 = math.log2(config.classes), math.log(2.0)
  bits, bits_half, cap, cap_n, exact = [], [], [], [], []
  for i, p in enumerate(params):
    ns = sizes(p, config)
    b = [n * log2c - results[i, j, 1] / ln2 for j, n in enumerate(ns)]
    bh = [n * log2c - results[i, j, 0] / ln2 for j, n in enumerate(ns)]
    best = int(np.argmax(b))
    bits.append(b)
    bits_half.append(bh)
    cap.append(b[best])
    cap_n.append(ns[best])
    mem = [n for j, n in enumerate(ns) if results[i, j, 2] >= config.memorized_threshold]
    exact.append(max(mem) * log2c / p if mem else 0.0)
  cap_half = [max(bh) for bh in bits_half]
  return {"bits": bits, "bits_at_half_steps": bits_half, "train_acc": results[:, :, 2].tolist(),
          "capacity_bits": cap, "capacity_n": cap_n, "bits_per_param": [c / p for c, p in zip(cap, params)],
          "slope": slope_through_origin(params, cap), "slope_at_half_steps": slope_through_origin(params, cap_half),
          "exact_memorization_bits_per_param": exact}


def _rows(config: CapacityConfig, params: list[int], per_seed: list[dict[str, Any]]) -> list[reproduce.Row]:
  slopes = [s["slope"] for s in per_seed]
  gain = np.mean([(s["slope"] - s["slope_at_half_steps"]) / s["slope_at_half_steps"] for s in per_seed])
  setup = (f"zoo mlp depth {config.depth}, widths {', '.join(map(str, config.widths))} ({params[0]:,}-"
           f"{params[-1]:,} params), N(0, I_{config.dim}) inputs, {config.classes} classes, N at "
           f"{', '.join(f'{r:g}' for r in config.label_bits_per_param)} label bits/param, {config.steps} full-batch "
           f"Adam steps; bits = N log2 C - sum CE / ln 2 at the best N; slope over widths; stored bits grew "
           f"{100 * gain:+.1f} % from step {config.steps // 2} to {config.steps}"
           + (" (not converged: a lower bound)" if gain > 0.02 else ""))
  quantity = "bits stored per parameter (slope of capacity vs params over widths)"
  rows = [
      reproduce.row(quantity, "about 3.6 bits/param (GPT-style transformers trained on uniform random sequences)",
                    "Morris et al. 2025, abstract", slopes, setup),
      reproduce.row(quantity, "2 bits/param (GPT-2-style models storing synthetic biographies, also at int8)",
                    "Allen-Zhu & Li 2024, abstract", slopes, setup),
      reproduce.row(quantity, "about 5 bits/param (RNNs on random-label memorization, tuned training)",
                    "Collins et al. 2017, abstract", slopes, setup),
  ]
  for i, w in enumerate(config.widths):
    rows.append(reproduce.row(
        f"bits stored per parameter, width {w} ({params[i]:,} params)",
        "linear in the number of parameters: a constant per parameter", "Collins et al. 2017, abstract",
        [s["bits_per_param"][i] for s in per_seed], f"max over the N grid; {config.steps} steps"))
  rows.append(reproduce.row(
      f"label bits per parameter at the largest N memorized to >= {100 * config.memorized_threshold:g} % (coarse)",
      "about 5 bits/param (capacity from mutual information, RNNs)", "Collins et al. 2017, abstract",
      [float(np.mean(s["exact_memorization_bits_per_param"])) for s in per_seed],
      "mean over widths; resolution of the N grid only"))
  return rows


def run(config: CapacityConfig, seeds: tuple[int, ...], workdir: str, resume: bool) -> reproduce.StudyResult:
  """The sweep for every seed (checkpointed per width), the per-seed analysis, the table."""
  if not isinstance(config, CapacityConfig):
    raise ValueError(f"config must be a CapacityConfig, got {type(config).__name__}")
  seeds = tuple(int(s) for s in seeds)
  if not seeds:
    raise ValueError("seeds must hold at least one seed")
  params = [num_params(config, w) for w in config.widths]
  t0 = time.perf_counter()
  per_seed, walls = [], []
  with tqdm(total=len(seeds) * len(config.widths), desc="capacity", unit="width") as bar:
    for s in seeds:
      t1 = time.perf_counter()
      per_seed.append({"seed": s, **analyse(config, params, _seed_results(config, s, workdir, resume, bar))})
      walls.append(time.perf_counter() - t1)
  mean, ci = reproduce.seed_ci([p["slope"] for p in per_seed])
  data = {"classes": config.classes, "params": params, "sizes": [sizes(p, config) for p in params],
          "per_seed": per_seed,
          "bits_per_param": {"mean": mean, "ci": ci, "per_seed": [p["slope"] for p in per_seed],
                             "definition": "slope through the origin of capacity bits (max over N of "
                                           "N log2 C - sum CE / ln 2) against parameters, over the widths"},
          "timing": {"wall_s": time.perf_counter() - t0, "per_seed_s": walls},
          "picture": "left: bits stored against label bits N log2 C per width (seed mean; the diagonal is perfect "
                     "memorization); right: capacity against parameters per seed, with our slope and the "
                     "published 2, 3.6 and 5 bits per parameter"}
  return reproduce.StudyResult(_rows(config, params, per_seed), data)


def plot(result: reproduce.StudyResult, png_path: str) -> None:
  """Bits stored against N per width, and capacity against parameters beside the published slopes (PNG)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import matplotlib.ticker

  d = result.data
  params = np.asarray(d["params"], np.float64)
  fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.4))
  for i, p in enumerate(params):
    bits = np.mean([s["bits"][i] for s in d["per_seed"]], axis=0)
    ax0.plot(np.asarray(d["sizes"][i], np.float64), np.maximum(bits, 1e-3), "o-", label=f"{int(p):,} params")
  n = np.geomspace(min(min(s) for s in d["sizes"]), max(max(s) for s in d["sizes"]), 20)
  ax0.plot(n, n * math.log2(d["classes"]), "k:", lw=0.9, label="all labels stored (N log2 C)")
  ax0.set_xscale("log")
  ax0.set_yscale("log")
  ax0.set_xlabel("examples N")
  ax0.set_ylabel("bits stored (N log2 C - sum CE / ln 2)")
  ax0.set_title("bits stored against data size (seed mean)")
  ax0.legend(fontsize=7)
  for s in d["per_seed"]:
    ax1.plot(params, s["capacity_bits"], "o", color="C0", alpha=0.6, ms=4)
  grid = np.geomspace(params.min() * 0.8, params.max() * 1.25, 50)
  mean = d["bits_per_param"]["mean"]
  ax1.plot(grid, mean * grid, "C0-", label=f"ours: {mean:.2f} bits/param")
  for value, name, style in ((2.0, "Allen-Zhu & Li: 2", "k:"), (3.6, "Morris et al.: 3.6", "k--"),
                             (5.0, "Collins et al.: 5", "k-.")):
    ax1.plot(grid, value * grid, style, lw=0.9, label=f"{name} bits/param")
  ax1.set_xscale("log")
  ax1.set_yscale("log")
  ax1.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  ax1.set_xlabel("parameters")
  ax1.set_ylabel("capacity: max bits stored over N")
  ax1.set_title("capacity against parameters (each seed)")
  ax1.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(png_path, dpi=110, format="png")
  plt.close(fig)


STUDY = reproduce.Study(
    name="capacity",
    title="Memorization capacity: bits per parameter of zoo MLPs on random labels",
    citation=CITATION,
    presets=PRESETS,
    budget_s=BUDGET_S,
    run=run,
    plot=plot,
)
