"""The size laws: fitted exponents as the constructions promise, the crossover with a memorizing table, and the
committed figures reproduced."""
import json
import os

import numpy as np
import pytest

from mesabench.models.compiled import size_law

RESULTS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "results")
DEGREE = 6

def test_size_law_exponents():
  result = size_law.size_law(max_exp=22, min_exp=8, progress=False)
  exps = {a: d["exponents"] for a, d in result["archs"].items()}
  assert abs(exps["recurrent"]["num_params"] - 0.0) <= 0.05
  assert abs(exps["unrolled"]["num_params"] - 0.7) <= 0.05
  assert abs(exps["wide"]["num_params"] - 0.7) <= 0.05
  # Banded: n**0.4 bands times log2(K) digits of the restoring square root; per digit the law is n**0.4.
  assert abs(exps["banded"]["num_params_per_digit"] - 0.4) <= 0.05
  assert 0.4 < exps["banded"]["num_params"] <= 0.6
  assert abs(exps["recurrent"]["flops_per_query"] - 0.7) <= 0.05
  assert exps["wide"]["depth"] < 0.2 and abs(exps["unrolled"]["depth"] - 0.7) <= 0.05
  assert abs(result["table"]["exponent"] - 1.0) <= 0.1
  # The recurrent cell beats the table almost at once; the others only once the table has grown.
  # (153 float64 parameters = 9,792 bits: the table of n_max * 8 bits is that large at n_max = 1,224.)
  assert result["archs"]["recurrent"]["crossover_n_max"] == pytest.approx(1224, rel=0.01)
  assert result["archs"]["banded"]["crossover_n_max"] is not None


def test_crossover_interpolates():
  grid = [2**e for e in range(4, 9)]
  assert size_law.crossover(grid, [10, 10, 10, 10, 10], [1, 2, 4, 8, 16]) == pytest.approx(2**7 * 2**(5 / 8 - 0.0),
                                                                                         rel=0.3)
  assert size_law.crossover(grid, [10] * 5, [1] * 5) is None
  assert size_law.crossover(grid, [1] * 5, [10] * 5) == 16.0


def test_size_law_grows_linearly_in_g():
  result = size_law.polymax_size_law(max_log2=12, min_log2=3, degree=DEGREE, refine_steps=(0, 2))
  assert abs(result["refine"]["0"]["exponents"]["num_params"] - 1.0) <= 0.05
  assert abs(result["refine"]["0"]["exponents"]["flops_per_query"] - 1.0) <= 0.05
  assert result["refine"]["0"]["series"]["num_mul_units"] == [0] * len(result["grid_points"])
  # Refinement adds a constant number of parameters (and 2 (d-1 + d(d+1)) Mul units), and divides the
  # conditional bound by zoom**(2R).
  assert result["refine"]["2"]["series"]["num_mul_units"] == [2 * (5 + 42)] * len(result["grid_points"])
  p0, p2 = result["refine"]["0"]["series"]["num_params"], result["refine"]["2"]["series"]["num_params"]
  # The extra parameters: the zoom stages' own (constant) plus the coefficients' parts carried through the
  # stage-0 tournament, whose depth grows by 3 layers per doubling of G: a constant increment per doubling.
  assert len(set(np.diff(np.subtract(p2, p0)))) == 1 and p2[-1] - p0[-1] < 0.05 * p0[-1]
  b0, b2 = result["refine"]["0"]["bound_per_m2"], result["refine"]["2"]["bound_per_m2"]
  assert np.allclose(np.divide(b0, b2), 4.0**4)



def test_committed_figures_match_a_recount_up_to_2_pow_16():
  """The committed size law's series agree with a recount on the first 13 grid points (2**4 .. 2**16)."""
  with open(os.path.join(RESULTS, "compiled_size_law.json"), encoding="utf-8") as f:
    committed = json.load(f)["figures"]
  fresh = size_law.size_law(max_exp=16, progress=False)
  for arch, d in fresh["archs"].items():
    for key, values in d["series"].items():
      assert committed["archs"][arch]["series"][key][:len(values)] == values, (arch, key)
  assert committed["table"]["bits"][:13] == fresh["table"]["bits"]


def test_report_and_summary():
  result = {"n_max": [2**10, 2**11], "table": {"bits": [1, 2], "exponent": 1.0},
            "archs": {"recurrent": {"exponents": {"num_params": 0.0, "num_params_per_digit": -0.1,
                                                  "num_connections": 0.0, "depth": 0.7, "flops_per_query": 0.7},
                                    "series": {"num_params": [153, 153]}, "crossover_n_max": None}},
            "polymax": {"degree": 6, "zoom": 4, "grid_points": [5], "refine": {}}}
  doc = size_law.report(result, {"backend": "cpu"}, "python -m x")
  assert doc["config"]["models"]["recurrent"]["id"] == "compiled/recurrent" and doc["figures"] is result
  assert "never" in size_law.summary(result) and "2^11" in size_law.summary(result)
  with pytest.raises(ValueError, match="max_exp"):
    size_law.measure(9)
