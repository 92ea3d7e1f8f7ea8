"""The leaderboard file: its versioned schema, validation on write and read, entries, and resumable suites.

A leaderboard is one JSON document (schema ``SCHEMA_VERSION``, documented field by field in ``SCHEMA``, which is
also written to results/leaderboard.schema.json):

    {"schema_version": "mesabench.leaderboard/2",
     "suite": {"config": <the sweep config>, "command": <the command that ran the whole suite>},
     "environment": <harness.provenance.environment() of the last process that wrote the file>,
     "entries": [<entry>, ...]}

An entry is one (task, model, pool size) cell trained with several seeds:

    {"id": "ModSearch-v0/mlp/pool=64/3f2a9c1e",          # task/model/pool/hash of the full config below
     "task": {"id", "params"}, "model": {"id", "config"}, "train": <TrainConfig>, "pool_size": 64 | null,
     "seeds": [0, 1], "command": <re-runs exactly this entry>, "status": "ok" | "diverged",
     "results": {"compute": {...}, "splits": {split: {metric: {"mean", "std", "per_seed"}}},
                 "diverged_steps": [null | step per seed], "curve": {...}, "iterations": {...} (iterative),
                 "success_metric": "accuracy", "metrics": {"loss": "lower", "accuracy": "higher", ...}},
     "environment": {...},                                # where THIS entry was measured (kept on --resume)
     "artifacts": {"params": "leaderboard.params/<id hash>"} (optional: orbax checkpoint of the seeds' params),
     "timing": {...}}                                     # seconds; varies between runs

Non-finite numbers are stored as null (one rule: ``provenance.write_json``); tables show them as "n/a" and the
compare gate fails on them. Version 2 added the per-entry environment, success_metric, metrics and artifacts.

What is compared (``comparable``): everything except the environments, "suite.command" and every entry's "timing"
and "artifacts" (file locations).
Two runs of the same config on the same backend give equal comparable parts, interrupted and resumed or not.
"""
from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Sequence

import jsonschema

from mesabench.harness import provenance
from mesabench.harness import references

SCHEMA_VERSION = "mesabench.leaderboard/2"

