"""Every registered task describes its instances in one line (the tour binary prints them)."""
import jax
import pytest

from mesabench import tasks

SMALL = {"ModSearch-v0": {"bits": 8, "width": 10}, "Maze-v0": {"size": 4}}


@pytest.mark.parametrize("task_id", tasks.registered())
def test_describe_names_the_oracle_answer(task_id):
  task = tasks.make(task_id, **SMALL.get(task_id, {}))
  batch = task.sample(jax.random.key(0), 3)
  for i in range(3):
    line = task.describe(batch, i)
    assert isinstance(line, str) and "\n" not in line and line
  if task_id == "ModSearch-v0":
    assert f"k={int(batch.targets['k'][1])}" in task.describe(batch, 1)
  if task_id == "PolyMax-v0":
    assert f"x={float(batch.targets['x'][2]):.6f}" in task.describe(batch, 2)
