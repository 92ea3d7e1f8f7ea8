"""The registry builds every architecture by name and refuses unknown names and fields."""
import numpy as np
import pytest

from mesabench.models import compiled
from mesabench.models.compiled import registry
from tests.models.compiled.reference import python_loop

CONFIGS = {"recurrent": {"n_max": 64}, "unrolled": {"n_max": 64}, "wide": {"n_max": 64}, "banded": {"n_max": 64},
           "polymax": {"grid_points": 9, "degree": 3, "refine_steps": 1}}


def test_the_registry_holds_every_architecture():
  assert registry.registered() == ("recurrent", "unrolled", "wide", "banded", "polymax")
  assert set(CONFIGS) == set(compiled.registered())


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_registered_network_builds_and_keeps_the_rules(name):
  net = compiled.build(name, **CONFIGS[name])
  assert net.violations() == []
  if name == "polymax":
    assert net.apply(np.asarray([[0.0, 1.0, -1.0, 0.0]]))[0] == pytest.approx(0.5, abs=1 / 32)
  else:
    assert net.arch == name and [int(k) for k in net.apply(np.arange(1, 65))] == [python_loop(n) for n in
                                                                                   range(1, 65)]


def test_unknown_names_and_fields_raise():
  with pytest.raises(ValueError, match="recurrent.*polymax"):
    compiled.build("transformer")
  with pytest.raises(ValueError, match="n_max"):
    compiled.build("wide", grid_points=9)
  with pytest.raises(ValueError, match="n_max"):
    compiled.build("wide", n_max=3)
  with pytest.raises(ValueError, match="already registered"):
    registry.register("wide", lambda: None)
