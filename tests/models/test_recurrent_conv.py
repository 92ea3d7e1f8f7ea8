"""recurrent_conv: shapes, the parameter-count formula, any grid size, weight sharing across cells, the
iterative-module interface (detach_before, return_states), and the "cells" head against numpy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mesabench import models
from mesabench.models import base
from mesabench.tasks.core import Spec


def maze_spec(size: int, channels: int = 6) -> Spec:
  return Spec("Maze-v0", (size, size, channels), "bits", "cells", task_params=(("size", size),))


def grids(seed: int, batch: int, size: int, channels: int = 6) -> jax.Array:
  return (jax.random.uniform(jax.random.key(seed), (batch, size, size, channels)) > 0.5).astype(jnp.float32)


@pytest.mark.parametrize("width,blocks,recall,channels,kernel,bias,monotone,memory,head", [
    (8, 1, True, 6, 3, False, False, True, 3), (5, 2, False, 6, 3, False, False, True, 3),
    (1, 1, True, 3, 3, False, False, True, 3), (12, 3, True, 2, 3, False, False, True, 3),
    (8, 1, True, 6, 1, False, False, True, 3), (6, 2, True, 6, 1, True, False, True, 3),
    (5, 1, False, 3, 3, True, False, True, 3), (6, 2, True, 6, 1, True, True, True, 3),
    (4, 1, False, 6, 3, False, True, True, 3), (6, 2, True, 6, 1, True, True, False, 3),
    (3, 1, True, 4, 3, False, True, False, 3), (6, 2, True, 6, 1, True, True, False, 1),
    (8, 1, True, 6, 3, False, False, True, 1)])
def test_param_count_matches_the_formula(width, blocks, recall, channels, kernel, bias, monotone, memory, head):
  m = models.make("recurrent_conv", maze_spec(5, channels), width=width, blocks=blocks, recall=recall, iterations=2,
                  block_kernel=kernel, bias=bias, monotone=monotone, memory=memory, head_kernel=head)
  params = m.init(jax.random.key(0))
  c, w, h = channels, width, max(width // 2, 1)
  reads = (w if memory else 0) + (1 if monotone else 0) + (c if recall else 0)  # the recall conv's inputs
  hand = (9 * c * w if memory else 0) + 9 * reads * w + blocks * 2 * kernel * kernel * w * w
  hand += head * head * (w * h + h)  # head_a (w -> h) and head_b (h -> 1)
  assert params["step"]["head_a"]["kernel"].shape[:2] == (head, head)
  assert ("project" in params) == memory
  if bias:  # one per output channel of every conv: project (with memory), recall, 2 per block, head_a, head_b
    hand += (w if memory else 0) + w + blocks * 2 * w + h + 1
  assert m.param_count(params) == hand == m.predicted_param_count()


def test_shapes_any_size_and_any_iterations():
  m = models.make("recurrent_conv", maze_spec(4), width=6, blocks=1, iterations=3)
  params = m.init(jax.random.key(0))
  assert m.outputs(params, grids(0, 2, 4)).shape == (3, 2, 16)
  assert m.predict(params, grids(0, 2, 4)).shape == (2, 4, 4)
  assert m.predict_iterations(params, grids(1, 3, 9), 7).shape == (7, 3, 9, 9)
  out, states = m.outputs(params, grids(0, 2, 4), iterations=5, return_states=True)
  assert out.shape == (5, 2, 16) and states.shape == (5, 2, 4, 4, 6)
  assert m.states(params, grids(0, 2, 4), 4).shape == (4, 2, 4, 4, 6)
  # The prediction is the thresholded logit, reshaped.
  np.testing.assert_array_equal(np.asarray(m.predict_iterations(params, grids(0, 2, 4), 5)),
                                (np.asarray(out) > 0).astype(np.int32).reshape(5, 2, 4, 4))
  # The first iterations do not depend on how many follow.
  np.testing.assert_allclose(np.asarray(m.outputs(params, grids(0, 2, 4), iterations=2)), np.asarray(out[:2]),
                             rtol=1e-5, atol=1e-6)


def test_weights_are_shared_across_cells():
  """Translating the input translates the output exactly (away from the grid's zero-padded border, which the
  receptive field of 1 + 3 * 2 + 2 cells per side does not reach here)."""
  m = models.make("recurrent_conv", maze_spec(6), width=4, blocks=1, iterations=2)
  assert m.shares_weights_across_positions
  params = m.init(jax.random.key(1))
  small = grids(2, 1, 6)
  big = jnp.zeros((1, 30, 30, 6)).at[:, 12:18, 12:18].set(small)
  shifted = jnp.zeros((1, 30, 30, 6)).at[:, 13:19, 11:17].set(small)
  a = np.asarray(m.outputs(params, big)).reshape(2, 30, 30)
  b = np.asarray(m.outputs(params, shifted)).reshape(2, 30, 30)
  np.testing.assert_allclose(a[:, 10:20, 10:20], b[:, 11:21, 9:19], rtol=1e-5, atol=1e-6)
  assert np.abs(a[:, 10:20, 10:20]).max() > 0


def _loss_at(m, spec, x, target):
  """loss(params, n, at): the head loss after iteration at + 1 of 6, with the first n iterations detached."""
  def loss(p, n, at):
    out = m.outputs(p, x, iterations=6, detach_before=n)
    return jnp.mean(base.head_loss(spec, m.head, m.bins, out[at], target))
  return loss


def test_detach_before_stops_gradients_through_early_iterations():
  """With the state after n iterations detached, the loss at iteration n + k has the gradient of running only k
  iterations from that (constant) state; the projection conv, used only before iteration 1, gets none."""
  spec = maze_spec(4)
  m = models.make("recurrent_conv", spec, width=4, blocks=1, iterations=6)
  params = m.init(jax.random.key(3))
  x = grids(4, 2, 4)
  target = {"path": (grids(5, 2, 4, 1)[..., 0] > 0).astype(jnp.int32)}
  loss = _loss_at(m, spec, x, target)
  g_full = jax.grad(loss)(params, None, 5)
  g0 = jax.grad(loss)(params, jnp.int32(0), 5)
  for a, b in zip(jax.tree_util.tree_leaves(g_full), jax.tree_util.tree_leaves(g0)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)  # n = 0 detaches nothing
  g3 = jax.grad(loss)(params, jnp.int32(3), 4)  # the loss at iteration 5 (index 4)
  assert float(jnp.abs(g3["project"]["kernel"]).max()) == 0.0
  assert float(jnp.abs(g_full["project"]["kernel"]).max()) > 0.0
  # Reference: gradient of 2 more iterations from the state after 3, treated as a constant.
  _, states = m.outputs(params, x, iterations=3, return_states=True)
  h3 = jax.lax.stop_gradient(states[-1])

  def two_more(p):  # iterations 4 and 5 from the constant state h3; the loss at iteration 5
    h = h3
    for _ in range(2):
      h, logit = _step(p, h, x, m.options)
    return jnp.mean(base.head_loss(spec, m.head, m.bins, logit, target))
  g_ref = jax.grad(two_more)(params)
  for path in (("step", "recall", "kernel"), ("step", "block0_a", "kernel"), ("step", "head_a", "kernel"),
               ("project", "kernel")):
    a, b = g3, g_ref
    for k in path:
      a, b = a[k], b[k]
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)
  # The loss at an iteration <= n reaches only the head.
  g_early = jax.grad(loss)(params, jnp.int32(3), 2)
  assert float(jnp.abs(g_early["step"]["recall"]["kernel"]).max()) == 0.0
  assert float(jnp.abs(g_early["step"]["head_a"]["kernel"]).max()) > 0.0


def _conv(x, k, b=None):
  y = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return y if b is None else y + b


def _layer(p, x):
  return _conv(x, p["kernel"], p.get("bias"))


def _step(p, h, x, options, answer=None, combine=jnp.minimum):
  """One iteration written out by hand from the module docstring (an independent reference); with ``monotone``
  the answer logits so far [B, S, S, 1] come in and the new logit is their minimum with the head's; without
  ``memory`` the recall conv does not read h."""
  s = p["step"]
  seen = [h] if options.get("memory", True) else []
  if answer is not None:
    seen.append(1 / (1 + jnp.exp(-answer)))
  u = _layer(s["recall"], jnp.concatenate(seen + ([x] if options["recall"] else []), axis=-1))
  for i in range(options["blocks"]):
    z = jax.nn.relu(_layer(s[f"block{i}_a"], u))
    u = jax.nn.relu(u + _layer(s[f"block{i}_b"], z))
  if options["state_bound"] is not None:
    u = jnp.clip(u, 0.0, options["state_bound"])
  logit = _layer(s["head_b"], jax.nn.relu(_layer(s["head_a"], u)))
  if answer is not None:
    return u, combine(answer, logit)
  return u, logit.reshape(logit.shape[0], -1)


@pytest.mark.parametrize("kernel,bias,bound", [(3, False, None), (1, True, None), (1, True, 0.05)])
def test_forward_equals_the_hand_written_recurrence(kernel, bias, bound):
  m = models.make("recurrent_conv", maze_spec(5), width=6, blocks=2, iterations=4, block_kernel=kernel, bias=bias,
                  state_bound=bound)
  params = m.init(jax.random.key(7))
  if bias:  # flax initializes biases at zero: make them count
    params = jax.tree_util.tree_map_with_path(
        lambda path, a: a + 0.1 if path[-1].key == "bias" else a, params)
  assert params["step"]["block0_a"]["kernel"].shape[:2] == (kernel, kernel)
  x = grids(8, 3, 5)
  h = jax.nn.relu(_layer(params["project"], x))
  if bound is not None:
    h = jnp.minimum(h, bound)
  ref = []
  for _ in range(4):
    h, logit = _step(params, h, x, m.options)
    ref.append(logit)
  np.testing.assert_allclose(np.asarray(m.outputs(params, x)), np.asarray(jnp.stack(ref)), rtol=1e-4, atol=1e-5)
  states = np.asarray(m.outputs(params, x, return_states=True)[1])
  if bound is None:
    assert states.max() > 0.05  # so the bounded case below does bite
  else:
    assert states.max() == np.float32(bound) and states.min() >= 0.0


@pytest.mark.parametrize("recall,memory,head", [(True, True, 3), (False, True, 3), (True, False, 3), (True, False, 1)])
def test_monotone_answer_equals_the_hand_written_recurrence_and_only_falls(recall, memory, head):
  """``monotone``: logit_t = min(logit_{t-1}, head(h_t)) from +MONOTONE_START, the recall conv reading
  sigmoid(logit_{t-1}) (and h_{t-1} only with ``memory``); each cell's answer never rises with t, however long the
  model runs."""
  m = models.make("recurrent_conv", maze_spec(5), width=6, blocks=2, iterations=4, block_kernel=1, bias=True,
                  state_bound=2.0, monotone=True, recall=recall, memory=memory, head_kernel=head)
  params = jax.tree_util.tree_map_with_path(
      lambda path, a: a + 0.1 if path[-1].key == "bias" else a, m.init(jax.random.key(11)))
  assert params["step"]["head_b"]["kernel"].shape[:2] == (head, head)
  x = grids(12, 3, 5)
  h = jnp.minimum(jax.nn.relu(_layer(params["project"], x)), 2.0) if memory else jnp.zeros((3, 5, 5, 6))
  answer = jnp.full((3, 5, 5, 1), 1e4)
  ref = []
  for _ in range(4):
    h, answer = _step(params, h, x, m.options, answer)
    ref.append(answer.reshape(3, -1))
  out = np.asarray(m.outputs(params, x))
  np.testing.assert_allclose(out, np.asarray(jnp.stack(ref)), rtol=1e-4, atol=1e-5)
  long = np.asarray(m.outputs(params, x, iterations=40))
  assert np.all(np.diff(long, axis=0) <= 0)
  assert np.any(np.diff(long, axis=0) < 0)  # it does fall somewhere (the min bites)


def test_monotone_detach_stops_the_answers_gradient_too():
  """The carried answer of iterations <= n is a constant like the state: the loss at n + k then gets no gradient
  through the projection (used only before iteration 1), and equals the loss of k iterations from constants."""
  spec = maze_spec(4)
  m = models.make("recurrent_conv", spec, width=4, blocks=1, iterations=6, block_kernel=1, bias=True,
                  monotone=True)
  params = m.init(jax.random.key(13))
  x = grids(14, 2, 4)
  target = {"path": (grids(15, 2, 4, 1)[..., 0] > 0).astype(jnp.int32)}
  loss = _loss_at(m, spec, x, target)
  g3 = jax.grad(loss)(params, jnp.int32(3), 4)
  assert float(jnp.abs(g3["project"]["kernel"]).max()) == 0.0
  assert float(jnp.abs(jax.grad(loss)(params, None, 4)["project"]["kernel"]).max()) > 0.0
  out3, states = m.outputs(params, x, iterations=3, return_states=True)
  h3, a3 = jax.lax.stop_gradient(states[-1]), jax.lax.stop_gradient(out3[-1].reshape(2, 4, 4, 1))

  def two_more(p):
    h, a = h3, a3
    for _ in range(2):
      h, a = _step(p, h, x, m.options, a)
    return jnp.mean(base.head_loss(spec, m.head, m.bins, a.reshape(2, -1), target))
  g_ref = jax.grad(two_more)(params)
  for a, b in zip(jax.tree_util.tree_leaves(g3["step"]), jax.tree_util.tree_leaves(g_ref["step"])):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_min_temperature_keeps_the_forward_and_gives_the_soft_minimums_gradient(temperature):
  """``min_temperature``: the answer is still exactly min(answer, head) (the forward pass equals the hard model's,
  bit for bit), but its gradient is the soft minimum's: d/d head = sigmoid((answer - head) / tau), d/d answer = the
  rest. Reference: the same recurrence written by hand with the soft minimum -tau log(e^(-a/tau) + e^(-b/tau)),
  whose gradient is exactly that (its forward value differs, so only gradients are compared)."""
  spec = maze_spec(4)
  config = dict(width=4, blocks=1, iterations=5, block_kernel=1, bias=True, monotone=True, memory=False,
                head_kernel=1)
  soft = models.make("recurrent_conv", spec, min_temperature=temperature, **config)
  hard = models.make("recurrent_conv", spec, **config)
  params = jax.tree_util.tree_map_with_path(
      lambda path, a: a + 0.3 if path[-1].key == "bias" else a, soft.init(jax.random.key(21)))
  x = grids(22, 2, 4)
  np.testing.assert_array_equal(np.asarray(soft.outputs(params, x)), np.asarray(hard.outputs(params, x)))
  target = {"path": (grids(23, 2, 4, 1)[..., 0] > 0).astype(jnp.int32)}

  def model_loss(p, model):
    return jnp.mean(base.head_loss(spec, model.head, model.bins, model.outputs(p, x)[-1], target))

  def soft_step(a, b):  # the soft minimum's value; with a = 1e4 it is b up to float32 rounding
    return -temperature * jnp.logaddexp(-a / temperature, -b / temperature)

  def hand_loss(p):
    """The hard forward with the soft minimum's local gradient: the value of min(a, b), the gradient of soft."""
    def combine(a, b):
      s = soft_step(a, b)
      return jax.lax.stop_gradient(jnp.minimum(a, b)) + (s - jax.lax.stop_gradient(s))

    answer, h = jnp.full((2, 4, 4, 1), 1e4), jnp.zeros((2, 4, 4, 4))
    for _ in range(5):
      h, answer = _step(p, h, x, soft.options, answer, combine)
    return jnp.mean(base.head_loss(spec, soft.head, soft.bins, answer.reshape(2, -1), target))

  g_soft, g_hard, g_ref = (jax.grad(model_loss)(params, soft), jax.grad(model_loss)(params, hard),
                           jax.grad(hand_loss)(params))
  for a, b in zip(jax.tree_util.tree_leaves(g_soft), jax.tree_util.tree_leaves(g_ref)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)
  differs = [float(jnp.abs(a - b).max()) for a, b in zip(jax.tree_util.tree_leaves(g_soft),
                                                          jax.tree_util.tree_leaves(g_hard))]
  assert max(differs) > 1e-4  # the soft gradient is not the hard one (the test would not see a no-op)


