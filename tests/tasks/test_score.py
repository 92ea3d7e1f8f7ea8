"""Scoring rules for bad predictions (issue 10, defect 4).

Integer answers (every task whose target is an integer): integers of any dtype and integer-valued floats are
answers; NaN, +-inf, non-integer floats and integers outside int32 score the worst value (as an illegal answer).
PolyMax: x outside [0, 1] scores at the clipped point but is never a hit; non-finite x is the worst answer.
"""
import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mesabench.tasks as tasks
from mesabench.tasks import core


def rule(v) -> int:
  """The documented rule, in Python: the int32 integer v stands for, or -1."""
  if isinstance(v, float):
    if not np.isfinite(v) or v != np.floor(v):
      return -1
    v = int(v)
  return v if -2**31 <= v <= 2**31 - 1 else -1


@hypothesis.given(st.lists(st.one_of(st.integers(-2**40, 2**40), st.integers(-5, 5),
                                     st.floats(allow_nan=True, allow_infinity=True),
                                     st.integers(-5, 5).map(float), st.floats(-10, 10)), min_size=1, max_size=16))
def test_integer_prediction_matches_the_rule(values):
  ints = [v for v in values if isinstance(v, int)]
  floats = [float(v) for v in values if isinstance(v, float)]
  if ints:
    np.testing.assert_array_equal(np.asarray(core.integer_prediction(np.array(ints, np.int64))),
                                  [rule(v) for v in ints])
  if floats:
    arr = np.array(floats, np.float64)
    want = [rule(v) for v in floats]
    np.testing.assert_array_equal(np.asarray(core.integer_prediction(arr)), want)
    with np.errstate(over="ignore"):
      f32 = arr.astype(np.float32)  # traced path (inside jit) in float32
    np.testing.assert_array_equal(np.asarray(jax.jit(core.integer_prediction)(f32)), [rule(float(v)) for v in f32])


def integer_tasks():
  out = []
  for task_id in tasks.registered():
    task = tasks.make(task_id)
    if jnp.issubdtype(task.dummy_targets(1)[task.answer_key].dtype, jnp.integer):
      out.append(task_id)
  return out


@pytest.mark.parametrize("task_id", integer_tasks())
def test_one_rule_for_every_integer_answer_task(task_id):
  """Answers of any shape: one integer per example, or a map of them (Maze-v0: [S, S]), where every entry is judged
  by the rule."""
  task = tasks.make(task_id)
  batch = task.sample(jax.random.key(0), 6)
  k = np.asarray(batch.targets[task.answer_key]).astype(np.int64)
  worst = {m: np.asarray(v) for m, v in task.score(batch, np.full(k.shape, -1)).items()}
  right = {m: np.asarray(v) for m, v in task.score(batch, k).items()}
  assert np.all(right[task.success_metric] == 1.0) and np.all(worst[task.success_metric] == 0.0)
  # integer-valued floats are answers
  for m, v in task.score(batch, k.astype(np.float64)).items():
    np.testing.assert_array_equal(np.asarray(v), right[m])
  # NaN, inf, 0.5 off, 2**32 off (wraps to k in int32) all score as the illegal -1
  for bad in (np.full(k.shape, np.nan), np.full(k.shape, np.inf), k + 0.5, k + 0.7, k + 2**32, k - 2**32):
    for m, v in task.score(batch, bad).items():
      np.testing.assert_array_equal(np.asarray(v), worst[m], err_msg=f"{m} of {bad[:2]}")


def test_modsearch_issue_cases():
  task = tasks.make("ModSearch-v0", bits=10)
  batch = task.from_n(np.array([1, 1000, 1000, 1000]))
  k = np.asarray(batch.targets["k"]).astype(np.int64)  # k(1) = 0: NaN used to read as 0 and score accuracy 1
  m = task.score(batch, np.array([np.nan, k[1] + 0.7, float(k[2] + 2**32), k[3]]))
  np.testing.assert_array_equal(np.asarray(m["accuracy"]), [0, 0, 0, 1])
  np.testing.assert_array_equal(np.asarray(m["regret"]), [1, 1, 1, 0])
  m = task.score(batch, np.array([0, k[1] + 2**32, k[2] - 2**32, k[3]], np.int64))
  np.testing.assert_array_equal(np.asarray(m["accuracy"]), [1, 0, 0, 1])
  # inside jit the rule is applied in the traced dtype
  m = jax.jit(task.score)(batch, jnp.array([np.nan, k[1] + 0.5, k[2], np.inf], jnp.float32))
  np.testing.assert_array_equal(np.asarray(m["accuracy"]), [0, 0, 1, 0])


def test_bad_prediction_dtype_is_a_value_error():
  task = tasks.make("ModSearch-v0", bits=10)
  batch = task.sample(jax.random.key(0), 2)
  with pytest.raises(ValueError, match="prediction must hold real numbers"):
    task.score(batch, np.array([True, False]))
  with pytest.raises(ValueError, match="prediction must have shape"):
    task.score(batch, np.array([1, 2, 3]))


def test_polymax_outside_is_never_a_hit():
  task = tasks.make("PolyMax-v0", degree=2)
  # P = -x (argmax 0), P = x (argmax 1), twice each
  batch = task.from_coeffs(np.array([[0, -1, 0], [0, 1, 0], [0, -1, 0], [0, 1, 0]], np.float32))
  np.testing.assert_array_equal(np.asarray(batch.targets["x"]), [0, 1, 0, 1])
  inside = task.score(batch, np.array([0.0, 1.0, 0.0005, 0.9995]))
  outside = task.score(batch, np.array([-0.1, 1.1, -1e-12, 1 + 1e-12]))  # the last two round to 0 / 1 in float32
  np.testing.assert_array_equal(np.asarray(inside["hit"]), [1, 1, 1, 1])
  np.testing.assert_array_equal(np.asarray(outside["hit"]), [0, 0, 0, 0])
  # scored at the clipped point: loss and regret of x = 0 and x = 1
  np.testing.assert_array_equal(np.asarray(outside["loss"]), [0, 0, 0, 0])
  np.testing.assert_array_equal(np.asarray(outside["regret"]), [0, 0, 0, 0])
  bad = task.score(batch, np.array([np.nan, np.inf, -np.inf, 1e300]))
  np.testing.assert_array_equal(np.asarray(bad["hit"]), [0, 0, 0, 0])
  np.testing.assert_array_equal(np.asarray(bad["regret"]), [1, 1, 1, 0])  # 1e300 is finite: clipped to 1
  np.testing.assert_allclose(np.asarray(bad["loss"]), [1, 1, 1, 0])  # (min - max)**2 = 1 on [0, 1]
  traced = jax.jit(task.score)(batch, jnp.array([-0.1, 1.0, jnp.nan, 0.5], jnp.float32))
  np.testing.assert_array_equal(np.asarray(traced["hit"]), [0, 1, 0, 0])
