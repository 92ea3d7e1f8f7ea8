"""The capacity study: the bits formula on hand-computed cases, sizes, the slope, a smoke run, the transitions hook."""
import json
import math

import numpy as np
import pytest

from mesabench.harness import reproduce
from mesabench.harness.reproduce import capacity


def test_stored_bits_hand_computed():
  # a perfectly memorized set stores every label bit: N log2 C
  assert capacity.stored_bits(np.zeros(100), 16) == pytest.approx(400.0)
  # chance (uniform prediction, CE = ln C each) stores nothing
  assert capacity.stored_bits(np.full(100, math.log(16)), 16) == pytest.approx(0.0, abs=1e-9)
  # half the examples certain, half at chance: half the bits
  ce = np.r_[np.zeros(50), np.full(50, math.log(4))]
  assert capacity.stored_bits(ce, 4) == pytest.approx(100.0)
  # a binary label predicted with p = 0.75 on the right class: 1 - log2(1 / 0.75) bits = 0.585 bits
  assert capacity.stored_bits([-math.log(0.75)], 2) == pytest.approx(1 + math.log2(0.75))
  # worse than chance is negative
  assert capacity.stored_bits([math.log(4)], 2) == pytest.approx(-1.0)
  with pytest.raises(ValueError):
    capacity.stored_bits([-0.1], 2)


def test_sizes_and_slope():
  cfg = capacity.CapacityConfig(classes=16, label_bits_per_param=(1.0, 2.0, 8.0))
  assert capacity.sizes(100, cfg) == [25, 50, 200]                          # N = r * P / log2(16)
  assert capacity.slope_through_origin([100, 200, 400], [250, 500, 1000]) == pytest.approx(2.5)
  assert capacity.slope_through_origin([1, 2], [1, 3]) == pytest.approx((1 + 6) / 5)


def test_num_params_matches_the_mlp_formula():
  cfg = capacity.CapacityConfig(dim=16, classes=16, depth=2)
  w = 32   # in*w + w + (depth - 1)(w*w + w) + w*H + H (models.mlp)
  assert capacity.num_params(cfg, w) == 16 * w + w + (w * w + w) + w * 16 + 16


def test_config_validation():
  with pytest.raises(ValueError, match="steps must be even"):
    capacity.CapacityConfig(steps=101)
  with pytest.raises(ValueError, match="widths"):
    capacity.CapacityConfig(widths=(4, 4))
  with pytest.raises(ValueError, match="classes"):
    capacity.CapacityConfig(classes=1)


def test_analyse_on_a_hand_made_result():
  cfg = capacity.CapacityConfig(dim=4, classes=4, widths=(2,), label_bits_per_param=(1.0, 4.0), steps=10)
  p = 10
  ns = capacity.sizes(p, cfg)                                               # [5, 20]
  ln4 = math.log(4)
  # N = 5 memorized exactly; N = 20 with half its labels at chance -> 40 - 10 * 2 = 20 bits: the max
  res = np.array([[[0.0, 0.0, 1.0], [20 * ln4, 10 * ln4, 0.5]]])
  out = capacity.analyse(cfg, [p], res)
  assert ns == [5, 20]
  assert out["bits"][0] == pytest.approx([10.0, 20.0])
  assert out["capacity_bits"] == pytest.approx([20.0]) and out["capacity_n"] == [20]
  assert out["bits_per_param"] == pytest.approx([2.0]) and out["slope"] == pytest.approx(2.0)
  assert out["exact_memorization_bits_per_param"] == pytest.approx([1.0])   # 5 labels * 2 bits / 10 params


@pytest.mark.slow
def test_smoke_run_and_files(tmp_path):
  study = reproduce.get("capacity")
  cfg = study.presets["smoke"]
  res = study.run(cfg, (0, 1), str(tmp_path / "w"), False)
  d = res.data
  assert len(d["per_seed"]) == 2 and len(d["params"]) == len(cfg.widths)
  for s in d["per_seed"]:
    for i, p in enumerate(d["params"]):
      top = [n * math.log2(cfg.classes) for n in d["sizes"][i]]
      assert all(b <= t + 1e-6 for b, t in zip(s["bits"][i], top))       # never more than the labels hold
  again = study.run(cfg, (0, 1), str(tmp_path / "w"), True)                # resumed: nothing re-trained
  np.testing.assert_array_equal(again.data["per_seed"][1]["bits"], d["per_seed"][1]["bits"])
  out = tmp_path / "repro_capacity.json"
  reproduce.write(str(out), study, "smoke", cfg, (0, 1), res, "python -m test")
  assert capacity.bits_per_param(str(out)) == pytest.approx(d["bits_per_param"]["mean"])
  assert json.loads(out.read_text())["study"] == "capacity"


@pytest.mark.slow
def test_a_wide_net_stores_a_small_set_exactly(tmp_path):
  # far below capacity (labels at 1 bit per parameter) a trained mlp memorizes: >= 95 % of the label bits
  cfg = capacity.CapacityConfig(dim=8, classes=4, widths=(16,), label_bits_per_param=(1.0,), steps=600)
  res = capacity.train_width(cfg, 16, 0)
  p = capacity.num_params(cfg, 16)
  n = capacity.sizes(p, cfg)[0]
  bits = n * 2 - res[0, 1] / math.log(2)
  assert bits >= 0.95 * n * 2 and res[0, 2] == 1.0


def test_bits_per_param_rejects_a_missing_or_foreign_file(tmp_path):
  with pytest.raises(ValueError, match="no capacity result"):
    capacity.bits_per_param(str(tmp_path / "none.json"))
  other = tmp_path / "x.json"
  other.write_text(json.dumps({"study": "grokking"}))
  with pytest.raises(ValueError, match="not a capacity result"):
    capacity.bits_per_param(str(other))
