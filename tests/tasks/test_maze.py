"""Maze-v0: perfect mazes, the BFS oracle, scoring and the ground truth, each against plain-Python references."""
import collections
import itertools
import math

import hypothesis
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mesabench import models, tasks
from mesabench.tasks import maze

SETTINGS = hypothesis.settings(max_examples=12, deadline=None, derandomize=True)
STEP = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}


# ------------------------------------------------------------------------------------------------ references


def edges_of(open_):
  """The passages of one maze (bool [S, S, 4]) as a set of frozenset({(r, c), (r', c')}), each seen from both
  cells; also returns the (cell, direction) pairs that lead off the grid or are not mirrored."""
  s = open_.shape[0]
  edges, bad = set(), []
  for r, c, d in zip(*np.nonzero(open_)):
    rr, cc = r + STEP[d][0], c + STEP[d][1]
    if not (0 <= rr < s and 0 <= cc < s) or not open_[rr, cc, (d + 2) % 4]:
      bad.append((int(r), int(c), int(d)))
      continue
    edges.add(frozenset({(int(r), int(c)), (int(rr), int(cc))}))
  return edges, bad


def python_bfs(open_, source):
  """Distances (dict cell -> steps) and BFS parents from ``source`` (r, c), by collections.deque."""
  s = open_.shape[0]
  dist, parent, queue = {source: 0}, {source: None}, collections.deque([source])
  while queue:
    r, c = queue.popleft()
    for d in range(4):
      if open_[r, c, d]:
        nxt = (r + STEP[d][0], c + STEP[d][1])
        if nxt not in dist:
          dist[nxt], parent[nxt] = dist[(r, c)] + 1, (r, c)
          queue.append(nxt)
  del s
  return dist, parent


def python_path(parent, target):
  cells = []
  while target is not None:
    cells.append(target)
    target = parent[target]
  return cells


def as_map(cells, s):
  out = np.zeros((s, s), np.int32)
  for r, c in cells:
    out[r, c] = 1
  return out


def cell(i, s):
  return divmod(int(i), s)


def python_greedy(open_, start, goal):
  s = open_.shape[0]
  cur, walked = start, [start]
  for _ in range(s * s - 1):
    if cur == goal:
      break
    options = []
    for d in range(4):
      nxt = (cur[0] + STEP[d][0], cur[1] + STEP[d][1])
      if open_[cur[0], cur[1], d] and nxt not in walked:
        options.append((abs(nxt[0] - goal[0]) + abs(nxt[1] - goal[1]), d, nxt))
    if not options:
      break
    cur = min(options)[2]  # smallest distance, then the first direction
    walked.append(cur)
  return as_map(walked, s)


def python_bfs_search(open_, start, goal, budget):
  dist, parent = python_bfs(open_, start)
  reached = [v for v in dist if dist[v] <= budget]
  s = open_.shape[0]
  target = min(reached, key=lambda v: (abs(v[0] - goal[0]) + abs(v[1] - goal[1]), v[0] * s + v[1]))
  return as_map(python_path(parent, target), s)


# ------------------------------------------------------------------------------------------------ parameters


@pytest.mark.parametrize("bad", [1, 0, -3, 65, 1000, 7.0, "7", True, None, [7]])
def test_bad_size_names_size(bad):
  with pytest.raises(ValueError, match=r"\bsize\b"):
    tasks.make("Maze-v0", size=bad)


def test_registry_spec_and_larger():
  task = tasks.make("Maze-v0")
  assert task.size == 7 and "Maze-v0" in tasks.registered() and hash(task) == hash(tasks.make("Maze-v0", size=7))
  spec = tasks.make("Maze-v0", size=5).spec
  assert spec.input_shape == (5, 5, 6) and spec.input_kind == "bits" and spec.output_kind == "cells"
  assert tasks.from_spec(spec) == maze.Maze(5)
  assert maze.Maze(7).larger() == maze.Maze(14) and maze.Maze(32).larger() == maze.Maze(64)
  assert maze.Maze(33).larger() is None and maze.Maze(7).larger_requires_shared_weights()
  assert task.success_metric == "exact_match"
  assert dict(task.metric_directions) == {"loss": "lower", "cell_accuracy": "higher", "exact_match": "higher"}


# ------------------------------------------------------------------------------------------------ generator