_NUM = {"type": ["number", "null"]}
_STAT = {"type": "object", "required": ["mean", "std", "per_seed"], "additionalProperties": False,
         "properties": {"mean": _NUM, "std": _NUM, "per_seed": {"type": "array", "items": _NUM}},
         "description": "A metric over seeds: mean, population std and the per-seed values (null when missing)."}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_VERSION,
    "title": "mesabench leaderboard",
    "description": "Results of mesabench.benchmarks.run: one entry per task x model x pool size, several seeds each.",
    "type": "object",
    "required": ["schema_version", "suite", "environment", "entries"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION, "description": "Version of this schema."},
        "suite": {"type": "object", "required": ["config", "command"], "additionalProperties": False,
                  "description": "The sweep config (config_version, tasks, models, pool_sizes, seeds, train) and "
                                 "the command that ran it.",
                  "properties": {"config": {"type": "object"}, "command": {"type": "string"}}},
        "environment": {"type": "object", "required": ["backend", "device_kind", "versions", "git_commit"],
                        "description": "benchmarks.provenance.environment(): backend, device, versions, git commit, "
                                       "host, time of the (last) run."},
        "entries": {"type": "array", "items": {
            "type": "object",
            "required": ["id", "task", "model", "train", "pool_size", "seeds", "command", "status", "results",
                         "environment", "timing"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "minLength": 1,
                       "description": "task id/model id/pool=N (or pool=fresh)/first 8 hex of the config hash."},
                "task": {"type": "object", "required": ["id", "params"], "additionalProperties": False,
                         "properties": {"id": {"type": "string"}, "params": {"type": "object"}}},
                "model": {"type": "object", "required": ["id", "config"], "additionalProperties": False,
                          "properties": {"id": {"type": "string"}, "config": {"type": "object"}}},
                "train": {"type": "object", "required": ["steps", "batch_size", "learning_rate", "eval_size"],
                          "description": "harness.train.TrainConfig as a dict."},
                "pool_size": {"type": ["integer", "null"], "minimum": 1,
                              "description": "Distinct training instances per seed; null = fresh samples."},
                "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
                "command": {"type": "string", "minLength": 1, "description": "Re-runs exactly this entry."},
                "status": {"enum": ["ok", "diverged"],
                           "description": "diverged: at least one seed hit a non-finite loss (see diverged_steps)."},
                "results": {
                    "type": "object", "required": ["compute", "splits", "diverged_steps", "curve"],
                    "additionalProperties": False,
                    "properties": {
                        "compute": {
                            "type": "object",
                            "required": ["params", "flops_per_example", "train_flops_per_example", "training_flops",
                                         "examples_seen"],
                            "description": "params (for lookup: stored numbers; mean over seeds), forward FLOPs "
                                           "per example (XLA cost analysis), train-step FLOPs per example, "
                                           "training FLOPs and examples seen per seed; table_bits (the suite "
                                           "adds it): bits of the task's full answer table, to hold against "
                                           "params x 4 bits per parameter.",
                            "additionalProperties": {"type": ["number", "null"], "minimum": 0}},
                        "splits": {
                            "type": "object",
                            "description": "pool (seen), heldout (unseen), stratum:<name> (held-out examples in the "
                                           "stratum), larger (extrapolation): metric -> stats over seeds; 'count' "
                                           "is the mean number of examples scored.",
                            "additionalProperties": {"type": "object", "additionalProperties": _STAT}},
                        "diverged_steps": {"type": "array", "items": {"type": ["integer", "null"]}},
                        "not_applicable": {"type": "object", "additionalProperties": {"type": "string"},
                                           "description": "split -> why it has no numbers for this entry (e.g. the "
                                                          "larger split for a model without weights shared across "
                                                          "input positions): never a number at chance."},
                        "references": {
                            "type": "object", "required": ["family"],
                            "description": "harness.references: per split (heldout, stratum:hard) the task's "
                                           "budgeted-search family's mean loss per budget (family_loss), the "
                                           "entry's equivalent search budget (budget, relation '=' | '<' worse "
                                           "than the smallest budget | '>' better than the largest), the best "
                                           "non-search heuristic (rule, loss) and margin_over_heuristic = that "
                                           "loss minus the entry's (positive: the entry beats every heuristic).",
                            "properties": {"family": {"type": "string"}},
                            "additionalProperties": {
                                "type": "object", "additionalProperties": False,
                                "properties": {
                                    "family_loss": {"type": "object", "additionalProperties": _NUM},
                                    "equivalent_budget": {
                                        "type": "object", "required": ["budget", "relation"],
                                        "additionalProperties": False,
                                        "properties": {"budget": _NUM, "relation": {"enum": ["=", "<", ">"]}}},
                                    "best_heuristic": {"type": "object", "required": ["rule", "loss"],
                                                       "additionalProperties": False,
                                                       "properties": {"rule": {"type": "string"}, "loss": _NUM}},
                                    "margin_over_heuristic": _NUM}}},
                        "success_metric": {"type": "string",
                                           "description": "The task's success score (Task.success_metric): 1 on a "
                                                          "success, 0 otherwise (e.g. accuracy, hit)."},
                        "metrics": {"type": "object", "additionalProperties": {"enum": ["lower", "higher"]},
                                    "description": "metric name -> which way is better, as the task declares it "
                                                   "(Task.metric_directions); compare and tables read it here."},
                        "curve": {"type": "object", "required": ["step"],
                                  "description": "Learning curves at log-spaced steps: step [P]; train_loss, "
                                                 "pool_loss, heldout_loss [P][seeds].",
                                  "properties": {"step": {"type": "array", "items": {"type": "integer"}}}},
                        "iterations": {"type": "object", "required": ["iteration"],
                                       "description": "Iterative models: held-out/larger task loss after each "
                                                      "test-time iteration, [T][seeds]."},
                    }},
                "detect": {"type": "object", "required": ["combined", "signals"],
                           "description": "Optional: the behavioural detectors' verdicts for this entry, written by "
                                          "python -m mesabench.benchmarks.detect --entry=<id> (combined verdict, "
                                          "one object per signal with statistic, CI and verdict)."},
                "environment": {"type": "object", "required": ["backend", "device_kind", "versions", "git_commit"],
                                "description": "Where THIS entry was measured (provenance.environment()); entries "
                                               "kept by --resume keep their own."},
                "artifacts": {"type": "object", "additionalProperties": {"type": "string"},
                              "description": "Optional: files saved with the entry, as paths relative to the "
                                             "leaderboard file (params: orbax checkpoint of the seeds' parameters)."},
                "timing": {"type": "object", "description": "Seconds (shared by the entries trained in one call); "
                                                             "excluded from comparisons.",
                           "additionalProperties": {"type": ["number", "integer"]}},
            }}},
    },
}


