"""The zoo: registry, configs, hand-counted parameters, learning on a tiny pool, and the lookup / full-search
baselines (the other ground truth: test_baselines.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mesabench import models, tasks
from mesabench.harness import train

NETS = ("mlp", "transformer", "looped", "memory")
TINY = {"mlp": {"width": 16, "depth": 1}, "transformer": {"width": 8, "heads": 2, "layers": 1},
        "looped": {"width": 16, "iterations": 2}, "memory": {"width": 8, "mem_width": 8, "steps": 2}}


@pytest.fixture(scope="module")
def mod_task():
  return tasks.make("ModSearch-v0", bits=6, width=8)


@pytest.fixture(scope="module")
def poly_task():
  return tasks.make("PolyMax-v0", degree=3, max_degree=4)


def test_registry_lists_the_zoo_and_rejects_unknown_ids(mod_task):
  assert set(models.registered()) >= {"mlp", "transformer", "looped", "memory", "lookup", "lookup_instance",
                                      "heuristic", "search"}
  with pytest.raises(ValueError, match="known ids: .*lookup.*mlp"):
    models.make("nope", mod_task.spec)


@pytest.mark.parametrize("model_id,config,name", [
    ("mlp", {"width": 0}, "width"), ("mlp", {"depth": 17}, "depth"), ("transformer", {"width": 10, "heads": 4},
                                                                       "width"),
    ("looped", {"iterations": 0}, "iterations"), ("mlp", {"head": "tree"}, "head"), ("mlp", {"colour": 1}, "colour"),
    ("search", {"budget": 0}, "budget")])
def test_bad_config_names_the_parameter(mod_task, model_id, config, name):
  with pytest.raises(ValueError, match=name):
    models.make(model_id, mod_task.spec, **config)


def test_param_counts_match_hand_counts(mod_task, poly_task):
  spec = mod_task.spec
  h, d = spec.num_classes, 8  # classes head; 8 input bits
  p = models.make("mlp", spec, width=5, depth=2)
  assert p.param_count(p.init(jax.random.key(0))) == d * 5 + 5 + 5 * 5 + 5 + 5 * h + h
  w = 6
  looped = models.make("looped", spec, width=w, iterations=3)
  assert looped.param_count(looped.init(jax.random.key(0))) == (d * w + w) + (2 * w * w + w) + (w * w + w) + 2 * w \
      + w * h + h
  # Transformer on PolyMax (5 scalar tokens, F = 1; interval head H = 2 * bins).
  w, r, bins, length = 8, 2, 4, 5
  hp = 2 * bins
  t = models.make("transformer", poly_task.spec, width=w, heads=2, layers=1, mlp_ratio=r, bins=bins)
  per_layer = 4 * w + 4 * (w * w + w) + (w * r * w + r * w) + (r * w * w + w)
  assert t.param_count(t.init(jax.random.key(0))) == 1 * w + w + length * w + per_layer + 2 * w + w * hp + hp
  # lookup stores the pool: N * input size + N answers; search has no parameters.
  pool = mod_task.pool(jax.random.key(0), 10)
  look = models.make("lookup", spec)
  assert look.param_count(look.fit(look.init(None), pool.inputs, pool.targets)) == 10 * d + 10
  assert models.make("search", spec).param_count({}) == 0


@pytest.mark.parametrize("task_name", ["mod", "poly"])
def test_each_net_learns_a_tiny_pool(task_name, mod_task, poly_task):
  task = mod_task if task_name == "mod" else poly_task
  config = train.TrainConfig(steps=40, batch_size=16, learning_rate=1e-2, eval_size=16, curve_points=1)
  runs = [train.Run(0, 16)]
  data = train.prepare_data(task, runs, config)
  x, y = data.inputs[0], jax.tree_util.tree_map(lambda a: a[0], data.targets)
  for model_id in NETS:
    model = models.make(model_id, task.spec, **TINY[model_id])
    before = float(model.loss(model.init(train._keys(0)["init"]), x, y))
    trained = train.train_runs(task, model, runs, config, data=data)
    after = float(model.loss(jax.tree_util.tree_map(lambda a: a[0], trained.params), x, y))
    assert np.isfinite(after) and after < 0.7 * before, (model_id, before, after)
    pred = model.predict(jax.tree_util.tree_map(lambda a: a[0], trained.params), x)
    assert pred.shape == (16,)


def test_iterative_models_predict_after_every_iteration(mod_task):
  for model_id in ("looped", "memory"):
    model = models.make(model_id, mod_task.spec, **TINY[model_id])
    params = model.init(jax.random.key(1))
    batch = mod_task.sample(jax.random.key(2), 4)
    assert model.predict_iterations(params, batch.inputs, 5).shape == (5, 4)
    np.testing.assert_array_equal(model.predict(params, batch.inputs, iterations=5),
                                  model.predict_iterations(params, batch.inputs, 5)[-1])


@pytest.mark.parametrize("task_name", ["mod", "poly"])
def test_lookup_is_perfect_on_the_pool_and_near_chance_outside(task_name, mod_task, poly_task):
  task = mod_task if task_name == "mod" else poly_task
  pool = task.pool(jax.random.key(3), 24)
  model = models.make("lookup", task.spec)
  params = model.fit(model.init(None), pool.inputs, pool.targets)
  seen = task.score(pool, model.predict(params, pool.inputs))
  assert float(jnp.max(seen["loss"])) == 0.0
  outside = task.sample_outside(jax.random.key(4), 128, pool)
  unseen = task.score(outside, model.predict(params, outside.inputs))
  success = "accuracy" if task_name == "mod" else "hit"
  assert float(jnp.mean(seen[success])) == 1.0
  assert float(jnp.mean(unseen[success])) < 0.35
  assert float(jnp.mean(unseen["loss"])) > 0.01


@pytest.mark.parametrize("params", [dict(bits=8, width=9), dict(bits=6)])
def test_search_with_full_budget_equals_the_modsearch_oracle(params):
  task = tasks.make("ModSearch-v0", **params)
  batch = task.pool(jax.random.key(5), min(200, task.space_size))
  model = models.make("search", task.spec)
  np.testing.assert_array_equal(np.asarray(model.predict({}, batch.inputs)), np.asarray(batch.targets["k"]))
  weak = models.make("search", task.spec, budget=2)
  assert float(jnp.mean(task.score(batch, weak.predict({}, batch.inputs))["accuracy"])) < 0.5


@pytest.mark.parametrize("encoding", ["float", "binary"])
def test_search_with_full_budget_equals_the_polymax_oracle(encoding):
  task = tasks.make("PolyMax-v0", degree=5, max_degree=6, encoding=encoding)
  batch = task.sample(jax.random.key(6), 256)
  model = models.make("search", task.spec)
  scores = task.score(batch, model.predict({}, batch.inputs))
  assert float(jnp.max(scores["regret"])) < 1e-5
  assert float(jnp.mean(scores["hit"])) >= 0.99
  # As the harness calls it: jit of vmap over runs (a fused XLA program once lost flat grid peaks here).
  other = task.pool(jax.random.key(7), 256)
  preds = jax.jit(jax.vmap(model.predict))({}, jnp.stack([batch.inputs, other.inputs]))
  for b, p in ((batch, preds[0]), (other, preds[1])):
    assert float(jnp.max(task.score(b, p)["regret"])) < 1e-5
  weak = models.make("search", task.spec, budget=3)
  assert float(jnp.mean(task.score(batch, weak.predict({}, batch.inputs))["regret"])) > 1e-3