def check_perfect(open_):
  """Every maze of ``open_`` [B, S, S, 4] is a spanning tree: no passage leaves the grid, passages are mirrored,
  S*S - 1 edges, connected."""
  s = open_.shape[1]
  for m in open_:
    edges, bad = edges_of(m)
    assert not bad, bad[:3]
    assert len(edges) == s * s - 1
    dist, _ = python_bfs(m, (0, 0))
    assert len(dist) == s * s


@pytest.mark.slow
def test_perfect_mazes_every_size_2_to_12():
  for s in range(2, 13):
    open_, start, goal = (np.asarray(a) for a in maze.generate(jax.random.key(s), 32, s))
    assert open_.dtype == bool and open_.shape == (32, s, s, 4)
    check_perfect(open_)
    assert np.all(start != goal) and np.all((0 <= start) & (start < s * s)) and np.all(goal < s * s)


@SETTINGS
@hypothesis.given(st.integers(2, 5), st.integers(0, 2**32 - 1))
def test_perfect_mazes_property(size, seed):
  batch = maze.Maze(size).sample(jax.random.key(seed), 8)
  check_perfect(np.asarray(batch.info["open"]))
  inputs = np.asarray(batch.inputs)
  assert inputs.dtype == np.float32 and set(np.unique(inputs)) <= {0.0, 1.0}
  np.testing.assert_array_equal(inputs[..., :4], np.asarray(batch.info["open"]))
  np.testing.assert_array_equal(inputs[..., 4].sum((1, 2)), 1)
  np.testing.assert_array_equal(inputs[..., 5].sum((1, 2)), 1)


def test_wilson_reaches_every_spanning_tree_uniformly_and_ends_are_uniform_pairs():
  """Size 3 has 192 spanning trees; 9,600 draws see every one about 50 times (a DFS generator misses some:
  e.g. the pinwheel around the centre is no DFS tree from any root), and each of the 72 (start, goal) pairs about
  133 times."""
  open_, start, goal = (np.asarray(a) for a in maze.generate(jax.random.key(0), 9600, 3))
  trees = collections.Counter(frozenset(edges_of(m)[0]) for m in open_)
  assert len(trees) == maze.spanning_trees(3)[0] == 192
  counts = np.array(list(trees.values()))
  chi2 = float(np.sum((counts - 50.0) ** 2 / 50.0))
  assert chi2 < 191 + 6 * math.sqrt(2 * 191), chi2  # chi-square with 191 degrees of freedom, 6 sigma
  pinwheel = {((0, 0), (0, 1)), ((0, 1), (1, 1)), ((0, 2), (1, 2)), ((1, 2), (1, 1)), ((2, 2), (2, 1)),
              ((2, 1), (1, 1)), ((2, 0), (1, 0)), ((1, 0), (1, 1))}
  assert frozenset(frozenset(e) for e in pinwheel) in trees
  pairs = collections.Counter(zip(start.tolist(), goal.tolist()))
  assert len(pairs) == 72 and all(s != g for s, g in pairs)
  counts = np.array(list(pairs.values()))
  assert float(np.sum((counts - 9600 / 72) ** 2 / (9600 / 72))) < 71 + 6 * math.sqrt(2 * 71)


def test_deterministic_by_key_and_independent_of_batch_size():
  task = maze.Maze(5)
  a, b = task.sample(jax.random.key(5), 16), task.sample(jax.random.key(5), 16)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  small = task.sample(jax.random.key(5), 7)
  np.testing.assert_array_equal(np.asarray(small.inputs), np.asarray(a.inputs[:7]))
  other = task.sample(jax.random.key(6), 16)
  assert not np.array_equal(np.asarray(other.info["open"]), np.asarray(a.info["open"]))
  mazes = {np.asarray(m).tobytes() for m in a.info["open"]}
  assert len(mazes) == 16  # different instances of one batch get different mazes


# ------------------------------------------------------------------------------------------------ oracle


