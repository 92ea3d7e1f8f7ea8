"""Reproductions of published results, one command each: the common part every study shares.

A study (``harness/reproduce/NAME.py``) defines ``STUDY = Study(...)`` at module level: its presets (frozen config
dataclasses with ``to_dict()``: "paper" is the paper's setup documented field by field, "cpu" the preset scaled to
2 CPU cores within ``budget_s["cpu"]``, "smoke" a toy size for tests), a ``run(config, seeds, workdir, resume)``
that trains and measures (tqdm progress bar, checkpoints through ``Checkpointer``, deterministic given the seeds)
and returns a ``StudyResult``, and a ``plot(result, png_path)``.

A ``StudyResult`` holds the ours-vs-published table (``Row``: quantity, the published setup and value, the
citation with figure or table number, our seed mean with a CI over seeds, and how the preset differs from the
published setup) and JSON-able ``data`` (per-seed numbers, curves, what the PNG shows).

``write(path, ...)`` writes three files side by side: ``path`` (JSON, schema ``SCHEMA_VERSION``, validated with
jsonschema: study, preset, full config, seeds, the rows, the data, the command that re-creates it and the
environment: versions, device, git commit), the Markdown table (same stem, ``.md``) and the picture (``.png``).
Every file is written atomically (``harness.provenance``).

``python -m mesabench.benchmarks.reproduce --study=NAME`` is the binary over this module.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import os
import shutil
import tempfile
from typing import Any, Callable, Mapping, Sequence

import jax
import jsonschema
import numpy as np
import orbax.checkpoint as ocp
import scipy.stats

from mesabench.harness import provenance
from mesabench.harness import stats

SCHEMA_VERSION = "mesabench.repro/1"
STUDY_NAMES = ("gd_in_context", "icl_task_diversity", "grokking", "capacity")
PRESET_NAMES = ("cpu", "paper", "smoke")


# ------------------------------------------------------------------------------------------------- the table


@dataclasses.dataclass(frozen=True)
class Row:
  """One line of the ours-vs-published table.

  Attributes:
    quantity: what is compared, e.g. "test loss of the trained LSA layer".
    published: the published setup and value, e.g. "0.20 (d=10, N=10)".
    citation: paper and figure/table number, e.g. "von Oswald et al. 2023, Fig. 2".
    ours: our mean over seeds; None when not measured (the reason goes in ``differences``).
    ci: the CI of ``ours`` over seeds (``seed_ci``); None with a single seed or when not measured.
    differences: how the scaled preset differs from the published setup for this row.
  """
  quantity: str
  published: str
  citation: str
  ours: float | None
  ci: tuple[float, float] | None
  differences: str

  def __post_init__(self):
    for name in ("quantity", "published", "citation"):
      if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
        raise ValueError(f"Row.{name} must be a non-empty string, got {getattr(self, name)!r}")
    if self.ours is not None and not math.isfinite(float(self.ours)):
      raise ValueError(f"Row.ours must be a finite number or None, got {self.ours!r}")
    if self.ci is not None:
      lo, hi = (float(v) for v in self.ci)
      if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"Row.ci must be (low, high) with finite low <= high, or None; got {self.ci!r}")
      object.__setattr__(self, "ci", (lo, hi))
    if self.ours is not None:
      object.__setattr__(self, "ours", float(self.ours))

  def to_json(self) -> dict[str, Any]:
    return {"quantity": self.quantity, "published": self.published, "citation": self.citation, "ours": self.ours,
            "ci": None if self.ci is None else list(self.ci), "differences": self.differences}

  @classmethod
  def from_json(cls, obj: Mapping[str, Any]) -> "Row":
    return cls(obj["quantity"], obj["published"], obj["citation"], obj["ours"],
               None if obj["ci"] is None else tuple(obj["ci"]), obj["differences"])


@dataclasses.dataclass
class StudyResult:
  """What a study's ``run`` returns: the table ``rows`` and JSON-able ``data`` (per-seed numbers, curves, ...)."""
  rows: list[Row]
  data: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Study:
  """A reproduction: ``run(config, seeds, workdir, resume) -> StudyResult`` and ``plot(result, png_path)``.

  presets maps "cpu", "paper" (and "smoke", for tests) to frozen config dataclasses with ``to_dict()``;
  budget_s maps a preset to its stated wall-clock budget in seconds on 2 CPU cores (None: not meant for a CPU).
  """
  name: str
  title: str
  citation: str
  presets: Mapping[str, Any]
  budget_s: Mapping[str, float | None]
  run: Callable[[Any, tuple[int, ...], str, bool], StudyResult]
  plot: Callable[[StudyResult, str], None]

  def __post_init__(self):
    if self.name not in STUDY_NAMES:
      raise ValueError(f"Study.name must be one of {STUDY_NAMES}, got {self.name!r}")
    missing = {"cpu", "paper"} - set(self.presets)
    if missing:
      raise ValueError(f"Study.presets must hold 'cpu' and 'paper', missing {sorted(missing)}")
    for key, cfg in self.presets.items():
      if not callable(getattr(cfg, "to_dict", None)):
        raise ValueError(f"Study.presets[{key!r}] must be a config with to_dict(), got {type(cfg).__name__}")