def test_cells_head_loss_against_numpy_bce():
  spec = maze_spec(3)
  rng = np.random.default_rng(0)
  out = rng.normal(size=(4, 9)).astype(np.float32) * 3
  path = (rng.random((4, 3, 3)) > 0.6).astype(np.int32)
  got = np.asarray(base.head_loss(spec, "classes", 64, jnp.asarray(out), {"path": jnp.asarray(path)}))
  o, y = out.astype(np.float64), path.reshape(4, 9).astype(np.float64)
  p = 1 / (1 + np.exp(-o))
  want = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)), axis=1)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert base.head_size(spec, "classes", 64) == 9
  pred = np.asarray(base.head_predict(spec, "classes", 64, jnp.asarray(out)))
  np.testing.assert_array_equal(pred, (out > 0).astype(np.int32).reshape(4, 3, 3))
  # A bigger grid through the same head: S = isqrt(H).
  assert base.head_predict(spec, "classes", 64, jnp.zeros((2, 5, 36))).shape == (2, 5, 6, 6)
  with pytest.raises(ValueError, match="square"):
    base.head_predict(spec, "classes", 64, jnp.zeros((2, 10)))


def test_mlp_answers_a_cells_task_with_a_weight_per_cell():
  m = models.make("mlp", maze_spec(4), width=8, depth=1)
  params = m.init(jax.random.key(0))
  assert m.predict(params, grids(0, 3, 4)).shape == (3, 4, 4)
  assert not m.shares_weights_across_positions