@pytest.mark.parametrize("size", [2, 5, 9])
def test_oracle_equals_python_bfs(size):
  task = maze.Maze(size)
  batch = task.sample(jax.random.key(size), 16)
  open_ = np.asarray(batch.info["open"])
  for i in range(batch.size):
    s, g = cell(batch.info["start"][i], size), cell(batch.info["goal"][i], size)
    assert np.asarray(batch.inputs)[i, s[0], s[1], 4] == 1 and np.asarray(batch.inputs)[i, g[0], g[1], 5] == 1
    ds, parent = python_bfs(open_[i], s)
    dg, _ = python_bfs(open_[i], g)
    want_ds = np.array([[ds[(r, c)] for c in range(size)] for r in range(size)])
    want_dg = np.array([[dg[(r, c)] for c in range(size)] for r in range(size)])
    np.testing.assert_array_equal(np.asarray(batch.info["dist_start"][i]), want_ds)
    np.testing.assert_array_equal(np.asarray(batch.info["dist_goal"][i]), want_dg)
    path = python_path(parent, g)
    np.testing.assert_array_equal(np.asarray(batch.targets["path"][i]), as_map(path, size))
    assert int(batch.info["path_length"][i]) == len(path) == ds[g] + 1
    diff = {k: int(v[i]) for k, v in batch.info["difficulty"].items()}
    manhattan = abs(s[0] - g[0]) + abs(s[1] - g[1])
    assert diff["path_length"] == len(path) and diff["manhattan"] == manhattan
    assert diff["detour"] == len(path) - 1 - manhattan
    degree = open_[i].sum(-1)
    assert diff["junctions"] == sum(degree[v] >= (2 if v == s else 3) for v in path[1:])  # path[0] is the goal


def test_decode_and_instance_vector():
  task = maze.Maze(4)
  batch = task.sample(jax.random.key(2), 16)
  dec = task.decode(batch.inputs)
  for name in ("open", "start", "goal"):
    np.testing.assert_array_equal(np.asarray(dec[name]), np.asarray(batch.info[name]))
  vec = np.asarray(task.instance_vector(batch.inputs))
  assert vec.shape == (16, 2 * 4 * 3 + 4) and vec.dtype == np.int32
  open_ = np.asarray(batch.info["open"])
  for i in range(16):
    assert vec[i, :24].sum() == 15  # the passages of a spanning tree of 16 cells
    assert tuple(vec[i, 24:]) == cell(batch.info["start"][i], 4) + cell(batch.info["goal"][i], 4)
    np.testing.assert_array_equal(vec[i, :12], open_[i, :, :3, 1].reshape(-1))


def test_from_mazes_refuses_imperfect_mazes():
  task = maze.Maze(3)
  batch = task.sample(jax.random.key(0), 2)
  open_ = np.asarray(batch.info["open"]).astype(np.int32)
  start, goal = np.asarray(batch.info["start"]), np.asarray(batch.info["goal"])
  same = task.from_mazes(open_, start, goal)
  np.testing.assert_array_equal(np.asarray(same.targets["path"]), np.asarray(batch.targets["path"]))
  one_way = open_.copy()
  one_way[0, 0, 0, 1] = 1 - one_way[0, 0, 0, 1]
  with pytest.raises(ValueError, match="symmetric"):
    task.from_mazes(one_way, start, goal)
  full = np.zeros_like(open_)
  full[:, :, :-1, 1] = full[:, :, 1:, 3] = full[:, :-1, :, 2] = full[:, 1:, :, 0] = 1  # 12 passages: cycles
  with pytest.raises(ValueError, match="passages"):
    task.from_mazes(full, start, goal)
  off = open_.copy()
  off[0, 0, 0, 0] = 1
  with pytest.raises(ValueError, match="leaves the grid"):
    task.from_mazes(off, start, goal)
  with pytest.raises(ValueError, match="goal"):
    task.from_mazes(open_, start, start)
  with pytest.raises(ValueError, match="start"):
    task.from_mazes(open_, np.array([0, 9]), goal)


# ------------------------------------------------------------------------------------------------ scoring


def test_scoring_hand_computed():
  task = maze.Maze(5)
  batch = task.sample(jax.random.key(3), 4)
  path = np.asarray(batch.targets["path"])
  pred = path.copy()
  pred[1, 2, 3] = 1 - pred[1, 2, 3]  # one wrong cell of 25
  pred[2] = 1 - pred[2]  # every cell wrong
  pred[3, 0, 0] = 2  # not a 0/1 answer: wrong
  m = {k: np.asarray(v) for k, v in task.score(batch, pred).items()}
  np.testing.assert_array_equal(m["exact_match"], [1, 0, 0, 0])
  np.testing.assert_allclose(m["loss"], [0, 1 / 25, 1, 1 / 25], rtol=1e-6)
  np.testing.assert_allclose(m["cell_accuracy"], [1, 24 / 25, 0, 24 / 25], rtol=1e-6)
  assert all(v.dtype == np.float32 and v.shape == (4,) for v in m.values())
  for same in (path.astype(bool), jnp.asarray(path, jnp.float32), path.astype(np.int64)):
    np.testing.assert_array_equal(np.asarray(task.score(batch, same)["exact_match"]), 1)
  bad = path.astype(np.float64)
  bad[0, 0, 0], bad[1, 1, 1], bad[2, 2, 2] = np.nan, path[1, 1, 1] + 0.5, np.inf
  np.testing.assert_array_equal(np.asarray(task.score(batch, bad)["exact_match"]), [0, 0, 0, 1])
  traced = jax.jit(task.score)(batch, jnp.asarray(path, bool))
  np.testing.assert_array_equal(np.asarray(traced["loss"]), 0)
  with pytest.raises(ValueError, match="prediction must have shape"):
    task.score(batch, path[:, :4])


