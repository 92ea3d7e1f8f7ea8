"""Does a trained model search or memorize? The behavioural signals of one leaderboard entry.

    python -m mesabench.benchmarks.detect --entry='ModSearch-v0/looped/pool=512/...' [--leaderboard=FILE]

Loads the entry's saved parameters when present (else re-trains its first seed through the harness), evaluates
every signal of ``mesabench.harness.detect`` on inputs outside its training pool, prints the verdicts and stores
them in the entry's ``detect`` field.
"""
from __future__ import annotations

from absl import flags

from mesabench.harness import cli
from mesabench.harness import detect
from mesabench.harness import leaderboard

_ENTRY = flags.DEFINE_string("entry", None, "Leaderboard entry id (e.g. 'ModSearch-v0/mlp/pool=64/3f2a9c1e').")
_LEADERBOARD = flags.DEFINE_string("leaderboard", "results/leaderboard.json", "The leaderboard JSON holding the entry.")
_NUM_EXAMPLES = flags.DEFINE_integer("num_examples", 512, "Examples drawn per evaluation split (>= 64).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the evaluation splits and bootstraps (>= 0).")
_WRITE = flags.DEFINE_bool("write", True, "Write the signals into the entry's 'detect' field.")


def main(argv):
  if len(argv) > 1:
    raise cli.UsageError(f"unexpected arguments {argv[1:]}; all inputs are --flags")
  if not _ENTRY.value:
    raise cli.UsageError("--entry: must name a leaderboard entry id")
  if _NUM_EXAMPLES.value < 64:
    raise cli.UsageError(f"--num_examples: must be an integer >= 64, got {_NUM_EXAMPLES.value}")
  if _SEED.value < 0:
    raise cli.UsageError(f"--seed: must be an integer >= 0, got {_SEED.value}")
  doc = leaderboard.read(_LEADERBOARD.value)
  if _WRITE.value:
    cli.check_output_path("leaderboard", _LEADERBOARD.value, exists_ok=True)
  signals, payload = detect.detect_entry(doc, _ENTRY.value, num_examples=_NUM_EXAMPLES.value, seed=_SEED.value)
  print(f"{_ENTRY.value}\n{detect.verdict_table(signals)}")
  if _WRITE.value:
    where = detect.write_into_entry(_LEADERBOARD.value, _ENTRY.value, payload)
    print(f"wrote the signals to {where}")


if __name__ == "__main__":
  cli.run(main)
