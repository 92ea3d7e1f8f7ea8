r"""The Maze part of the ``searchers`` study (issue 13): does a recurrent network trained on small mazes learn a
search that extrapolates with test-time compute, and what does it look like inside?

    python -m mesabench.benchmarks.searchers [--preset=default|ca7|erase|erase_local|dt_blocks|smoke]
        [--seeds=0,1,2] [--out=...]

(``harness.searchers`` is the generic engine of the study's PolyMax and ModSearch parts; this module is the
maze-specific part: several test sizes, the maze algorithms' variables, probes and pictures.)

What it does (``run_study``), for one preset (``PRESETS``):
  1. trains ``recurrent_conv`` on Maze-v0 at ``size`` with the recurrent-network recipe (progressive loss with
     weight ``progressive_alpha``, T drawn per step from ``iterations_range``), one run per seed on fresh mazes,
     all seeds in one vmapped jit (``harness.train.run_experiment``), and saves the parameters with orbax beside
     the output (``harness.checkpoints``);
  2. test-time compute curves (``harness.test_time``): per-cell loss (the task's ``loss``, the fraction of wrong
     cells) and whole-maze exact match after every iteration 1 .. ``multiple`` x T on the training size and on each
     of ``larger_sizes`` (``eval_size`` fresh mazes per size and seed, keys fold_in(key(seed), 1000 + size), apart
     from the training stream's keys); mean over seeds with a two-level bootstrap CI (seeds, then mazes);
  3. the slope of the mean loss against log2(iterations) over the ladder counts >= T (``test_time.ladder``: loss
     change per doubling of compute beyond training T), with its CI (``ComputeCurve.falls``: the CI lies below 0);
  4. ``harness.detect.classify`` verdicts of every seed's model (knob: iterations, probed on T/8, T/4, T/2, T, 2T,
     4T, 8T; larger=True: Maze(2 * size), which the convolution answers by construction; "searcher" needs the
     searcher vote on held-out AND larger mazes, ``SEARCH_MUST_EXTRAPOLATE``) and of the ground truth beside it:
     the ``lookup`` memorizer (fitted on a pool), the ``greedy`` heuristic, BFS at fixed depths, and BFS with its
     depth as the knob (depth = iterations; a searcher by construction);
  5. linear probes (``harness.probes``) from the hidden state of each cell after each iteration to the variables of
     known maze algorithms, against the same network at random initialization and against shuffled labels;
  6. pictures: compute curves, error anatomy (``error_anatomy``: which cells the answers get wrong, and whether a
     hidden state runs away), probe curves, and a few mazes with the model's per-iteration prediction beside the
     BFS frontier and the dead-end-filling state at the same step;
  7. leaderboard entries (``harness.leaderboard`` schema) for the trained model and the ground truth, each with
     its classify verdict in "detect".

Maze variables (per cell, at iteration t, with a scale c >= 1 of algorithm steps per network iteration; each
iteration of ``recurrent_conv`` moves information by up to 1 + 2 * blocks cells, so c in ``scales``):
  * ``reach_start`` / ``reach_goal``: BFS from the start (goal) has reached the cell within c * t steps
    (``info["dist_start"] <= c * t``): the frontier of a breadth-first search;
  * ``deadend_alive``: the cell survives c * t rounds of dead-end filling (each round removes, at once, every
    remaining cell other than the start and goal with at most one passage to a remaining cell); in a perfect maze
    the survivors after enough rounds are exactly the path;
  * ``dist_goal`` (real): BFS distance to the goal (one label for every t); ``path``: the answer itself.
"""
from __future__ import annotations

import copy
import json
import os
import sys
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import jsonschema
import numpy as np
import tqdm

from mesabench import models as zoo
from mesabench import tasks as task_registry
from mesabench.harness import checkpoints
from mesabench.harness import detect
from mesabench.harness import leaderboard
from mesabench.harness import probes
from mesabench.harness import provenance
from mesabench.harness import test_time
from mesabench.harness import train

SCHEMA_VERSION = "mesabench.searchers/1"
TASK_ID = "Maze-v0"
MODEL_ID = "recurrent_conv"

_DEFAULT: dict[str, Any] = {
    "size": 5, "larger_sizes": [7, 10, 14, 20],
    "model": {"width": 16, "blocks": 1, "iterations": 30, "block_kernel": 1, "bias": True},
    "train": {"steps": 3000, "batch_size": 16, "learning_rate": 3e-3, "progressive_alpha": 0.5,
              "iterations_range": [20, 30], "eval_size": 128, "stratum_size": 128, "curve_points": 6,
              "fresh_size": 49152},
    "seeds": [0, 1, 2], "multiple": 8, "eval_size": 192, "classify_examples": 192, "lookup_pool": 2048,
    "bfs_budgets": [2, 8, 32], "probe_mazes": 64, "probe_sizes": [5, 10], "scales": [1, 2, 3],
    "probe_resamples": 100, "picture_mazes": 3, "picture_size": 10,
    "anatomy_mazes": 64, "checkpoint_every": 500}

