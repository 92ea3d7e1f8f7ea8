"""The grokking study: Fourier analyses on planted structure, the step finder, a smoke run, resume, the files."""
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from mesabench.harness import reproduce
from mesabench.harness.reproduce import grokking
from mesabench.tasks import modular


def _planted_embedding(p, d, freqs, noise, seed=0):
  rng = np.random.default_rng(seed)
  x = np.arange(p)
  w = noise * rng.normal(size=(p + 1, d))                       # row p is the "=" token: must be ignored
  for k in freqs:
    w[:p] += np.outer(np.cos(2 * np.pi * k * x / p), rng.normal(size=d))
    w[:p] += np.outer(np.sin(2 * np.pi * k * x / p), rng.normal(size=d))
  w[p] = 100.0
  return w


def test_embedding_norms_find_planted_frequencies():
  p, d = 31, 24
  norms = grokking.embedding_fourier_norms(_planted_embedding(p, d, [3, 11], 0.05), p)
  assert norms.shape == (15, 2)
  assert grokking.key_frequencies(norms, 4.0) == [3, 11]
  # a random embedding has no key frequency at the same threshold
  rand = np.random.default_rng(1).normal(size=(p + 1, 128))
  assert grokking.key_frequencies(grokking.embedding_fourier_norms(rand, p), 4.0) == []


def test_embedding_norms_match_a_direct_projection():
  p, d = 11, 5
  w = np.random.default_rng(2).normal(size=(p, d))
  x = np.arange(p)
  for k in (1, 4):
    c = np.cos(2 * np.pi * k * x / p)
    s = np.sin(2 * np.pi * k * x / p)
    want = [np.linalg.norm(c @ w) / np.linalg.norm(c), np.linalg.norm(s @ w) / np.linalg.norm(s)]
    np.testing.assert_allclose(grokking.embedding_fourier_norms(w, p)[k - 1], want, rtol=1e-10)


def test_neuron_fractions_on_planted_neurons():
  p = 23
  a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
  a, b = a.reshape(-1), b.reshape(-1)
  w = 2 * np.pi / p
  pure = np.cos(w * 5 * a) * np.cos(w * 5 * b) + np.sin(w * 5 * a)                 # frequency 5 only
  linear = np.cos(w * 7 * a) + 2.0 * np.sin(w * 7 * b)                                                # freq 7 only
  mixed = np.cos(w * 2 * (a + b)) + np.cos(w * 9 * (a + b))                                          # half and half
  dead = np.zeros(p * p)
  fr = grokking.neuron_frequency_fractions(np.stack([pure, linear, mixed, dead], axis=1), p)
  assert fr.shape == (4, 11)
  assert fr[0, 4] == pytest.approx(1.0, abs=1e-9) and fr[1, 6] == pytest.approx(1.0, abs=1e-9)
  assert fr[2, 1] == pytest.approx(0.5, abs=1e-9) and fr[2, 8] == pytest.approx(0.5, abs=1e-9)
  assert np.all(fr[3] == 0.0)
  assert np.all(fr.sum(axis=1) <= 1 + 1e-9)
  # a neuron of frequency 3 plus frequency-8 noise carrying ~10 % of its variance: share ~0.9
  noisy = np.cos(w * 3 * (a + b)) + np.sqrt(0.1 / 0.9) * np.cos(w * 8 * (a - b))
  assert grokking.neuron_frequency_fractions(noisy[:, None], p)[0, 2] == pytest.approx(0.9, abs=1e-9)


def test_first_step():
  steps = np.array([10, 20, 30, 40])
  assert grokking.first_step(steps, [0.5, 0.99, 0.96, 1.0], 0.99, strict=False) == 20
  assert grokking.first_step(steps, [0.5, 0.95, 0.96, 1.0], 0.95, strict=True) == 30
  assert grokking.first_step(steps, [0.1, 0.2, 0.3, 0.4], 0.95, strict=True) is None


def test_config_validation_names_fields():
  with pytest.raises(ValueError, match="p must be odd"):
    grokking.GrokkingConfig(p=12)
  with pytest.raises(ValueError, match="multiples of eval_every"):
    grokking.GrokkingConfig(steps=1001)
  with pytest.raises(ValueError, match="d_model must be divisible"):
    grokking.GrokkingConfig(d_model=30)
  assert grokking.STUDY.presets["paper"] == grokking.GrokkingConfig()


@pytest.mark.slow
def test_smoke_run_resume_and_files(tmp_path):
  study = reproduce.get("grokking")
  cfg = study.presets["smoke"]
  work = str(tmp_path / "work")
  res = study.run(cfg, (0, 1), work, False)
  per = res.data["per_seed"]
  assert [s["seed"] for s in per] == [0, 1] and len(per[0]["steps"]) == cfg.steps // cfg.eval_every
  assert per[0]["train_size"] == int(0.5 * 121) and per[0]["train_size"] + per[0]["test_size"] == 121
  assert all(0.0 <= v <= 1.0 for v in per[0]["train_acc"] + per[0]["test_acc"])
  assert per[0]["train_acc"] != per[1]["train_acc"]                 # the seeds differ
  # same seeds, fresh run: identical numbers; resumed from the final checkpoint: identical, no step re-run
  again = study.run(cfg, (0, 1), str(tmp_path / "work2"), False)
  assert again.data["per_seed"][0]["test_acc"] == per[0]["test_acc"]
  resumed = study.run(cfg, (0, 1), work, True)
  assert resumed.data["per_seed"][1]["test_loss"] == per[1]["test_loss"]
  assert resumed.data["per_seed"][1]["steps_run"] == 0
  out = str(tmp_path / "out" / "repro_grokking.json")
  paths = reproduce.write(out, study, "smoke", cfg, (0, 1), res, "python -m test")
  assert all(os.path.exists(p) for p in paths)
  doc = json.load(open(paths[0]))
  assert doc["config"]["p"] == 11 and len(doc["rows"]) == 6


@pytest.mark.slow
def test_resume_from_a_middle_checkpoint_equals_a_straight_run(tmp_path):
  cfg = grokking.GrokkingConfig(p=11, frac_train=0.5, d_model=16, heads=2, d_mlp=32, lr=3e-3, steps=40,
                                eval_every=10, checkpoint_every=20)
  straight = grokking.train_seed(cfg, 0, str(tmp_path / "a"), False)
  # an interrupted run: 20 of the 40 steps done, checkpointed as train_seed does
  init, chunk, _ = grokking._programs(cfg)
  state = init(0)
  hist = np.full((4, 4), np.nan, np.float32)
  for i in range(2):
    state, m = chunk(state, jnp.asarray(modular.split(11, 0.5, 0)[0]))
    hist[i] = np.asarray(m)
  with reproduce.Checkpointer(str(tmp_path / "b"), "grokking", cfg, 0, every=20, resume=False) as ck:
    ck.save(20, {**state, "history": hist, "train_s": np.asarray(1.5)})
  resumed = grokking.train_seed(cfg, 0, str(tmp_path / "b"), True)
  assert resumed["steps_run"] == 20 and resumed["train_s"] > 1.5           # earlier runs' seconds carried over
  assert resumed["test_acc"] == straight["test_acc"] and resumed["train_loss"] == straight["train_loss"]