@pytest.mark.parametrize("config,name", [({"width": 0}, "width"), ({"width": 513}, "width"),
                                         ({"iterations": 0}, "iterations"), ({"blocks": 0}, "blocks"),
                                         ({"recall": 1}, "recall"), ({"loss_on": "first"}, "loss_on"),
                                         ({"block_kernel": 2}, "block_kernel"), ({"block_kernel": True}, "block_kernel"),
                                         ({"bias": "yes"}, "bias"), ({"state_bound": 0}, "state_bound"),
                                         ({"state_bound": -1.0}, "state_bound"), ({"state_bound": True}, "state_bound"),
                                         ({"state_bound": "1"}, "state_bound"), ({"state_bound": 1e7}, "state_bound"),
                                         ({"monotone": 1}, "monotone"), ({"monotone": "yes"}, "monotone"),
                                         ({"memory": 0}, "memory"), ({"memory": False}, "memory"),
                                         ({"memory": False, "monotone": True, "recall": False}, "memory"),
                                         ({"head_kernel": 2}, "head_kernel"), ({"head_kernel": True}, "head_kernel"),
                                         ({"min_temperature": 1.0}, "min_temperature"),
                                         ({"monotone": True, "min_temperature": 0}, "min_temperature"),
                                         ({"monotone": True, "min_temperature": True}, "min_temperature"),
                                         ({"monotone": True, "min_temperature": 1e4}, "min_temperature"),
                                         ({"depth": 3}, "depth")])
