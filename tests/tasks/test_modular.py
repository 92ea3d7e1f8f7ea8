"""tasks.modular: the pair table, answers, tokens, the exact train/test split and the Fourier basis."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from mesabench.tasks import modular


def test_pairs_answers_tokens_against_loops():
  p = 7
  ab = modular.pairs(p)
  want = [(a, b) for a in range(p) for b in range(p)]
  assert ab.dtype == np.int32 and ab.tolist() == [list(x) for x in want]
  assert modular.answers(p, ab).tolist() == [(a + b) % p for a, b in want]
  toks = modular.tokens(p, ab)
  assert toks.shape == (p * p, 3) and np.all(toks[:, 2] == p) and np.array_equal(toks[:, :2], ab)


@given(p=st.integers(3, 60), frac=st.floats(0.01, 0.99), seed=st.integers(0, 2**31))
def test_split_is_an_exact_partition(p, frac, seed):
  train, test = modular.split(p, frac, seed)
  n = p * p
  assert train.size == min(max(int(frac * n), 1), n - 1)     # the authors' int(frac * len(pairs))
  assert np.intersect1d(train, test).size == 0                  # disjoint
  both = np.concatenate([train, test])
  assert np.array_equal(np.sort(both), np.arange(n))            # every pair exactly once
  assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
  again = modular.split(p, frac, seed)
  assert np.array_equal(again[0], train) and np.array_equal(again[1], test)   # deterministic


def test_split_paper_sizes_and_seeds_differ():
  train, test = modular.split(113, 0.3, 0)
  assert (train.size, test.size) == (3830, 8939)
  other, _ = modular.split(113, 0.3, 1)
  assert not np.array_equal(train, other)
  # every residue class of answers appears in a 30 % split of the paper table (a sanity check of uniformity)
  ans = modular.answers(113, modular.pairs(113)[train])
  assert np.bincount(ans, minlength=113).min() > 10


def test_fourier_basis_is_orthonormal_and_ordered():
  p = 13
  f = modular.fourier_basis(p)
  np.testing.assert_allclose(f @ f.T, np.eye(p), atol=1e-12)
  x = np.arange(p)
  np.testing.assert_allclose(f[5], np.cos(2 * np.pi * 3 * x / p) / np.sqrt(p / 2), atol=1e-12)   # cos 3
  np.testing.assert_allclose(f[6], np.sin(2 * np.pi * 3 * x / p) / np.sqrt(p / 2), atol=1e-12)   # sin 3
  assert modular.frequencies(p).tolist() == list(range(1, 7))


@pytest.mark.parametrize("call", [lambda: modular.pairs(2), lambda: modular.split(5, 1.0, 0),
                                  lambda: modular.split(5, 0.5, -1), lambda: modular.fourier_basis(10),
                                  lambda: modular.split(5, True, 0)])
def test_bad_inputs_name_the_parameter(call):
  with pytest.raises(ValueError, match="p must|frac_train|seed"):
    call()
