"""icl_task_diversity: M* from the transition machinery on hand-made distances, the config checks, and a smoke run
(every per-position number finite; dMMSE and ridge coincide for the Gaussian run)."""
import dataclasses
import math

import numpy as np
import pytest

from mesabench.harness.reproduce import icl_task_diversity as icl


def test_threshold_on_hand_made_distances():
  sizes = [1, 4, 16, 64, 256]
  ridge = np.array([[5, 5, 5], [4, 4, 4], [1, 1, 3], [0.5, 0.5, 0.5], [0.2, 0.2, 0.2]], float)
  dmmse = np.array([[0.1, 0.1, 0.1], [0.5, 0.5, 0.5], [2, 2, 2], [2, 2, 2], [2, 2, 2]], float)
  onset = icl.threshold(sizes, ridge, dmmse)
  assert onset.n_star == 16 and onset.holds == (False, False, True, True, True)
  assert onset.per_seed == (16.0, 16.0, 64.0)  # seed 3's ridge distance at 16 is above its dMMSE distance
  assert 16 <= onset.ci[0] <= onset.ci[1] <= 64
  never = icl.threshold(sizes, dmmse * 10, dmmse)
  assert math.isinf(never.n_star)
  with pytest.raises(ValueError, match="shape"):
    icl.threshold(sizes, ridge[:3], dmmse)


def test_config_checks_and_runs():
  assert icl.PAPER.runs[-1] == math.inf and len(icl.PAPER.runs) == 22
  with pytest.raises(ValueError, match="pool_sizes"):
    dataclasses.replace(icl.SMOKE, pool_sizes=(4, 2))
  with pytest.raises(ValueError, match="width"):
    dataclasses.replace(icl.SMOKE, width=15)
  with pytest.raises(ValueError, match="eval_chunk"):
    dataclasses.replace(icl.SMOKE, eval_chunk=7)
  assert icl.CPU.to_dict()["pool_sizes"] == list(icl.CPU.pool_sizes)


@pytest.mark.slow
def test_smoke_run(tmp_path):
  c = icl.SMOKE
  result = icl.run(c, (0, 1), str(tmp_path), False)
  assert len(result.rows) == 5
  per = result.data["per_seed_per_run"]
  assert len(per) == 2 and len(per[0]) == len(c.runs)
  for seed_runs in per:
    for run in seed_runs:
      for split in ("pool", "fresh"):
        for values in run[split].values():
          assert len(values) == c.length and np.isfinite(values).all() and min(values) >= 0
    gauss = seed_runs[-1]["fresh"]
    np.testing.assert_allclose(gauss["dmmse"], gauss["ridge"])  # M = inf: dMMSE is ridge
    one = seed_runs[0]["pool"]
    assert one["dmmse"][1] < 1e-3  # M = 1: after one example dMMSE knows the task (error ~ 0)
  icl.plot(result, str(tmp_path / "p.png"))
  assert (tmp_path / "p.png").stat().st_size > 10_000
