"""gd_in_context: the documented law reproduces the published GD loss; a smoke run; determinism; a killed run
resumed from its checkpoint ends where an uninterrupted run ends."""
import dataclasses

import jax
import numpy as np
import pytest

from mesabench.harness import reproduce
from mesabench.harness.reproduce import gd_in_context as gd
from mesabench.models import lsa
from mesabench.tasks import linreg


def test_paper_law_gives_the_published_gd_loss():
  """One GD step with tuned eta at d = N = 10, x ~ U(-0.5, 0.5): 0.2047 in the authors' notebook."""
  c = gd.PAPER
  tune = linreg.sample_uniform_tasks(jax.random.key(1), 20000, c.dim, c.context, c.input_range)
  test = linreg.sample_uniform_tasks(jax.random.key(2), 20000, c.dim, c.context, c.input_range)
  eta = linreg.tune_gd_eta(tune.x, tune.y, tune.x_query, tune.y_query)
  pred = lsa.predict(lsa.gd_params(c.dim, c.context, eta), linreg.query_tokens(test.x, test.y, test.x_query))
  loss = 0.5 * float(np.mean((np.asarray(pred) - np.asarray(test.y_query)) ** 2))
  assert abs(loss - 0.2047) < 0.01, loss
  # the text's U(-1, 1) would not give it
  wide = linreg.sample_uniform_tasks(jax.random.key(2), 20000, c.dim, c.context, 2.0)
  eta2 = linreg.tune_gd_eta(wide.x, wide.y, wide.x_query, wide.y_query)
  pred2 = linreg.gd_step_predictions(wide.x, wide.y, wide.x_query, eta2)
  assert 0.5 * float(np.mean((np.asarray(pred2) - np.asarray(wide.y_query)) ** 2)) > 0.6


def test_compare_of_the_construction_with_itself():
  c = gd.SMOKE
  t = linreg.sample_uniform_tasks(jax.random.key(3), 128, c.dim, c.context, c.input_range)
  g = lsa.gd_params(c.dim, c.context, 5.0)
  m = {k: float(v) for k, v in jax.jit(gd.compare)(g, g, t).items()}
  assert m["cosine"] == pytest.approx(1.0, abs=1e-5) and m["grad_diff"] < 1e-6 and m["pred_diff"] < 1e-7
  assert m["loss_trained"] == pytest.approx(m["loss_gd"])
  assert gd.weight_match(g, g) < 1e-6


@pytest.mark.slow
def test_smoke_run_is_deterministic_and_resumes(tmp_path, monkeypatch):
  c = gd.SMOKE
  result = gd.run(c, (0,), str(tmp_path / "a"), False)
  assert len(result.rows) == 6 and all(r.ours is not None and np.isfinite(r.ours) for r in result.rows)
  first = result.data["per_seed"][0]
  assert len(first["curve"]["step"]) == c.steps // c.eval_every + 1 and np.isfinite(first["curve"]["cosine"]).all()
  again = gd.run_seed(c, 0, str(tmp_path / "b"), False, progress=False)
  for key in ("loss_trained", "loss_gd", "cosine", "grad_diff", "pred_diff", "eta"):
    assert again[key] == first[key], key
  # kill a run after its first chunk (checkpointed at step 20), then resume: same numbers as uninterrupted
  real = gd._train_chunk
  calls = {"n": 0}

  def dying(*args):
    calls["n"] += 1
    if calls["n"] == 2:
      raise KeyboardInterrupt
    return real(*args)

  monkeypatch.setattr(gd, "_train_chunk", dying)
  with pytest.raises(KeyboardInterrupt):
    gd.run_seed(c, 0, str(tmp_path / "c"), False, progress=False)
  monkeypatch.setattr(gd, "_train_chunk", real)
  resumed = gd.run_seed(c, 0, str(tmp_path / "c"), True, progress=False)
  for key in ("loss_trained", "cosine", "pred_diff"):
    assert resumed[key] == first[key], key
  gd.plot(result, str(tmp_path / "p.png"))
  assert (tmp_path / "p.png").stat().st_size > 10_000


def test_config_checks():
  with pytest.raises(ValueError, match="eval_every"):
    dataclasses.replace(gd.PAPER, eval_every=300)
  with pytest.raises(ValueError, match="input_range"):
    dataclasses.replace(gd.PAPER, input_range=0.0)
  assert reproduce.get("gd_in_context").presets["paper"] == gd.PAPER