class SchemaError(ValueError):
  """A document does not follow the schema; ``path`` names the bad field ("entries[3].results.splits")."""

  def __init__(self, path: str, message: str):
    super().__init__(f"{path}: {message}")
    self.path = path


_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _path(error: jsonschema.ValidationError) -> str:
  out = "$"
  for part in error.absolute_path:
    out += f"[{part}]" if isinstance(part, int) else f".{part}"
  return out


def validate(doc: Any) -> dict[str, Any]:
  """Returns ``doc`` if it is a leaderboard of this schema version; raises SchemaError naming the bad field."""
  if not isinstance(doc, dict):
    raise SchemaError("$", f"must be a JSON object, got {type(doc).__name__}")
  version = doc.get("schema_version")
  if version != SCHEMA_VERSION:
    raise SchemaError("$.schema_version", f"must be {SCHEMA_VERSION!r} (this reader's version), got {version!r}")
  errors = sorted(_VALIDATOR.iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
  if errors:
    raise SchemaError(_path(errors[0]), errors[0].message)
  ids = [e["id"] for e in doc["entries"]]
  for i, entry_id in enumerate(ids):
    if entry_id in ids[:i]:
      raise SchemaError(f"$.entries[{i}].id", f"duplicates an earlier entry id {entry_id!r}")
  return doc


def read(path: str) -> dict[str, Any]:
  """The validated leaderboard at ``path``; SchemaError (a ValueError) names the bad field, also for bad JSON."""
  try:
    doc = provenance.read_json(path)
  except OSError as err:
    raise ValueError(f"leaderboard: cannot read {path!r} ({err.strerror or err})") from err
  except UnicodeDecodeError as err:
    raise SchemaError("$", f"{path!r} is not UTF-8 text ({err.reason} at byte {err.start})") from err
  except json.JSONDecodeError as err:
    raise SchemaError("$", f"{path!r} is not valid JSON ({err})") from err
  try:
    return validate(doc)
  except SchemaError as err:
    raise SchemaError(err.path, f"{path!r}: {err.args[0].split(': ', 1)[-1]}") from err


def write(path: str, doc: dict[str, Any]) -> str:
  """Validates ``doc`` and writes it atomically (``provenance.write_json``)."""
  validate(json.loads(json.dumps(doc)))
  return provenance.write_json(path, doc)


def write_schema(path: str) -> str:
  return provenance.write_json(path, SCHEMA)


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
  """The part of a leaderboard that must be identical between runs of the same config (see module docstring)."""
  out = copy.deepcopy(doc)
  out.pop("environment", None)
  out.get("suite", {}).pop("command", None)
  for entry in out.get("entries", []):
    entry.pop("timing", None)
    entry.pop("environment", None)
    entry.pop("artifacts", None)
  return out


def entry_key(task: dict, model: dict, train: dict, pool_size: int | None, seeds: list[int]) -> str:
  """The entry id: "<task id>/<model id>/pool=<N|fresh>/<8 hex of sha256 of the canonical config JSON>"."""
  blob = json.dumps({"task": task, "model": model, "train": train, "pool_size": pool_size, "seeds": seeds},
                    sort_keys=True, separators=(",", ":"))
  digest = hashlib.sha256(blob.encode()).hexdigest()[:8]
  pool = "fresh" if pool_size is None else str(pool_size)
  return f"{task['id']}/{model['id']}/pool={pool}/{digest}"


def _stat(values: list[float | None]) -> dict[str, Any]:
  vals = [v for v in values if v is not None]
  if not vals:
    return {"mean": None, "std": None, "per_seed": list(values)}
  mean = sum(vals) / len(vals)
  std = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5
  return {"mean": mean, "std": std, "per_seed": list(values)}


def make_entry(task: dict, model: dict, train: dict, pool_size: int | None, seeds: list[int],
               run_results: Sequence[Any], command: str, *, success_metric: str = "",
               metric_directions: dict[str, str] | None = None,
               environment: dict[str, Any] | None = None, reference_family: str = "") -> dict[str, Any]:
  """One leaderboard entry from ``harness.train.run_experiment`` results (``RunResult``) of the entry's seeds.

  success_metric / metric_directions: what the task declares (``Task.success_metric``, ``Task.metric_directions``);
  environment: where the numbers were measured (default: this process, ``provenance.environment()``).
  reference_family: the task's search family strategy (``task.search_family().strategy``), when the runs carry
    references (``run_experiment(with_references=True)``).
  """
  splits: dict[str, dict[str, Any]] = {}
  names: list[str] = []
  for r in run_results:
    for split in r.splits:
      if split not in names:
        names.append(split)
  for split in names:
    metrics: list[str] = []
    for r in run_results:
      for m in r.splits.get(split, {}):
        if m not in metrics:
          metrics.append(m)
    splits[split] = {m: _stat([r.splits.get(split, {}).get(m) for r in run_results]) for m in metrics}
  comp_keys = run_results[0].compute.keys()
  compute = {k: sum(float(r.compute[k]) for r in run_results) / len(run_results) for k in comp_keys}
  curve = {"step": run_results[0].curve["step"]}
  for k in ("train_loss", "pool_loss", "heldout_loss"):
    curve[k] = [[r.curve[k][p] for r in run_results] for p in range(len(curve["step"]))]
  results: dict[str, Any] = {"compute": compute, "splits": splits,
                             "diverged_steps": [r.diverged_step for r in run_results], "curve": curve,
                             "success_metric": success_metric, "metrics": dict(metric_directions or {})}
  if run_results[0].iterations is not None:
    its = {"iteration": run_results[0].iterations["iteration"]}
    for k in run_results[0].iterations:
      if k != "iteration":
        its[k] = [[r.iterations[k][t] for r in run_results] for t in range(len(its["iteration"]))]
    results["iterations"] = its
  not_applicable: dict[str, str] = {}
  for r in run_results:
    not_applicable.update(r.not_applicable)
  results["not_applicable"] = {k: v for k, v in sorted(not_applicable.items()) if k not in splits}
  if all(r.references is not None for r in run_results):
    model_losses = [{s: m["loss"] for s, m in r.splits.items() if "loss" in m} for r in run_results]
    results["references"] = references.summarize(model_losses, [r.references for r in run_results],
                                                 reference_family)
  status = "diverged" if any(r.diverged_step is not None for r in run_results) else "ok"
  return {"id": entry_key(task, model, train, pool_size, seeds), "task": task, "model": model, "train": train,
          "pool_size": pool_size, "seeds": list(seeds), "command": command, "status": status, "results": results,
          "environment": environment if environment is not None else provenance.environment(),
          "timing": dict(run_results[0].timing)}
