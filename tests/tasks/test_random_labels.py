"""tasks.random_labels: the data law (moments within sampling error), determinism, the spec, label bits."""
import math

import numpy as np
import pytest

from mesabench.tasks import random_labels


def test_moments_and_independence():
  x, y = random_labels.sample(0, 20_000, 8, 5)
  assert x.dtype == np.float32 and x.shape == (20_000, 8) and y.dtype == np.int32
  assert abs(float(x.mean())) < 4 / math.sqrt(x.size)                      # N(0, 1): mean within 4 sigma
  assert abs(float(x.var()) - 1.0) < 4 * math.sqrt(2 / x.size)
  counts = np.bincount(y, minlength=5)
  chi2 = float(((counts - 4000) ** 2 / 4000).sum())                        # uniform labels: chi2 with 4 dof
  assert chi2 < 18.5                                                       # p ~ 0.001
  assert abs(np.corrcoef(x[:, 0], y)[0, 1]) < 4 / math.sqrt(20_000)        # labels independent of inputs


def test_deterministic_and_sizes_independent():
  a = random_labels.sample(3, 100, 4, 16)
  b = random_labels.sample(3, 100, 4, 16)
  assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
  c = random_labels.sample(3, 101, 4, 16)
  assert not np.array_equal(a[1], c[1][:100])                               # another size is another draw
  assert not np.array_equal(a[1], random_labels.sample(4, 100, 4, 16)[1])


def test_spec_and_bits():
  s = random_labels.spec(16, 10)
  assert s.input_shape == (16,) and s.num_classes == 10 and s.output_bits == 4 and s.output_kind == "integer"
  assert random_labels.label_bits(100, 16) == 400.0
  with pytest.raises(ValueError, match="classes"):
    random_labels.spec(4, 1)
  with pytest.raises(ValueError, match="n must"):
    random_labels.sample(0, 0, 4, 2)
