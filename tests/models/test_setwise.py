"""Set models for Select-v0: permutation equivariance, padding, any k, the search baselines, bad specs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mesabench.models as models
import mesabench.tasks as tasks

TASK = tasks.make("Select-v0", k_min=3, k_max=6, d_causal=2, d_proxy=1, rho=0.9)
TRAINED = [("set_transformer", {"width": 16, "heads": 2, "layers": 2}), ("set_scorer", {"width": 16}),
           ("set_scorer", {"width": 16, "pooling": "mean"})]


def _net(mid, cfg):
  model = models.make(mid, TASK.spec, **cfg)
  params = model.init(jax.random.key(0))
  # perturb the initialization so that no layer is trivially symmetric
  leaves, tree = jax.tree_util.tree_flatten(params)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  params = jax.tree_util.tree_unflatten(tree, [p + 0.3 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])
  # jitted: one compile per input shape instead of op-by-op execution
  return model, params, jax.jit(model.scores), jax.jit(model.predict)


@pytest.mark.parametrize("mid, cfg", TRAINED)
def test_permutation_equivariance(mid, cfg):
  model, params, scores, predict = _net(mid, cfg)
  batch = TASK.sample(jax.random.key(2), 16)
  logits = np.asarray(scores(params, batch.inputs))
  rng = np.random.default_rng(0)
  for _ in range(3):
    perm = rng.permutation(TASK.k_max)  # moves padding rows too: the validity flag travels with its row
    permuted = np.asarray(scores(params, batch.inputs[:, perm]))
    assert np.allclose(permuted, logits[:, perm], atol=1e-4, rtol=1e-4)
    # the chosen candidate is the same one (its index permuted), unless two logits tie
    choice = np.asarray(predict(params, batch.inputs))
    choice_p = np.asarray(predict(params, batch.inputs[:, perm]))
    assert np.array_equal(perm[choice_p], choice)
  # not a constant function: the logits of valid candidates differ
  assert np.std(logits[np.asarray(batch.info["mask"])]) > 1e-3


@pytest.mark.parametrize("mid, cfg", TRAINED)
def test_padding_is_ignored_and_any_k_is_accepted(mid, cfg):
  model, params, scores, predict = _net(mid, cfg)
  batch = TASK.sample(jax.random.key(3), 8)
  logits = np.asarray(scores(params, batch.inputs))
  mask = np.asarray(batch.info["mask"])
  assert np.all(logits[~mask] <= -1e8) and np.all(np.abs(logits[mask]) < 1e6)
  wide = jnp.concatenate([batch.inputs, jnp.zeros((8, 10, TASK.d + 1))], axis=1)  # 10 more padding rows
  logits_wide = np.asarray(scores(params, wide))
  assert np.allclose(logits_wide[:, :TASK.k_max][mask], logits[mask], atol=1e-4)
  padded = batch.inputs.at[:, :, :-1].set(jnp.where(batch.inputs[..., -1:] > 0, batch.inputs[..., :-1], 7.0))
  assert np.allclose(np.asarray(scores(params, padded))[mask], logits[mask], atol=1e-4)  # pad contents
  many = TASK.with_candidates(64, 64).sample(jax.random.key(4), 4)
  pred = np.asarray(predict(params, many.inputs))
  assert pred.shape == (4,) and np.all((pred >= 0) & (pred < 64))


def test_set_models_train_a_step_and_lower_the_loss():
  model = models.make("set_scorer", TASK.spec, width=16)
  params = model.init(jax.random.key(0))
  batch = TASK.sample(jax.random.key(5), 256)
  loss_and_grad = jax.jit(jax.value_and_grad(model.loss))
  loss0, grads = loss_and_grad(params, batch.inputs, batch.targets)
  params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
  assert float(loss_and_grad(params, batch.inputs, batch.targets)[0]) < float(loss0)
  assert np.isfinite(float(loss0))


def test_select_search_is_the_oracle_and_the_proxy_argmax():
  batch = TASK.sample(jax.random.key(6), 512)
  aligned = models.make("select_search", TASK.spec)
  proxy = models.make("select_search", TASK.spec, objective="proxy")
  assert np.array_equal(np.asarray(aligned.predict({}, batch.inputs)), np.asarray(batch.targets["k"]))
  assert np.array_equal(np.asarray(proxy.predict({}, batch.inputs)), np.asarray(batch.info["proxy_k"]))
  # brute force: the proxy objective is the sum of proxy features over sqrt(d_proxy)
  feats = np.asarray(batch.info["features"], np.float64)
  up = np.where(np.asarray(batch.info["mask"]), feats[..., TASK.d_causal:].sum(-1), -np.inf)
  assert np.array_equal(np.argmax(up, 1), np.asarray(proxy.predict({}, batch.inputs)))
  assert not aligned.trainable and aligned.param_count({}) == 0


def test_lookup_serves_select_as_a_memorizer():
  pool = TASK.pool(jax.random.key(7), 128)
  model = models.make("lookup", TASK.spec)
  params = model.fit(model.init(jax.random.key(0)), pool.inputs, pool.targets)
  assert np.array_equal(np.asarray(model.predict(params, pool.inputs)), np.asarray(pool.targets["k"]))


@pytest.mark.parametrize("mid", ["set_transformer", "set_scorer", "select_search"])
def test_bad_spec_and_config(mid):
  with pytest.raises(ValueError, match="spec"):
    models.make(mid, tasks.make("ModSearch-v0", bits=6).spec)
  with pytest.raises(ValueError):
    models.make(mid, TASK.spec, colour="red")


def test_bad_config_names_the_field():
  with pytest.raises(ValueError, match="pooling"):
    models.make("set_scorer", TASK.spec, pooling="max")
  with pytest.raises(ValueError, match="objective"):
    models.make("select_search", TASK.spec, objective="U")
  with pytest.raises(ValueError, match="head"):
    models.make("set_transformer", TASK.spec, head="bits")
  with pytest.raises(ValueError, match="width"):
    models.make("set_transformer", TASK.spec, width=33, heads=2)


def test_zoo_search_serves_select_through_the_task_hooks():
  batch = TASK.sample(jax.random.key(9), 256)
  full = models.make("search", TASK.spec)
  proxy = models.make("search", TASK.spec, strategy="proxy")
  assert np.array_equal(np.asarray(full.predict({}, batch.inputs)), np.asarray(batch.targets["k"]))
  assert np.array_equal(np.asarray(proxy.predict({}, batch.inputs)), np.asarray(batch.info["proxy_k"]))
  # a budget of 1 candidate always answers index 0; budget b scans the first b candidates (brute force)
  assert np.all(np.asarray(models.make("search", TASK.spec, budget=1).predict({}, batch.inputs)) == 0)
  u = np.asarray(batch.info["utility"], np.float64)
  count = np.asarray(batch.info["count"])
  want = [int(np.argmax(u[i, :min(3, count[i])])) for i in range(256)]
  assert np.asarray(models.make("search", TASK.spec, budget=3).predict({}, batch.inputs)).tolist() == want