def get(name: str) -> Study:
  """The ``STUDY`` of ``mesabench.harness.reproduce.<name>``; ValueError for a name outside ``STUDY_NAMES`` or a
  study whose module is not available."""
  if not isinstance(name, str) or name not in STUDY_NAMES:
    raise ValueError(f"study must be one of {', '.join(STUDY_NAMES)}; got {name!r}")
  try:
    module = importlib.import_module(f"{__name__}.{name}")
  except ModuleNotFoundError as err:
    if err.name != f"{__name__}.{name}":
      raise
    raise ValueError(f"study {name!r} is not available in this checkout (no module {err.name})") from err
  study = getattr(module, "STUDY", None)
  if not isinstance(study, Study) or study.name != name:
    raise ValueError(f"study {name!r}: {module.__name__}.STUDY must be a Study named {name!r}")
  return study


def seed_ci(values: Sequence[float], level: float = stats.DEFAULT_LEVEL, method: str = "t"
            ) -> tuple[float, tuple[float, float] | None]:
  """(mean, CI) of per-seed values (float64). method "t": mean +- t_{(1+level)/2, n-1} * s / sqrt(n) (Student t,
  exact for normal seed values); "bootstrap": the percentile bootstrap of the mean (``harness.stats``; 1000
  resamples, seed 0), which never leaves [min, max] of the values. CI None for a single value. ValueError for an
  empty or non-finite input, a level outside [0.5, 1) or an unknown method."""
  level = stats.check_level(level)
  v = np.asarray(values, np.float64).reshape(-1)
  if v.size < 1 or not np.all(np.isfinite(v)):
    raise ValueError(f"values must be a non-empty list of finite numbers, got {list(values)!r}")
  mean = float(v.mean())
  if v.size == 1:
    return mean, None
  if method == "t":
    half = float(scipy.stats.t.ppf(0.5 + level / 2, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return mean, (mean - half, mean + half)
  if method == "bootstrap":
    return mean, stats.percentile_ci(stats.bootstrap_means(v), level)
  raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")


def row(quantity: str, published: str, citation: str, values: Sequence[float] | None, differences: str,
        level: float = stats.DEFAULT_LEVEL) -> Row:
  """A ``Row`` whose ours/ci are the seed mean and t interval of the per-seed ``values`` (None: not measured)."""
  if values is None:
    return Row(quantity, published, citation, None, None, differences)
  mean, ci = seed_ci(values, level)
  return Row(quantity, published, citation, mean, ci, differences)


def _fmt(value: float) -> str:
  if value == 0 or 1e-3 <= abs(value) < 1e5:
    return f"{value:.4g}"
  return f"{value:.3e}"


def _cell(text: str) -> str:
  return " ".join(str(text).split()).replace("|", "\\|")


def markdown(study: Study, preset: str, seeds: Sequence[int], result: StudyResult, command: str,
             png_name: str | None = None, wall_s: float | None = None) -> str:
  """The Markdown report: title, citation, preset and seeds, the ours-vs-published table (quantity | published
  setup and value (citation) | ours, seed mean with its CI | the scaled preset's differences), the picture."""
  lines = [f"# {study.title}", "", f"Reference: {study.citation}", "",
           f"Preset `{preset}`, seeds {', '.join(map(str, seeds))}"
           + (f", {wall_s:.0f} s wall" if wall_s is not None else "") + f". Re-create: `{command}`", "",
           "| quantity | published setup and value (citation) | ours (seed mean [95% CI]) | this preset's differences |",
           "|---|---|---|---|"]
  for r in result.rows:
    if r.ours is None:
      ours = "not measured"
    elif r.ci is None:
      ours = _fmt(r.ours)
    else:
      ours = f"{_fmt(r.ours)} [{_fmt(r.ci[0])}, {_fmt(r.ci[1])}]"
    lines.append(f"| {_cell(r.quantity)} | {_cell(r.published)} ({_cell(r.citation)}) | {ours} | "
                 f"{_cell(r.differences) or '-'} |")
  if png_name:
    lines += ["", f"![{study.name}]({png_name})"]
  return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ the files


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_VERSION,
    "title": "mesabench reproduction of a published result",
    "type": "object",
    "required": ["schema_version", "study", "title", "citation", "preset", "budget_s", "config", "seeds", "command",
                 "environment", "rows", "data"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "study": {"enum": list(STUDY_NAMES)},
        "title": {"type": "string", "minLength": 1},
        "citation": {"type": "string", "minLength": 1, "description": "The full reference."},
        "preset": {"type": "string", "minLength": 1},
        "budget_s": {"type": ["number", "null"], "description": "The preset's stated budget on 2 CPU cores."},
        "wall_s": {"type": ["number", "null"], "description": "Wall-clock seconds of the run that wrote this."},
        "config": {"type": "object", "description": "The preset's full config (to_dict())."},
        "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
        "command": {"type": "string", "minLength": 1, "description": "Re-creates this file."},
        "environment": {"type": "object", "required": ["backend", "device_kind", "versions", "git_commit"]},
        "rows": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False,
            "required": ["quantity", "published", "citation", "ours", "ci", "differences"],
            "properties": {
                "quantity": {"type": "string", "minLength": 1},
                "published": {"type": "string", "minLength": 1},
                "citation": {"type": "string", "minLength": 1},
                "ours": {"type": ["number", "null"]},
                "ci": {"oneOf": [{"type": "null"}, {"type": "array", "items": {"type": "number"}, "minItems": 2,
                                                    "maxItems": 2}]},
                "differences": {"type": "string"}}}},
        "data": {"type": "object", "description": "Study-specific details (per-seed numbers, curves)."},
    },
}