# ------------------------------------------------------------------------------------------------ ground truth


@pytest.fixture(scope="module")
def seven():
  task = maze.Maze(7)
  return task, task.sample(jax.random.key(7), 256)


def test_full_bfs_is_exact_on_every_maze(seven):
  task, batch = seven
  assert task.full_search() == ("bfs", 49)
  pred = models.make("search", task.spec).predict({}, batch.inputs)
  np.testing.assert_array_equal(np.asarray(task.score(batch, pred)["exact_match"]), 1)


def test_bfs_budget_reaches_the_goal_exactly_when_deep_enough(seven):
  task, batch = seven
  steps = np.asarray(batch.info["path_length"]) - 1
  open_ = np.asarray(batch.info["open"])
  for budget in task.search_budgets("bfs"):
    pred = np.asarray(task.search("bfs", budget, batch.inputs))
    exact = np.asarray(task.score(batch, pred)["exact_match"])
    np.testing.assert_array_equal(exact, steps <= budget)
    goal = np.asarray(batch.info["goal"])
    np.testing.assert_array_equal(pred.reshape(batch.size, -1)[np.arange(batch.size), goal], steps <= budget)
    for i in range(0, batch.size, 16):  # against the plain-Python searcher
      want = python_bfs_search(open_[i], cell(batch.info["start"][i], 7), cell(goal[i], 7), budget)
      np.testing.assert_array_equal(pred[i], want)
  assert task.search_budgets("bfs") == (1, 2, 4, 8, 16, 32, 49)


def test_greedy_against_python_and_wrong_somewhere(seven):
  task, batch = seven
  pred = np.asarray(models.make("heuristic", task.spec, rule="greedy").predict({}, batch.inputs))
  open_ = np.asarray(batch.info["open"])
  for i in range(batch.size):
    want = python_greedy(open_[i], cell(batch.info["start"][i], 7), cell(batch.info["goal"][i], 7))
    np.testing.assert_array_equal(pred[i], want)
  exact = np.asarray(task.score(batch, pred)["exact_match"])
  assert 0.0 < exact.mean() < 1.0
  # in a perfect maze the walk is right exactly when it reaches the goal
  reached = pred.reshape(batch.size, -1)[np.arange(batch.size), np.asarray(batch.info["goal"])] == 1
  np.testing.assert_array_equal(exact == 1, reached)


def comb(size):
  """A comb maze: row ``size // 2`` is one corridor, every column a corridor crossing it."""
  open_ = np.zeros((size, size, 4), np.int32)
  mid = size // 2
  open_[mid, :-1, 1] = open_[mid, 1:, 3] = 1
  open_[:-1, :, 2] = open_[1:, :, 0] = 1
  return open_


def test_greedy_is_exact_on_a_straight_corridor_and_fails_on_a_detour():
  task = maze.Maze(5)
  m = comb(5)
  # along the corridor, both ways; and from the top of a tooth to the bottom of another (down, across, down)
  starts, goals = np.array([10, 14, 0]), np.array([14, 10, 24])
  batch = task.from_mazes(np.stack([m] * 3), starts, goals)
  pred = task.heuristic("greedy", batch.inputs)
  np.testing.assert_array_equal(np.asarray(task.score(batch, pred)["exact_match"]), [1, 1, 1])
  # a snake (rows joined alternately at the east and west ends): every step is forced, even away from the goal
  snake = np.zeros((5, 5, 4), np.int32)
  snake[:, :-1, 1] = snake[:, 1:, 3] = 1
  for r in range(4):
    c = 4 if r % 2 == 0 else 0
    snake[r, c, 2] = snake[r + 1, c, 0] = 1
  batch = task.from_mazes(snake[None], np.array([0]), np.array([5]))  # (0, 0) -> (1, 0): 10 cells
  np.testing.assert_array_equal(np.asarray(task.heuristic("greedy", batch.inputs)), np.asarray(batch.targets["path"]))
  trap = comb(5)
  trap[2, 1, 1] = trap[2, 2, 3] = 0  # cut the corridor between columns 1 and 2 ...
  trap[4, 1, 1] = trap[4, 2, 3] = 1  # ... and join the teeth at the bottom row instead
  batch = task.from_mazes(trap[None], np.array([10]), np.array([12]))  # (2, 0) -> (2, 2)
  pred = task.heuristic("greedy", batch.inputs)
  # at (2, 1) north and south are equally near the goal: north first, up a dead-end tooth
  np.testing.assert_array_equal(np.asarray(pred[0]), as_map([(2, 0), (2, 1), (1, 1), (0, 1)], 5))
  np.testing.assert_array_equal(np.asarray(task.search("bfs", 25, batch.inputs)), np.asarray(batch.targets["path"]))


