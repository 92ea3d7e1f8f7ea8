r"""Issue 13's trained-searchers study on Maze-v0: recurrent_conv trained with the recurrent-network recipe on small
mazes; test-time compute curves on larger mazes, classify verdicts beside the ground truth, linear probes of its
hidden state, pictures and leaderboard entries; with --part=polymax|modsearch, the same for a looped model on that
task (curves, classify, probes of its state against the task's search), beside its control and ground truth.

    python -m mesabench.benchmarks.searchers                        # default preset -> runs/searchers.json
    python -m mesabench.benchmarks.searchers --preset=smoke --out=/tmp/s.json
    python -m mesabench.benchmarks.searchers --preset=dt_blocks --out=runs/searchers_dt_blocks.json   # baseline
    python -m mesabench.benchmarks.searchers --preset=ca7 --out=runs/searchers_ca7.json   # 7x7 training, ~45 min
    python -m mesabench.benchmarks.searchers --preset=erase --out=runs/searchers_erase.json   # erase-only answer
    python -m mesabench.benchmarks.searchers --preset=erase_local --out=runs/searchers_erase_local.json   # 3x3 look
    python -m mesabench.benchmarks.searchers --out=results/searchers.json --overwrite   # the committed copy

Beside --out it writes <stem>_curves.png, <stem>_probes.png, <stem>_mazes.png, <stem>_anatomy.png,
<stem>_leaderboard.json and the trained parameters (<stem>_leaderboard.params/, orbax). Training saves its state
every ``checkpoint_every`` steps (<stem>_leaderboard.ckpt/); --resume reuses the saved parameters when the config
is the same (no retraining), or continues an interrupted training from its latest checkpoint, and recomputes
everything else. What is measured: ``mesabench.harness.maze_study``.
"""
from __future__ import annotations

import os

from absl import flags

from mesabench.harness import cli
from mesabench.harness import maze_study
from mesabench.harness import provenance
from mesabench.harness import searchers
from mesabench.harness import suite

_PART = flags.DEFINE_enum("part", "maze", ["maze"] + sorted(searchers.PARTS),
                          "Which part: maze (recurrent_conv on Maze-v0, the study with probes and pictures) or a "
                          "task part of harness.searchers.PARTS (polymax: looped; modsearch: looped_transformer), "
                          "each beside its control and ground truth.")
_PRESET = flags.DEFINE_enum("preset", "default", sorted(maze_study.PRESETS), "Maze study preset: default (the "
                            "cellular-automaton step, <= 20 min on 2 CPU cores), ca7 (the CA step with 2 blocks and "
                            "bounded states trained on 7x7 mazes, ~45 min), erase (an erase-only answer without a "
                            "hidden state, 5x5 training), erase_local (the same reading only a 3x3 "
                            "neighbourhood per iteration, with the soft minimum's gradient), dt_blocks (the "
                            "deep-thinking block layout, the baseline beside it) or smoke (seconds; learns nothing).")
_SEEDS = flags.DEFINE_list("seeds", None, "Seeds, >= 2 distinct integers in [0, 2**31) (default: the preset's).")
_OUT = flags.DEFINE_string("out", os.path.join(suite.DEFAULT_RUNS_DIR, "searchers.json"),
                           "Result JSON to write (a .json path); pictures and the leaderboard go beside it.")
_RESUME = flags.DEFINE_bool("resume", False, "Reuse the trained parameters saved beside an existing --out, or "
                             "continue its interrupted training from the latest checkpoint (maze part).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out.")


def main(argv):
  del argv
  if _RESUME.value and _OVERWRITE.value:
    raise cli.UsageError("--resume and --overwrite: give at most one")
  seeds = cli.split_list("seeds", _SEEDS.value, int, "integers in [0, 2**31)")
  if _PART.value != "maze":
    return _run_part(seeds)
  preset = maze_study.check_preset(_PRESET.value)
  if seeds is not None:
    preset["seeds"] = seeds
    try:
      maze_study.check_preset(preset)
    except ValueError as err:
      raise cli.UsageError(f"--seeds: {err}") from err
  out = cli.check_output_path("out", _OUT.value, exists_ok=_RESUME.value or _OVERWRITE.value, suffix=".json",
                               resumable=True)
  stem = os.path.splitext(out)[0]
  for suffix in ("_curves.png", "_probes.png", "_mazes.png", "_anatomy.png", "_leaderboard.json"):
    cli.check_output_path("out", stem + suffix, exists_ok=True)
  doc = maze_study.run_study(preset, out, resume=_RESUME.value, preset_name=_PRESET.value,
                             command=provenance.command_line("mesabench.benchmarks.searchers"))
  for line in maze_study.summary_lines(doc):
    print(line)
  print(f"wrote {out}")


def _run_part(seeds):
  if seeds is not None and (len(set(seeds)) != len(seeds) or any(not 0 <= x < 2**31 for x in seeds)):
    raise cli.UsageError(f"--seeds must be distinct integers in [0, 2**31), got {seeds}")
  out = cli.check_output_path("out", _OUT.value, exists_ok=_OVERWRITE.value, suffix=".json")
  stem = out[:-5]
  for suffix in ("_curves.png", "_leaderboard.json"):
    cli.check_output_path("out", stem + suffix, exists_ok=_OVERWRITE.value)
  if _RESUME.value:
    raise cli.UsageError("--resume applies to --part=maze only; give --overwrite to replace a task part's result")
  command = provenance.command_line("mesabench.benchmarks.searchers")
  result = searchers.run_part(searchers.PARTS[_PART.value], seeds=tuple(seeds or (0, 1, 2)), command=command)
  doc = searchers.part_document(result, command)
  for path in searchers.write_part(doc, [m.entry for m in result.models], out):
    print(f"wrote {path}")


if __name__ == "__main__":
  cli.run(main)
