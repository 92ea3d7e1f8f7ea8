"""What every result file carries: environment, versions, git commit, command; and how it is written (atomically).

Every JSON file mesabench writes goes through ``write_json``: it is serialized to a temporary file in the target
folder and moved into place with ``os.replace``, so a reader (or a killed run) never sees half a file.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import jax
import numpy as np

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "numpy", "absl-py", "mesabench")
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git_commit() -> str:
  """The commit of the source tree this package runs from, with '+dirty' when it has uncommitted changes.

  'unknown' when the package does not run from a git checkout (a wheel install).
  """
  try:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO_ROOT, capture_output=True, text=True,
                          timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_REPO_ROOT,
                           capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    return head + ("+dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def versions() -> dict[str, str]:
  out = {"python": platform.python_version()}
  for name in _PACKAGES:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = "not installed"
  return out


def environment() -> dict[str, Any]:
  """Backend, device, versions, git commit, host and time of this process: the 'environment' block of results."""
  devices = jax.devices()
  return {
      "backend": jax.default_backend(),
      "device_kind": devices[0].device_kind if devices else "none",
      "device_count": len(devices),
      "platform": platform.platform(),
      "machine": platform.machine(),
      "cpu_count": os.cpu_count(),
      "host": socket.gethostname(),
      "versions": versions(),
      "git_commit": git_commit(),
      "x64": bool(jax.config.read("jax_enable_x64")),
      "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
  }


def command_line(module: str | None = None, argv: list[str] | None = None) -> str:
  """The shell command that re-creates this run: ``python -m MODULE ARGS`` (or the script and its args)."""
  argv = list(sys.argv if argv is None else argv)
  head = ["python", "-m", module] if module else ["python", argv[0]]
  return " ".join(shlex.quote(a) for a in head + argv[1:])


def _jsonable(obj: Any) -> Any:
  if isinstance(obj, dict):
    return {str(k): _jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_jsonable(v) for v in obj]
  if isinstance(obj, (np.generic,)):
    return _jsonable(obj.item())
  if isinstance(obj, (np.ndarray, jax.Array)):
    return _jsonable(np.asarray(obj).tolist())
  if isinstance(obj, float) and not np.isfinite(obj):
    return None
  return obj


def _atomic(path: str, write: Callable[[Any], Any]) -> str:
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    # mkstemp creates the file 0600; results are for sharing: honour the umask as open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise
  return path


def write_json(path: str, obj: Any) -> str:
  """Writes ``obj`` as JSON to ``path`` atomically (temp file in the same folder, fsync, os.replace); returns path.

  numpy/jax scalars and arrays become JSON numbers and lists. Non-finite floats (NaN, +-inf) become null: strict
  JSON has none, and one rule holds everywhere (readers show null as "n/a", the compare gate fails on it).
  """
  def dump(f):
    json.dump(_jsonable(obj), f, indent=1, sort_keys=False, allow_nan=False)
    f.write("\n")
  return _atomic(path, dump)


def write_text(path: str, text: str) -> str:
  """Writes ``text`` to ``path`` atomically (temp file in the same folder, fsync, os.replace); returns path."""
  return _atomic(path, lambda f: f.write(text))


def read_json(path: str) -> Any:
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def time_call(fn: Callable[[], Any], *, repeats: int = 5, min_time: float = 0.2) -> float:
  """Median seconds of one ``fn()`` call (after one warm-up call that also compiles); results are blocked on.

  Each repeat runs ``fn`` enough times to last at least ``min_time`` seconds and reports the per-call average.
  """
  jax.block_until_ready(fn())
  samples = []
  for _ in range(repeats):
    count, start = 0, time.perf_counter()
    while True:
      jax.block_until_ready(fn())
      count += 1
      elapsed = time.perf_counter() - start
      if elapsed >= min_time:
        break
    samples.append(elapsed / count)
  return float(np.median(samples))