def test_chance_predictions_are_paths_from_the_start(seven):
  task, batch = seven
  sub = batch.take(jnp.arange(32))
  draws = np.asarray(task.chance_predictions(sub, jax.random.key(0), 64))
  assert draws.shape == (64, 32, 7, 7) and draws.dtype == np.int32
  open_ = np.asarray(sub.info["open"])
  hits = 0
  for i in range(32):
    s = cell(sub.info["start"][i], 7)
    ds, parent = python_bfs(open_[i], s)
    for k in range(0, 64, 8):
      cells = [tuple(v) for v in np.argwhere(draws[k, i])]
      end = max(cells, key=lambda v: ds[v])
      assert end != s and draws[k, i].sum() == ds[end] + 1
      np.testing.assert_array_equal(draws[k, i], as_map(python_path(parent, end), 7))
  flat = jax.tree_util.tree_map(lambda a: jnp.concatenate([a] * 64), sub)
  hits = float(task.score(flat, draws.reshape(-1, 7, 7))["exact_match"].mean())
  assert abs(hits - 1 / 48) < 4 * math.sqrt(1 / 48 / 2048)
  assert task.answer_bits() == pytest.approx(math.log2(48))


def test_memorizers_answer_maps():
  task = maze.Maze(4)
  pool = task.pool(jax.random.key(0), 64)
  batch = task.sample_outside(jax.random.key(1), 64, pool)
  for model_id in ("lookup", "lookup_instance"):
    model = models.make(model_id, task.spec)
    assert model.init(None)["answers"].shape == (1, 4, 4)
    params = model.fit(model.init(None), pool.inputs, pool.targets)
    np.testing.assert_array_equal(np.asarray(model.predict(params, pool.inputs)), np.asarray(pool.targets["path"]))
    got = np.asarray(model.predict(params, batch.inputs))
    assert got.shape == (64, 4, 4)
    keys = np.asarray(pool.inputs).reshape(64, -1) if model_id == "lookup" else np.asarray(
        task.instance_vector(pool.inputs), np.float64)
    queries = np.asarray(batch.inputs).reshape(64, -1) if model_id == "lookup" else np.asarray(
        task.instance_vector(batch.inputs), np.float64)
    for q, g in zip(queries, got):
      j = int(np.argmin(((keys - q) ** 2).sum(1)))  # ties to the earliest row
      np.testing.assert_array_equal(g, np.asarray(pool.targets["path"][j]))


def test_ground_truth_members_run():
  task = maze.Maze(4)
  labels = [gt.label for gt in task.ground_truth()]
  assert labels == ["lookup", "lookup_instance", "heuristic(rule=greedy)"] + [
      f"search(strategy=bfs, budget={b})" for b in (1, 2, 4, 8, 16)]
  assert task.search_family().budgets == (1, 2, 4, 8, 16)
  batch = task.sample(jax.random.key(0), 8)
  for gt in task.ground_truth()[2:]:
    model = models.make(gt.model_id, task.spec, **gt.config_dict)
    assert np.asarray(model.predict(model.init(None), batch.inputs)).shape == (8, 4, 4)
  with pytest.raises(ValueError, match="budget"):
    task.search("bfs", 17, batch.inputs)
  with pytest.raises(ValueError, match="rule"):
    task.heuristic("wall_follower", batch.inputs)


# ------------------------------------------------------------------------------------------------ counting, splits


