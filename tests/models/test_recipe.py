"""The recurrent-network training recipe: progressive loss (gradient only through the last k iterations), random T,
recall, and their parameter checks."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mesabench import models, tasks
from mesabench.harness import train
from mesabench.models import looped


def _setup(width=8, iterations=6, recall=True):
  task = tasks.make("PolyMax-v0", degree=3)
  model = models.make("looped", task.spec, width=width, iterations=iterations, recall=recall, bins=8)
  params = model.init(jax.random.key(0))
  batch = task.sample(jax.random.key(1), 16)
  return task, model, params, batch


def _manual_outputs(model, params_early, params_late, inputs, total, n, detach_early):
  """An independent unrolled Python loop of the looped net: iterations 1..n use ``params_early`` (their state
  stop-gradient-ed when ``detach_early``), the rest ``params_late``; returns the head output after ``total``."""
  width = model.options["width"]

  def embed(p):
    return nn.Dense(width).apply({"params": p["embed"]}, inputs.reshape(inputs.shape[0], -1))

  def step(p, h, e):
    z = nn.gelu(nn.Dense(width).apply({"params": p["block"]["mix"]}, jnp.concatenate([h, e], axis=-1)))
    return nn.LayerNorm().apply({"params": p["block"]["norm"]}, h + nn.Dense(width).apply(
        {"params": p["block"]["update"]}, z))

  h = jnp.zeros((inputs.shape[0], width))
  for t in range(1, total + 1):
    p = params_early if t <= n else params_late
    h = step(p, h, embed(p))
    if t <= n and detach_early:
      h = jax.lax.stop_gradient(h)
  return nn.Dense(model.out_size).apply({"params": params_late["head"]}, h)


@pytest.mark.parametrize("n,k", [(0, 3), (2, 1), (3, 3), (1, 4)])
def test_progressive_gradient_flows_only_through_the_last_k_iterations(n, k):
  task, model, params, batch = _setup()
  x = batch.inputs

  def via_model(p):
    out = model.outputs(p, x, iterations=n + k + 1, detach_before=n)
    return jnp.sum(out[n + k - 1] ** 2)

  def manual(pe, pl, detach_early):
    return jnp.sum(_manual_outputs(model, pe, pl, x, n + k, n, detach_early) ** 2)

  g_model = jax.grad(via_model)(params)
  g_early, g_late = jax.grad(manual, argnums=(0, 1))(params, params, True)
  # nothing reaches the parameters through iterations 1..n ...
  assert all(float(jnp.abs(a).max()) == 0.0 for a in jax.tree_util.tree_leaves(g_early))
  # ... and the model's gradient is exactly the late iterations' gradient of the unrolled reference
  for a, b in zip(jax.tree_util.tree_leaves(g_model), jax.tree_util.tree_leaves(g_late)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=1e-6)
  if n > 0:  # without the detach, the early iterations do get gradient (the check above could fail)
    g_early_free, _ = jax.grad(manual, argnums=(0, 1))(params, params, False)
    assert max(float(jnp.abs(a).max()) for a in jax.tree_util.tree_leaves(g_early_free["block"])) > 0


def test_recipe_loss_reduces_to_the_last_iteration_loss():
  task, model, params, batch = _setup(iterations=5)
  last = models.make("looped", task.spec, width=8, iterations=5, bins=8, loss_on="last")
  want = last.loss(params, batch.inputs, batch.targets)
  got = model.recipe_loss(params, batch.inputs, batch.targets, jax.random.key(0), 0.0, 5, 5)
  np.testing.assert_allclose(float(got), float(want), rtol=1e-6)
  # alpha = 1 with n drawn: the loss after n + k <= T iterations; equal to some iteration's loss
  per_t = [float(jnp.mean(models.base.head_loss(task.spec, "classes", 8, o, batch.targets)))
           for o in model.outputs(params, batch.inputs, iterations=5)]
  prog = float(model.recipe_loss(params, batch.inputs, batch.targets, jax.random.key(7), 1.0, 5, 5))
  assert min(abs(prog - v) for v in per_t) < 1e-5


def test_no_recall_starts_from_the_embedding():
  task, model, params, batch = _setup(recall=False)
  assert params["block"]["mix"]["kernel"].shape == (8, 8)  # reads h alone
  out = model.outputs(params, batch.inputs, iterations=3)
  assert out.shape == (3, 16, model.out_size) and bool(jnp.all(jnp.isfinite(out)))


def test_recipe_training_is_deterministic_and_learns():
  task = tasks.make("PolyMax-v0", degree=3)
  model = models.make("looped", task.spec, width=16, iterations=4, bins=8)
  cfg = train.TrainConfig(steps=60, batch_size=32, eval_size=64, stratum_size=32, curve_points=2,
                          progressive_alpha=0.5, iterations_range=(2, 6), test_iterations=12)
  runs = [train.Run(0, 128)]
  a = train.run_experiment(task, model, runs, cfg)
  b = train.run_experiment(task, model, runs, cfg)
  assert a[0].splits == b[0].splits
  assert a[0].curve["train_loss"][-1] < a[0].curve["train_loss"][0]
  assert len(a[0].iterations["heldout_loss"]) == 12
  assert cfg.to_dict()["iterations_range"] == [2, 6]
  assert "progressive_alpha" not in train.TrainConfig().to_dict()  # default configs keep their entry ids


@pytest.mark.parametrize("kw,name", [({"progressive_alpha": 1.5}, "progressive_alpha"),
                                     ({"progressive_alpha": -0.1}, "progressive_alpha"),
                                     ({"iterations_range": (0, 4)}, r"iterations_range\[0\]"),
                                     ({"iterations_range": (5, 3)}, r"iterations_range\[0\]"),
                                     ({"iterations_range": (1, 2000)}, r"iterations_range\[1\]"),
                                     ({"iterations_range": 4}, "iterations_range")])
def test_bad_recipe_parameters(kw, name):
  with pytest.raises(ValueError, match=name):
    train.TrainConfig(**kw)


def test_recipe_needs_a_model_that_supports_it():
  task = tasks.make("PolyMax-v0", degree=3)
  mlp = models.make("mlp", task.spec, width=8)
  with pytest.raises(ValueError, match="progressive_alpha"):
    train.train_runs(task, mlp, [train.Run(0, 16)], train.TrainConfig(steps=2, progressive_alpha=0.5))
  with pytest.raises(ValueError, match="iterations"):
    models.make("looped", task.spec, iterations=0)
  with pytest.raises(ValueError, match="recall"):
    models.make("looped", task.spec, recall="yes")


def test_looped_transformer_answers_larger_modsearch():
  task = tasks.make("ModSearch-v0", bits=10, width=12)
  model = models.make("looped_transformer", task.spec, head="bits", width=16, heads=2, iterations=3)
  assert models.base.answers_larger(model, task)
  params = model.init(jax.random.key(0))
  big = task.larger().sample(jax.random.key(0), 4)
  assert model.predict_iterations(params, big.inputs, iterations=5).shape == (5, 4)
  assert looped.positions(7, 6).shape == (7, 6)
  with pytest.raises(ValueError, match="width"):
    models.make("looped_transformer", task.spec, width=10, heads=4)


def test_larger_maze_is_answered_only_by_models_that_take_any_grid():
  task = tasks.make("Maze-v0", size=4)
  assert task.larger().spec.input_shape != task.spec.input_shape
  assert models.base.answers_larger(models.make("recurrent_conv", task.spec, width=4, blocks=1, iterations=2), task)
  for mid in ("lookup", "mlp"):  # stored S x S rows / a weight per cell: not applicable, never a crash
    assert not models.base.answers_larger(models.make(mid, task.spec), task)
