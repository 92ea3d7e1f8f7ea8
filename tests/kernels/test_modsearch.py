"""mesabench.kernels.modsearch: fused kernels (interpret mode), XLA path and references against the seed program.

The seed program is re-implemented here independently: K by Python integers (largest K with K**10 <= n**7), then
the loop ``if i*i % n > k*k % n: k = i`` (as a plain loop for small K, as its numpy equivalent for large K).
"""
import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mesabench.kernels import modsearch

N_MAX = 2**30
COMBOS = [("pallas", "banded"), ("pallas", "brute"), ("xla", "banded"), ("xla", "brute"),
          ("reference", "banded"), ("reference", "brute")]


def seed_k(n: int) -> int:
  lo, hi = 0, n  # K <= n; bisection on K**10 <= n**7 in Python integers
  while lo < hi:
    mid = (lo + hi + 1) // 2
    if mid**10 <= n**7:
      lo = mid
    else:
      hi = mid - 1
  return lo


def seed_program(n: int) -> tuple[int, int]:
  kk = seed_k(n)
  if kk <= 50_000:
    k = 0
    for i in range(1, kk + 1):
      if i * i % n > k * k % n:
        k = i
    return k, k * k % n
  i = np.arange(0, kk + 1, dtype=np.int64)
  res = i * i % n
  k = int(np.argmax(res))  # first maximum: the smallest k, as the strict '>' of the loop
  return k, int(res[k])


EDGES = sorted({1, 2, 3, 4, 5, 9, 10, 11, 1023, 1024, 1025, N_MAX - 1, N_MAX}
               | {m**10 + d for m in range(2, 9) for d in (-1, 0, 1) if m**10 + d <= N_MAX})


@pytest.fixture(scope="module")
def edge_truth():
  return np.array([seed_program(n) for n in EDGES], dtype=np.int64)


def run(n, impl, algorithm):
  k, r = modsearch.search(n, impl=impl, algorithm=algorithm, interpret=(impl == "pallas"))
  return np.stack([np.asarray(k), np.asarray(r)], axis=-1)


def test_kmax_exact_at_edges():
  got = np.asarray(modsearch.kmax(np.array(EDGES)))
  np.testing.assert_array_equal(got, [seed_k(n) for n in EDGES])
  assert modsearch.kmax(np.array([1024]))[0] == 128  # float pow gives 127 here


@pytest.mark.parametrize("impl,algorithm", COMBOS)
def test_edges_match_seed_program(impl, algorithm, edge_truth):
  np.testing.assert_array_equal(run(np.array(EDGES), impl, algorithm), edge_truth)


@pytest.fixture(scope="module")
def small_range():
  n = np.arange(1, 2049)
  return n, np.array([seed_program(int(v)) for v in n])


@pytest.mark.parametrize("impl,algorithm", [c for c in COMBOS if c[0] != "reference"])
def test_every_small_n(impl, algorithm, small_range):
  n, truth = small_range
  np.testing.assert_array_equal(run(n, impl, algorithm), truth)


@pytest.fixture(scope="module")
def mixed_batch():
  """Log-uniform n over [1, 2**30] plus the top value, shuffled: sorting by bound must be undone exactly."""
  rng = np.random.default_rng(1234)
  n = np.unique(np.exp(rng.uniform(0.0, np.log(N_MAX), size=28)).astype(np.int64).clip(1, N_MAX))
  n = np.concatenate([n, [N_MAX, 7**10, 3]])
  rng.shuffle(n)
  return n, np.array([seed_program(int(v)) for v in n])


@pytest.mark.parametrize("impl,algorithm", [c for c in COMBOS if c[0] != "reference"])
def test_mixed_batch_sorted_and_unsorted(impl, algorithm, mixed_batch):
  n, truth = mixed_batch
  np.testing.assert_array_equal(run(n, impl, algorithm), truth)


@hypothesis.settings(max_examples=30, deadline=None, derandomize=True)
@hypothesis.given(st.lists(st.integers(1, 2**22), min_size=1, max_size=8))
def test_random_n_property(ns):
  truth = np.array([seed_program(n) for n in ns])
  for impl in ("xla", "pallas"):
    got = run(np.array(ns), impl, "banded")
    np.testing.assert_array_equal(got, truth)
    k, r = got[:, 0], got[:, 1]
    kk = np.array([seed_k(n) for n in ns])
    assert np.all((0 <= k) & (k <= kk)) and np.all((0 <= r) & (r < np.array(ns)))


def test_shapes_dtypes_and_auto():
  n = np.array([[5, 1024], [N_MAX, 1]])
  k, r = modsearch.search(n)
  assert k.shape == r.shape == (2, 2) and k.dtype == r.dtype == jnp.int32
  want = np.array([seed_program(int(v)) for v in n.reshape(-1)]).reshape(2, 2, 2)
  np.testing.assert_array_equal(np.stack([k, r], -1), want)
  k0, r0 = modsearch.search(np.zeros((0,), np.int32))
  assert k0.shape == (0,) and r0.shape == (0,)


def test_under_jit_and_one_compile_per_bucket():
  f = jax.jit(lambda n: modsearch.search(n, impl="xla"))
  np.testing.assert_array_equal(np.stack(f(jnp.array([10, 11, 12])), -1), [seed_program(v) for v in (10, 11, 12)])
  modsearch.search(np.array([5] * 9), impl="xla")
  before = modsearch._search_padded._cache_size()
  for size in (10, 13, 16):  # all in the 16 bucket
    modsearch.search(np.arange(1, size + 1), impl="xla")
  assert modsearch._search_padded._cache_size() == before


@pytest.mark.parametrize("bad", [0, -3, N_MAX + 1])
def test_rejects_n_out_of_range(bad):
  with pytest.raises(ValueError, match=r"n must be in \[1, 1073741824\]"):
    modsearch.search(np.array([5, bad]))


def test_rejects_bad_arguments():
  with pytest.raises(ValueError, match="n must hold integers"):
    modsearch.search(np.array([2.5]))
  with pytest.raises(ValueError, match="impl must be"):
    modsearch.search(np.array([5]), impl="cuda")
  with pytest.raises(ValueError, match="algorithm must be"):
    modsearch.search(np.array([5]), algorithm="fast")


@pytest.mark.parametrize("platform,marker", [("cuda", "triton"), ("tpu", "tpu_custom_call")])
@pytest.mark.parametrize("algorithm", ["banded", "brute"])
def test_lowers_for_accelerators(platform, marker, algorithm):
  f = jax.jit(lambda n: modsearch._search_padded(n, algorithm=algorithm, impl="pallas", platform=platform))
  text = f.trace(jax.ShapeDtypeStruct((64,), jnp.int32)).lower(lowering_platforms=(platform,)).as_text()
  assert marker in text


def test_cost_estimate_bounds():
  brute = modsearch.cost_estimate("brute", 8)
  banded = modsearch.cost_estimate("banded", 8)
  assert brute.flops > 50 * banded.flops > 0 and banded.transcendentals == 8 * (modsearch.Q_MAX + 1)
