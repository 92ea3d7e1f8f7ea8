"""Property: random bad values of every documented parameter of the public entry points give a ValueError that
names that parameter (issue 10, "Also"). Entry points: tasks.make params, task.sample / pool / sample_outside
sizes and strata, kernels.modsearch.search and kernels.polymax.maximize options, models.make configs and
harness.train.TrainConfig fields.

Each parameter gets (a) the value "bogus", which no parameter accepts, and (b) hypothesis-drawn values of every
kind (text, floats with NaN/inf, huge and negative integers, None, bools, lists): either the call succeeds or it
raises a ValueError naming the parameter; any other exception, or a message that does not name it, fails.
"""
import dataclasses
import re

import hypothesis
from hypothesis import strategies as st
import jax
import numpy as np
import pytest

import mesabench.models as models
import mesabench.tasks as tasks
from mesabench.harness import train
from mesabench.kernels import modsearch as kmod
from mesabench.kernels import polymax as kpoly

ANY = st.one_of(st.text(max_size=6), st.floats(allow_nan=True, allow_infinity=True),
                st.integers(-2**70, 2**70), st.integers(-3, 40), st.none(), st.booleans(),
                st.lists(st.integers(-3, 3), max_size=3), st.just(np.array([1, 2])))
SETTINGS = hypothesis.settings(max_examples=40, deadline=None, derandomize=True,
                               suppress_health_check=list(hypothesis.HealthCheck))


def check(call, name: str, must_fail: bool = False):
  """``call()`` succeeds (unless ``must_fail``) or raises a ValueError whose message names ``name``."""
  try:
    call()
  except ValueError as e:
    assert re.search(rf"\b{re.escape(name)}\b", str(e)), f"ValueError does not name {name!r}: {e}"
    return
  assert not must_fail, f"{name}: a bad value was accepted"


TASK_PARAMS = [(tid, p) for tid in tasks.registered() for p in tasks.make(tid).params()]


@pytest.mark.parametrize("task_id,param", TASK_PARAMS)
def test_task_params(task_id, param):
  check(lambda: tasks.make(task_id, **{param: "bogus"}), param, must_fail=True)

  @SETTINGS
  @hypothesis.given(ANY)
  def prop(value):
    check(lambda: tasks.make(task_id, **{param: value}), param)

  prop()


def test_unknown_task_param_and_id():
  check(lambda: tasks.make("ModSearch-v0", bitz=3), "bitz", must_fail=True)
  check(lambda: tasks.make("NoSuchTask-v0"), "NoSuchTask-v0", must_fail=True)


@pytest.fixture(scope="module")
def small_tasks():
  return [tasks.make("ModSearch-v0", bits=8), tasks.make("PolyMax-v0", degree=3)]


BAD_SIZES = st.one_of(st.integers(-2**40, 0), st.integers(2**24 + 1, 2**70), st.floats(allow_nan=True),
                      st.text(max_size=3), st.none(), st.booleans(), st.just(np.array([4])))


@SETTINGS
@hypothesis.given(BAD_SIZES)
def test_task_sizes(small_tasks, size):
  key = jax.random.key(0)
  for task in small_tasks:
    check(lambda: task.sample(key, size), "batch_size", must_fail=True)
    check(lambda: task.pool(key, size), "size", must_fail=True)
    pool = task.pool(key, 8)
    check(lambda: task.sample_outside(key, size, pool), "batch_size", must_fail=True)


@SETTINGS
@hypothesis.given(st.one_of(st.text(max_size=4), st.integers(), st.lists(st.text(max_size=2), max_size=2)))
def test_task_stratum(small_tasks, stratum):
  for task in small_tasks:
    check(lambda: task.sample(jax.random.key(0), 4, stratum=stratum), "stratum", must_fail=stratum not in task.strata)


KERNEL_OPTIONS = [
    (kmod.search, np.array([5, 1024]), ("impl", "algorithm", "interpret")),
    (kpoly.maximize, np.ones((2, 4), np.float32), ("impl", "interpret", "grid_points")),
    (kpoly.evaluate, np.ones((2, 4), np.float32), ("impl", "interpret")),
]


@pytest.mark.parametrize("fn,arg,option", [(f, a, o) for f, a, opts in KERNEL_OPTIONS for o in opts])
def test_kernel_options(fn, arg, option):
  extra = (np.linspace(0, 1, 3, dtype=np.float32)[None].repeat(2, 0),) if fn is kpoly.evaluate else ()
  check(lambda: fn(arg, *extra, **{option: "bogus"}), option, must_fail=True)

  @SETTINGS
  @hypothesis.given(ANY.filter(lambda v: not (isinstance(v, int) and not isinstance(v, bool) and v > 4096)))
  def prop(value):  # (huge grids are legal but slow: left out)
    check(lambda: fn(arg, *extra, **{option: value}), option)

  prop()


MODEL_TASK = tasks.make("ModSearch-v0", bits=8)
MODEL_PARAMS = [(mid, p) for mid in ("heuristic", "lookup", "looped", "memory", "mlp", "search", "transformer")
                for p in dict(models.make(mid, MODEL_TASK.spec).config)]


@pytest.mark.parametrize("model_id,param", MODEL_PARAMS)
def test_model_configs(model_id, param):
  check(lambda: models.make(model_id, MODEL_TASK.spec, **{param: "bogus"}), param, must_fail=True)

  @SETTINGS
  @hypothesis.given(ANY.filter(lambda v: not (isinstance(v, int) and not isinstance(v, bool) and v > 4096)))
  def prop(value):  # (huge widths are legal but slow to build: left out)
    check(lambda: models.make(model_id, MODEL_TASK.spec, **{param: value}), param)

  prop()


def test_unknown_model_config_key():
  check(lambda: models.make("mlp", MODEL_TASK.spec, widht=3), "widht", must_fail=True)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(train.TrainConfig)])
def test_train_config_fields(field):
  check(lambda: train.TrainConfig(**{field: "bogus"}), field, must_fail=True)

  @SETTINGS
  @hypothesis.given(ANY)
  def prop(value):
    check(lambda: train.TrainConfig(**{field: value}), field)

  prop()
