"""ModSearch-v0 and its oracle against the seed program in plain Python integers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import mesabench.tasks as tasks
from mesabench.tasks import core
from mesabench.tasks import modsearch
from tests.tasks import reference

N_MAX = 2**30


@pytest.fixture(scope="module")
def seed_answers():
  return np.array([reference.seed_loop(n) for n in range(1, 3001)])


def test_oracle_equals_seed_loop_for_every_n_up_to_3000(seed_answers):
  k, r = modsearch.solve(np.arange(1, 3001))
  np.testing.assert_array_equal(np.asarray(k), seed_answers[:, 0])
  np.testing.assert_array_equal(np.asarray(r), seed_answers[:, 1])


def _edges():
  out = [1, 2, 3, N_MAX - 1, N_MAX]
  for m in range(2, 9):
    out += [v for v in (m**10 - 1, m**10, m**10 + 1) if v <= N_MAX]
  return sorted(set(out))


def test_kmax_exact_at_tenth_powers_and_range_ends():
  edges = _edges()
  got = np.asarray(modsearch.kmax(np.array(edges)))
  want = [reference.kmax_int(n) for n in edges]
  np.testing.assert_array_equal(got, want)
  # float pow is wrong exactly here: 1024**0.7 = 127.999... while K = 128 (128**10 = 1024**7).
  assert int(modsearch.kmax(np.array([1024]))[0]) == 128


@given(st.lists(st.integers(1, N_MAX), min_size=1, max_size=64))
def test_kmax_matches_integer_arithmetic(ns):
  ns = ns + [1] * (64 - len(ns))  # one shape: one compile
  np.testing.assert_array_equal(np.asarray(modsearch.kmax(np.array(ns))), [reference.kmax_int(n) for n in ns])


def test_oracle_at_edges_and_large_random_n():
  rng = np.random.default_rng(7)
  ns = [n for n in _edges() if n < 10**7] + [int(v) for v in rng.integers(2**20, 2**24, 3)]
  k, r = modsearch.solve(np.array(ns))
  for n, kk, rr in zip(ns, np.asarray(k), np.asarray(r)):
    assert (int(kk), int(rr)) == reference.seed_loop(n), n


@pytest.mark.slow
def test_oracle_at_top_of_range():
  ns = [N_MAX, N_MAX - 1, 999_999_937]
  k, r = modsearch.solve(np.array(ns))
  for n, kk, rr in zip(ns, np.asarray(k), np.asarray(r)):
    assert (int(kk), int(rr)) == reference.seed_loop(n), n


@given(st.lists(st.integers(0, 2**22), min_size=1, max_size=32), st.integers(1, N_MAX))
def test_sqmod_exact_in_32_bit_arithmetic(i_values, n):
  from mesabench.kernels.modsearch import sqmod
  i = np.array(([v for v in i_values if v * v // n < 2**20] + [0] * 32)[:32])
  band, r = sqmod(jnp.asarray(i, jnp.int32), jnp.full(i.shape, n, jnp.int32))
  np.testing.assert_array_equal(np.asarray(r), [v * v % n for v in i])
  np.testing.assert_array_equal(np.asarray(band), [v * v // n for v in i])


def test_solve_rejects_out_of_range_n():
  for bad in (0, -5, N_MAX + 1):
    with pytest.raises(ValueError, match=r"n must be in \[1, 1073741824\]"):
      modsearch.solve(np.array([5, bad]))
  with pytest.raises(ValueError, match="n must hold integers"):
    modsearch.kmax(np.array([2.5]))


def test_task_parameters_are_validated():
  with pytest.raises(ValueError, match=r"bits must be an integer in \[1, 30\]"):
    tasks.make("ModSearch-v0", bits=31)
  with pytest.raises(ValueError, match=r"width must be an integer in \[bits=12, 31\]"):
    tasks.make("ModSearch-v0", bits=12, width=10)
  task = tasks.make("ModSearch-v0", bits=8)
  with pytest.raises(ValueError, match=r"batch_size must be in \[1, "):
    task.sample(jax.random.key(0), 0)
  with pytest.raises(ValueError, match=r"size must be in \[1, 255\]"):
    task.pool(jax.random.key(0), 256)
  with pytest.raises(ValueError, match="stratum must be one of"):
    task.sample(jax.random.key(0), 4, stratum="medium")
  with pytest.raises(ValueError, match=r"n must be in \[1, 255\]"):
    task.from_n(np.array([256]))


def test_batch_contents_match_oracle_and_bits_round_trip():
  task = tasks.make("ModSearch-v0", bits=10, width=12)
  batch = task.sample(jax.random.key(3), 256)
  n = np.asarray(batch.info["n"])
  assert n.min() >= 1 and n.max() <= 1023
  np.testing.assert_array_equal(np.asarray(modsearch.from_bits(batch.inputs)), n)
  np.testing.assert_array_equal(np.asarray(modsearch.from_bits(batch.targets["k_bits"])), batch.targets["k"])
  for nn, kk in zip(n[:40], np.asarray(batch.targets["k"])[:40]):
    assert reference.seed_loop(int(nn))[0] == kk
  assert task.spec.input_shape == (12,) and task.spec.num_classes == reference.kmax_int(4095) + 1
  diff = batch.info["difficulty"]
  np.testing.assert_array_equal(np.asarray(diff["bit_length"]), [int(v).bit_length() for v in n])
  np.testing.assert_array_equal(np.asarray(diff["search_space"]), [reference.kmax_int(int(v)) for v in n])


@given(st.integers(1, 2**31 - 1))
def test_bits_round_trip(value):
  assert int(modsearch.from_bits(modsearch.to_bits(jnp.array([value]), 31))[0]) == value


def test_same_key_same_batch_bit_for_bit():
  task = tasks.make("ModSearch-v0", bits=12)
  a, b = task.sample(jax.random.key(11), 64), task.sample(jax.random.key(11), 64)
  c = task.sample(jax.random.key(12), 64)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert not np.array_equal(np.asarray(a.info["n"]), np.asarray(c.info["n"]))


def test_pool_distinct_and_outside_disjoint_even_when_pool_is_almost_everything():
  task = tasks.make("ModSearch-v0", bits=8)
  pool = task.pool(jax.random.key(0), 250)
  n = np.asarray(pool.info["n"])
  assert len(set(n.tolist())) == 250 and n.min() >= 1 and n.max() <= 255
  outside = np.asarray(task.sample_outside(jax.random.key(1), 500, pool).info["n"])
  assert set(outside.tolist()) == set(range(1, 256)) - set(n.tolist())  # the 5 left, each drawn
  full = task.pool(jax.random.key(0), 255)
  assert sorted(np.asarray(full.info["n"]).tolist()) == list(range(1, 256))
  with pytest.raises(ValueError, match="nothing lies outside"):
    task.sample_outside(jax.random.key(1), 4, full)


@given(st.integers(1, 2**20), st.integers(0, 2**31 - 1))
def test_permuted_pool_is_a_bijection_prefix(domain, seed):
  from mesabench.tasks import core
  size = min(domain, 512)
  idx = np.asarray(core.permute_index(jax.random.key(seed), jnp.arange(size), domain))
  assert len(set(idx.tolist())) == size and idx.min() >= 0 and idx.max() < domain


def test_strata_and_scoring():
  task = tasks.make("ModSearch-v0", bits=12)
  hard = task.sample(jax.random.key(0), 64, stratum="hard")  # stratum definitions: tests/tasks/test_strata.py
  m = task.score(hard, hard.targets["k"])
  assert float(m["accuracy"].mean()) == 1.0 and float(m["regret"].max()) == 0.0
  n = np.asarray(hard.info["n"])
  k_bad = np.asarray(hard.targets["k"]) - 1
  m = task.score(hard, k_bad)
  want = [(reference.seed_loop(int(nn))[1] - (kb * kb % nn)) / nn if kb >= 0 else 1.0 for nn, kb in zip(n, k_bad)]
  np.testing.assert_allclose(np.asarray(m["regret"]), want, rtol=1e-6)
  assert float(m["accuracy"].max()) == 0.0
  too_big = np.asarray(hard.info["kmax"]) + 1
  np.testing.assert_array_equal(np.asarray(task.score(hard, too_big)["loss"]), 1.0)


def test_larger_keeps_the_spec():
  small = tasks.make("ModSearch-v0", bits=8, width=12)
  big = small.larger()
  assert big.bits == 12 and big.spec == dataclass_replace_task_id(small.spec, big.spec)
  assert big.larger() is None  # bits == width: no larger task at this width


def dataclass_replace_task_id(a, b):
  """Specs agree on everything a model uses (the meta carries the distribution's bits, which may differ)."""
  assert (a.input_shape, a.num_classes, a.output_bits) == (b.input_shape, b.num_classes, b.output_bits)
  return b


def test_chunked_batches_equal_one_shot_batches(monkeypatch):
  """The oracle and the features run per chunk of chunk_rows rows: the batch is the same, bit for bit."""
  task = tasks.make("ModSearch-v0", bits=14)
  one = [task.sample(jax.random.key(2), 40), task.pool(jax.random.key(3), 33)]
  monkeypatch.setattr(modsearch.ModSearch, "chunk_rows", 16)
  chunked = [task.sample(jax.random.key(2), 40), task.pool(jax.random.key(3), 33)]
  for a, b in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(chunked)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  row = sum(np.asarray(x).nbytes for x in jax.tree_util.tree_leaves(task.sample(jax.random.key(0), 1)))
  work = min(1024, task.chunk_rows) * task.work_bytes_per_row
  assert task.memory_bytes(1000) == 2 * 1024 * row + work + core.COMPILE_BYTES