PRESETS: dict[str, dict[str, Any]] = {
    "default": _DEFAULT,
    "dt_blocks": dict(_DEFAULT, larger_sizes=[7, 10, 14], model={"width": 16, "blocks": 1, "iterations": 20},
                      train=dict(_DEFAULT["train"], steps=1500, iterations_range=[10, 20], fresh_size=32768),
                      eval_size=256, picture_size=7),
    "ca7": dict(_DEFAULT, size=7, larger_sizes=[10, 14, 20, 28],
                model={"width": 16, "blocks": 2, "iterations": 30, "block_kernel": 1, "bias": True,
                       "state_bound": 6.0},
                probe_sizes=[7, 14], picture_size=14),
    "erase": dict(_DEFAULT, model={"width": 16, "blocks": 2, "iterations": 30, "block_kernel": 1, "bias": True,
                                   "state_bound": 6.0, "monotone": True, "memory": False},
                  train=dict(_DEFAULT["train"], steps=6000, fresh_size=98304)),
    "erase_local": dict(_DEFAULT, larger_sizes=[7, 10, 14, 20, 28, 40],
                        model={"width": 16, "blocks": 2, "iterations": 30, "block_kernel": 1, "bias": True,
                               "state_bound": 6.0, "monotone": True, "memory": False, "head_kernel": 1,
                               "min_temperature": 0.5},
                        train=dict(_DEFAULT["train"], steps=6000, fresh_size=98304), picture_size=14),
    "smoke": {
        "size": 4, "larger_sizes": [6],
        "model": {"width": 4, "blocks": 1, "iterations": 2, "block_kernel": 1, "bias": True},
        "train": {"steps": 4, "batch_size": 8, "learning_rate": 5e-3, "progressive_alpha": 0.5,
                  "iterations_range": [1, 2], "eval_size": 16, "stratum_size": 8, "curve_points": 2},
        "seeds": [0, 1], "multiple": 4, "eval_size": 16, "classify_examples": 32, "lookup_pool": 32,
        "bfs_budgets": [2, 8], "probe_mazes": 16, "probe_sizes": [4], "scales": [1, 2],
        "probe_resamples": 10, "picture_mazes": 2, "picture_size": 6, "anatomy_mazes": 8,
        "checkpoint_every": 2},
}
"""The study's presets.

"default": a neural-cellular-automaton step (``recurrent_conv`` with 1x1 residual-block convs and biases: each
iteration looks at a cell's 3x3 neighbourhood once), width 16, one block, training T = 30 (T ~ U{20..30} per step),
alpha 0.5, 3,000 steps of 16 mazes per seed from a stream of 49,152 fresh 5x5 mazes; tested up to 8 T = 240
iterations on 5, 7, 10, 14 and 20 cells per side.
"dt_blocks": the deep-thinking block layout scaled down (3x3 residual-block convs, no bias), width 16, one block,
T ~ U{10..20}, 1,500 steps: the study's previous default, kept as the baseline beside it. Its per-iteration reach
is 3 cells, so on a 5x5 training maze every cell's neighbourhood touches the border, and the rule it learns meets
unseen local situations inside larger mazes.
How "default" was chosen (pilots, one seed each, 5x5 training, test mazes of 128): dt_blocks' layout got 0.86 exact
match on 5x5 and 0.42 on 7x7, flat beyond T, 0.04 on 10x10; 1x1 blocks without bias, 2,000 steps: 0.85 / 0.65 /
0.06; 1x1 blocks with bias, 3,000 steps: 1.00 / 0.95 / 0.55 at T and 1.00 / 0.93 / 0.71 at 8 T (14x14: 0.18 ->
0.32); the same with alpha 1 and T ~ U{20..40}: worse (0.95 / 0.84 / 0.24 at T); the default's config trained
6,000 steps (another seed): 0.60 on 10x10 at T but 0.22 at 2T (longer training tied it to its depth); 3x3 blocks
trained on 9x9 mazes
(1,500 steps): 0.09 exact on 9x9 (far from trained within the budget).
"ca7": the CA step with two 1x1 blocks and states capped at 6 (``state_bound``), trained on 7x7 mazes (otherwise as
"default"; ~45 min on 2 cores, over the default's 20-minute budget); tested on 7, 10, 14, 20 and 28. Why (error
anatomy of the default, ``error_anatomy``; pilots one seed each, exact match at T / 2T / 8T): the default's misses
on 10x10 are path cells far from both ends (a keep-alive signal that fades with distance: a 5x5 path never needs
it beyond ~6 cells) and deep dead ends, and a state runs away (from ~5 to 1e14 and more by 8T) in 5% of 10x10 and
70% of 20x20 mazes.
Two blocks at 5x5 (unbounded): 10x10 0.56 / 0.50 / 0.34 (better at T, then falls); a cap of 1: learns worse (5x5
0.89); a cap of 6 with two blocks: 10x10 0.45 / 0.49 / 0.48 (stable beyond T, no better at T); unbounded one block
trained on 7x7: 10x10 0.69 / 0.46 / 0.30; two blocks, cap 6, 7x7: 10x10 0.81 / 0.83 / 0.86, 14x14 0.56 / 0.60 /
0.63, 20x20 0.23 / 0.37 / 0.38 (exact match rises beyond T on every larger size); the same with T ~ U{25..40}:
14x14 0.33 / 0.24 / 0.11 (worse).
"erase": an erase-only answer without a hidden state (``recurrent_conv(monotone=True, memory=False)``: each
iteration reads only its neighbours' answers so far and the walls, and can only remove cells from the path), two
1x1 blocks, states capped at 6, trained on 5x5 mazes for 6,000 steps of 16 (otherwise as "default"). Why: the
unconstrained step keeps the path alive with a fading signal from its ends (error anatomy above); a rule that can
only remove cells, and cannot count iterations, must wait for its neighbourhood to prove a cell dead -- the shape of
dead-end filling, which needs no reach beyond three cells. Pilots (one seed each, 5x5 training unless said, exact
match on 5x5 / 10x10 at T -> 8T; 14x14, 20x20):
erase-only by the minimum, with the hidden state, one block: 0.64 / 0.09 -> 0.09, flat (learns little); the same
trained on 7x7 with two blocks: 0.08 on 7x7; erase-only as a product of survival probabilities
(out = logit(prod sigmoid(head))), with the state: 0.99 / 0.31 -> 0.31 and the answer never changes after t = 30 on
any size (it learned to stop: a clock in its state); the product without the state: path cells fade (missing path
on 10x10 0.3% at t = 10, 24% at 30, 96% at 240; 5x5 0.72 -> 0.24); the minimum without the state, 3,000 steps:
0.98 / 0.56 -> 0.69, 14x14 0.17 -> 0.41, 20x20 0.02 -> 0.23 (pruning continues beyond T); the same fed the answer's
sign instead of its sigmoid (straight-through): 0.98 / 0.59 -> 0.60 (more dead ends kept); with 1x1 head convs (so
that an iteration reads a 3x3 neighbourhood only) with either feedback, or trained on 7x7: it does not learn
(0.08-0.14 on the training size); the minimum without the state, 6,000 steps (this preset): 1.00 / 0.68 -> 0.78,
14x14 0.16 -> 0.38, 20x20 0.01 -> 0.08.
"erase_local": "erase" with a 1x1 head (``head_kernel=1``: an iteration reads a cell's 3x3 neighbourhood once and
nothing further, the reach dead-end filling needs) and the soft minimum's gradient (``min_temperature=0.5``: the
forward pass is still the exact minimum); tested also on 28x28 and 40x40. Why: "erase" fails in two ways, a one-shot
guess from the head's 7x7 window at iteration 1 that the minimum locks in, and a rule that stops with dead ends
kept; both come from the hard minimum's gradient, which reaches only the iteration that set a cell's answer, so a
dead-end cell whose removal should have fired later is never told. Pilots (one seed each, 5x5 training, exact match
on 5x5 / 10x10 / 14x14 / 20x20 at T -> 8T): 1x1 head with the hard minimum (above): does not learn; tau = 3, 3,000
steps: does not learn (0.02 on 5x5); tau = 1, 3,000 steps: 0.98 / 0.86 -> 0.93 / 0.52 -> 0.79 / 0.09 -> 0.63 (a
fixed point with ~20 dead-end tips kept per 128 10x10 mazes, each a corridor cell with one live neighbour); tau = 1,
6,000 steps (seed 1): 1.00 / 0.95 -> 1.00 / 0.63 -> 0.99 / 0.27 -> 0.99; tau = 0.5, 6,000 steps (this preset):
1.00 / 0.93 -> 1.00 / 0.65 -> 1.00 / 0.13 -> 1.00. Ablations of this preset (seed 0, 6,000 steps; 28x28 and
40x40 too): the hard minimum's gradient: does not learn (0.14 on 5x5, 0 from 10x10 on); the soft gradient with the
3x3 head (a 7x7 look): learns, then stops at a fixed point: 1.00 / 0.83 -> 0.85 / 0.52 -> 0.66 / 0.15 -> 0.56,
28x28 0.01 -> 0.41, 40x40 0 -> 0.23. The soft gradient makes it learn, the 3x3 look makes the rule hold at any size.
"smoke": a quick check that everything runs (it learns nothing)."""

PUBLISHED = {
    "source": "Bansal et al. 2022 (arXiv:2202.05826) and github.com/aks2203/deep-thinking (config/problem/mazes.yaml, "
              "config/problem/hyp/mazes_default.yaml, config/problem/model/dt_net_recall_2d.yaml, "
              "launch/mazes_experiments.sh, deepthinking/models/dt_net_2d.py)",
    "rows": [
        ["architecture", "dt_net_recallx_2d: 3x3 conv projection, recall conv, 2 residual blocks (4 convs), "
                         "head 3x3 convs width -> 32 -> 8 -> 2, no bias, no normalization (dt_net_2d.py)"],
        ["input encoding", "RGB maze images (3 channels; walls, start, goal as pixels); our encoding is one "
                           "position per cell with 6 channels (4 passages, start, goal)"],
        ["train size", "9x9 mazes (train_data: 9 in mazes.yaml)"],
        ["test sizes", "33x33 in the repo config (test_data: 33); the paper reports 59x59 and larger (from the "
                       "issue; not confirmed here from the paper's text)"],
        ["width", "128 (mazes.yaml overrides the model file's 100)"],
        ["training iterations", "max_iters 30 (dt_net_recall_2d.yaml, launch script)"],
        ["test iterations", "up to 1000 (launch script: 20 .. 1000)"],
        ["alpha", "0.01 default (mazes_default.yaml); the launch script sweeps 0, 0.01, 0.5, 1"],
        ["optimization", "Adam lr 1e-3, 50 epochs, batch 50, warmup 10 epochs, step decay at epoch 100 "
                         "(mazes_default.yaml); the number of training mazes is not stated in these files "
                         "(not confirmed here)"],
    ],
}


