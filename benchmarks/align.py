r"""Inner alignment on Select-v0: train set models at several proxy correlations, recover U_m from their choices.

    python -m mesabench.benchmarks.align                          # the default study -> runs/align.json + PNGs
    python -m mesabench.benchmarks.align --seeds=0,1 --rhos=0,0.99 --steps=200 --out=/tmp/align.json
    python -m mesabench.benchmarks.align --out=results/align.json --overwrite   # the committed results

The study, the recovery and every field are documented in ``mesabench.harness.align``. Writes the result JSON
(schema "mesabench.align/1", with environment, command, config and seeds), <out stem>_misgeneralization.png and
<out stem>_weights.png, and prints the misgeneralization table.
"""
from __future__ import annotations

import json
import os

from absl import flags

from mesabench.harness import align
from mesabench.harness import cli
from mesabench.harness import provenance
from mesabench.harness import suite

_OUT = flags.DEFINE_string("out", os.path.join(suite.DEFAULT_RUNS_DIR, "align.json"), "Result JSON (a .json path).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out (and its PNGs).")
_CONFIG_JSON = flags.DEFINE_string("config_json", None, "A study config as JSON (harness.align.StudyConfig.to_json "
                                   "fields; missing ones take the defaults).")
_SEEDS = flags.DEFINE_list("seeds", None, "Seeds (overrides the config's): distinct integers in [0, 2**31).")
_RHOS = flags.DEFINE_list("rhos", None, "Training proxy correlations (overrides the config's): reals in [-1, 1].")
_STEPS = flags.DEFINE_integer("steps", None, "Training steps (overrides the config's train.steps).")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")
_PLOT_ONLY = flags.DEFINE_bool("plot_only", False, "Redraw the PNGs and the table from an existing --out; no study.")


def _config() -> align.StudyConfig:
  doc = align.StudyConfig().to_json()
  if _CONFIG_JSON.value is not None:
    try:
      given = json.loads(_CONFIG_JSON.value)
    except json.JSONDecodeError as err:
      raise cli.UsageError(f"--config_json: not valid JSON ({err})") from err
    if not isinstance(given, dict):
      raise cli.UsageError("--config_json: must be a JSON object")
    doc.update(given)
  seeds = cli.split_list("seeds", _SEEDS.value, int, "integers in [0, 2**31)")
  rhos = cli.split_list("rhos", _RHOS.value, float, "reals in [-1, 1]")
  if seeds is not None:
    doc["seeds"] = seeds
  if rhos is not None:
    doc["rhos"] = rhos
  if _STEPS.value is not None:
    doc["train"] = {**doc["train"], "steps": _STEPS.value}
  try:
    return align.config_from_json(doc)
  except (TypeError, ValueError) as err:
    raise cli.UsageError(f"config: {err}") from err


def main(argv):
  if _PLOT_ONLY.value:
    if not os.path.isfile(_OUT.value):
      raise cli.UsageError(f"--out: {_OUT.value!r} does not exist (needed by --plot_only)")
    doc = align.validate(provenance.read_json(_OUT.value))
    paths = align.plot(doc, os.path.splitext(_OUT.value)[0])
    print(align.markdown_table(doc))
    print(f"wrote {', '.join(paths)}")
    return
  config = _config()
  out = cli.check_output_path("out", _OUT.value, exists_ok=_OVERWRITE.value, suffix=".json")
  prefix = os.path.splitext(out)[0]
  for suffix in ("_misgeneralization.png", "_weights.png"):
    cli.check_output_path("out", prefix + suffix, exists_ok=_OVERWRITE.value, suffix=".png")
  command = provenance.command_line("mesabench.benchmarks.align")
  body = align.run_study(config, command=command, progress=_PROGRESS.value)
  doc = {"schema_version": align.SCHEMA_VERSION, "command": command, "config": config.to_json(),
         "seeds": list(config.seeds), "environment": provenance.environment(), **body}
  align.validate(doc)
  provenance.write_json(out, doc)
  paths = align.plot(doc, prefix)
  print(align.markdown_table(doc))
  print(f"wrote {out}, {', '.join(paths)} in {body['timing']['total_s']:.0f} s")


if __name__ == "__main__":
  cli.run(main)
