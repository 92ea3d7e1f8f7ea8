"""jax_enable_x64 on or off gives the same answers, bit for bit: kernels, oracles, tasks, the zoo and the harness.

Under x64, jnp sums of int32 promote to int64 (the exact root ``kmax`` broke every banded while_loop), random draws
without a dtype are 64-bit (different numbers), flax initializers default to float64 and optax computes its rate
in float64. Each case here runs once with ``jax.enable_x64(False)`` and once with ``jax.enable_x64(True)`` and
compares the results exactly; the issue's reproducer runs in subprocesses with JAX_ENABLE_X64=1 and =0.
"""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import mesabench.models as models
import mesabench.tasks as tasks
from mesabench.harness import train
from mesabench.kernels import modsearch as kmod
from mesabench.kernels import polymax as kpoly
from tests.tasks import reference

N = np.array([1, 2, 3, 10, 1023, 1024, 1025, 59049, 65535, 65536, 123457, 2**20 + 7])


def both_modes(fn):
  """fn() under x64 off and on, as numpy leaves (with dtypes)."""
  out = []
  for flag in (False, True):
    with jax.enable_x64(flag):
      out.append([np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(fn())])
  return out


def assert_same(pair):
  off, on = pair
  assert len(off) == len(on)
  for a, b in zip(off, on):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("flag", ["0", "1"])
def test_issue_reproducer_in_a_subprocess(flag):
  code = ("import numpy as np; from mesabench.tasks import modsearch; k, r = modsearch.solve(np.array([1024])); "
          "print(int(k[0]), int(r[0]), k.dtype)")
  env = dict(os.environ, JAX_ENABLE_X64=flag, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  k, r = reference.seed_loop(1024)
  assert out.stdout.split() == [str(k), str(r), "int32"]


@pytest.mark.parametrize("impl", ["reference", "xla", "pallas"])
@pytest.mark.parametrize("algorithm", ["banded", "brute"])
def test_modsearch_kernel_paths(impl, algorithm):
  n = N if algorithm == "banded" else N[N < 2**17]
  pair = both_modes(lambda: kmod.search(n, impl=impl, algorithm=algorithm, interpret=impl == "pallas"))
  assert_same(pair)
  k, r = pair[1]
  truth = np.array([reference.seed_loop(int(v)) for v in n])
  np.testing.assert_array_equal(np.stack([k, r], -1), truth)
  assert_same(both_modes(lambda: kmod.kmax(N)))


@pytest.mark.parametrize("impl", ["reference", "xla", "pallas"])
def test_polymax_kernel_paths(impl):
  coeffs = np.random.default_rng(0).uniform(-1, 1, (9, 6)).astype(np.float32)
  xs = np.linspace(0, 1, 7, dtype=np.float32)[None].repeat(9, 0)
  assert_same(both_modes(lambda: kpoly.maximize(coeffs, impl=impl, interpret=impl == "pallas", grid_points=257)))
  assert_same(both_modes(lambda: kpoly.evaluate(coeffs, xs, impl=impl, interpret=impl == "pallas")))


TASKS = [("ModSearch-v0", {"bits": 10}), ("PolyMax-v0", {"degree": 4}),
         ("PolyMax-v0", {"degree": 3, "encoding": "binary"}), ("Maze-v0", {"size": 5})]


@pytest.mark.parametrize("task_id,params", TASKS)
def test_task_methods(task_id, params):
  task = tasks.make(task_id, **params)
  key = jax.random.key(3)

  def run():
    batch = task.sample(key, 24)
    pool = task.pool(key, 40)
    chance = task.chance_predictions(batch, key, 3)
    return [batch, pool, task.sample_outside(key, 24, pool), chance, task.score(batch, chance[0])]

  assert_same(both_modes(run))


@pytest.mark.slow
@pytest.mark.parametrize("task_id,params", TASKS[:2])
def test_task_strata(task_id, params):
  task = tasks.make(task_id, **params)
  assert_same(both_modes(lambda: [task.sample(jax.random.key(4), 8, stratum=s) for s in task.strata]))


def zoo_configs(task, full: bool):
  if not full:
    return [("search", {}), ("memory", {"steps": 2})]  # the search baseline; float64 initializer defaults
  configs = [("heuristic", {"rule": r}) for r in task.heuristic_rules()]
  configs += [("search", {})] + [("search", {"strategy": s, "budget": 4}) for s in task.search_strategies()]
  return configs + [(m, {}) for m in ("lookup", "lookup_instance", "mlp", "looped", "memory", "transformer")]


@pytest.mark.parametrize("full", [False, pytest.param(True, marks=pytest.mark.slow)])
@pytest.mark.parametrize("task_id,params", TASKS[:2])
def test_zoo_predictions(task_id, params, full):
  task = tasks.make(task_id, **params)
  batch = task.sample(jax.random.key(0), 16)
  pool = task.pool(jax.random.key(1), 32)
  for model_id, config in zoo_configs(task, full):
    model = models.make(model_id, task.spec, **config)

    def run():
      params_ = model.fit(model.init(jax.random.key(2)), pool.inputs, pool.targets)
      pred = model.predict(params_, batch.inputs)
      return [params_, pred, task.score(batch, pred)]

    assert_same(both_modes(run))


def test_harness_training_is_the_same():
  """30 steps of an MLP on a pool (minibatch indices drawn by randint) and fresh samples: identical metrics."""
  task = tasks.make("ModSearch-v0", bits=10)
  model = models.make("mlp", task.spec, width=16)
  config = train.TrainConfig(steps=30, batch_size=16, eval_size=32, curve_points=2)
  results = []
  for flag in (False, True):
    with jax.enable_x64(flag):
      res = train.run_experiment(task, model, [train.Run(0, 64), train.Run(1, 64)], config)
      results.append([(r.splits, r.curve, r.compute) for r in res])
  assert results[0] == results[1]