def validate(doc: Mapping[str, Any]) -> Mapping[str, Any]:
  """Returns ``doc`` if it follows SCHEMA (jsonschema); ValueError naming the bad field otherwise."""
  try:
    jsonschema.validate(doc, SCHEMA)
  except jsonschema.ValidationError as err:
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    raise ValueError(f"{path}: {err.message}") from err
  return doc


def output_paths(path: str) -> tuple[str, str, str]:
  """(json, md, png) paths of a result: ``path`` (must end with .json) and the same stem with .md and .png."""
  if not isinstance(path, str) or not path.endswith(".json"):
    raise ValueError(f"path must end with '.json', got {path!r}")
  stem = path[:-len(".json")]
  return path, stem + ".md", stem + ".png"


def document(study: Study, preset: str, config: Any, seeds: Sequence[int], result: StudyResult, command: str,
             wall_s: float | None = None) -> dict[str, Any]:
  """The JSON document of a result (validated against SCHEMA); the environment is this process's."""
  doc = {"schema_version": SCHEMA_VERSION, "study": study.name, "title": study.title, "citation": study.citation,
         "preset": preset, "budget_s": study.budget_s.get(preset), "wall_s": wall_s, "config": config.to_dict(),
         "seeds": [int(s) for s in seeds], "command": command, "environment": provenance.environment(),
         "rows": [r.to_json() for r in result.rows], "data": result.data}
  doc = json.loads(json.dumps(provenance._jsonable(doc), allow_nan=False))  # what a reader will see
  validate(doc)
  return doc


def write(path: str, study: Study, preset: str, config: Any, seeds: Sequence[int], result: StudyResult,
          command: str, wall_s: float | None = None) -> tuple[str, str, str]:
  """Writes the result JSON at ``path`` (``document``), the Markdown table beside it (.md) and the picture (.png,
  ``study.plot``), each atomically; returns the three paths. Nothing is written when the document is invalid."""
  json_path, md_path, png_path = output_paths(path)
  doc = document(study, preset, config, seeds, result, command, wall_s)
  _write_png(study, result, png_path)
  provenance.write_text(md_path, markdown(study, preset, seeds, result, command, os.path.basename(png_path), wall_s))
  provenance.write_json(json_path, doc)
  return json_path, md_path, png_path


