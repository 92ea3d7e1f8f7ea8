"""The seed's search loop (ModSearch) compiled into ReLU networks whose weights are set by construction.

The program: K = floor(n**0.7) (exactly: the largest K with K**10 <= n**7); k = 0; for i = 1..K: if i*i mod n >
k*k mod n: k = i; return k.

Inputs of every network: the vector (n, K). K is an *input*, computed exactly by the integer program
``mesabench.kernels.modsearch.kmax`` (15 limbs of 16 bits; no float pow), not by the network: computing it inside
would need a step function over the K(n_max) thresholds ceil(j**(10/7)) (2 ReLUs each), which alone is
proportional to n_max**0.7 and would hide the O(1) and n**0.4 laws of the recurrent and banded networks; the size
law reports that extra cost separately (``kmax_layer_size``).

Architectures (all: sparse layers, affine-then-ReLU, float64 integers, exact for 1 <= n <= n_max <= 2**30):
  * ``recurrent``: one 6-layer cell with state (i, s = i*i mod n, k, r = k*k mod n, n, K), applied
    max(K) times to a batch (a step with i = K freezes the state); O(1) parameters, compute K(n) cells per query.
  * ``unrolled``: the same cell written out K(n_max) times with the loop index i baked into each copy's biases;
    parameters, connections and depth proportional to n_max**0.7.
  * ``wide``: every candidate i <= K(n_max) gets its residue in parallel: i*i mod n is built from the parent
    floor(i/2) by (2j + b)**2 = 4 j*j + b (4j + 1), reduced from [0, 8n) by three conditional subtractions (4n, 2n,
    n), and zeroed for i > K so that out-of-range candidates stay small; then an argmax tournament tree. Width proportional to n_max**0.7, depth to log n_max.
  * ``banded``: only band tops (the largest k <= K with q*n <= k*k < (q+1)*n) can be maximizers; for each band
    q <= floor(n_max**0.4) the top and its square are found digit by digit (restoring square root with the extra
    condition t <= K), then the same tournament. Parameters proportional to n_max**0.4 * log2(n_max**0.7).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mesabench.kernels import modsearch as _kernel
from mesabench.models.compiled import analysis
from mesabench.models.compiled import gadgets
from mesabench.models.compiled import ir
from mesabench.models.compiled import jax_engine
from mesabench.models.compiled import numpy_engine
from mesabench.models.compiled import validate
from mesabench.models.compiled.ir import Expr
from mesabench.models.compiled.ir import select

ARCHS = ("recurrent", "unrolled", "wide", "banded")
N_MAX = _kernel.N_MAX
CELL_DEPTH = 6
"""Layers in one step of the recurrent (and unrolled) cell."""


# ------------------------------------------------------------------------------------------ exact integer helpers


kmax_int = _kernel.kmax_int  # floor(n**0.7) exactly, in Python integers


def band_cap(n_max: int) -> int:
  """floor(n_max**0.4) exactly (largest Q with Q**5 <= n_max**2): no n <= n_max has more than Q + 1 bands.

  Why: the last band of n is floor(K(n)**2 / n) <= n**1.4 / n = n**0.4 <= n_max**0.4.
  """
  return _kernel.floor_root(n_max, 2, 5)


def seed_loop(n: int) -> int:
  """The seed program, verbatim, in Python integers (the specification every network is checked against)."""
  k = 0
  for i in range(1, kmax_int(n) + 1):
    if i * i % n > k * k % n:
      k = i
  return k


def _validate_n_max(n_max) -> int:
  if isinstance(n_max, bool) or not isinstance(n_max, (int, np.integer)) or not 4 <= int(n_max) <= N_MAX:
    raise ValueError(f"n_max must be an integer in [4, {N_MAX}], got {n_max!r}")
  return int(n_max)


# ------------------------------------------------------------------------------------------------ the loop cell


def _cell_steps(m: float, index: int | None) -> list[ir.Step]:
  """The six layers of one loop step. ``index`` None: the loop index i is a state unit (recurrent cell);
  an int j: the step processes i = j, baked into biases (unrolled copy j). State groups: [i,] s, k_new, k_old,
  r_new, r_old, n, K (k = k_new + k_old, r = r_new + r_old)."""
  rec = index is None
  one = lambda name: Expr.unit(name, 1)

  def last_index():  # the index processed before this step
    return one("i") if rec else Expr.constant(1, index - 1)

  def l1(lb):
    i0, s, n, kk = last_index(), one("s"), one("n"), one("K")
    u = s + 2 * i0 + 1
    lb.add("p_hi", kk - i0, "relu(K - i): with p_lo, act = p_hi - p_lo = 1[i + 1 <= K] (this step is live)")
    lb.add("p_lo", kk - i0 - 1, "relu(K - i - 1)")
    lb.add("q_hi", u - n + 1, "relu(s + 2i + 1 - n + 1): with q_lo, wrap = q_hi - q_lo = 1[s + 2i + 1 >= n]")
    lb.add("q_lo", u - n, "relu(s + 2i + 1 - n)")
    lb.add("u", u, "u = s + 2i + 1 = (i+1)**2 - (i**2 - s), the next square before reduction (< 2n)")
    lb.add("s", s, "s = i*i mod n (carried, kept in case the step is frozen)")
    lb.add("k", one("k_new") + one("k_old"), "k = k_new + k_old, the best index so far")
    lb.add("r", one("r_new") + one("r_old"), "r = r_new + r_old = k*k mod n, the best residue so far")
    lb.carry("n", "K")
    if rec:
      lb.carry("i")

  def l2(lb):
    lb.add("act", one("p_hi") - one("p_lo"), "act = relu(p_hi - p_lo) = 1[i + 1 <= K], a 0/1 unit")
    lb.add("wrap", one("q_hi") - one("q_lo"), "wrap = relu(q_hi - q_lo) = 1[s + 2i + 1 >= n], a 0/1 unit")
    lb.carry("u", "s", "k", "r", "n", "K")
    if rec:
      lb.carry("i")

  def l3(lb):
    u, n, act, wrap = one("u"), one("n"), one("act"), one("wrap")
    if rec:
      lb.add("i", one("i") + act, "i' = i + act (the index advances only while live)")
    lb.add("s_keep", select(select(u, wrap, m, 0), act, m), "u if live and u < n, else 0 (big-M select)")
    lb.add("s_wrap", select(select(u - n, wrap, m), act, m), "u - n if live and u >= n, else 0")
    lb.add("s_frz", select(one("s"), act, m, 0), "s if the step is frozen (i = K), else 0")
    lb.carry("act", "k", "r", "n", "K")

  def l4(lb):
    s_new = one("s_keep") + one("s_wrap") + one("s_frz")
    r, act = one("r"), one("act")
    lb.add("g_hi", select(s_new - r, act, m), "relu(s' - r - M(1 - act)): with g_lo, g = 1[live and s' > r]")
    lb.add("g_lo", select(s_new - r - 1, act, m), "relu(s' - r - 1 - M(1 - act))")
    lb.add("s", s_new, "s' = s_keep + s_wrap + s_frz = (i')**2 mod n")
    lb.carry("k", "r", "n", "K")
    if rec:
      lb.carry("i")

  def l5(lb):
    lb.add("g", one("g_hi") - one("g_lo"), "g = relu(g_hi - g_lo) = 1[s' > r], 0/1: the strict 'better' test")
    lb.carry("s", "k", "r", "n", "K")
    if rec:
      lb.carry("i")

  def l6(lb):
    g, s = one("g"), one("s")
    new_i = one("i") if rec else Expr.constant(1, index)
    if rec:
      lb.carry("i")
    lb.add("s", s, "s (carried)")
    lb.add("k_new", select(new_i, g, m), "i' if g else 0")
    lb.add("k_old", select(one("k"), g, m, 0), "k if not g else 0   (k' = k_new + k_old)")
    lb.add("r_new", select(s, g, m), "s' if g else 0")
    lb.add("r_old", select(one("r"), g, m, 0), "r if not g else 0   (r' = r_new + r_old)")
    lb.carry("n", "K")

  return [l1, l2, l3, l4, l5, l6]


def _init_steps(rec: bool):
  def init(lb):
    if rec:
      lb.add("i", Expr.constant(1, 0.0), "i = 0 (no index processed yet)")
    lb.add("s", Expr.constant(1, 0.0), "s = 0*0 mod n")
    for name in ("k_new", "k_old", "r_new", "r_old"):
      lb.add(name, Expr.constant(1, 0.0), f"{name} = 0 (k = 0, r = 0: the seed's initial best)")
    lb.carry("n", "K")
  return init


def _readout(lb):
  lb.add("k", Expr.unit("k_new", 1) + Expr.unit("k_old", 1), "k = k_new + k_old: the answer")
  lb.add("r", Expr.unit("r_new", 1) + Expr.unit("r_old", 1), "r = k*k mod n")


_INPUT = {"n": (0, 1), "K": (1, 1)}


# ------------------------------------------------------------------------------------------------ the tournament


def _tournament(steps: list, y: Expr, k: Expr, m: float, carry: tuple[str, ...] = ()):
  """Appends ``gadgets.tournament`` (the largest y, the smallest k among ties) and a layer with the winner's
  "k" and "r" = y - 1 = k*k mod n (y holds residue + 1)."""
  y_fin, k_fin = gadgets.tournament(steps, y, k, m, carry)

  def fin(lb):
    lb.add("k", k_fin, "k: the winner's index, the answer")
    lb.add("r", y_fin - 1, "r = y - 1 = k*k mod n")
  steps.append(fin)


# ------------------------------------------------------------------------------------------------ the networks


@dataclasses.dataclass(eq=False)
class ModSearchNet:
  """A compiled ModSearch network: ``apply(n) -> k`` equals the seed loop for every integer 1 <= n <= n_max.

  Attributes: ``arch``, ``n_max``, ``params`` (pytree: a list of {"w", "b"} per layer; for recurrent and unrolled
  {"init", "cell", "readout"}, the unrolled cell's leaves stacked over the K(n_max) copies), ``layers`` (the
  sparsity patterns, or the cell's for the looped archs), ``num_params`` (= costs.param_count(params)),
  ``num_connections`` (nonzero weights), ``num_units``, ``depth`` (layers a query with n = n_max passes through).
  """
  arch: str
  n_max: int
  m: float
  params: Any
  layers: list
  init_layer: Any = None
  readout_layer: Any = None
  num_copies: int = 1

  @property
  def k_max(self) -> int:
    return kmax_int(self.n_max)

  def _parts(self):
    if self.arch in ("recurrent", "unrolled"):
      cell = analysis.stack_sizes(self.layers)
      ends = analysis.stack_sizes([self.init_layer, self.readout_layer])
      copies = 1 if self.arch == "recurrent" else self.num_copies
      return cell, ends, copies
    return analysis.stack_sizes(self.layers), None, 1

  @property
  def num_params(self) -> int:
    cell, ends, copies = self._parts()
    return cell["num_params"] * copies + (ends["num_params"] if ends else 0)

  @property
  def num_connections(self) -> int:
    cell, ends, copies = self._parts()
    return cell["num_connections"] * copies + (ends["num_connections"] if ends else 0)

  @property
  def num_units(self) -> int:
    cell, ends, copies = self._parts()
    return cell["num_units"] * copies + (ends["num_units"] if ends else 0)

  @property
  def depth(self) -> int:
    if self.arch == "recurrent":
      return 2 + CELL_DEPTH * self.k_max
    if self.arch == "unrolled":
      return 2 + CELL_DEPTH * self.num_copies
    return len(self.layers)

  def flops_per_query(self, n) -> int:
    """FLOPs of one query (2 per connection, 1 per bias, 1 per ReLU); only the recurrent count depends on n:
    it runs K(n) cells (a batch runs max K cells for everyone; this is the per-query count)."""
    n = int(n)
    if not 1 <= n <= self.n_max:
      raise ValueError(f"n must be in [1, {self.n_max}], got {n}")
    if self.arch == "recurrent":
      return analysis.stack_flops([self.init_layer, self.readout_layer]) + kmax_int(n) * analysis.stack_flops(self.layers)
    if self.arch == "unrolled":
      return analysis.stack_flops([self.init_layer, self.readout_layer]) + self.num_copies * analysis.stack_flops(self.layers)
    return analysis.stack_flops(self.layers)

  # -------------------------------------------------------------------------------------------- validation

  @property
  def contract(self) -> validate.Contract:
    """The rules this network keeps: integers below 2**52, affine + ReLU in every layer (no Mul layers, no linear
    read-out), weights of magnitude >= M only as big-M select entries."""
    return validate.Contract(integer=True, allow_mul=False, linear_last=False, big_m=self.m)

  def copy_params(self, j: int):
    """The parameters of cell copy j (0-based; unrolled only: copy j processes i = j + 1)."""
    return jax.tree_util.tree_map(lambda a: a[j], self.params["cell"])

  def violations(self, n=None, max_steps: int | None = None) -> list[validate.Violation]:
    """Every violation of ``validate``'s rules: the static ones on each stack (init, cell, read-out for the looped
    archs: the unrolled cell with the parameters of its first and last copy, whose biases are affine in the copy
    index, so the extremes bound them; else the one stack), and, for queries ``n`` (integers in [1, n_max], any
    shape), the activation rules on every layer those queries pass through (for the looped archs the first
    ``max_steps`` cells, default all K(n) of them). An empty list: nothing found."""
    c = self.contract
    tag = lambda vs, stack: [dataclasses.replace(v, stack=stack) for v in vs]
    if self.arch not in ("recurrent", "unrolled"):
      out = validate.static_violations(self.layers, self.params, c)
      if n is not None:
        x = self.inputs(n)
        out += validate.activation_violations(self.layers, self.params, c, x,
                                              numpy_engine.trace(self.layers, self.params, x))
      return out
    out = tag(validate.static_violations([self.init_layer], [self.params["init"]], c), "init")
    out += tag(validate.static_violations([self.readout_layer], [self.params["readout"]], c), "readout")
    copies = [self.params["cell"]] if self.arch == "recurrent" else \
        [self.copy_params(0), self.copy_params(self.num_copies - 1)]
    for p in copies:
      out += tag(validate.static_violations(self.layers, p, c), "cell")
    if n is None:
      return out
    x = self.inputs(n)
    acts = numpy_engine.trace([self.init_layer], [self.params["init"]], x)
    out += tag(validate.activation_violations([self.init_layer], [self.params["init"]], c, x, acts), "init")
    h = acts[0]
    steps = int(x[1].max()) if x.size else 0
    steps = steps if max_steps is None else min(steps, max_steps)
    for step in range(steps):
      p = self.params["cell"] if self.arch == "recurrent" else self.copy_params(step)
      acts = numpy_engine.trace(self.layers, p, h)
      out += tag(validate.activation_violations(self.layers, p, c, h, acts), f"cell step {step + 1}")
      h = acts[-1]
    if max_steps is None or steps == int(x[1].max()):
      acts = numpy_engine.trace([self.readout_layer], [self.params["readout"]], h)
      out += tag(validate.activation_violations([self.readout_layer], [self.params["readout"]], c, h, acts),
                 "readout")
    return out

  # -------------------------------------------------------------------------------------------- execution

  def inputs(self, n) -> np.ndarray:
    """The network's input matrix [2, batch] (float64): rows n and K = kmax(n) (exact int32 program)."""
    n = np.asarray(n)
    _kernel.validate_n(n)
    if n.size and int(np.max(n)) > self.n_max:
      raise ValueError(f"n must be in [1, {self.n_max}] (this network's n_max), got {int(np.max(n))}")
    flat = n.reshape(-1).astype(np.int64)
    kk = np.asarray(_kernel.kmax(flat.astype(np.int32))).astype(np.int64)
    return np.stack([flat, kk]).astype(np.float64)

  def forward(self, params, x, steps: int = 0):
    """Activations of the output layer [2 (k, r), batch] from inputs x [2 (n, K), batch]; pure jnp.

    ``steps`` (recurrent only, static): how many times the cell runs; must be >= max K of the batch (extra steps
    leave the state unchanged). Only sparse affine maps and ReLU occur (see ``jax_engine.ALLOWED_PRIMITIVES``).
    """
    if self.arch == "recurrent":
      h = jax_engine.layer_forward(self.init_layer, params["init"], x)
      cell = lambda h, _: (jax_engine.stack_forward(self.layers, params["cell"], h), None)
      h, _ = jax.lax.scan(cell, h, None, length=steps)
      return jax_engine.layer_forward(self.readout_layer, params["readout"], h)
    if self.arch == "unrolled":
      h = jax_engine.layer_forward(self.init_layer, params["init"], x)
      cell = lambda h, p: (jax_engine.stack_forward(self.layers, p, h), None)
      h, _ = jax.lax.scan(cell, h, params["cell"])
      return jax_engine.layer_forward(self.readout_layer, params["readout"], h)
    return jax_engine.stack_forward(self.layers, params, x)

  @functools.cached_property
  def _jitted(self):
    return jax.jit(self.forward, static_argnames=("steps",))

  def recurrence_steps(self, x: np.ndarray) -> int:
    """The static cell count for a batch: max K, rounded up to a multiple of 2**(bits-3) (<= 12.5% extra steps,
    few recompilations); extra steps are frozen no-ops."""
    if self.arch != "recurrent":
      return 0
    t = int(x[1].max()) if x.size else 0
    if t <= 8:
      return max(t, 1)
    q = 2**(t.bit_length() - 3)
    return -(-t // q) * q

  def apply_with_residue(self, n, batch_size: int = 1 << 16, engine: str = "auto"
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(k, k*k mod n) for integer n of any shape, values in [1, n_max]; int64 numpy arrays of n's shape.

    engine: "jax" runs ``forward`` jitted in float64 under a scoped ``jax.enable_x64(True)``; "numpy" runs the
    same layers by ``numpy_engine.forward`` in float64 (no compilation; for wide and banded only); "auto" picks numpy
    for wide/banded and jax for the looped archs. Both are exact (integers below 2**52, see ``ir``).
    """
    if engine not in ("auto", "jax", "numpy"):
      raise ValueError(f"engine must be one of ('auto', 'jax', 'numpy'), got {engine!r}")
    looped = self.arch in ("recurrent", "unrolled")
    if engine == "numpy" and looped:
      raise ValueError(f"engine 'numpy' serves the one-pass archs (wide, banded), not {self.arch!r}")
    shape = np.shape(n)
    x = self.inputs(n)
    if engine == "numpy" or (engine == "auto" and not looped):
      out = numpy_engine.forward(self.layers, self.params, x)
      return self._finish(out, shape)
    outs = []
    with jax.enable_x64(True):
      params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), self.params)
      for start in range(0, x.shape[1], batch_size):
        xb = x[:, start:start + batch_size]
        out = self._jitted(params, jnp.asarray(xb), steps=self.recurrence_steps(xb))
        outs.append(np.asarray(out))
    out = np.concatenate(outs, axis=1) if outs else np.zeros((2, 0))
    return self._finish(out, shape)

  @staticmethod
  def _finish(out, shape):
    if not np.all(out == np.round(out)) or np.max(np.abs(out), initial=0) >= ir.EXACT_LIMIT:
      raise ArithmeticError("network output left the exact integer range")
    return out[0].astype(np.int64).reshape(shape), out[1].astype(np.int64).reshape(shape)

  def apply(self, n, batch_size: int = 1 << 16, engine: str = "auto") -> np.ndarray:
    """k = the seed loop's answer for every element of n (integers in [1, n_max]); int64 array of n's shape."""
    return self.apply_with_residue(n, batch_size, engine)[0]

  def trace(self, n: int, steps: int | None = None) -> list[ir.LayerTrace]:
    """The activations of every layer one query passes through, in order (for the looped archs: the init layer,
    then ``steps`` cells (default K(n)); the read-out is not included)."""
    x = self.inputs(np.asarray([n]))
    out = []
    if self.arch in ("recurrent", "unrolled"):
      k = int(x[1, 0])
      steps = k if steps is None else min(steps, self.num_copies if self.arch == "unrolled" else k)
      acts = numpy_engine.trace([self.init_layer], [self.params["init"]], x)
      out.append(ir.LayerTrace("init", 0, 0, self.init_layer, acts[0][:, 0]))
      h = acts[0]
      for step in range(steps):
        p = self.params["cell"] if self.arch == "recurrent" else self.copy_params(step)
        acts = numpy_engine.trace(self.layers, p, h)
        out += [ir.LayerTrace("cell", step + 1, li, layer, a[:, 0])
                for li, (layer, a) in enumerate(zip(self.layers, acts))]
        h = acts[-1]
      return out
    acts = numpy_engine.trace(self.layers, self.params, x)
    return [ir.LayerTrace("", 0, li, layer, a[:, 0]) for li, (layer, a) in enumerate(zip(self.layers, acts))]


def _build_looped(arch: str, n_max: int, counts_only: bool = False) -> ModSearchNet:
  k_max = kmax_int(n_max)
  m = ir.big_m(2 * n_max + 2 * k_max)
  rec = arch == "recurrent"
  init_l, init_p, layout = ir.build_stack(_INPUT, [_init_steps(rec)])
  if rec:
    cell_l, cell_p, out_layout = ir.build_stack(layout, _cell_steps(m, None))
    copies = 1
  else:
    # Copy j differs from copy 0 only in biases, which are affine in j: b(j) = b(0) + j (b(1) - b(0)).
    cell_l, p0, out_layout = ir.build_stack(layout, _cell_steps(m, 0))
    cell_l1, p1, _ = ir.build_stack(layout, _cell_steps(m, 1))
    for a, b in zip(cell_l, cell_l1):
      if not (np.array_equal(a.rows, b.rows) and np.array_equal(a.cols, b.cols)):
        raise AssertionError("unrolled copies must share one sparsity pattern")
    j = np.arange(1, (2 if counts_only else k_max) + 1, dtype=np.float64)[:, None]
    cell_p = [{"w": np.broadcast_to(q0["w"], (j.size,) + q0["w"].shape).copy(),
               "b": q0["b"][None] + j * (q1["b"] - q0["b"])[None]} for q0, q1 in zip(p0, p1)]
    copies = k_max
  if out_layout != layout:
    raise AssertionError("the cell must map its state layout to itself")
  read_l, read_p, _ = ir.build_stack(out_layout, [_readout])
  return ModSearchNet(arch=arch, n_max=n_max, m=m,
                      params={"init": init_p[0], "cell": cell_p, "readout": read_p[0]},
                      layers=cell_l, init_layer=init_l[0], readout_layer=read_l[0], num_copies=copies)


def _wide_levels(k_max: int) -> list[np.ndarray]:
  """Candidates 1..k_max grouped by level: level l holds [2**l, 2**(l+1)) (each i's parent is i // 2)."""
  levels, lo = [], 1
  while lo <= k_max:
    levels.append(np.arange(lo, min(2 * lo, k_max + 1), dtype=np.int64))
    lo *= 2
  return levels


def _build_wide(n_max: int, counts_only: bool = False) -> ModSearchNet:
  k_max = kmax_int(n_max)
  m = ir.big_m(2 * n_max + 2 * k_max)
  steps = []
  levels = _wide_levels(k_max)
  done = [0]  # number of candidates whose y is in group "y_done" (in index order, from 1)

  for lev, cand in enumerate(levels):
    c = cand.size
    odd = (cand & 1).astype(np.float64)
    parent = cand >> 1

    def a1(lb, lev=lev, cand=cand, c=c, odd=odd, parent=parent):
      n, kk = Expr.unit("n", c, np.zeros(c, np.int64)), Expr.unit("K", c, np.zeros(c, np.int64))
      if lev == 0:
        x = Expr.constant(c, 1.0)  # 1*1 = 4*0 + 1
      else:
        pidx = parent - levels[lev - 1][0]
        x = 4.0 * (Expr.unit("keep", c, pidx) + Expr.unit("wrap", c, pidx)) + odd * (4.0 * parent + 1.0)
      lb.add("x", x, "x = 4 s[i//2] + (i odd)(4 (i//2) + 1) = i*i mod 8n's representative in [0, 8n)")
      lb.add("h1", x - 4.0 * n + 1, "relu(x - 4n + 1): with h2, c = 1[x >= 4n]")
      lb.add("h2", x - 4.0 * n, "relu(x - 4n)")
      lb.add("vh1", kk - cand + 1.0, "relu(K - i + 1): with vh2, v = 1[i <= K] (candidate is in range)")
      lb.add("vh2", kk - cand, "relu(K - i)")
      if lev > 0:
        prev = levels[lev - 1].size
        new_y = select(Expr.unit("keep", prev) + Expr.unit("wrap", prev) + 1.0, Expr.unit("v", prev), m)
        parts = ([Expr.unit("y_done", done[0])] if done[0] else []) + [new_y]
        lb.add("y_done", Expr.concat(parts), "y[i] = (i*i mod n) + 1 if i <= K else 0, candidates done so far")
        done[0] += prev
      lb.carry("n", "K")
    steps.append(a1)

    for stage, a in enumerate((4.0, 2.0, 1.0)):
      if stage > 0:
        def alpha(lb, a=a, c=c):
          n = Expr.unit("n", c, np.zeros(c, np.int64))
          x = Expr.unit("keep", c) + Expr.unit("wrap", c)
          lb.add("x", x, f"x = keep + wrap, now in [0, {int(2 * a)}n)")
          lb.add("h1", x - a * n + 1, f"relu(x - {int(a)}n + 1): with h2, c = 1[x >= {int(a)}n]")
          lb.add("h2", x - a * n, f"relu(x - {int(a)}n)")
          lb.carry("v", "n", "K")
          if done[0]:
            lb.carry("y_done")
        steps.append(alpha)

      def beta(lb, stage=stage, c=c):
        lb.add("c", Expr.unit("h1", c) - Expr.unit("h2", c), "c = relu(h1 - h2), 0/1")
        lb.carry("x")
        if stage == 0:
          lb.add("v", Expr.unit("vh1", c) - Expr.unit("vh2", c), "v = relu(vh1 - vh2) = 1[i <= K], 0/1")
        else:
          lb.carry("v")
        lb.carry("n", "K")
        if done[0]:
          lb.carry("y_done")

      def gamma(lb, a=a, c=c):
        x, cc = Expr.unit("x", c), Expr.unit("c", c)
        n = Expr.unit("n", c, np.zeros(c, np.int64))
        v = Expr.unit("v", c)
        lb.add("keep", select(select(x, cc, m, 0), v, m), "x if c = 0 (and i <= K) else 0")
        lb.add("wrap", select(select(x - a * n, cc, m), v, m), f"x - {int(a)}n if c = 1 (and i <= K) else 0")
        lb.carry("v", "n", "K")
        if done[0]:
          lb.carry("y_done")
      steps += [beta, gamma]

  last = levels[-1].size

  def final_y(lb):
    new_y = select(Expr.unit("keep", last) + Expr.unit("wrap", last) + 1.0, Expr.unit("v", last), m)
    parts = ([Expr.unit("y_done", done[0])] if done[0] else []) + [new_y]
    lb.add("y_done", Expr.concat(parts), "y[i] = (i*i mod n) + 1 if i <= K else 0, all candidates 1..K_max")
  steps.append(final_y)

  # Build the residue part first: the tournament's Exprs refer to its final layout.
  res_layers, res_params, layout = ir.build_stack(_INPUT, steps, counts_only)
  y = Expr.concat([Expr.constant(1, 1.0), Expr.unit("y_done", k_max)])  # candidate 0: residue 0
  k = Expr.constant(k_max + 1, np.arange(k_max + 1, dtype=np.float64))
  t_steps = []
  _tournament(t_steps, y, k, m)
  t_layers, t_params, _ = ir.build_stack(layout, t_steps, counts_only)
  return ModSearchNet(arch="wide", n_max=n_max, m=m, params=res_params + t_params, layers=res_layers + t_layers)


def _build_banded(n_max: int) -> ModSearchNet:
  k_max = kmax_int(n_max)
  q_cap = band_cap(n_max)
  bands = q_cap + 1
  digits = k_max.bit_length()
  m = ir.big_m(max(2**(2 * digits + 1), 2 * n_max))
  q = np.arange(bands, dtype=np.float64)
  zeros = np.zeros(bands, np.int64)
  steps = []

  for d, j in enumerate(range(digits - 1, -1, -1)):
    def alpha(lb, d=d, j=j):
      n, kk = Expr.unit("n", bands, zeros), Expr.unit("K", bands, zeros)
      if d == 0:
        t, tt = Expr.constant(bands, 0.0), Expr.constant(bands, 0.0)
      else:
        t, tt = Expr.unit("t", bands), Expr.unit("T", bands) + Expr.unit("G", bands)
      slack = (q + 1) * n - 1 - tt - 2.0**(j + 1) * t - 4.0**j  # (q+1)n - 1 - (t + 2**j)**2
      lb.add("a1", slack + 1, f"digit 2**{j}: relu(m_q - (t + 2**{j})**2 + 1), m_q = (q+1)n - 1; "
             "with a2, 1[(t + 2**j)**2 <= m_q]")
      lb.add("a2", slack, f"digit 2**{j}: relu(m_q - (t + 2**{j})**2)")
      lb.add("b1", kk - t - 2.0**j + 1, f"digit 2**{j}: relu(K - t - 2**{j} + 1): with b2, 1[t + 2**j <= K]")
      lb.add("b2", kk - t - 2.0**j, f"digit 2**{j}: relu(K - t - 2**{j})")
      lb.add("t", t, "t: the band top's digits found so far (carried)")
      lb.add("T", tt, "T = t*t (carried)")
      lb.carry("n", "K")

    def beta(lb, j=j):
      ok = Expr.unit("a1", bands) - Expr.unit("a2", bands) + Expr.unit("b1", bands) - Expr.unit("b2", bands)
      lb.add("c", ok - 1, f"digit 2**{j}: c = relu(both - 1) = 1[(t + 2**j)**2 <= m_q and t + 2**j <= K]")
      lb.carry("t", "T", "n", "K")

    def gamma(lb, j=j):
      t, c = Expr.unit("t", bands), Expr.unit("c", bands)
      lb.add("t", t + 2.0**j * c, f"t += 2**{j} c")
      lb.add("T", Expr.unit("T", bands), "T (carried)")
      lb.add("G", select(2.0**(j + 1) * t + 4.0**j, c, m),
             f"G = 2**{j + 1} t + 4**{j} if c else 0, so that T + G = (t + 2**{j} c)**2")
      lb.carry("n", "K")
    steps += [alpha, beta, gamma]

  def finish(lb):
    n = Expr.unit("n", bands, zeros)
    lb.add("y", Expr.unit("T", bands) + Expr.unit("G", bands) - q * n + 1,
           "y_q = relu(t*t - q n + 1) = (t*t mod n) + 1 if t lies in band q, else 0 (a duplicate, dropped)")
    lb.add("t", Expr.unit("t", bands), "t_q = min(isqrt((q+1)n - 1), K): band q's top")
  steps.append(finish)
  y = Expr.concat([Expr.constant(1, 1.0), Expr.unit("y", bands)])
  k = Expr.concat([Expr.constant(1, 0.0), Expr.unit("t", bands)])
  _tournament(steps, y, k, m)
  layers, params, _ = ir.build_stack(_INPUT, steps)
  return ModSearchNet(arch="banded", n_max=n_max, m=m, params=params, layers=layers)


def modsearch_net(arch: str, n_max: int = N_MAX) -> ModSearchNet:
  """The compiled network ``arch`` (one of ARCHS) for inputs 1 <= n <= n_max (4 <= n_max <= 2**30).

  Its ``apply(n)`` equals ``seed_loop(n)`` for every such n (verified in tests for every n <= 20,000 and at random
  up to n_max). Memory: parameters as ``size_counts(arch, n_max)`` says (unrolled and wide store about 3e1
  float64 per candidate: build them up to n_max ~ 2**26 on a small machine).
  """
  if arch not in ARCHS:
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
  n_max = _validate_n_max(n_max)
  if arch in ("recurrent", "unrolled"):
    return _build_looped(arch, n_max)
  if arch == "wide":
    return _build_wide(n_max)
  return _build_banded(n_max)


def size_counts(arch: str, n_max: int) -> dict[str, int]:
  """Exact sizes of ``modsearch_net(arch, n_max)`` counted from its structure without holding its parameters:
  num_params, num_connections, num_units, depth, flops_per_query (at n = n_max, the worst case), cells (copies or
  recurrence steps of the cell at n_max; 1 for one-pass archs), n_max up to 2**30."""
  if arch not in ARCHS:
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
  n_max = _validate_n_max(n_max)
  if arch in ("recurrent", "unrolled"):
    net = _build_looped(arch, n_max, counts_only=True)
    net.num_copies = kmax_int(n_max) if arch == "unrolled" else 1
  elif arch == "wide":
    net = _build_wide(n_max, counts_only=True)
  else:
    net = _build_banded(n_max)
  return {"num_params": net.num_params, "num_connections": net.num_connections, "num_units": net.num_units,
          "depth": net.depth, "flops_per_query": net.flops_per_query(n_max),
          "cells": kmax_int(n_max) if arch in ("recurrent", "unrolled") else 1}


def kmax_layer_size(n_max: int) -> dict[str, int]:
  """Size of computing K = floor(n**0.7) inside a network instead of taking it as an input: one hidden layer
  of 2 K(n_max) ReLUs relu(n - T_j + 1), relu(n - T_j) at the thresholds T_j = ceil(j**(10/7)) (the least n with
  j**10 <= n**7), summed by one output unit: K(n) = sum_j 1[n >= T_j] for n <= n_max."""
  k = kmax_int(_validate_n_max(n_max))
  return {"num_params": 2 * k * 2 + 2 * k + 1, "num_connections": 2 * k + 2 * k, "num_units": 2 * k + 1,
          "depth": 2}