def test_bad_config_names_the_parameter(config, name):
  with pytest.raises(ValueError, match=name):
    models.make("recurrent_conv", maze_spec(5), **config)


def test_needs_a_grid_spec():
  with pytest.raises(ValueError, match="input_shape"):
    models.make("recurrent_conv", Spec("X", (10,), "bits", "cells"))


def test_recipe_trains_on_a_maze_batch():
  """A few recipe steps (progressive loss, random T) lower the loss on a fixed batch; iterations < 1 and alpha
  outside [0, 1] are refused."""
  import optax
  spec = maze_spec(4)
  m = models.make("recurrent_conv", spec, width=8, blocks=1, iterations=4)
  params = m.init(jax.random.key(0))
  x = grids(1, 16, 4)
  y = {"path": (grids(2, 16, 4, 1)[..., 0] > 0).astype(jnp.int32)}
  tx = optax.adam(1e-2)
  state = tx.init(params)

  @jax.jit
  def step(p, s, i):
    loss, g = jax.value_and_grad(m.recipe_loss)(p, x, y, jax.random.key(i), 0.5, 2, 4)
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s, loss

  first = float(m.loss(params, x, y))
  for i in range(30):
    params, state, _ = step(params, state, i)
  assert float(m.loss(params, x, y)) < first
  with pytest.raises(ValueError, match="progressive_alpha"):
    m.recipe_loss(params, x, y, jax.random.key(0), 1.5, 1, 4)
  with pytest.raises(ValueError, match="iterations"):
    m.predict_iterations(params, x, 0)