def test_spanning_tree_counts():
  assert [maze.spanning_trees(s) for s in (2, 3, 4)] == [(4, True), (192, True), (100352, True)]
  assert maze.spanning_trees(5)[0] == 557568000  # OEIS A007341
  for s in range(2, 13):  # the closed form against the exact determinant
    assert maze.log2_spanning_trees(s) == pytest.approx(math.log2(maze.spanning_trees(s)[0]), abs=1e-9)
  top = maze.EXACT_TREE_COUNT_MAX + 1
  bound, exact = maze.spanning_trees(top)
  assert not exact and bound.bit_length() - 1 == math.floor(maze.log2_spanning_trees(top) - 1)
  assert maze.Maze(2).space_size == 4 * 4 * 3 and maze.Maze(3).space_size == 192 * 9 * 8
  assert maze.Maze(64).table_bits() == math.inf and maze.Maze(7).table_bits() > 1e20


def brute_force_tree_count(size):
  """Spanning trees of the size x size grid by trying every set of N - 1 edges (size <= 3)."""
  n = size * size
  edges = [(r * size + c, r * size + c + 1) for r in range(size) for c in range(size - 1)]
  edges += [(r * size + c, (r + 1) * size + c) for r in range(size - 1) for c in range(size)]
  count = 0
  for subset in itertools.combinations(edges, n - 1):
    root = list(range(n))

    def find(v):
      while root[v] != v:
        v = root[v]
      return v
    ok = True
    for a, b in subset:
      ra, rb = find(a), find(b)
      if ra == rb:
        ok = False
        break
      root[ra] = rb
    count += ok
  return count


def test_tree_count_brute_force():
  assert [brute_force_tree_count(s) for s in (2, 3)] == [4, 192]


def test_whole_space_pool_and_outside():
  task = maze.Maze(2)
  pool = task.pool(jax.random.key(0), 48)  # every instance of size 2
  ids = {(np.asarray(m).tobytes(), int(s), int(g)) for m, s, g in
         zip(pool.info["open"], pool.info["start"], pool.info["goal"])}
  assert len(ids) == 48
  with pytest.raises(ValueError, match="size must be in"):
    task.pool(jax.random.key(0), 49)
  small = task.pool(jax.random.key(1), 40)
  out = task.sample_outside(jax.random.key(2), 8, small)
  inside = {(np.asarray(m).tobytes(), int(s), int(g)) for m, s, g in
            zip(small.info["open"], small.info["start"], small.info["goal"])}
  got = {(np.asarray(m).tobytes(), int(s), int(g)) for m, s, g in
         zip(out.info["open"], out.info["start"], out.info["goal"])}
  assert len(got) == 8 and not got & inside


def test_strata_recomputed_and_hard_is_harder_for_greedy(seven):
  task, batch = seven
  hard = np.asarray(batch.info["strata"]["hard"])
  np.testing.assert_array_equal(hard, np.asarray(batch.info["path_length"]) >= maze.HARD_PATH_FACTOR * 7)
  np.testing.assert_array_equal(np.asarray(batch.info["strata"]["easy"]), ~hard)
  assert 0.15 < hard.mean() < 0.4
  h = task.sample(jax.random.key(1), 128, stratum="hard")
  e = task.sample(jax.random.key(2), 128, stratum="easy")
  assert np.all(np.asarray(h.info["strata"]["hard"])) and np.all(np.asarray(e.info["strata"]["easy"]))
  assert len(set(np.asarray(task._hashes(h)).tolist())) == 128
  em = [float(task.score(b, task.heuristic("greedy", b.inputs))["exact_match"].mean()) for b in (h, e)]
  assert em[0] < 0.5 * em[1], em
  pool = task.pool(jax.random.key(3), 128)
  out = task.sample_outside(jax.random.key(4), 128, pool, stratum="hard")
  assert not set(task._hashes(out).tolist()) & set(task._hashes(pool).tolist())
  assert np.all(np.asarray(out.info["strata"]["hard"]))


def test_memory_estimate_is_positive_and_grows_with_size():
  assert 0 < maze.Maze(4).memory_bytes(1024) < maze.Maze(5).memory_bytes(1024)


def test_x64_on_and_off_give_identical_mazes_and_answers():
  task = maze.Maze(5)
  out = []
  for flag in (False, True):
    with jax.enable_x64(flag):
      batch = task.sample(jax.random.key(11), 16)
      answers = [task.heuristic("greedy", batch.inputs), task.search("bfs", 4, batch.inputs),
                 task.chance_predictions(batch, jax.random.key(1), 3), task.instance_vector(batch.inputs)]
      out.append([np.asarray(a) for a in jax.tree_util.tree_leaves([batch, answers])])
  for a, b in zip(*out):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)
