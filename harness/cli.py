"""The contract every mesabench binary keeps, in one place: how it starts, fails and asks for help.

Every binary in ``mesabench.benchmarks`` defines its flags at module level (absl's ``flags.DEFINE_*``, as flax's
examples do), keeps its logic in library functions, and ends with ``cli.run(main)``. That gives:

- ``--help`` / ``-h`` / ``--helpfull``: the binary's docstring and flags on stdout, exit 0;
- a bad flag value, a bad config field or an unusable path: ONE line ``error: <field>: <what is allowed>`` on
  stderr and exit 2 (no traceback, no help dump). Library code raises ``ValueError`` naming the field; binaries let
  it propagate (or raise ``UsageError``), and this wrapper turns it into that line;
- no backend noise on a plain CPU machine (jax's "Unable to initialize backend" lines are silenced unless
  ``JAX_PLATFORMS`` is set by the user).

Binaries validate ALL their inputs before any training (``check_*`` helpers below), so a bad value never costs
minutes of work.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from typing import Callable, Sequence

from absl import app
from absl import flags
from absl import logging as absl_logging

EXIT_USAGE = 2


class UsageError(ValueError):
  """A bad command-line input; the message names the field and the allowed values."""


def _quiet_backends() -> None:
  # jax logs a warning per backend plugin it cannot start (a TPU plugin on a CPU machine, say); silence those.
  logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
  absl_logging.set_verbosity(absl_logging.WARNING)  # libraries' INFO lines (orbax's per-save log) are not ours
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def fail(message: str) -> None:
  """Prints ``error: message`` (one line) to stderr and exits 2."""
  print("error: " + " ".join(str(message).split()), file=sys.stderr, flush=True)
  sys.exit(EXIT_USAGE)


def _parse(argv: Sequence[str]) -> list[str]:
  wants_help = any(a in ("--help", "-h", "--helpfull", "-?", "--helpshort") for a in argv[1:])
  if wants_help:
    main = sys.modules.get("__main__")
    doc = (getattr(main, "__doc__", None) or "").strip()
    try:
      if doc:
        print(doc + "\n")
      print(flags.FLAGS.main_module_help(), flush=True)
    except BrokenPipeError:  # `--help | head`
      os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as err:
    fail(str(err))
  return []


def run(main: Callable[[list[str]], int | None], positional: Sequence[str] = ()) -> None:
  """``absl.app.run(main)`` with the error contract above (help exits 0; bad input: one line, exit 2).

  positional: the names of the binary's positional arguments (e.g. ("OLD.json", "NEW.json")); any other count is
  a usage error before ``main`` runs. Binaries without positional arguments take only --flags.
  """
  _quiet_backends()

  def wrapped(argv):
    try:
      if len(argv) - 1 != len(positional):
        if not positional:
          raise UsageError(f"unexpected arguments {argv[1:]}; all inputs are --flags")
        raise UsageError(f"arguments: exactly {' '.join(positional)}, got {argv[1:]}")
      return main(argv)
    except (ValueError, app.UsageError) as err:  # UsageError included: absl's own would print the help
      fail(str(err))

  app.run(wrapped, flags_parser=_parse)


def split_list(name: str, values: Sequence[str] | None, convert: Callable[[str], object] = str,
               allowed: str = "") -> list | None:
  """A list flag's values converted; None when the flag was not given. An empty list is an error."""
  if values is None:
    return None
  values = [v.strip() for v in values]
  if not values or any(v == "" for v in values):
    raise UsageError(f"--{name}: must be a non-empty comma-separated list{' of ' + allowed if allowed else ''}")
  out = []
  for v in values:
    try:
      out.append(convert(v))
    except (TypeError, ValueError) as err:
      raise UsageError(f"--{name}: {v!r} is not allowed; {allowed or err}") from err
  return out


def check_output_path(name: str, path: str, *, exists_ok: bool, suffix: str | None = None,
                      resumable: bool = False) -> str:
  """Checks that ``path`` can be written (its folder exists or can be created, it is not a folder) before any
  work; refuses an existing file unless ``exists_ok`` (--overwrite, or --resume for a ``resumable`` result).
  Returns the path."""
  if not path:
    raise UsageError(f"--{name}: must be a file path")
  if suffix is not None and not path.endswith(suffix):
    raise UsageError(f"--{name}: must end with {suffix!r}, got {path!r}")
  if os.path.isdir(path):
    raise UsageError(f"--{name}: {path!r} is a folder; give a file path")
  if os.path.exists(path) and not exists_ok:
    how = "pass --resume to continue it or --overwrite to replace it" if resumable else "pass --overwrite to replace it"
    raise UsageError(f"--{name}: {path!r} exists; {how}")
  folder = os.path.dirname(os.path.abspath(path)) or "."
  try:  # permission bits say little for root: create the folder and a probe file, as the writer will
    os.makedirs(folder, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-", suffix=".tmp"):
      pass
  except OSError as err:
    raise UsageError(f"--{name}: cannot write {path!r} ({err.strerror or err})") from err
  if os.path.exists(path) and not os.access(path, os.W_OK):
    raise UsageError(f"--{name}: cannot write {path!r} (file is read-only)")
  return path