# ------------------------------------------------------------------------------------------------- config


def check_preset(preset: Any) -> dict[str, Any]:
  """The preset with its fields checked (ValueError naming the field); a name picks one of ``PRESETS``."""
  if isinstance(preset, str):
    if preset not in PRESETS:
      raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    preset = PRESETS[preset]
  if not isinstance(preset, dict):
    raise ValueError(f"preset must be a name or a dict, got {type(preset).__name__}")
  p = copy.deepcopy(preset)
  need = set(PRESETS["default"])
  missing, extra = sorted(need - set(p)), sorted(set(p) - need)
  if missing or extra:
    raise ValueError(f"preset fields: missing {missing}, unknown {extra}")
  task_registry.make(TASK_ID, size=p["size"])  # size in [2, 64]
  for name in ("larger_sizes", "probe_sizes"):
    if not isinstance(p[name], list) or not p[name]:
      raise ValueError(f"{name} must be a non-empty list of maze sizes")
    for s in p[name]:
      task_registry.make(TASK_ID, size=s)
  if sorted(set(p["larger_sizes"])) != p["larger_sizes"] or p["larger_sizes"][0] <= p["size"]:
    raise ValueError(f"larger_sizes must increase and exceed size={p['size']}, got {p['larger_sizes']}")
  seeds = p["seeds"]
  if not isinstance(seeds, list) or len(seeds) < 2 or len(set(seeds)) != len(seeds) or any(
      isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2**31 for s in seeds):
    raise ValueError(f"seeds must be >= 2 distinct integers in [0, 2**31), got {seeds!r}")
  for name, lo, hi in (("multiple", 2, 64), ("eval_size", 8, 65536), ("classify_examples", 32, 65536),
                       ("lookup_pool", 1, 2**20), ("probe_mazes", 4, 65536), ("probe_resamples", 10, 100000),
                       ("picture_mazes", 1, 16), ("picture_size", 2, 64), ("anatomy_mazes", 1, 4096),
                       ("checkpoint_every", 1, 10**7)):
    zoo.base.check_int(name, p[name], lo, hi)
  if not isinstance(p["scales"], list) or not p["scales"] or any(
      isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in p["scales"]):
    raise ValueError(f"scales must be a non-empty list of integers >= 1, got {p['scales']!r}")
  if not isinstance(p["bfs_budgets"], list) or any(
      isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in p["bfs_budgets"]):
    raise ValueError(f"bfs_budgets must be a list of integers >= 1, got {p['bfs_budgets']!r}")
  task = task_registry.make(TASK_ID, size=p["size"])
  model = zoo.make(MODEL_ID, task.spec, **p["model"])
  try:
    tcfg = train.TrainConfig(**p["train"])
  except TypeError as err:
    raise ValueError(f"train: {err}") from err
  train.check_recipe(model, tcfg)
  t = model.options["iterations"]
  zoo.base.check_int("multiple * iterations", p["multiple"] * t, 2, model.max_iterations)
  return p


