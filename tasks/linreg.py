"""In-context linear regression: the data laws of two published studies, their tokens and their exact predictors.

A task is a weight vector w; a context is pairs (x_i, y_i) with y_i = w . x_i (+ noise); a learner sees the
context and predicts y for a query x. These are plain pure functions (jax, keyed by a ``jax.random`` key: the same
key gives the same batch), not a registered ``Task``: the instances are whole regression problems, not inputs with
an answer table.

Laws
  * ``sample_uniform_tasks`` (von Oswald et al. 2023, "Transformers learn in-context by gradient descent"):
    w ~ N(0, weight_scale^2 I_d); x_1..x_N and x_query ~ U(-input_range/2, input_range/2)^d i.i.d.; y = w . x,
    no noise. The paper's text writes x ~ U(-1, 1); the authors' code (src/data.py, ``input_range = 1`` in
    their notebooks) draws U(-0.5, 0.5), and its published loss of one GD step (0.2047 at d = N = 10) holds for
    the code's law (U(-1, 1) gives 0.82): ``input_range`` = 1 is the code's, 2 the text's.
  * ``sample_regression`` (Raventós et al. 2023, "Pretraining task diversity and the emergence of non-Bayesian
    in-context learning for regression"): x_1..x_K ~ N(0, I_D); w uniform over a pool of M tasks drawn once from
    N(0, I_D) (``task_pool``), or w ~ N(0, I_D) afresh per sequence (pool None: "M = infinity");
    y_k = w . x_k + eps_k, eps_k ~ N(0, noise_std^2).

Tokens
  * ``query_tokens``: e_i = (x_i, y_i) for i = 1..N and e_query = (x_query, 0): [B, N + 1, d + 1] (von Oswald).
  * ``interleave``: x-token (0, x_k) then y-token (y_k, 0_D) for k = 1..K: [B, 2K, D + 1]; a causal model reads
    its prediction of y_k at the x-token of position k (mansheej/icl-task-diversity's ``to_seq``).

Exact predictors (float32 in, float32 out; the tests check them against float64 brute force)
  * ``gd_step_predictions``: one gradient-descent step from w = 0 on L(w) = 1/(2N) sum_i (w . x_i - y_i)^2 with
    step eta: y_hat = (eta / N) sum_i y_i (x_i . x_query).
  * ``tune_gd_eta``: the eta that minimizes the squared error of ``gd_step_predictions`` over given tasks (y_hat
    is linear in eta, so the minimizer is the closed-form least-squares ratio; no grid).
  * ``ridge_predictions``: at every position k, the posterior mean of y_k under w ~ N(0, I) and noise variance
    ``lam`` given the first k pairs: x_k . (X^T X + lam I)^-1 X^T y (0 at k = 0): Bayes-optimal for fresh
    Gaussian tasks when lam = noise_std^2.
  * ``dmmse_predictions``: at every position k, the posterior mean under the uniform prior on a pool (the
    discrete minimum mean squared error estimator): x_k . sum_m p_m w_m, p_m proportional to
    exp(-sum_{i<k} (y_i - w_m . x_i)^2 / (2 noise_std^2)) (at k = 0 the pool's mean): Bayes-optimal on pool tasks.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mesabench.kernels._checks import check_int
from mesabench.tasks.core import Spec

MAX_DIM = 1024
MAX_LENGTH = 4096
MAX_BATCH = 2**22
_HI = jax.lax.Precision.HIGHEST


def _check_positive(name: str, value, *, zero_ok: bool = False) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
      value < 0 or (value == 0 and not zero_ok)):
    raise ValueError(f"{name} must be a finite number in {'[0' if zero_ok else '(0'}, inf), got {value!r}")
  return float(value)


# ------------------------------------------------------------------------------------------------------ laws


class UniformTasks(NamedTuple):
  """A batch of von Oswald regression tasks: x [B, N, d], y [B, N], x_query [B, d], y_query [B], w [B, d]."""
  x: jax.Array
  y: jax.Array
  x_query: jax.Array
  y_query: jax.Array
  w: jax.Array


def sample_uniform_tasks(key: jax.Array, batch: int, dim: int, context: int, input_range: float = 1.0,
                         weight_scale: float = 1.0) -> UniformTasks:
  """``batch`` tasks of the von Oswald law (module docstring), float32. batch in [1, 2**22], dim in [1, 1024],
  context in [1, 4096], input_range and weight_scale in (0, inf)."""
  batch = check_int("batch", batch, 1, MAX_BATCH)
  dim = check_int("dim", dim, 1, MAX_DIM)
  context = check_int("context", context, 1, MAX_LENGTH)
  half = _check_positive("input_range", input_range) / 2
  scale = _check_positive("weight_scale", weight_scale)
  kw, kx, kq = jax.random.split(key, 3)
  w = jax.random.normal(kw, (batch, dim), jnp.float32) * scale
  x = jax.random.uniform(kx, (batch, context, dim), jnp.float32, -half, half)
  xq = jax.random.uniform(kq, (batch, dim), jnp.float32, -half, half)
  y = jnp.einsum("bnd,bd->bn", x, w, precision=_HI)
  yq = jnp.einsum("bd,bd->b", xq, w, precision=_HI)
  return UniformTasks(x, y, xq, yq, w)


def task_pool(key: jax.Array, size: int, dim: int) -> jax.Array:
  """A pool of ``size`` tasks w ~ N(0, I_dim): float32 [size, dim]; size in [1, 2**22]. For nested pools (the pool
  of size m inside the pool of size m' > m), draw the largest once and take its first m rows."""
  size = check_int("size", size, 1, MAX_BATCH)
  dim = check_int("dim", dim, 1, MAX_DIM)
  return jax.random.normal(key, (size, dim), jnp.float32)


class Sequences(NamedTuple):
  """A batch of Raventós regression sequences: x [B, K, D], y [B, K] (noisy), w [B, D]."""
  x: jax.Array
  y: jax.Array
  w: jax.Array


def sample_regression(key: jax.Array, batch: int, length: int, dim: int, noise_std: float,
                      pool: jax.Array | None = None, pool_size=None) -> Sequences:
  """``batch`` sequences of the Raventós law (module docstring), float32.

  pool: [P, dim] tasks; w is uniform over its first ``pool_size`` rows (default all P; ``pool_size`` may be a
  traced integer in [1, P], so runs with different pool sizes vmap over one padded pool). pool None: fresh
  w ~ N(0, I). batch in [1, 2**22], length in [1, 4096], dim in [1, 1024], noise_std in [0, inf).
  """
  batch = check_int("batch", batch, 1, MAX_BATCH)
  length = check_int("length", length, 1, MAX_LENGTH)
  dim = check_int("dim", dim, 1, MAX_DIM)
  noise_std = _check_positive("noise_std", noise_std, zero_ok=True)
  kx, kw, kn = jax.random.split(key, 3)
  x = jax.random.normal(kx, (batch, length, dim), jnp.float32)
  if pool is None:
    w = jax.random.normal(kw, (batch, dim), jnp.float32)
  else:
    if pool.ndim != 2 or pool.shape[1] != dim:
      raise ValueError(f"pool must have shape [P, dim={dim}], got {pool.shape}")
    size = pool.shape[0] if pool_size is None else pool_size
    idx = jax.random.randint(kw, (batch,), 0, size)
    w = pool[idx]
  y = jnp.einsum("bkd,bd->bk", x, w, precision=_HI) + noise_std * jax.random.normal(kn, (batch, length), jnp.float32)
  return Sequences(x, y, w)


# ---------------------------------------------------------------------------------------------------- tokens


def query_tokens(x: jax.Array, y: jax.Array, x_query: jax.Array) -> jax.Array:
  """von Oswald tokens: e_i = (x_i, y_i), then e_query = (x_query, 0): [B, N + 1, d + 1]."""
  ctx = jnp.concatenate([x, y[..., None]], axis=-1)
  q = jnp.concatenate([x_query, jnp.zeros_like(x_query[..., :1])], axis=-1)
  return jnp.concatenate([ctx, q[:, None, :]], axis=1)


def interleave(x: jax.Array, y: jax.Array) -> jax.Array:
  """Causal-model tokens: (0, x_1), (y_1, 0), (0, x_2), (y_2, 0), ...: [B, 2K, D + 1] (feature 0 is the y slot)."""
  b, k, d = x.shape
  xt = jnp.concatenate([jnp.zeros((b, k, 1), x.dtype), x], axis=-1)
  yt = jnp.concatenate([y[..., None], jnp.zeros((b, k, d), x.dtype)], axis=-1)
  return jnp.stack([xt, yt], axis=2).reshape(b, 2 * k, d + 1)


def sequence_spec(dim: int, length: int) -> Spec:
  """The ``Spec`` of interleaved sequences (what zoo models for per-position regression bind to): inputs
  [2 * length, dim + 1] real tokens, outputs one real prediction per position ("real_sequence")."""
  dim = check_int("dim", dim, 1, MAX_DIM)
  length = check_int("length", length, 1, MAX_LENGTH)
  return Spec(task_id="LinRegICL", input_shape=(2 * length, dim + 1), input_kind="real",
              output_kind="real_sequence", meta=(("dim", dim), ("length", length)),
              task_params=(("dim", dim), ("length", length)))


# ------------------------------------------------------------------------------------------------ predictors


def gd_step_predictions(x: jax.Array, y: jax.Array, x_query: jax.Array, eta) -> jax.Array:
  """One GD step from w = 0 on 1/(2N) sum_i (w . x_i - y_i)^2 with step ``eta``, evaluated at x_query: [B]."""
  n = x.shape[1]
  w1 = jnp.einsum("bn,bnd->bd", y, x, precision=_HI) * (eta / n)
  return jnp.einsum("bd,bd->b", w1, x_query, precision=_HI)


def tune_gd_eta(x: jax.Array, y: jax.Array, x_query: jax.Array, y_query: jax.Array) -> float:
  """argmin_eta sum_b (gd_step_predictions(..., eta)_b - y_query_b)^2 = sum a y / sum a^2 with a the predictions
  at eta = 1 (sums in float64 numpy). ValueError when every a is 0."""
  a = np.asarray(gd_step_predictions(x, y, x_query, 1.0), np.float64)
  num = float(np.sum(a * np.asarray(y_query, np.float64)))
  den = float(np.sum(a * a))
  if den <= 0:
    raise ValueError("tasks must give a non-zero GD update (every context is zero)")
  return num / den


def ridge_predictions(x: jax.Array, y: jax.Array, lam: float) -> jax.Array:
  """Per-position ridge predictions [B, K]: position k predicts y_k from the first k pairs (module docstring);
  lam in (0, inf)."""
  lam = _check_positive("lam", lam)
  d = x.shape[-1]
  outer = jnp.einsum("bki,bkj->bkij", x, x, precision=_HI)
  xy = x * y[..., None]
  gram = jnp.cumsum(outer, axis=1) - outer + lam * jnp.eye(d, dtype=x.dtype)  # exclusive prefix sums
  rhs = jnp.cumsum(xy, axis=1) - xy
  w = jnp.linalg.solve(gram, rhs[..., None])[..., 0]
  return jnp.einsum("bkd,bkd->bk", x, w, precision=_HI)


def dmmse_predictions(x: jax.Array, y: jax.Array, pool: jax.Array, noise_std: float, pool_size=None,
                      chunk: int | None = None) -> jax.Array:
  """Per-position posterior-mean predictions [B, K] under the uniform prior on ``pool[:pool_size]`` (module
  docstring; pool_size may be traced, default all rows). noise_std in (0, inf). ``chunk``: examples per step of a
  sequential map over the batch (bounds memory at chunk * K * P floats; B must be a multiple)."""
  noise_std = _check_positive("noise_std", noise_std)
  size = pool.shape[0] if pool_size is None else pool_size
  valid = jnp.arange(pool.shape[0]) < size

  def one(xb, yb):
    resid = (yb[..., None] - jnp.einsum("bkd,md->bkm", xb, pool, precision=_HI)) ** 2
    logw = -(jnp.cumsum(resid, axis=1) - resid) / (2 * noise_std**2)
    logw = jnp.where(valid, logw, -jnp.inf)
    p = jax.nn.softmax(logw, axis=-1)
    w = jnp.einsum("bkm,md->bkd", p, pool, precision=_HI)
    return jnp.einsum("bkd,bkd->bk", xb, w, precision=_HI)

  if chunk is None or chunk >= x.shape[0]:
    return one(x, y)
  chunk = check_int("chunk", chunk, 1, MAX_BATCH)
  if x.shape[0] % chunk:
    raise ValueError(f"chunk must divide the batch size {x.shape[0]}, got {chunk}")
  xs = x.reshape(-1, chunk, *x.shape[1:])
  ys = y.reshape(-1, chunk, *y.shape[1:])
  return jax.lax.map(lambda a: one(*a), (xs, ys)).reshape(y.shape)
