"""The phase diagram picture: written from typed rows and from a transitions.json document."""
import math

import pytest

from mesabench.harness import plots
from mesabench.harness import transitions as tr


def _onset(n, lo, hi):
  return tr.Onset(n, (lo, hi), (n,), 1.0 if math.isfinite(n) else 0.0, (True,), 0.95)


ROWS = [plots.Row("mlp(width=4)", 684, (0.9, 0.6, 0.3), _onset(math.inf, math.inf, math.inf), None),
        plots.Row("mlp(width=64)", 12864, (0.5, 0.02, 0.01), _onset(64.0, 16.0, 64.0), _onset(256.0, 64.0, math.inf)),
        plots.Row("mlp(width=256)", 100224, (0.2, 0.01, -0.01), _onset(16.0, 16.0, 16.0),
                  _onset(math.inf, math.inf, math.inf))]


def test_png_is_written(tmp_path):
  path = plots.plot_phase_diagram(str(tmp_path / "sub" / "p.png"), ROWS, [16, 64, 256], title="t")
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_onset_labels():
  assert plots._onset_text("N*_gen", None, 256) == "N*_gen n/a"
  assert plots._onset_text("N*_gen", _onset(math.inf, math.inf, math.inf), 256) == "N*_gen > 256"
  assert plots._onset_text("N*_search", _onset(64.0, 16.0, math.inf), 256) == "N*_search = 64 [16, inf]"


def test_bad_rows_raise():
  with pytest.raises(ValueError, match="gap fraction"):
    plots.plot_phase_diagram("/tmp/never.png", ROWS, [16, 64])
  with pytest.raises(ValueError, match="grid"):
    plots.plot_phase_diagram("/tmp/never.png", ROWS, [64, 16, 256])
  with pytest.raises(ValueError, match="rows"):
    plots.plot_phase_diagram("/tmp/never.png", [], [16])
