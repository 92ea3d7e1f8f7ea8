#!/usr/bin/env bash
# The layer contract (.importlinter) checked by import-linter. setup.py maps the top-level folders to
# mesabench.<name>, which import-linter's scanner cannot follow, so the package is assembled as it installs
# (copies of the sources in a temporary folder) and checked there.
set -euo pipefail
cd "$(dirname "$0")/.."
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/mesabench"
cp mesabench/__init__.py "$stage/mesabench/"
for d in tasks kernels models harness benchmarks; do
  (find "$d" -name '*.py' -not -path '*/__pycache__/*' -print0 | cpio -0pdm --quiet "$stage/mesabench") 2>/dev/null \
    || find "$d" -name '*.py' -not -path '*/__pycache__/*' -exec install -D -m 644 {} "$stage/mesabench/{}" \;
done
config="$PWD/.importlinter"
cd "$stage"  # the checkout's own mesabench/ (only __init__.py) must not shadow the staged package
PYTHONPATH="$stage" lint-imports "$config"
