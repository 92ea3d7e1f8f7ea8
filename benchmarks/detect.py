"""Does a trained model search, memorize, or apply a fixed rule? ``classify`` on one leaderboard entry.

    python -m mesabench.benchmarks.detect --entry='ModSearch-v0/looped/pool=512/...' [--leaderboard=FILE]

Loads the entry's saved parameters when the entry has them (``artifacts.params``, orbax), else re-trains its first
seed through the harness; runs ``mesabench.harness.detect.classify`` on inputs outside its training pool; prints
every signal with its CI and the combined verdict, and stores them in the entry's ``detect`` field (--write).
"""
from __future__ import annotations

from absl import flags

from mesabench.harness import cli
from mesabench.harness import detect
from mesabench.harness import leaderboard

_ENTRY = flags.DEFINE_string("entry", None, "Leaderboard entry id (e.g. 'ModSearch-v0/mlp/pool=64/3f2a9c1e').")
_LEADERBOARD = flags.DEFINE_string("leaderboard", "results/leaderboard.json", "The leaderboard JSON holding the entry.")
_NUM_EXAMPLES = flags.DEFINE_integer("num_examples", 512, "Held-out instances per split (>= 32).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the evaluation instances, reference draws and bootstraps (>= 0).")
_WRITE = flags.DEFINE_bool("write", True, "Write the result into the entry's 'detect' field.")


def main(argv):
  if not _ENTRY.value:
    raise cli.UsageError("--entry: must name a leaderboard entry id")
  if _NUM_EXAMPLES.value < 32:
    raise cli.UsageError(f"--num_examples: must be an integer >= 32, got {_NUM_EXAMPLES.value}")
  if _SEED.value < 0:
    raise cli.UsageError(f"--seed: must be an integer >= 0, got {_SEED.value}")
  doc = leaderboard.read(_LEADERBOARD.value)
  if _WRITE.value:
    cli.check_output_path("leaderboard", _LEADERBOARD.value, exists_ok=True)
  result = detect.detect_entry(doc, _ENTRY.value, leaderboard_path=_LEADERBOARD.value,
                               num_examples=_NUM_EXAMPLES.value, seed=_SEED.value)
  print(f"{_ENTRY.value} (seed {result.evaluated_seed}, parameters {result.params_source})")
  print(result.classification.table())
  if _WRITE.value:
    where = detect.write_into_entry(_LEADERBOARD.value, _ENTRY.value, result.payload(_NUM_EXAMPLES.value,
                                                                                      _SEED.value))
    print(f"wrote the result to {where}")


if __name__ == "__main__":
  cli.run(main)
