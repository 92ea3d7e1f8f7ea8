"""The explanations: structured traces that equal the networks' activations, and the rendered text of the committed
examples reproduced byte for byte."""
import os

import numpy as np
import pytest

from mesabench.models.compiled import explain
from mesabench.models.compiled import modsearch as ms
from mesabench.models.compiled import numpy_engine
from tests.models.compiled.reference import python_loop

RESULTS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "results")


def test_explain_recurrent_1024():
  text = explain.render(explain.explain_modsearch("recurrent", 1024, steps=2))
  assert "K = kmax(n) = 128" in text
  assert "u        = relu(2*i + s + 1)" in text
  assert "step 2 L6" in text and "step 3 L6" not in text
  assert "network k = 45, seed loop k = 45: equal" in text and python_loop(1024) == 45


def test_explain_polymax():
  text = explain.render(explain.explain_polymax(grid_points=9, refine_steps=1,
                                                coeffs=[-0.0225, 0.335, -1.2025, 1.9, -1.0]))
  assert "v[0..8]" in text and "Mul" in text
  assert "stage 0 winner" in text and "oracle" in text


@pytest.mark.parametrize("name,make", [
    ("compiled_explain_recurrent_n1024.txt", lambda: explain.explain_modsearch("recurrent", 1024)),
    ("compiled_explain_polymax_g9_r1.txt", lambda: explain.explain_polymax(9, 1))])
def test_committed_examples_are_reproduced(name, make):
  with open(os.path.join(RESULTS, name), encoding="utf-8") as f:
    assert explain.render(make()) == f.read()


def test_trace_is_data_equal_to_the_activations():
  """The trace rows hold the activations by unit name; the best-index changes are read from them, and agree with
  a Python replay of the loop (every i whose residue beats the best so far)."""
  n = 200
  e = explain.explain_modsearch("recurrent", n, steps=1)
  net = ms.modsearch_net("recurrent", explain.default_n_max(n))
  cells = [r for r in e.trace if r.stack == "cell"]
  assert len(cells) == ms.CELL_DEPTH * ms.kmax_int(n)
  h = numpy_engine.trace([net.init_layer], [net.params["init"]], net.inputs(np.asarray([n])))[-1]
  acts = numpy_engine.trace(net.layers, net.params["cell"], h)
  assert all(np.array_equal(r.values, a[:, 0]) for r, a in zip(cells[:ms.CELL_DEPTH], acts))
  best, k, expected = 0, 0, []
  for i in range(1, ms.kmax_int(n) + 1):
    if i * i % n > best:
      best, k = i * i % n, i
      expected.append((i, k, best))
  assert [(c.step, c.k, c.r) for c in e.changes] == expected
  assert e.equal and cells[-1].unit_values()["k_new"] + cells[-1].unit_values()["k_old"] == python_loop(n)


@pytest.mark.parametrize("arch", ["wide", "banded", "unrolled"])
def test_every_modsearch_arch_explains(arch):
  # (wide and banded raised KeyError('k_new') before the trace became data.)
  e = explain.explain_modsearch(arch, 100, steps=1)
  assert e.equal and f"seed loop k = {python_loop(100)}: equal" in explain.render(e)
  assert (e.changes != ()) == (arch == "unrolled")


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match="n must"):
    explain.explain_modsearch("recurrent", 0)
  with pytest.raises(ValueError, match="n_max"):
    explain.explain_modsearch("recurrent", 100, n_max=64)
  with pytest.raises(ValueError, match="arch"):
    explain.explain_modsearch("lstm", 100)
  with pytest.raises(ValueError, match="coeffs"):
    explain.explain_polymax(coeffs=[1.0])