def classify_ladder(iterations: int, multiple: int) -> list[int]:
  """The classify probe ladder: T/8, T/4, T/2 (those >= 1 and < T), T, 2T, 4T, ... up to ``multiple`` x T.

  It starts below T/2 so that the positive control has compute left to use on the training size: BFS with its
  depth as the knob solves every 5x5 maze by depth 15, so a ladder from T/2 = 15 (T = 30) gives it nothing to
  improve and classify no signal (measured: "not applicable", no answer depends on the knob)."""
  out = sorted({iterations // d for d in (8, 4, 2) if 1 <= iterations // d < iterations})
  t = iterations
  while t <= multiple * iterations:
    out.append(t)
    t *= 2
  return out


SEARCH_MUST_EXTRAPOLATE = detect.Thresholds(searcher_requires=("test_time_compute", "test_time_compute_larger"))
"""The study's classify policy: the calibrated thresholds, and "searcher" needs the searcher vote on the held-out
AND the larger split. On the training size a looped network that converges within its training depth and a
budgeted BFS that completes look alike (both improve from the ladder's bottom, then stay exact); what tells a search
from a settled computation is whether more compute keeps helping on mazes larger than any it was trained on (the
question of issue 13). The ground truth is judged by the same policy (BFS with its depth as the knob: searcher)."""


# ------------------------------------------------------------------------------------------ maze variables


def deadend_rounds(open_, start, goal) -> np.ndarray:
  """int32 [B, S, S]: the round of dead-end filling that removes each cell (1-based), or ``NEVER`` for survivors.

  ``open_`` bool [B, S, S, 4] (passages north, east, south, west), ``start`` / ``goal`` int32 [B] cell indices.
  Each round removes, simultaneously, every remaining cell other than the start and the goal that has at most one
  passage to a remaining cell. In a perfect maze the survivors are exactly the start-to-goal path.
  """
  open_ = np.asarray(open_, bool)
  b, s = open_.shape[:2]
  alive = np.ones((b, s, s), bool)
  keep = np.zeros((b, s * s), bool)
  keep[np.arange(b), np.asarray(start)] = True
  keep[np.arange(b), np.asarray(goal)] = True
  keep = keep.reshape(b, s, s)
  removed = np.full((b, s, s), NEVER, np.int32)
  for r in range(1, s * s + 1):
    nb = np.zeros((b, s + 2, s + 2), bool)
    nb[:, 1:-1, 1:-1] = alive
    deg = (open_[..., 0] & nb[:, :-2, 1:-1]).astype(np.int32) + (open_[..., 1] & nb[:, 1:-1, 2:]) + (
        open_[..., 2] & nb[:, 2:, 1:-1]) + (open_[..., 3] & nb[:, 1:-1, :-2])
    drop = alive & ~keep & (deg <= 1)
    if not drop.any():
      break
    removed[drop] = r
    alive &= ~drop
  return removed


NEVER = 2**30
"""``deadend_rounds`` of a cell that dead-end filling never removes."""


def maze_variables(batch, iteration: int, scale: int, rounds: np.ndarray | None = None) -> dict[str, np.ndarray]:
  """Per-cell variables [B, S, S] of the known algorithms after ``iteration`` network iterations at ``scale``
  algorithm steps per iteration (module docstring): reach_start, reach_goal, deadend_alive (0/1 int32)."""
  k = int(iteration) * int(scale)
  ds, dg = np.asarray(batch.info["dist_start"]), np.asarray(batch.info["dist_goal"])
  if rounds is None:
    rounds = deadend_rounds(batch.info["open"], batch.info["start"], batch.info["goal"])
  return {"reach_start": ((ds >= 0) & (ds <= k)).astype(np.int32),
          "reach_goal": ((dg >= 0) & (dg <= k)).astype(np.int32),
          "deadend_alive": (rounds > k).astype(np.int32)}


# ------------------------------------------------------------------------------------------------ pieces


def _outputs_fn(model):
  return jax.jit(model.outputs, static_argnames=("iterations", "return_states"))


def compute_curves(model, params_per_seed: Sequence[Any], seeds: Sequence[int], sizes: Sequence[int],
                   train_t: int, multiple: int, eval_size: int) -> dict[str, Any]:
  """Per size: the ``test_time`` compute curve on the ladder 1 .. ``multiple`` x T (its slope beyond T is the
  verdict of item 3) and the dense curve at every iteration (for the picture), loss and exact match."""
  ladder_its = test_time.ladder(train_t, multiple)
  top = multiple * train_t
  dense_its = list(range(1, top + 1))
  stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *params_per_seed)
  out: dict[str, Any] = {"ladder": list(ladder_its), "iterations": dense_its, "sizes": {}}
  for size in sizes:
    task = task_registry.make(TASK_ID, size=size)
    batches = [task.sample(jax.random.fold_in(jax.random.key(seed), 1000 + size), eval_size) for seed in seeds]
    losses, exact = test_time.losses_by_iterations(task, model, stacked, batches, dense_its, "exact_match")
    idx = [t - 1 for t in ladder_its]
    split = f"size={size}"
    curve = test_time.curve_from_losses(split, losses[:, idx], ladder_its, train_t, success=exact[:, idx])
    exact_curve = test_time.curve_from_losses(split + ":exact_miss", 1.0 - exact[:, idx], ladder_its, train_t)
    dense = test_time.curve_from_losses(split, losses, dense_its, train_t, success=exact, num_resamples=200)
    per_seed = []
    for i, seed in enumerate(seeds):  # each seed's own model: its slope beyond T over its mazes
      own = test_time.curve_from_losses(split, losses[i:i + 1][:, idx], ladder_its, train_t, seed=int(seed))
      own_miss = test_time.curve_from_losses(split, 1.0 - exact[i:i + 1][:, idx], ladder_its, train_t,
                                             seed=int(seed))
      per_seed.append({"seed": int(seed), "loss_slope": own.slope, "loss_slope_ci": own.slope_ci,
                       "loss_falls": own.falls, "exact_miss_slope": own_miss.slope,
                       "exact_miss_slope_ci": own_miss.slope_ci, "exact_miss_falls": own_miss.falls})
    out["sizes"][str(size)] = {
        "curve": curve.to_json(), "exact_miss_curve": exact_curve.to_json(), "per_seed": per_seed,
        "dense": {"loss": dense.mean, "loss_ci": dense.ci, "exact_match": dense.success},
        "path_length_mean": float(np.mean([np.asarray(b.info["path_length"]).mean() for b in batches])),
        "eval_size_per_seed": eval_size}
  return out


RUNAWAY_STATE = 1e3
"""A state above this is a runaway (``error_anatomy``): the trained CA step keeps its states below ~8 on its training
mazes for 8 T iterations."""


def _rates(num, den) -> list[float | None]:
  """num / den per bin, None where the bin is empty."""
  return [float(n / d) if d else None for n, d in zip(num, den)]


def error_anatomy(model, params_per_seed: Sequence[Any], seeds: Sequence[int], sizes: Sequence[int], train_t: int,
                  multiple: int, num_mazes: int) -> dict[str, Any]:
  """Where the model's answers go wrong at T and at ``multiple`` x T, per size (``num_mazes`` fresh mazes per seed,
  keys fold_in(key(seed), 5000 + size), pooled over seeds):

  * ``missing_path_rate``: per distance d of a path cell to the nearer of start and goal (0 .. 11, then 12+), the
    share of path cells at that distance the model leaves out (a rule that keeps the path alive by a signal from
    its ends that fades with distance misses the middle of long paths);
  * ``false_path_rate``: per dead-end-filling round r of a non-path cell (1 .. 19, then 20+), the share of those
    cells the model marks as path (a dead-end filling that stops early keeps the deep dead ends);
  * ``missing_path_share`` / ``false_path_share``: the same over all bins (of all path / non-path cells);
  * ``state_max_quantiles``: quantiles (50, 90, 100 %) over mazes of the largest hidden-state value in the maze, and
    ``runaway_share``: the share of mazes with a state above ``RUNAWAY_STATE``.
  """
  top = multiple * train_t
  its = [train_t, top]
  fn = jax.jit(lambda params, x: model.outputs(params, x, iterations=top, return_states=True))
  out: dict[str, Any] = {"iterations": its, "num_mazes_per_seed": num_mazes, "distance_bins": list(range(12)) + ["12+"],
                         "round_bins": list(range(1, 20)) + ["20+"], "sizes": {}}
  for size in sizes:
    task = task_registry.make(TASK_ID, size=size)
    acc = {t: {"fn": np.zeros(13), "path": np.zeros(13), "fp": np.zeros(20), "dead": np.zeros(20), "smax": [],
               "exact": []} for t in its}
    for seed, params in zip(seeds, params_per_seed):
      batch = task.sample(jax.random.fold_in(jax.random.key(seed), 5000 + size), num_mazes)
      logits, states = fn(params, batch.inputs)
      path = np.asarray(batch.targets["path"]).astype(bool).reshape(num_mazes, -1)
      ends = np.minimum(np.asarray(batch.info["dist_start"]), np.asarray(batch.info["dist_goal"])).reshape(
          num_mazes, -1)
      rounds = deadend_rounds(batch.info["open"], batch.info["start"], batch.info["goal"]).reshape(num_mazes, -1)
      dbin, rbin = np.minimum(ends, 12), np.minimum(rounds, 20) - 1
      for t in its:
        pred = np.asarray(logits[t - 1]) > 0
        a = acc[t]
        a["path"] += np.bincount(dbin[path], minlength=13)
        a["fn"] += np.bincount(dbin[path & ~pred], minlength=13)
        a["dead"] += np.bincount(rbin[~path], minlength=20)
        a["fp"] += np.bincount(rbin[~path & pred], minlength=20)
        a["smax"].append(np.asarray(jnp.max(jnp.abs(states[t - 1]), axis=(1, 2, 3)), np.float64))
        a["exact"].append((pred == path).all(axis=1))
    per: dict[str, Any] = {}
    for t in its:
      a = acc[t]
      smax = np.concatenate(a["smax"])
      per[str(t)] = {"exact_match": float(np.concatenate(a["exact"]).mean()),
                     "missing_path_rate": _rates(a["fn"], a["path"]), "path_cells": a["path"].astype(int).tolist(),
                     "missing_path_share": float(a["fn"].sum() / max(a["path"].sum(), 1)),
                     "false_path_rate": _rates(a["fp"], a["dead"]), "dead_cells": a["dead"].astype(int).tolist(),
                     "false_path_share": float(a["fp"].sum() / max(a["dead"].sum(), 1)),
                     "state_max_quantiles": {q: float(np.quantile(smax, int(q) / 100)) for q in ("50", "90", "100")},
                     "runaway_share": float(np.mean(~np.isfinite(smax) | (smax > RUNAWAY_STATE)))}
    out["sizes"][str(size)] = per
  return out


def bfs_knob(strategy: str = "bfs") -> detect.Predict:
  """A ground-truth searcher with a knob: ``predict(inputs, iterations=t)`` is BFS truncated at depth t (clipped
  to the maze's legal budgets) on mazes of any size; without ``iterations``, the full BFS."""
  def predict(inputs, iterations=None):
    task = task_registry.make(TASK_ID, size=int(inputs.shape[1]))
    lo, hi = task.search_budget_range(strategy)
    budget = hi if iterations is None else min(max(int(iterations), lo), hi)
    return task.search(strategy, budget, inputs)
  return predict


def _fixed(fn) -> detect.Predict:
  return lambda inputs: fn(inputs)


def classify_all(task, model, params_per_seed, seeds, p: dict[str, Any], log, pools=None) -> dict[str, Any]:
  """classify verdicts of the trained model (every seed) and of the ground truth (module docstring, item 4).

  pools: each seed's training mazes (the fresh stream it read), so held-out mazes avoid them and the memorization
  gap compares them with unseen ones; None: no pool (held-out mazes are plain samples)."""
  t = model.options["iterations"]
  probe_its = classify_ladder(t, p["multiple"])
  n = p["classify_examples"]
  out: dict[str, Any] = {"iterations": probe_its, "num_examples": n, "model": [], "ground_truth": [],
                         "thresholds": SEARCH_MUST_EXTRAPOLATE.to_json()}
  for i, (seed, params) in enumerate(zip(seeds, params_per_seed)):
    c = detect.classify(task, detect.entry_predict(model, params), seed=seed, num_examples=n,
                        pool=None if pools is None else pools[i], thresholds=SEARCH_MUST_EXTRAPOLATE,
                        iterations=probe_its, larger=zoo.base.answers_larger(model, task))
    out["model"].append({"seed": seed, **c.to_json()})
    log(f"  classify {MODEL_ID} seed {seed}: {c.verdict} ({c.reason})")
  refs: list[tuple[str, str, Any, Any, Any]] = []
  # the pool of the lookup leaderboard entry's first seed (harness.train's pool of Run(seeds[0], lookup_pool))
  pool = train.prepare_data(task, [train.Run(seeds[0], p["lookup_pool"])], train.TrainConfig(steps=0)).pools[0]
  lookup = zoo.make("lookup", task.spec)
  lp = lookup.fit(lookup.init(jax.random.key(0)), pool.inputs, pool.targets)
  lookup_predict = jax.jit(lambda x: lookup.predict(lp, x))
  refs.append(("memorizer", f"lookup (pool {p['lookup_pool']})", _fixed(lookup_predict), pool, None))
  heur = zoo.make("heuristic", task.spec, rule="greedy")
  hp = heur.init(jax.random.key(0))
  refs.append(("heuristic", "greedy", _fixed(jax.jit(lambda x: heur.predict(hp, x))), None, None))
  lo, hi = task.search_budget_range("bfs")
  for b in p["bfs_budgets"]:
    if lo <= b <= hi:
      refs.append(("searcher", f"bfs depth {b} (fixed)", _fixed(jax.jit(
          lambda x, b=b: task.search("bfs", b, x))), None, None))
  refs.append(("searcher", "bfs, depth = iterations (knob)", bfs_knob(), None, probe_its))
  for kind, name, predict, ref_pool, its in refs:
    larger = True
    if kind == "memorizer":
      larger = False  # a stored table of S x S inputs cannot take a 2S x 2S input: not applicable, never a number
    c = detect.classify(task, predict, seed=seeds[0], pool=ref_pool, num_examples=n, iterations=its, larger=larger,
                        thresholds=SEARCH_MUST_EXTRAPOLATE)
    out["ground_truth"].append({"kind": kind, "name": name, **c.to_json()})
    log(f"  classify {name}: {c.verdict}")
  return out


def probe_study(model, params_per_seed, seeds, p: dict[str, Any], log) -> dict[str, Any]:
  """Per-iteration linear probes on each probe size, trained vs random-init states, with shuffled labels."""
  t = model.options["iterations"]
  out_fn = _outputs_fn(model)
  res: dict[str, Any] = {"sizes": {}}
  for size in p["probe_sizes"]:
    task = task_registry.make(TASK_ID, size=size)
    t_max = min(2 * t if size == p["size"] else p["multiple"] * t, model.max_iterations)
    dense = set(range(1, min(t_max, 2 * t) + 1))
    its = sorted(dense | (set(classify_ladder(t, p["multiple"])) & set(range(1, t_max + 1))))
    per_size: dict[str, Any] = {"iterations": its, "seeds": {}}
    for seed, params in zip(seeds, params_per_seed):
      batch = task.sample(jax.random.fold_in(jax.random.key(seed), 2000 + size), p["probe_mazes"])
      rounds = deadend_rounds(batch.info["open"], batch.info["start"], batch.info["goal"])
      random_params = model.init(jax.random.fold_in(jax.random.key(seed), 3000))
      idx = np.asarray(its) - 1
      states = np.asarray(out_fn(params, batch.inputs, iterations=t_max, return_states=True)[1])[idx]
      control = np.asarray(out_fn(random_params, batch.inputs, iterations=t_max, return_states=True)[1])[idx]
      k, b = len(its), p["probe_mazes"]
      feats = states.reshape(k, b * size * size, -1)
      ctrl = control.reshape(k, b * size * size, -1)
      groups = np.repeat(np.arange(b), size * size)
      kw = {"seed": seed, "groups": groups, "num_resamples": p["probe_resamples"]}
      curves: dict[str, Any] = {}
      for c in p["scales"]:
        labels = {name: np.stack([maze_variables(batch, i, c, rounds)[name].reshape(-1) for i in its])
                  for name in ("reach_start", "reach_goal", "deadend_alive")}
        for name, lab in labels.items():
          curves[f"{name}@c={c}"] = probes.probe_curve(feats, lab, "binary", iterations=its, control_states=ctrl,
                                                       **kw).to_json()
      curves["path"] = probes.probe_curve(feats, np.asarray(batch.targets["path"]).reshape(-1), "binary",
                                          iterations=its, control_states=ctrl, **kw).to_json()
      dg = np.asarray(batch.info["dist_goal"]).reshape(-1).astype(np.float64)
      curves["dist_goal"] = probes.probe_curve(feats, dg, "real", iterations=its, control_states=ctrl,
                                               **kw).to_json()
      per_size["seeds"][str(seed)] = curves
      log(f"  probes size {size} seed {seed}: {len(curves)} variables x {k} iterations")
    per_size["summary"] = probes.summarize_curves(per_size["seeds"])
    res["sizes"][str(size)] = per_size
  return res


# ---------------------------------------------------------------------------------------------- pictures


def _render(open_, values, size):
  """A (2S + 1)^2 image: cell (r, c) at pixel (2r + 1, 2c + 1) shows ``values``; an open passage shows the mean of
  its two cells; walls are NaN (drawn as the background)."""
  img = np.full((2 * size + 1, 2 * size + 1), np.nan)
  for r in range(size):
    for c in range(size):
      img[2 * r + 1, 2 * c + 1] = values[r, c]
      if open_[r, c, 1] and c + 1 < size:
        img[2 * r + 1, 2 * c + 2] = 0.5 * (values[r, c] + values[r, c + 1])
      if open_[r, c, 2] and r + 1 < size:
        img[2 * r + 2, 2 * c + 1] = 0.5 * (values[r, c] + values[r + 1, c])
  return img


def plot_mazes(path: str, model, params, p: dict[str, Any]) -> str:
  """For ``picture_mazes`` mazes of ``picture_size``: the model's per-cell probability at a few iterations, beside
  the BFS-from-start frontier and the dead-end-filling survivors at c = 1 algorithm step per iteration."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  size, t = p["picture_size"], model.options["iterations"]
  task = task_registry.make(TASK_ID, size=size)
  batch = task.sample(jax.random.key(4242), p["picture_mazes"])
  t_max = p["multiple"] * t
  cols = sorted(set([1, 2, max(t // 2, 1), t, 2 * t, t_max]))
  logits = np.asarray(_outputs_fn(model)(params, batch.inputs, iterations=t_max))
  prob = 1 / (1 + np.exp(-logits.reshape(t_max, -1, size, size)))
  rounds = deadend_rounds(batch.info["open"], batch.info["start"], batch.info["goal"])
  open_ = np.asarray(batch.info["open"])
  rows = []
  for m in range(p["picture_mazes"]):
    rows.append((m, "model P(path)", lambda i, m=m: prob[i - 1, m]))
    rows.append((m, "BFS from start", lambda i, m=m: maze_variables(batch.take(jnp.asarray([m])), i, 1,
                                                                     rounds[m:m + 1])["reach_start"][0]))
    rows.append((m, "dead-end filling", lambda i, m=m: maze_variables(batch.take(jnp.asarray([m])), i, 1,
                                                                       rounds[m:m + 1])["deadend_alive"][0]))
  fig, axes = plt.subplots(len(rows), len(cols) + 1, figsize=(1.6 * (len(cols) + 1), 1.6 * len(rows)),
                           squeeze=False)
  cmap = matplotlib.colormaps["viridis"].with_extremes(bad="black")
  for r, (m, label, fn) in enumerate(rows):
    start, goal = divmod(int(batch.info["start"][m]), size), divmod(int(batch.info["goal"][m]), size)
    truth = np.asarray(batch.targets["path"][m])
    for j, i in enumerate(cols + [None]):
      ax = axes[r, j]
      vals = truth.astype(np.float64) if i is None else np.asarray(fn(i), np.float64)
      ax.imshow(_render(open_[m], vals, size), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
      ax.plot([2 * start[1] + 1], [2 * start[0] + 1], "o", color="red", ms=3)
      ax.plot([2 * goal[1] + 1], [2 * goal[0] + 1], "s", color="orange", ms=3)
      ax.set_xticks([])
      ax.set_yticks([])
      if r == 0:
        ax.set_title("answer" if i is None else f"t = {i}", fontsize=8)
      if j == 0:
        ax.set_ylabel(f"maze {m}\n{label}", fontsize=7)
  fig.suptitle(f"recurrent_conv (trained T = {t}) on {size}x{size} mazes: prediction vs BFS frontier vs dead-end "
               "filling (c = 1)", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def plot_curves(path: str, curves: dict[str, Any], train_t: int, train_size: int) -> str:
  """Loss and exact match against test iterations (log x), one line per size; loss with its bootstrap band and the
  slope per doubling beyond training T (dashed line) in the legend."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  its = np.asarray(curves["iterations"])
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  for size, entry in curves["sizes"].items():
    d, c = entry["dense"], entry["curve"]
    label = f"{size}x{size}" + (" (train)" if int(size) == train_size else "")
    slope = c["slope"]
    if slope is not None:
      label += f", slope {slope:+.4f}/doubling [{c['slope_ci'][0]:+.4f}, {c['slope_ci'][1]:+.4f}]"
    line, = axes[0].plot(its, d["loss"], label=label)
    axes[0].fill_between(its, [lo for lo, _ in d["loss_ci"]], [hi for _, hi in d["loss_ci"]],
                         color=line.get_color(), alpha=0.2)
    axes[1].plot(its, d["exact_match"], color=line.get_color(), label=f"{size}x{size}")
  for ax, name in zip(axes, ("per-cell loss (fraction of wrong cells)", "whole-maze exact match")):
    ax.axvline(train_t, color="gray", ls="--", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("test iterations (dashed: training T)")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  axes[1].legend(fontsize=7)
  fig.suptitle("recurrent_conv on Maze-v0: test-time compute (mean over seeds; loss band: 95% two-level bootstrap)",
               fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def plot_anatomy(path: str, anatomy: dict[str, Any], train_size: int) -> str:
  """``error_anatomy`` as pictures: missing-path rate against the distance to the nearer end, false-path rate
  against the dead-end-filling round, at T (dashed) and at the most iterations (solid), one colour per size."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  t_lo, t_hi = (str(t) for t in anatomy["iterations"])
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  for size, per in anatomy["sizes"].items():
    label = f"{size}x{size}" + (" (train)" if int(size) == train_size else "")
    color = None
    for t, ls in ((t_hi, "-"), (t_lo, "--")):
      e = per[t]
      for ax, key in ((axes[0], "missing_path_rate"), (axes[1], "false_path_rate")):
        xs = [i for i, r in enumerate(e[key]) if r is not None]
        line, = ax.plot(xs, [e[key][i] for i in xs], ls=ls, color=color, marker=".",
                        label=f"{label}, t = {t} (runaway {e['runaway_share']:.0%})" if ax is axes[0] else None)
        color = line.get_color()
  for ax, key, xlabel in ((axes[0], "distance_bins", "path cell's distance to the nearer of start and goal"),
                          (axes[1], "round_bins", "non-path cell's dead-end-filling round")):
    ax.set_xticks(range(len(anatomy[key])), [str(b) for b in anatomy[key]], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("share left out of the predicted path")
  axes[1].set_ylabel("share marked as path")
  axes[0].legend(fontsize=7)
  fig.suptitle(f"recurrent_conv on Maze-v0: where the answers go wrong (dashed: t = T = {t_lo}; solid: t = {t_hi})",
               fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def plot_probes(path: str, probe: dict[str, Any]) -> str:
  """Per probe size: held-out score per iteration of each variable (best scale), trained vs random init vs
  shuffled labels."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  sizes = list(probe["sizes"])
  names = ["reach_start", "reach_goal", "deadend_alive", "path", "dist_goal"]
  fig, axes = plt.subplots(len(sizes), len(names), figsize=(3.2 * len(names), 2.8 * len(sizes)), squeeze=False)
  for r, size in enumerate(sizes):
    s = probe["sizes"][size]
    summ, its = s["summary"], s["iterations"]
    for j, name in enumerate(names):
      key = summ["best_scale"].get(name, name)
      ax = axes[r, j]
      for which, style in (("trained", "-"), ("random_init", "--"), ("shuffled", ":")):
        vals = [np.nan if v is None else v for v in summ[key][which]]
        ax.plot(its, vals, style, label=which)
      ax.set_title(f"{size}x{size}: {key}", fontsize=8)
      ax.set_xlabel("iteration", fontsize=7)
      ax.set_ylabel("R^2" if name == "dist_goal" else "balanced accuracy", fontsize=7)
      ax.grid(alpha=0.3)
      if name != "dist_goal":
        ax.set_ylim(0.4, 1.01)
  axes[0, 0].legend(fontsize=7)
  fig.suptitle("linear probes from each cell's hidden state (mean over seeds; held-out mazes)", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


# ------------------------------------------------------------------------------------------------ the study

SCHEMA = {
    "type": "object",
    "required": ["schema_version", "preset", "config", "environment", "command", "training", "curves",
                 "classify", "probes", "published", "extrapolation_table", "files", "timing", "anatomy"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "preset": {"type": "string"},
        "config": {"type": "object", "description": "the checked preset (task size, model, train, seeds, ...)"},
        "training": {"type": "object", "description": "per seed: train/held-out metrics from harness.train, "
                                                      "learning curve, compile/train seconds"},
        "curves": {"type": "object", "description": "compute_curves: per size, loss and exact match per "
                                                    "iteration (mean, CI, per seed), slopes per doubling"},
        "classify": {"type": "object", "description": "classify_all: model verdicts per seed, ground truth"},
        "anatomy": {"type": "object", "description": "error_anatomy: per size, at T and at the most iterations, "
                                                     "missing path by distance to the ends, false path by dead-end "
                                                     "round, hidden-state maxima and runaway share"},
        "probes": {"type": "object", "description": "probe_study: per size, seed, variable and iteration"},
        "files": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _entry_id(task_desc, model_desc, train_cfg, seeds):
  return leaderboard.entry_key(task_desc, model_desc, train_cfg, None, seeds)


def run_study(preset: str | dict = "default", out: str = "runs/searchers.json", *, seeds: Sequence[int] | None = None,
              resume: bool = False, command: str | None = None, log: Callable[[str], None] | None = None,
              preset_name: str | None = None, on_checkpoint: Callable[[int], None] | None = None) -> dict[str, Any]:
  """Runs the study (module docstring) and writes ``out`` (JSON), PNGs beside it (``<stem>_curves.png``,
  ``<stem>_probes.png``, ``<stem>_mazes.png``, ``<stem>_anatomy.png``), ``<stem>_leaderboard.json`` and the
  trained parameters (``<stem>_leaderboard.params/``). Training saves its state every ``checkpoint_every`` steps (orbax,
  ``<stem>_leaderboard.ckpt/``, removed once the parameters are saved with the entry). resume: reuse the saved
  parameters of a previous run of the same config (no retraining), or continue its interrupted training from the
  latest checkpoint; everything after training is recomputed. on_checkpoint: called with the step after each
  save. Returns the document."""
  log = log or (lambda s: print(s, file=sys.stderr, flush=True))
  name = preset_name or (preset if isinstance(preset, str) else "custom")
  p = check_preset(preset)
  if seeds is not None:
    p["seeds"] = list(seeds)
    p = check_preset(p)
  command = command or provenance.command_line("mesabench.benchmarks.searchers")
  stem = os.path.splitext(out)[0]
  lb_path = stem + "_leaderboard.json"
  start = time.perf_counter()
  task = task_registry.make(TASK_ID, size=p["size"])
  model = zoo.make(MODEL_ID, task.spec, **p["model"])
  tcfg = train.TrainConfig(**p["train"])
  t = model.options["iterations"]
  task_desc = {"id": TASK_ID, "params": json.loads(json.dumps(task.params()))}
  model_desc = {"id": MODEL_ID, "config": model.config_dict()}
  train_dict = tcfg.to_dict()
  entry_id = _entry_id(task_desc, model_desc, train_dict, p["seeds"])
  environment = provenance.environment()
  timing: dict[str, float] = {}
  stages = ["train", "curves", "classify", "probes", "pictures", "leaderboard"]
  bar = tqdm.tqdm(total=len(stages), desc="searchers", unit="stage", file=sys.stderr)

  # 1. training (or the saved parameters)
  t0 = time.perf_counter()
  runs = [train.Run(s, None) for s in p["seeds"]]
  results, saved = None, None
  if resume and os.path.exists(lb_path):
    try:
      doc = leaderboard.read(lb_path)
      e = [x for x in doc["entries"] if x["id"] == entry_id]
      if e and e[0].get("artifacts", {}).get("params"):
        saved_seeds, stacked = checkpoints.load_params(lb_path, e[0]["artifacts"]["params"])
        if saved_seeds == list(p["seeds"]):
          saved = (stacked, e[0])
          log(f"resume: trained parameters of {entry_id} loaded from {lb_path}")
    except ValueError as err:
      log(f"resume: cannot reuse {lb_path} ({err}); training again")
  ckpt = checkpoints.TrainCheckpointer(checkpoints.training_dir(lb_path, entry_id), p["checkpoint_every"],
                                       on_save=on_checkpoint)
  if saved is None:
    if not resume:
      ckpt.remove()  # a fresh run never continues another run's training state
    elif ckpt.latest_step() is not None:
      log(f"resume: training continues from the checkpoint at step {ckpt.latest_step()} in {ckpt.directory}")
    results = train.run_experiment(task, model, runs, tcfg, keep_params=True, with_references=True, checkpoint=ckpt)
    params_per_seed = [r.params for r in results]
  else:
    params_per_seed = [checkpoints.seed_params(saved[0], i) for i in range(len(p["seeds"]))]
  timing["train_s"] = time.perf_counter() - t0
  log(f"  trained in {timing['train_s']:.0f}s")
  bar.update(1)
  training = {}
  if results is not None:
    for r in results:
      training[str(r.seed)] = {"splits": r.splits, "curve": r.curve, "diverged_step": r.diverged_step,
                               "timing": r.timing, "params": r.compute.get("params")}
      held = r.splits.get("heldout", {})
      log(f"  seed {r.seed}: held-out per-cell loss {held.get('loss', float('nan')):.4f}, exact match "
          f"{held.get('exact_match', float('nan')):.3f}; larger exact match "
          f"{r.splits.get('larger', {}).get('exact_match', float('nan')):.3f}")
  else:
    training = {"resumed_from": lb_path, "entry": saved[1]["results"]["splits"]}

  # 2-3. compute curves and slopes
  t0 = time.perf_counter()
  sizes = [p["size"]] + list(p["larger_sizes"])
  top = p["multiple"]
  curves = compute_curves(model, params_per_seed, p["seeds"], sizes, t, p["multiple"], p["eval_size"])
  timing["curves_s"] = time.perf_counter() - t0
  for size in sizes:
    e = curves["sizes"][str(size)]
    c, d = e["curve"], e["dense"]
    log(f"  size {size}: loss at T {d['loss'][t - 1]:.4f} -> {top}T {d['loss'][-1]:.4f}, exact match "
        f"{d['exact_match'][t - 1]:.3f} -> {d['exact_match'][-1]:.3f}; slope/doubling beyond T "
        f"{c['slope']:+.4f} CI [{c['slope_ci'][0]:+.4f}, {c['slope_ci'][1]:+.4f}]")
  bar.update(1)

  t0 = time.perf_counter()
  anatomy = error_anatomy(model, params_per_seed, p["seeds"], sizes, t, p["multiple"], p["anatomy_mazes"])
  timing["anatomy_s"] = time.perf_counter() - t0
  for size in sizes:
    a = anatomy["sizes"][str(size)][str(top * t)]
    log(f"  size {size} at {top}T: largest state {a['state_max_quantiles']['100']:.3g}, runaway share "
        f"{a['runaway_share']:.2f}")

  # 4. classify
  t0 = time.perf_counter()
  stream = train.prepare_data(task, runs, tcfg).pools  # each seed's training mazes (deterministic)
  verdicts = classify_all(task, model, params_per_seed, p["seeds"], p, log, pools=stream)
  timing["classify_s"] = time.perf_counter() - t0
  log(f"  curves {timing['curves_s']:.0f}s, classify {timing['classify_s']:.0f}s")
  bar.update(1)

  # 5. probes
  t0 = time.perf_counter()
  probe = probe_study(model, params_per_seed, p["seeds"], p, log)
  timing["probes_s"] = time.perf_counter() - t0
  log(f"  probes {timing['probes_s']:.0f}s")
  bar.update(1)

  # 6. pictures
  t0 = time.perf_counter()
  files = {"curves_png": stem + "_curves.png", "probes_png": stem + "_probes.png", "mazes_png": stem + "_mazes.png",
           "anatomy_png": stem + "_anatomy.png", "leaderboard": lb_path}
  plot_curves(files["curves_png"], curves, t, p["size"])
  plot_anatomy(files["anatomy_png"], anatomy, p["size"])
  plot_probes(files["probes_png"], probe)
  plot_mazes(files["mazes_png"], model, params_per_seed[0], p)
  timing["pictures_s"] = time.perf_counter() - t0
  bar.update(1)

  # 7. leaderboard
  t0 = time.perf_counter()
  lb_doc = _leaderboard(task, model, task_desc, model_desc, tcfg, p, results, saved, params_per_seed, verdicts,
                        environment, command, lb_path, entry_id)
  leaderboard.write(lb_path, lb_doc)
  ckpt.remove()  # the trained parameters are saved with the entry: the training state is not needed
  if os.path.isdir(os.path.dirname(ckpt.directory)) and not os.listdir(os.path.dirname(ckpt.directory)):
    os.rmdir(os.path.dirname(ckpt.directory))
  timing["leaderboard_s"] = time.perf_counter() - t0
  bar.update(1)
  bar.close()
  timing["total_s"] = time.perf_counter() - start

  table = extrapolation_table(p, model)
  doc = {"schema_version": SCHEMA_VERSION, "preset": name, "config": p, "environment": environment,
         "command": command, "training": training, "curves": curves, "anatomy": anatomy, "classify": verdicts,
         "probes": probe,
         "published": PUBLISHED, "extrapolation_table": table,
         "files": {k: os.path.relpath(v, os.path.dirname(os.path.abspath(out))) for k, v in files.items()},
         "timing": timing, "headline": headline(curves, verdicts, probe, p, t, anatomy)}
  jsonschema.validate(doc, SCHEMA)
  provenance.write_json(out, doc)
  log(f"searchers: wrote {out} ({timing['total_s']:.0f}s)")
  return doc


def extrapolation_table(p: dict[str, Any], model) -> list[dict[str, str]]:
  """Our setup beside the published one (``PUBLISHED``), row by row."""
  o = model.options
  ours = {
      "architecture": f"recurrent_conv: 3x3 conv projection, 3x3 recall conv, {o['blocks']} residual block(s) of "
                      f"{o['block_kernel']}x{o['block_kernel']} convs, head 3x3 convs {o['width']} -> "
                      f"{max(o['width'] // 2, 1)} -> 1, {'with' if o['bias'] else 'no'} bias, no normalization",
      "input encoding": "one position per cell, 6 channels (passages N/E/S/W, start, goal)",
      "train size": f"{p['size']}x{p['size']} cells",
      "test sizes": ", ".join(f"{s}x{s}" for s in p["larger_sizes"]),
      "width": str(o["width"]),
      "training iterations": f"T = {o['iterations']} (T ~ U{{{p['train']['iterations_range'][0]}.."
                             f"{p['train']['iterations_range'][1]}}} per step)",
      "test iterations": f"up to {p['multiple'] * o['iterations']} ({p['multiple']} x T)",
      "alpha": str(p["train"]["progressive_alpha"]),
      "optimization": f"AdamW lr {p['train']['learning_rate']}, {p['train']['steps']} steps of batch "
                      f"{p['train']['batch_size']} fresh mazes, warmup + cosine (harness.train)",
  }
  return [{"setting": k, "ours": ours[k], "published": v} for k, v in PUBLISHED["rows"]]


def headline(curves, verdicts, probe, p, t, anatomy) -> dict[str, Any]:
  """The numbers the issue's "Done when" asks for, in one place."""
  out: dict[str, Any] = {"sizes": {}}
  top = p["multiple"] * t
  for size, e in curves["sizes"].items():
    c, d = e["curve"], e["dense"]
    out["sizes"][size] = {
        "loss_at_T": d["loss"][t - 1], "loss_at_max": d["loss"][top - 1], "exact_at_T": d["exact_match"][t - 1],
        "exact_at_max": d["exact_match"][top - 1], "best_exact": max(d["exact_match"]),
        "best_exact_at": int(np.argmax(d["exact_match"])) + 1, "loss_slope_per_doubling": c["slope"],
        "loss_slope_ci": c["slope_ci"], "falls_beyond_training_t": c["falls"]}
  out["per_seed_larger_falls"] = {
      str(r["seed"]): [int(size) for size, e in curves["sizes"].items()
                       if int(size) in p["larger_sizes"] for q in e["per_seed"] if q["seed"] == r["seed"]
                       and q["loss_falls"]] for r in curves["sizes"][str(p["size"])]["per_seed"]}
  top_key = str(anatomy["iterations"][-1])  # overall error shares at the most iterations (error_anatomy)
  out["anatomy_at_max"] = {size: {k: a[top_key][k] for k in ("missing_path_share", "false_path_share",
                                                              "runaway_share")}
                           for size, a in anatomy["sizes"].items()}
  out["model_verdicts"] = [v["combined"] for v in verdicts["model"]]
  out["ground_truth_verdicts"] = {g["name"]: g["combined"] for g in verdicts["ground_truth"]}
  falls = [s for s in p["larger_sizes"] if out["sizes"][str(s)]["falls_beyond_training_t"]]
  out["larger_sizes_where_loss_falls"] = falls
  out["done_when"] = bool(falls) and all(v == detect.SEARCHER for v in out["model_verdicts"])
  summaries = {size: s["summary"] for size, s in probe["sizes"].items()}
  out["probes"] = {size: {name: {k: v for k, v in row.items() if k.endswith("_mean")}
                          for name, row in summ.items() if name != "best_scale"} | {"best_scale": summ["best_scale"]}
                   for size, summ in summaries.items()}
  return out


def _leaderboard(task, model, task_desc, model_desc, tcfg, p, results, saved, params_per_seed, verdicts,
                 environment, command, lb_path, entry_id) -> dict[str, Any]:
  """The study's leaderboard: the trained model's entry and the ground truth's (lookup, greedy, full BFS), each with
  its classify payload in "detect"."""
  seeds = p["seeds"]
  train_dict = tcfg.to_dict()
  if results is not None:
    entry = leaderboard.make_entry(task_desc, model_desc, train_dict, None, seeds, results, command,
                                   success_metric=task.success_metric, metric_directions=dict(task.metric_directions),
                                   environment=environment, reference_family=task.search_family().strategy)
    stacked = jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *params_per_seed)
    entry["artifacts"] = {"params": checkpoints.save_params(lb_path, entry_id, seeds, stacked)}
  else:
    entry = copy.deepcopy(saved[1])
  first = verdicts["model"][0]
  entry["detect"] = {k: v for k, v in first.items() if k != "seed"} | {"evaluated_seed": first["seed"],
                                                                         "params_source": "study",
                                                                         "num_examples": verdicts["num_examples"],
                                                                         "detect_seed": first["seed"]}
  entries = [entry]
  base_cfg = train.TrainConfig(steps=0, eval_size=p["train"]["eval_size"], stratum_size=p["train"]["stratum_size"])
  gt_detect = {g["name"]: g for g in verdicts["ground_truth"]}
  # The lookup memorizer has no entry here: harness.train would score it on the larger split (models.base.
  # answers_larger says yes for a stored table), whose 2S x 2S inputs it cannot compare with its S x S rows.
  # Its classify verdict is in the study's JSON.
  for mid, cfg, pool, name in (("heuristic", {"rule": "greedy"}, None, "greedy"), ("search", {}, None, None)):
    gt = zoo.make(mid, task.spec, **cfg)
    rs = train.run_experiment(task, gt, [train.Run(s, pool) for s in seeds], base_cfg, with_references=True)
    desc = {"id": mid, "config": gt.config_dict()}
    e = leaderboard.make_entry(task_desc, desc, base_cfg.to_dict(), pool, seeds, rs,
                               command, success_metric=task.success_metric,
                               metric_directions=dict(task.metric_directions), environment=environment,
                               reference_family=task.search_family().strategy)
    if name in gt_detect:
      g = gt_detect[name]
      e["detect"] = {k: v for k, v in g.items() if k not in ("kind", "name")} | {
          "evaluated_seed": seeds[0], "params_source": "fitted", "num_examples": verdicts["num_examples"],
          "detect_seed": seeds[0]}
    entries.append(e)
  return {"schema_version": leaderboard.SCHEMA_VERSION,
          "suite": {"config": {"study": "searchers", "preset": p}, "command": command},
          "environment": environment, "entries": entries}


def summary_lines(doc: dict[str, Any]) -> list[str]:
  """A plain-text summary of a study document: per size the compute curve's ends and slope, the verdicts, the
  probes' mean held-out scores (trained / random init / shuffled)."""
  h = doc["headline"]
  lines = ["size  loss@T   loss@max  exact@T  exact@max  best exact (t)  slope/doubling beyond T [95% CI]  falls"]
  for size, e in h["sizes"].items():
    lo, hi = e["loss_slope_ci"] or (float("nan"), float("nan"))
    lines.append(f"{size:>4}  {e['loss_at_T']:.4f}   {e['loss_at_max']:.4f}    {e['exact_at_T']:.3f}    "
                 f"{e['exact_at_max']:.3f}      {e['best_exact']:.3f} ({e['best_exact_at']})       "
                 f"{e['loss_slope_per_doubling']:+.4f} [{lo:+.4f}, {hi:+.4f}]      {e['falls_beyond_training_t']}")
  lines.append(f"classify {MODEL_ID} per seed: {h['model_verdicts']}")
  for name, verdict in h["ground_truth_verdicts"].items():
    lines.append(f"classify {name}: {verdict}")
  for size, rows in h["probes"].items():
    for name, row in rows.items():
      if name == "best_scale":
        continue
      fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
      lines.append(f"probe {size}x{size} {name}: trained {fmt(row['trained_mean'])}, random init "
                   f"{fmt(row['random_init_mean'])}, shuffled {fmt(row['shuffled_mean'])}")
  for seed, sizes in h["per_seed_larger_falls"].items():
    lines.append(f"seed {seed}: its own loss falls beyond T on larger sizes {sizes or 'none'}")
  lines.append(f"done when (loss falls on a larger size and every seed classified searcher): {h['done_when']}")
  return lines
