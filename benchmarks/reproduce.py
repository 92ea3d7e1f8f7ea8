r"""Reproduce a published result with one command: train, compare with the paper, write JSON + Markdown + PNG.

    python -m mesabench.benchmarks.reproduce --study=gd_in_context                 # cpu preset -> runs/
    python -m mesabench.benchmarks.reproduce --study=icl_task_diversity --seeds=0,1,2
    python -m mesabench.benchmarks.reproduce --study=gd_in_context --out=results/repro_gd_in_context.json \
        --overwrite                                                              # the committed results
    python -m mesabench.benchmarks.reproduce --study=grokking --preset=paper     # the paper's setup (GPU)

Studies: gd_in_context, icl_task_diversity, grokking, capacity (``mesabench.harness.reproduce``: each study's
module documents its setup and its presets field by field). Writes --out (schema "mesabench.repro/1": the table of
ours vs published, per-seed data, config, seeds, environment, command) and, beside it, the Markdown table (.md)
and the picture (.png). Training checkpoints go under --workdir; --resume continues them (and may replace --out);
--plot_only redraws the .md and .png of an existing --out.
"""
from __future__ import annotations

import json
import os
import time

from absl import flags

from mesabench.harness import cli
from mesabench.harness import provenance
from mesabench.harness import reproduce

_STUDY = flags.DEFINE_string("study", None, f"The study: one of {', '.join(reproduce.STUDY_NAMES)}.")
_PRESET = flags.DEFINE_string("preset", "cpu", "cpu (scaled to 2 CPU cores), paper (the paper's setup) or smoke "
                              "(a toy size for tests).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds: distinct integers in [0, 2**31).")
_OUT = flags.DEFINE_string("out", None, "Result JSON (default runs/repro_STUDY.json); .md and .png go beside it.")
_WORKDIR = flags.DEFINE_string("workdir", os.path.join("runs", "repro_work"), "Folder for training checkpoints.")
_RESUME = flags.DEFINE_bool("resume", False, "Continue from the checkpoints in --workdir (and replace --out).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Start afresh and replace an existing --out.")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "Redraw the .md table and the .png of an existing --out from its "
                               "JSON (no training).")


def _seed(text: str) -> int:
  value = int(text)
  if not 0 <= value < 2**31:
    raise ValueError("out of range")
  return value


def _check_workdir(path: str) -> str:
  if not path:
    raise cli.UsageError("--workdir: must be a folder path")
  if os.path.exists(path) and not os.path.isdir(path):
    raise cli.UsageError(f"--workdir: {path!r} is a file; give a folder")
  existing = os.path.abspath(path)
  while not os.path.exists(existing):  # nothing is created before every flag is checked
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
    raise cli.UsageError(f"--workdir: cannot create or write {path!r} ({existing!r} is not a writable folder)")
  return path


def main(argv):
  del argv
  if _PLOT_ONLY.value:
    if _OUT.value is None or not os.path.isfile(_OUT.value):
      raise cli.UsageError(f"--out: {_OUT.value!r} must be an existing result JSON (needed by --plot_only)")
    try:
      paths = reproduce.redraw(_OUT.value)
    except (OSError, json.JSONDecodeError) as err:
      raise cli.UsageError(f"--out: cannot read {_OUT.value!r} ({err})") from err
    print(f"wrote {', '.join(paths)}")
    return
  if _STUDY.value is None:
    raise cli.UsageError(f"--study: required; one of {', '.join(reproduce.STUDY_NAMES)}")
  if _STUDY.value not in reproduce.STUDY_NAMES:
    raise cli.UsageError(f"--study: must be one of {', '.join(reproduce.STUDY_NAMES)}; got {_STUDY.value!r}")
  try:
    study = reproduce.get(_STUDY.value)
  except ValueError as err:
    raise cli.UsageError(f"--study: {err}") from err
  if _PRESET.value not in study.presets:
    raise cli.UsageError(f"--preset: must be one of {', '.join(sorted(study.presets))} for {study.name}; got "
                         f"{_PRESET.value!r}")
  seeds = cli.split_list("seeds", _SEEDS.value, _seed, "integers in [0, 2**31)")
  if len(set(seeds)) != len(seeds):
    raise cli.UsageError(f"--seeds: must be distinct, got {seeds}")
  if _RESUME.value and _OVERWRITE.value:
    raise cli.UsageError("--resume: cannot be combined with --overwrite (resume continues, overwrite restarts)")
  workdir = _check_workdir(_WORKDIR.value)
  out = _OUT.value if _OUT.value is not None else os.path.join("runs", f"repro_{study.name}.json")
  exists_ok = _RESUME.value or _OVERWRITE.value
  json_path, md_path, png_path = (cli.check_output_path("out", out, exists_ok=exists_ok, suffix=".json",
                                                         resumable=True), *reproduce.output_paths(out)[1:])
  cli.check_output_path("out", md_path, exists_ok=exists_ok, suffix=".md", resumable=True)
  cli.check_output_path("out", png_path, exists_ok=exists_ok, suffix=".png", resumable=True)
  config = study.presets[_PRESET.value]
  command = provenance.command_line("mesabench.benchmarks.reproduce")
  start = time.perf_counter()
  result = study.run(config, tuple(seeds), workdir, _RESUME.value)
  wall = time.perf_counter() - start
  paths = reproduce.write(json_path, study, _PRESET.value, config, seeds, result, command, wall_s=wall)
  print(reproduce.markdown(study, _PRESET.value, seeds, result, command, wall_s=wall))
  budget = study.budget_s.get(_PRESET.value)
  print(f"wrote {', '.join(paths)} in {wall:.0f} s" + (f" (budget {budget:.0f} s)" if budget else ""))


if __name__ == "__main__":
  cli.run(main)
