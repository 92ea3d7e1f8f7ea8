"""Trained searchers (issue 13): train an iterative model with the recurrent-network recipe next to the same model
trained without it (the control) and the task's three kinds of ground truth, then ask whether its loss keeps
falling with test-time iterations beyond its training T, and what ``detect.classify`` calls it.

One *part* is one task and one iterative model (``Part``); ``run_part`` trains and measures it:

    part = PARTS["polymax"]                      # PolyMax-v0, looped, progressive loss + random T
    result = run_part(part, seeds=(0, 1, 2))
    result.curves["looped+recipe"]["larger"].falls   # the loss on larger instances falls beyond training T
    result.verdicts["looped+recipe"]               # classify's combined verdict per seed

What a part measures, per model (the recipe model, its control, the ground truth):
  * a leaderboard entry (``harness.leaderboard.make_entry``; the train config in the entry says which recipe);
  * for iterative models, ``harness.test_time.ComputeCurve`` on every evaluation split the harness builds
    (held-out, each stratum, and the larger split when the model can answer it) at ``test_time.ladder(T)``:
    1 .. 8x the training T, with a CI over seeds and instances and the slope beyond T;
  * ``detect.classify`` per seed on inputs outside the seed's pool, probing the same ladder (a test-time compute
    knob beyond training T) for iterative models, and the model's own knob (none) for the rest.
  * probes (``probe_part``, section 4 of the issue): linear probes from the recipe model's hidden state after each
    ladder iteration to the variables of the task's known search, with the same network at random initialization
    and shuffled labels as controls (``PART_PROBES``):
      - PolyMax: the grid search at budget c * t (c points per iteration): its best x so far and P at it, and
        the answer (argmax, max) itself;
      - ModSearch: the seed loop of the compiled recurrent cell after c * t steps: i, i^2 mod n, the best k so
        far and its residue, and the answer (k*, r*).
The Maze part (several sizes, maze variables, pictures) is ``harness/maze_study.py``.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
import tqdm

from mesabench import models as zoo
from mesabench import tasks as task_registry
from mesabench.harness import detect
from mesabench.harness import leaderboard
from mesabench.harness import probes as probes_lib
from mesabench.harness import provenance
from mesabench.harness import test_time
from mesabench.harness import train


@dataclasses.dataclass(frozen=True)
class Part:
  """One task x iterative model of the study.

  Attributes:
    name: the part's name ("polymax", "modsearch", "maze").
    task: {"id", "params"} of the task.
    model: {"id", "config"} of the iterative model (its ``iterations`` is the training T, or the top of the
      recipe's ``iterations_range``).
    recipe: TrainConfig fields of the recipe run (``progressive_alpha``, ``iterations_range`` and the rest).
    control: TrainConfig fields of the control run (the same model without the recipe); None: no control.
    ground_truth: {"id", "config"} of baselines fitted on the same pools (memorizer, heuristic, searcher).
    pool_size: distinct training instances per seed, or None (fresh samples).
    factor: the test-time ladder reaches factor x the training T.
    num_examples: instances per seed for ``classify``.
    note: what the part tests, for the report.
  """
  name: str
  task: Mapping[str, Any]
  model: Mapping[str, Any]
  recipe: Mapping[str, Any]
  control: Mapping[str, Any] | None
  ground_truth: tuple[Mapping[str, Any], ...]
  pool_size: int | None = None
  factor: int = 8
  num_examples: int = 512
  note: str = ""

  def train_config(self, which: str) -> train.TrainConfig:
    fields = dict(self.recipe if which == "recipe" else self.control or {})
    if "iterations_range" in fields and fields["iterations_range"] is not None:
      fields["iterations_range"] = tuple(fields["iterations_range"])
    return train.TrainConfig(**fields)

  def training_t(self) -> int:
    """The training T of the recipe run (the top of its iterations_range, else the model's iterations)."""
    rng = self.recipe.get("iterations_range")
    return int(rng[1]) if rng else int(self.model["config"].get("iterations", 8))


_GROUND_TRUTH = ({"id": "lookup", "config": {}}, {"id": "heuristic", "config": {}}, {"id": "search", "config": {}})

PARTS: dict[str, Part] = {
    "polymax": Part(
        name="polymax", task={"id": "PolyMax-v0", "params": {"degree": 4}},
        model={"id": "looped", "config": {"width": 128, "iterations": 8}},
        recipe={"steps": 2000, "batch_size": 64, "learning_rate": 3e-3, "eval_size": 512, "stratum_size": 512,
                "curve_points": 4, "progressive_alpha": 0.5, "iterations_range": [4, 8], "test_iterations": 64},
        control={"steps": 2000, "batch_size": 64, "learning_rate": 3e-3, "eval_size": 512, "stratum_size": 512,
                 "curve_points": 4, "test_iterations": 64},
        ground_truth=_GROUND_TRUTH, pool_size=None,
        note="looped on PolyMax degree 4 (the hard stratum: interior maximum, an 8-point grid misses it), fresh "
             "samples; recipe: progressive loss alpha 0.5, T ~ U{4..8}; control: the harness's all-iterations loss "
             "at T = 8"),
    "modsearch": Part(
        name="modsearch", task={"id": "ModSearch-v0", "params": {"bits": 16, "width": 20}},
        model={"id": "looped_transformer", "config": {"width": 32, "heads": 4, "iterations": 8, "head": "bits"}},
        recipe={"steps": 600, "batch_size": 64, "learning_rate": 1e-3, "eval_size": 256, "stratum_size": 256,
                "curve_points": 4, "progressive_alpha": 0.5, "iterations_range": [4, 8], "test_iterations": 64},
        control=None, ground_truth=_GROUND_TRUTH, pool_size=16384, num_examples=256,
        note="a weight-tied transformer over the bits of n (shared across positions, so it answers the larger "
             "split) on ModSearch bits 16, where the answer table (667,880 bits) is far beyond what the model can "
             "hold (about 20k parameters); a pool of 16,384 of the 65,535 instances, so a held-out split exists; "
             "recipe as for PolyMax. A 1-seed pilot (width 48, 1,500 steps, fresh samples, which at bits 16 cover "
             "the whole space) reached regret 0.55 on its training instances and 0.61 at best on the larger split "
             "(t = 4..8), rising to 0.72 at t = 64"),
}
"""The PolyMax and ModSearch parts (issue 13, section 3). The Maze part is defined by the study binary."""


# ------------------------------------------------------------------------------------------------- probes


def _horner(coeffs: np.ndarray, x: np.ndarray) -> np.ndarray:
  """P(x) in float64 for coefficients [N, D + 1] (ascending powers) at x [..., N]."""
  out = np.zeros_like(x, np.float64)
  for j in range(coeffs.shape[-1] - 1, -1, -1):
    out = out * x + coeffs[:, j]
  return out


def polymax_variables(task, batch, iterations: Sequence[int], scale: int) -> dict[str, np.ndarray]:
  """The grid search's variables after iteration t at ``scale`` points per iteration ([K, N] float64): best_x, the
  best grid point of a budget clip(scale * t) grid (``task.search("grid", ...)``), and best_value = P(best_x)."""
  lo, hi = task.search_budget_range("grid")
  coeffs = np.asarray(batch.info["coeffs"], np.float64)
  xs = [np.asarray(task.search("grid", int(min(max(scale * t, lo), hi)), batch.inputs), np.float64)
        for t in iterations]
  best_x = np.stack(xs)
  return {"best_x": best_x, "best_value": _horner(coeffs, best_x)}


def polymax_answer(task, batch) -> dict[str, np.ndarray]:
  return {"answer_x": np.asarray(batch.targets["x"], np.float64),
          "answer_value": np.asarray(batch.targets["value"], np.float64)}


def modsearch_variables(task, batch, iterations: Sequence[int], scale: int) -> dict[str, np.ndarray]:
  """The compiled recurrent cell's state after scale * t steps of its loop i = 1 .. K ([K', N] float64): i
  (clipped at K = kmax(n)), i^2 mod n, the best k so far (``task.search("seed", ...)``, the same loop) and its
  residue best_r."""
  n = np.asarray(batch.info["n"], np.int64)
  big_k = np.asarray(batch.info["kmax"], np.int64)
  lo, hi = task.search_budget_range("seed")
  out: dict[str, list] = {"i": [], "i_sq_mod_n": [], "best_k": [], "best_r": []}
  for t in iterations:
    steps = int(min(max(scale * t, lo), hi))
    i = np.minimum(steps, big_k)
    k = np.asarray(task.search("seed", steps, batch.inputs), np.int64)
    out["i"].append(i)
    out["i_sq_mod_n"].append((i * i) % n)
    out["best_k"].append(k)
    out["best_r"].append((k * k) % n)
  return {name: np.stack(v).astype(np.float64) for name, v in out.items()}


def modsearch_answer(task, batch) -> dict[str, np.ndarray]:
  n = np.asarray(batch.info["n"], np.int64)
  k = np.asarray(batch.targets["k"], np.int64)
  return {"answer_k": k.astype(np.float64), "answer_r": ((k * k) % n).astype(np.float64)}


PART_PROBES: dict[str, tuple[Callable, Callable, tuple[int, ...]]] = {
    "PolyMax-v0": (polymax_variables, polymax_answer, (1, 4, 16)),
    "ModSearch-v0": (modsearch_variables, modsearch_answer, (16, 64, 256)),
}
"""Per task id: the search's variables per iteration, the answer's variables, and the scales c (algorithm steps per
network iteration) tried; the best-fitting scale is reported per variable."""


def _flat_states(states_fn, params, inputs, iterations: Sequence[int]) -> np.ndarray:
  """[K, N, F]: the hidden state after each of ``iterations`` (1-based), positions concatenated per example;
  ``states_fn(params, inputs, iterations=top)`` is the model's jitted ``states``."""
  states = np.asarray(states_fn(params, inputs, iterations=max(iterations)))[np.asarray(iterations) - 1]
  return states.reshape(states.shape[0], states.shape[1], -1)


def probe_part(part: Part, task, model, params_per_seed: Sequence[Any], seeds: Sequence[int],
               pools: Sequence[Any] | None, *, num_examples: int = 512, num_resamples: int = 100,
               log: Callable[[str], None] = lambda s: None) -> dict[str, Any] | None:
  """Linear probes (``harness.probes``, real-valued: R^2) from the recipe model's states at the ladder iterations
  to ``PART_PROBES[task id]``'s variables, on ``num_examples`` held-out instances per seed (outside the seed's
  pool), beside the same network at random initialization and shuffled labels; None for a part without probes or
  a model that does not expose its states. Per variable: per seed the curve, and the mean over seeds per
  iteration (trained, random_init, shuffled); the search variables at each scale c, with the best scale named."""
  if task.task_id not in PART_PROBES or not getattr(model, "supports_recipe", False):
    return None
  variables, answer, scales = PART_PROBES[task.task_id]
  its = list(test_time.ladder(part.training_t(), part.factor))
  states_fn = jax.jit(model.states, static_argnames="iterations")  # one compile for every seed and the control
  by_seed: dict[str, dict[str, Any]] = {}
  for i, (seed, params) in enumerate(zip(seeds, params_per_seed)):
    key = jax.random.fold_in(jax.random.key(int(seed)), 5000)
    pool = None if pools is None else pools[i]
    batch = task.sample(key, num_examples) if pool is None else task.sample_outside(key, num_examples, pool)
    feats = _flat_states(states_fn, params, batch.inputs, its)
    random_params = model.init(jax.random.fold_in(jax.random.key(int(seed)), 3000))
    ctrl = _flat_states(states_fn, random_params, batch.inputs, its)
    kw = {"seed": int(seed), "num_resamples": num_resamples, "control_states": ctrl, "iterations": its}
    curves: dict[str, Any] = {}
    for c in scales:
      for name, lab in variables(task, batch, its, c).items():
        curves[f"{name}@c={c}"] = probes_lib.probe_curve(feats, lab, "real", **kw).to_json()
    for name, lab in answer(task, batch).items():
      curves[name] = probes_lib.probe_curve(feats, lab, "real", **kw).to_json()
    by_seed[str(seed)] = curves
    log(f"  probes {part.name} seed {seed}: {len(curves)} variables x {len(its)} iterations")
  summary = probes_lib.summarize_curves(by_seed)
  best = summary.pop("best_scale")
  return {"iterations": its, "num_examples": num_examples, "scales": list(scales), "kind": "real (R^2)",
          "seeds": by_seed, "summary": summary, "best_scale": best}


def plot_probes(doc: Mapping[str, Any], path: str) -> str:
  """One panel per probed variable (search variables at their best scale, then the answer): held-out R^2 per
  iteration, trained vs random init vs shuffled labels, mean over seeds."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  pr = doc["probes"]
  names = sorted(pr["best_scale"].values()) + sorted(n for n in pr["summary"] if "@" not in n)
  fig, axes = plt.subplots(1, len(names), figsize=(3.1 * len(names), 3.0), squeeze=False)
  for ax, name in zip(axes[0], names):
    for which, style in (("trained", "-o"), ("random_init", "--"), ("shuffled", ":")):
      vals = [np.nan if v is None else v for v in pr["summary"][name][which]]
      ax.plot(pr["iterations"], vals, style, ms=3, label=which)
    ax.axvline(doc["training_t"], color="gray", ls="--", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.2, 1.02)
    ax.set_title(name, fontsize=8)
    ax.set_xlabel("iteration", fontsize=7)
    ax.set_ylabel("held-out R^2", fontsize=7)
    ax.grid(alpha=0.3)
  axes[0, 0].legend(fontsize=6)
  fig.suptitle(f"searchers, part {doc['part']['name']}: linear probes from the recipe model's state (mean over "
               f"seeds {doc['seeds']}; dashed: training T)", fontsize=9)
  return _save(fig, path)


def _save(fig, path: str) -> str:
  import matplotlib.pyplot as plt
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


@dataclasses.dataclass
class ModelResult:
  """One model of a part: its label ("looped+recipe", "looped control", "lookup", ...), its leaderboard entry,
  its compute curves per split (iterative models), and ``classify`` per seed."""
  label: str
  entry: dict[str, Any]
  curves: dict[str, test_time.ComputeCurve]
  classifications: list[detect.Classification]
  params: Any = None

  @property
  def verdicts(self) -> list[str]:
    return [c.verdict for c in self.classifications]

  def to_json(self) -> dict[str, Any]:
    return {"label": self.label, "entry_id": self.entry["id"],
            "curves": {k: c.to_json() for k, c in self.curves.items()},
            "verdicts": self.verdicts, "classify": [c.to_json() for c in self.classifications]}


@dataclasses.dataclass
class PartResult:
  """``run_part``'s result: the part and one ``ModelResult`` per model, in order (recipe, control, ground truth)."""
  part: Part
  seeds: tuple[int, ...]
  models: list[ModelResult]
  seconds: float
  probes: dict[str, Any] | None = None

  def model(self, label: str) -> ModelResult:
    return next(m for m in self.models if m.label == label)

  def to_json(self) -> dict[str, Any]:
    return {"part": dataclasses.asdict(self.part), "seeds": list(self.seeds), "seconds": self.seconds,
            "training_t": self.part.training_t(), "ladder": list(test_time.ladder(self.part.training_t(),
                                                                                   self.part.factor)),
            "models": [m.to_json() for m in self.models], "probes": self.probes}


def _curve_splits(task, splits) -> dict[str, list]:
  out = {"heldout": splits["heldout"]}
  for s in task.strata:
    if "stratum:" + s in splits:
      out["stratum:" + s] = splits["stratum:" + s]
  if "larger" in splits:
    out["larger"] = splits["larger"]
  return {k: v for k, v in out.items() if all(b is not None for b in v)}


def run_model(part: Part, task, model, config: train.TrainConfig, label: str, seeds: Sequence[int],
              command: str, *, classify_seed: int = 0, keep_params: bool = False) -> ModelResult:
  """Trains (or fits) ``model`` on ``part``'s pools for every seed (one vmapped jit), builds its entry, its
  compute curves and its per-seed ``classify`` verdicts."""
  runs = [train.Run(int(s), part.pool_size) for s in seeds]
  results = train.run_experiment(task, model, runs, config, keep_params=True)
  task_desc = {"id": task.task_id, "params": task.params()}
  model_desc = {"id": model.model_id, "config": model.config_dict()}
  entry = leaderboard.make_entry(task_desc, model_desc, config.to_dict(), part.pool_size, list(seeds), results,
                                 command, success_metric=task.success_metric,
                                 metric_directions=dict(task.metric_directions))
  data = train.prepare_data(task, runs, config)
  splits = train.eval_splits(task, runs, data, config, model)
  stacked = jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *[r.params for r in results])
  curves: dict[str, test_time.ComputeCurve] = {}
  ladder = None
  if model.iterative:
    t = part.training_t()
    ladder = test_time.ladder(t, part.factor)
    for name, batches in _curve_splits(task, splits).items():
      split_task = task.larger() if name == "larger" else task
      n = min(b.size for b in batches)
      batches = [b.take(np.arange(n)) for b in batches]
      curves[name] = test_time.compute_curve(split_task, model, stacked, batches, ladder, t, name,
                                             success_metric=task.success_metric, seed=classify_seed)
  classifications = []
  for i, r in enumerate(results):
    pool = data.pools[i]  # held-out instances avoid the seed's pool (or fresh stream), as the harness's split does
    classifications.append(detect.classify(
        task, detect.entry_predict(model, r.params), seed=classify_seed + i, pool=pool,
        num_examples=part.num_examples, iterations=ladder, larger=zoo.base.answers_larger(model, task)))
  entry["detect"] = {**classifications[0].to_json(), "evaluated_seed": int(seeds[0]), "params_source": "trained",
                     "num_examples": part.num_examples, "detect_seed": classify_seed}
  return ModelResult(label, entry, curves, classifications, stacked if keep_params else None)


def run_part(part: Part, seeds: Sequence[int] = (0, 1, 2), *, command: str | None = None,
             log: Callable[[str], None] | None = None, keep_params: bool = False, probes: bool = True,
             probe_examples: int = 512) -> PartResult:
  """Trains and measures every model of ``part`` (module docstring); deterministic given the seeds. probes: run
  ``probe_part`` on the recipe model (``probe_examples`` held-out instances per seed)."""
  log = log or (lambda s: print(s, file=sys.stderr, flush=True))
  command = command or provenance.command_line("mesabench.benchmarks.searchers")
  t0 = time.perf_counter()
  task = task_registry.make(part.task["id"], **part.task["params"])
  model = zoo.make(part.model["id"], task.spec, **part.model["config"])
  jobs: list[tuple[str, Any, train.TrainConfig]] = [(f"{model.model_id}+recipe", model, part.train_config("recipe"))]
  if part.control is not None:
    jobs.append((f"{model.model_id} control", model, part.train_config("control")))
  base_cfg = train.TrainConfig(**{k: v for k, v in part.recipe.items()
                                  if k not in ("progressive_alpha", "iterations_range")})
  for gt in part.ground_truth:
    jobs.append((gt["id"], zoo.make(gt["id"], task.spec, **gt["config"]), base_cfg))
  out = []
  probed = None
  for j, (label, m, cfg) in enumerate(tqdm.tqdm(jobs, desc=f"searchers:{part.name}", unit="model", file=sys.stderr)):
    t1 = time.perf_counter()
    res = run_model(part, task, m, cfg, label, seeds, command, keep_params=keep_params or (probes and j == 0))
    held = res.entry["results"]["splits"].get("heldout", {}).get("loss", {}).get("mean")
    log(f"  {part.name} {label}: held-out loss {held:.4g}, verdicts {res.verdicts} "
        f"({time.perf_counter() - t1:.0f}s)")
    if probes and j == 0:
      runs = [train.Run(int(x), part.pool_size) for x in seeds]
      pools = train.prepare_data(task, runs, cfg).pools if part.pool_size is not None else None
      per_seed = [jax.tree_util.tree_map(lambda a, i=i: a[i], res.params) for i in range(len(seeds))]
      probed = probe_part(part, task, m, per_seed, seeds, pools, num_examples=probe_examples, log=log)
      if not keep_params:
        res.params = None
    out.append(res)
  return PartResult(part, tuple(int(s) for s in seeds), out, time.perf_counter() - t0, probed)


PART_SCHEMA_VERSION = "mesabench.searchers_part/1"


def part_document(result: PartResult, command: str) -> dict[str, Any]:
  """The JSON document of a part: schema, the part's config and every model's curves and verdicts, the command,
  the environment (entries carry their own)."""
  return {"schema_version": PART_SCHEMA_VERSION, **result.to_json(), "command": command,
          "environment": provenance.environment()}


def plot_part(doc: Mapping[str, Any], path: str) -> str:
  """Loss against test-time iterations (log2 x) for each iterative model of a part document, one panel per split,
  with the bootstrap band; the dashed line is the training T; the legend gives the slope per doubling beyond T."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  iterative = [m for m in doc["models"] if m["curves"]]
  splits = list(iterative[0]["curves"]) if iterative else []
  fig, axes = plt.subplots(1, max(len(splits), 1), figsize=(4.2 * max(len(splits), 1), 3.6), squeeze=False)
  for ax, split in zip(axes[0], splits):
    for m in iterative:
      c = m["curves"][split]
      label = m["label"]
      if c["slope"] is not None:
        label += f": {c['slope']:+.2g}/doubling [{c['slope_ci'][0]:+.2g}, {c['slope_ci'][1]:+.2g}]"
      line, = ax.plot(c["iterations"], c["mean"], marker="o", ms=3, label=label)
      ax.fill_between(c["iterations"], [lo for lo, _ in c["ci"]], [hi for _, hi in c["ci"]],
                      color=line.get_color(), alpha=0.2)
    ax.axvline(doc["training_t"], color="gray", ls="--", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_title(split, fontsize=9)
    ax.set_xlabel("test iterations (dashed: training T)")
    ax.set_ylabel("mean loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
  fig.suptitle(f"searchers, part {doc['part']['name']}: {doc['part']['task']['id']}, mean over seeds "
               f"{doc['seeds']} (band: 95% two-level bootstrap)", fontsize=9)
  return _save(fig, path)


def write_part(doc: dict[str, Any], entries: Sequence[dict[str, Any]], out: str) -> list[str]:
  """Writes a part's document to ``out`` (atomic), its entries to ``<stem>_leaderboard.json`` (validated) and the
  compute-curve picture to ``<stem>_curves.png``; returns the paths."""
  stem = out[:-5] if out.endswith(".json") else out
  lb = {"schema_version": leaderboard.SCHEMA_VERSION,
        "suite": {"config": doc["part"], "command": doc["command"]}, "environment": doc["environment"],
        "entries": list(entries)}
  paths = [provenance.write_json(out, doc), leaderboard.write(stem + "_leaderboard.json", lb)]
  paths.append(plot_part(doc, stem + "_curves.png"))
  if doc.get("probes"):
    paths.append(plot_probes(doc, stem + "_probes.png"))
  return paths
