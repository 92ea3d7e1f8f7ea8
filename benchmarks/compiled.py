"""Compiled search networks: explain one unit by unit, or measure how their size grows with n_max.

  python -m mesabench.benchmarks.compiled --explain --arch=recurrent --n=1024
  python -m mesabench.benchmarks.compiled --explain --arch=polymax --grid_points=9 --refine_steps=1
  python -m mesabench.benchmarks.compiled --size_law

--explain prints what every unit of the network computes (the affine map read off its weights, and its meaning),
then the activations of the first --steps iterations (looped archs) and the iterations where the answer changes,
and checks the result against the seed's loop (``mesabench.models.compiled.explain``); it also writes the text to
--out/compiled_explain_<arch>_n<n>.txt (polymax: _g<G>_r<R>.txt). --size_law writes --out/compiled_size_law.json
and .png (``mesabench.models.compiled.size_law``). --out is runs/ by default; the committed results/ change only
when asked: --out=results --overwrite.
"""
from __future__ import annotations

import os

from absl import flags

from mesabench.harness import cli
from mesabench.harness import provenance
from mesabench.harness import suite
from mesabench.models.compiled import explain
from mesabench.models.compiled import registry
from mesabench.models.compiled import size_law

_EXPLAIN = flags.DEFINE_bool("explain", False, "Print the network unit by unit and a trace for --n.")
_SIZE_LAW = flags.DEFINE_bool("size_law", False, "Measure sizes vs n_max; write compiled_size_law.{json,png}.")
_ARCH = flags.DEFINE_enum("arch", "recurrent", list(registry.registered()), "Architecture for --explain.")
_N = flags.DEFINE_integer("n", 1024, "The query n for --explain (1 <= n <= n_max).")
_N_MAX = flags.DEFINE_integer("n_max", 0, "n_max of the explained network (0: the smallest power of two >= max(n, 16)).")
_STEPS = flags.DEFINE_integer("steps", 3, "Iterations whose every activation --explain prints (looped archs).")
_MAX_EXP = flags.DEFINE_integer("max_exp", 30, "--size_law: largest log2(n_max), in [10, 30].")
_GRID_POINTS = flags.DEFINE_integer("grid_points", 9, "--explain --arch=polymax: grid points G.")
_REFINE_STEPS = flags.DEFINE_integer("refine_steps", 1, "--explain --arch=polymax: zoom stages.")
_ZOOM = flags.DEFINE_integer("zoom", 4, "--explain --arch=polymax: spacing shrink per zoom stage.")
_COEFFS = flags.DEFINE_list("coeffs", [str(c) for c in explain.DEFAULT_COEFFS],
                            "--explain --arch=polymax: coefficients, ascending powers (default: peaks at 0.2, 0.81).")
_OUT = flags.DEFINE_string("out", suite.DEFAULT_RUNS_DIR, "Output folder.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace existing output files.")


def _explain_path() -> str:
  if _ARCH.value == "polymax":
    name = f"compiled_explain_polymax_g{_GRID_POINTS.value}_r{_REFINE_STEPS.value}.txt"
  else:
    name = f"compiled_explain_{_ARCH.value}_n{_N.value}.txt"
  return cli.check_output_path("out", os.path.join(_OUT.value, name), exists_ok=_OVERWRITE.value)


def main(argv):
  if _EXPLAIN.value == _SIZE_LAW.value:
    raise cli.UsageError("--explain, --size_law: pass exactly one")
  if _EXPLAIN.value:
    path = _explain_path()
    if _ARCH.value == "polymax":
      coeffs = cli.split_list("coeffs", _COEFFS.value, float, "numbers (ascending powers)")
      text = explain.render(explain.explain_polymax(_GRID_POINTS.value, _REFINE_STEPS.value, coeffs, _ZOOM.value))
    else:
      text = explain.render(explain.explain_modsearch(_ARCH.value, _N.value, _N_MAX.value, _STEPS.value))
    print(text, end="")
    provenance.write_text(path, text)
    print(f"wrote {path}")
    return
  if not size_law.MIN_MAX_EXP <= _MAX_EXP.value <= size_law.MAX_MAX_EXP:
    raise cli.UsageError(f"--max_exp: must be in [{size_law.MIN_MAX_EXP}, {size_law.MAX_MAX_EXP}], "
                         f"got {_MAX_EXP.value}")
  json_path = cli.check_output_path("out", os.path.join(_OUT.value, "compiled_size_law.json"),
                                    exists_ok=_OVERWRITE.value)
  png_path = cli.check_output_path("out", os.path.join(_OUT.value, "compiled_size_law.png"),
                                   exists_ok=_OVERWRITE.value)
  result = size_law.measure(_MAX_EXP.value)
  doc = size_law.report(result, provenance.environment(), provenance.command_line("mesabench.benchmarks.compiled"))
  os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
  provenance.write_json(json_path, doc)
  size_law.plot(result, png_path)
  print(size_law.summary(result))
  print(f"wrote {json_path} and {png_path}")


if __name__ == "__main__":
  cli.run(main)