def _write_png(study: Study, result: StudyResult, png_path: str) -> None:
  folder = os.path.dirname(os.path.abspath(png_path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp_png = tempfile.mkstemp(prefix="." + os.path.basename(png_path) + ".", suffix=".png", dir=folder)
  os.close(fd)
  try:
    study.plot(result, tmp_png)
    os.chmod(tmp_png, 0o644)
    os.replace(tmp_png, png_path)
  finally:
    if os.path.exists(tmp_png):
      os.unlink(tmp_png)


def redraw(path: str, study: Study | None = None) -> tuple[str, str]:
  """Rewrites the Markdown table and the picture of an existing result JSON (from its rows and data, with the
  current ``plot`` of its study, or of ``study``); returns (md path, png path). The JSON is not touched."""
  doc, result = read(path)
  study = study or get(doc["study"])
  _, md_path, png_path = output_paths(path)
  _write_png(study, result, png_path)
  provenance.write_text(md_path, markdown(study, doc["preset"], doc["seeds"], result, doc["command"],
                                          os.path.basename(png_path), doc.get("wall_s")))
  return md_path, png_path


def read(path: str) -> tuple[dict[str, Any], StudyResult]:
  """(document, StudyResult) of a result JSON written by ``write`` (validated)."""
  doc = dict(validate(provenance.read_json(path)))
  return doc, StudyResult([Row.from_json(r) for r in doc["rows"]], doc["data"])


# ----------------------------------------------------------------------------------------------- checkpoints


def config_hash(config: Any) -> str:
  """A short, stable hash of a config's ``to_dict()`` (10 hex digits): checkpoints of another config never
  resume this one."""
  text = json.dumps(provenance._jsonable(config.to_dict()), sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:10]


def _is_key(leaf) -> bool:
  return isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


class Checkpointer:
  """An orbax ``CheckpointManager`` around one training state of a study: one directory per (study, config, seed),
  ``WORKDIR/STUDY/CONFIGHASH/seed_SEED``.

  The state is a pytree (by convention {"params", "opt_state", "step", "rng"}); typed PRNG keys are stored as
  their key data and re-wrapped on restore. ``save(step, state)`` keeps a checkpoint every ``every`` steps (and
  always with ``force=True``, at the end of training); ``restore(template)`` returns the latest saved state with
  the structure and dtypes of ``template`` (the freshly initialized state), or ``template`` itself when nothing is
  saved. Without ``resume`` the directory is cleared first (a fresh run never mixes with an old one).
  """

  def __init__(self, workdir: str, study: str, config: Any, seed: int, *, every: int, resume: bool,
               keep: int = 1):
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
      raise ValueError(f"every must be a positive integer (steps between checkpoints), got {every!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
      raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    self.directory = os.path.abspath(os.path.join(workdir, study, config_hash(config), f"seed_{int(seed)}"))
    if not resume and os.path.exists(self.directory):
      shutil.rmtree(self.directory)
    os.makedirs(self.directory, exist_ok=True)
    self.every = int(every)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  @property
  def latest_step(self) -> int | None:
    """The step of the latest saved checkpoint (None when there is none)."""
    return self._manager.latest_step()

  def save(self, step: int, state: Any, *, force: bool = False) -> bool:
    """Saves ``state`` at ``step`` when ``step`` is a multiple of ``every`` or ``force``; returns whether it saved.
    Blocks until the checkpoint is committed (a killed run leaves the previous one whole)."""
    if not force and int(step) % self.every:
      return False
    state = jax.tree_util.tree_map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)
    saved = self._manager.save(int(step), args=ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()
    return bool(saved)

  def restore(self, template: Any) -> Any:
    """The latest saved state, shaped like ``template``; ``template`` when nothing is saved."""
    step = self._manager.latest_step()
    if step is None:
      return template
    abstract = jax.tree_util.tree_map(
        lambda x: jax.random.key_data(x) if _is_key(x) else x, template)
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, abstract)
    restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    return jax.tree_util.tree_map(
        lambda t, r: jax.random.wrap_key_data(r, impl=jax.random.key_impl(t)) if _is_key(t) else r,
        template, restored)

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
