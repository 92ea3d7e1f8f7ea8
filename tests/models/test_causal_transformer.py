"""The causal_transformer zoo model: per-position outputs that never see the answer they predict (causality),
its loss, its parameter count formula and its config checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mesabench import models
from mesabench.models import causal_transformer  # noqa: F401
from mesabench.tasks import linreg


def _setup(width=16, layers=2, heads=2):
  spec = linreg.sequence_spec(3, 5)
  model = models.make("causal_transformer", spec, width=width, layers=layers, heads=heads, mlp_ratio=2)
  params = model.init(jax.random.key(0))
  seq = linreg.sample_regression(jax.random.key(1), 4, 5, 3, 0.5)
  return model, params, seq


def test_predictions_are_causal():
  model, params, seq = _setup()
  predict = jax.jit(model.predict)
  base = np.asarray(predict(params, linreg.interleave(seq.x, seq.y)))
  assert base.shape == (4, 5)
  for k in range(5):
    y2 = seq.y.at[:, k].add(3.0)  # the answer y_k and everything after it must not move predictions <= k
    x2 = seq.x.at[:, k + 1:].add(1.0)
    moved = np.asarray(predict(params, linreg.interleave(x2, y2)))
    np.testing.assert_array_equal(moved[:, :k + 1], base[:, :k + 1])
    if k + 1 < 5:
      assert np.abs(moved[:, k + 1] - base[:, k + 1]).max() > 1e-6  # ... and it does move the next one


def test_loss_is_the_mean_squared_error():
  model, params, seq = _setup()
  tokens = linreg.interleave(seq.x, seq.y)
  pred = np.asarray(model.predict(params, tokens), np.float64)
  want = np.mean((pred - np.asarray(seq.y, np.float64)) ** 2)
  assert float(model.loss(params, tokens, {"y": seq.y})) == pytest.approx(want, rel=1e-5)


def test_param_count_formula_and_registry():
  assert "causal_transformer" in models.registered()
  w, layers, r, f, t = 16, 2, 2, 4, 10
  model, params, _ = _setup(w, layers)
  want = f * w + w + t * w + layers * (4 * w + 4 * (w * w + w) + 2 * r * w * w + r * w + w) + 2 * w + w + 1
  assert model.param_count(params) == want


@pytest.mark.parametrize("spec, config, name", [
    (linreg.sequence_spec(3, 5), {"width": 15, "heads": 2}, "width"),
    (linreg.sequence_spec(3, 5), {"layers": 0}, "layers"),
    (linreg.sequence_spec(3, 5), {"depth": 2}, "depth"),
])
def test_bad_configs_name_the_field(spec, config, name):
  with pytest.raises(ValueError, match=name):
    models.make("causal_transformer", spec, **config)


def test_refuses_a_classification_spec():
  from mesabench import tasks
  with pytest.raises(ValueError, match="spec"):
    models.make("causal_transformer", tasks.make("ModSearch-v0", bits=8).spec)
  assert jnp.zeros(1) is not None
