"""Statistics of the detectors: bootstrap intervals, the Kolmogorov-Smirnov test and the best-of-k law.

All functions are numpy (float64) and deterministic in their ``seed``; none needs scipy.

* ``bootstrap_means`` / ``percentile_ci``: percentile bootstrap intervals of means over examples (paired when the
  array has leading axes).
* ``ks_pvalue`` / ``ks_uniform``: the one-sample KS test against Uniform(0, 1) (asymptotic Kolmogorov law).
* The best-of-k law in two forms:
    - continuous: U = F(loss) ~ Beta(1, k) for the best of k draws of a continuous law F (``beta1_cdf``,
      ``rank_intervals``, ``fit_best_of_k``: interval-censored MLE of k with a profile-likelihood interval);
    - exact ranks (what the detector uses): the rank c = #{reference draws better than the model} of the best of
      k draws among m reference draws of the same law has P(c >= j) = prod_{i<j} (m - i) / (m + k - i)
      (``best_of_k_log_sf``), whatever the law and for every m; ``fit_best_of_k_ranks`` fits k to ranks known up to
      ties and ``best_of_k_rank_gof`` tests the fit. Its m -> infinity limit is the Beta(1, k) law.
"""
from __future__ import annotations

import dataclasses
import math
import statistics

import numpy as np

DEFAULT_LEVEL = 0.95
DEFAULT_RESAMPLES = 1000
_CHUNK = 256  # bootstrap resamples per vectorized chunk (bounds memory at 256 * n floats)
_K_RANGE = (math.log(1e-4), math.log(1e7))


# ------------------------------------------------------------------------------------------------- checks


def check_level(level: float) -> float:
  """``level`` as a float; ValueError unless it is in [0.5, 1)."""
  if not 0.5 <= float(level) < 1.0:
    raise ValueError(f"level must be in [0.5, 1), got {level}")
  return float(level)


def check_resamples(num_resamples: int) -> int:
  """``num_resamples`` as an int; ValueError unless it is an integer in [100, 100000]."""
  if isinstance(num_resamples, bool) or not isinstance(num_resamples, (int, np.integer)) or not (
      100 <= num_resamples <= 100_000):
    raise ValueError(f"num_resamples must be an integer in [100, 100000], got {num_resamples!r}")
  return int(num_resamples)


def check_losses(name: str, values, *, ndim: int | tuple[int, ...] = 1, min_size: int = 1) -> np.ndarray:
  """``values`` as float64; ValueError naming ``name`` unless finite, >= 0, of ``ndim`` dims and >= ``min_size``
  long on the last axis."""
  arr = np.asarray(values, dtype=np.float64)
  dims = (ndim,) if isinstance(ndim, int) else ndim
  if arr.ndim not in dims:
    raise ValueError(f"{name} must be a {' or '.join(f'{d}-D' for d in dims)} array of losses, got shape "
                     f"{arr.shape}")
  if arr.ndim == 0 or arr.shape[-1] < min_size:
    raise ValueError(f"{name} must hold at least {min_size} losses along its last axis, got shape {arr.shape}")
  if not np.all(np.isfinite(arr)):
    raise ValueError(f"{name} must be finite; {int((~np.isfinite(arr)).sum())} value(s) are NaN or inf")
  if np.any(arr < 0):
    raise ValueError(f"{name} must be in [0, inf) (losses, lower is better), got minimum {arr.min()}")
  return arr


def _check_positive(name: str, value) -> float:
  if value is None or not np.isfinite(value) or value <= 0:
    raise ValueError(f"{name} must be in (0, inf), got {value!r}")
  return float(value)


# -------------------------------------------------------------------------------------------------- bootstrap


def bootstrap_means(values, *, num_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
  """Bootstrap replicates of the mean over the last axis: float64 [num_resamples, *values.shape[:-1]].

  The examples (last axis) are resampled with replacement (numpy Generator seeded by ``seed``), the same resample
  for every leading index (paired: a [T, m] array of per-iteration losses of m examples keeps each curve whole).
  """
  values = np.asarray(values, dtype=np.float64)
  num_resamples = check_resamples(num_resamples)
  if values.ndim < 1 or values.shape[-1] < 1:
    raise ValueError("values must hold at least one example along the last axis")
  m = values.shape[-1]
  rng = np.random.default_rng(seed)
  out = np.empty((num_resamples,) + values.shape[:-1])
  for start in range(0, num_resamples, _CHUNK):
    stop = min(num_resamples, start + _CHUNK)
    idx = rng.integers(0, m, size=(stop - start, m))
    out[start:stop] = np.moveaxis(values[..., idx].mean(axis=-1), -1, 0)
  return out


def wilson_interval(successes: int, trials: int, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
  """The Wilson score interval of a binomial proportion ``successes`` / ``trials`` at confidence ``level``.

  ValueError unless 0 <= successes <= trials and trials >= 1."""
  level = check_level(level)
  if isinstance(trials, bool) or int(trials) != trials or trials < 1:
    raise ValueError(f"trials must be an integer >= 1, got {trials!r}")
  if int(successes) != successes or not 0 <= successes <= trials:
    raise ValueError(f"successes must be an integer in [0, trials={trials}], got {successes!r}")
  z = statistics.NormalDist().inv_cdf(0.5 + level / 2.0)
  p, n = successes / trials, float(trials)
  centre = (p + z * z / (2 * n)) / (1 + z * z / n)
  half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
  return max(0.0, centre - half), min(1.0, centre + half)


def percentile_ci(replicates, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
  """The (low, high) percentile interval of bootstrap ``replicates`` (1-D) at confidence ``level`` in [0.5, 1)."""
  level = check_level(level)
  reps = np.asarray(replicates, dtype=np.float64).reshape(-1)
  if reps.size < 1:
    raise ValueError("replicates must hold at least one value")
  alpha = (1.0 - level) / 2.0
  lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
  return float(lo), float(hi)


# ----------------------------------------------------------------------------------------------------- KS test


def ks_pvalue(statistic: float, n: int) -> float:
  """Asymptotic p-value P(D_n > statistic) of the one-sample Kolmogorov-Smirnov statistic of n observations.

  Q(lambda) with lambda = (sqrt(n) + 0.12 + 0.11 / sqrt(n)) * d (Stephens' small-n correction) and the Kolmogorov
  tail Q(l) = 2 sum_{j>=1} (-1)**(j-1) exp(-2 j**2 l**2); for l < 1.18 the theta-function form
  1 - sqrt(2 pi) / l * sum_{j>=1} exp(-(2j-1)**2 pi**2 / (8 l**2)). Against the simulated null at n = 60: within 0.02 of p near 0.5,
  0.006 near 0.1 and 0.002 near 0.01 (the tail, where tests decide);
  conservative when parameters were fitted on the same data.
  """
  if not np.isfinite(statistic) or not 0.0 <= statistic <= 1.0:
    raise ValueError(f"statistic must be in [0, 1], got {statistic}")
  if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
    raise ValueError(f"n must be a positive integer, got {n!r}")
  root = math.sqrt(n)
  lam = (root + 0.12 + 0.11 / root) * statistic
  if lam < 0.2:  # Q(0.2) = 1 - 2e-27
    return 1.0
  j = np.arange(1, 101, dtype=np.float64)
  if lam < 1.18:
    tail = 1.0 - math.sqrt(2 * math.pi) / lam * float(np.sum(np.exp(-(2 * j - 1) ** 2 * math.pi**2 / (8 * lam**2))))
  else:
    tail = 2.0 * float(np.sum((-1.0) ** (j - 1) * np.exp(-2.0 * j**2 * lam**2)))
  return float(min(1.0, max(0.0, tail)))


def ks_uniform(z) -> tuple[float, float]:
  """(D, p): the KS distance of samples ``z`` in [0, 1] from Uniform(0, 1) and its asymptotic p-value."""
  z = np.sort(np.asarray(z, dtype=np.float64).reshape(-1))
  n = z.size
  if n < 1:
    raise ValueError("z must hold at least one value")
  i = np.arange(1, n + 1)
  d = float(max(np.max(i / n - z), np.max(z - (i - 1) / n)))
  return d, ks_pvalue(min(1.0, max(0.0, d)), n)


# ------------------------------------------------------------------------------- best of k: continuous form


def beta1_cdf(u, k):
  """CDF of Beta(1, k) at u in [0, 1]: 1 - (1 - u)**k (the law of the minimum of k i.i.d. uniforms), float64."""
  u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
  k = _check_positive("k", k)
  with np.errstate(divide="ignore"):
    return -np.expm1(k * np.log1p(-u))


def rank_counts(reference_losses, losses) -> tuple[np.ndarray, np.ndarray, int]:
  """(c, t, m): per loss, c = #{reference < loss} and t = #{reference == loss} among its m reference draws.

  ``reference_losses`` is [m] (one law shared by every loss) or [n, m] (row i: draws on loss i's own instance);
  ``losses`` is [n]. c and t are int64 [n]; m >= 2.
  """
  losses = check_losses("losses", losses, min_size=1)
  reference = check_losses("reference_losses", reference_losses, ndim=(1, 2), min_size=2)
  if reference.ndim == 1:
    ref = np.sort(reference)
    c = np.searchsorted(ref, losses, side="left")
    t = np.searchsorted(ref, losses, side="right") - c
    return c.astype(np.int64), t.astype(np.int64), int(ref.size)
  if reference.shape[0] != losses.size:
    raise ValueError(f"reference_losses [n, m] must have one row per loss (n = {losses.size}), got shape "
                     f"{reference.shape}")
  c = np.sum(reference < losses[:, None], axis=1)
  t = np.sum(reference == losses[:, None], axis=1)
  return c.astype(np.int64), t.astype(np.int64), int(reference.shape[1])


def rank_intervals(reference_losses, losses) -> tuple[np.ndarray, np.ndarray]:
  """(a, b): the interval of reference-CDF values each loss lies in, from ranks; float64 [n] each.

  a = c / (m + 1), b = (c + t + 1) / (m + 1) with (c, t, m) from ``rank_counts``; 0 <= a < b <= 1 always.
  """
  c, t, m = rank_counts(reference_losses, losses)
  return c / (m + 1.0), (c + t + 1.0) / (m + 1.0)


def _loglik_terms(k, log_s, log_t):
  """log[(1-a)**k - (1-b)**k] summed over observations (s = 1 - a > t = 1 - b >= 0), and its k-derivative."""
  k = np.asarray(k, dtype=np.float64)[..., None]
  finite = np.isfinite(log_t)
  safe_t = np.where(finite, log_t, log_s - 1.0)
  one_minus_r = np.where(finite, -np.expm1(k * (safe_t - log_s)), 1.0)
  value = k * log_s + np.log(one_minus_r)
  deriv = np.where(finite, (log_s - safe_t) / one_minus_r + safe_t, log_s)
  return value.sum(-1), deriv.sum(-1)


def _bisect(fn, lo, hi, iters=100):
  """Root in [lo, hi] of a function positive at lo and negative at hi, by bisection."""
  for _ in range(iters):
    mid = 0.5 * (lo + hi)
    if fn(mid) > 0:
      lo = mid
    else:
      hi = mid
  return 0.5 * (lo + hi)


@dataclasses.dataclass(frozen=True)
class BestOfKFit:
  """A fitted best-of-k law: ``k`` (MLE), ``ci`` (profile-likelihood interval at ``level``), ``log_likelihood``
  at the MLE, and the goodness of fit: ``ks_statistic`` and ``gof_pvalue`` (NaN when not tested)."""
  k: float
  ci: tuple[float, float]
  log_likelihood: float
  level: float
  ks_statistic: float = float("nan")
  gof_pvalue: float = float("nan")


def _profile(loglik, lk_hat, best, level):
  z = statistics.NormalDist().inv_cdf(0.5 + level / 2.0)

  def excess(lk):
    return best - loglik(lk) - z * z / 2.0

  low = (math.exp(_bisect(excess, _K_RANGE[0], lk_hat)) if excess(_K_RANGE[0]) > 0 else math.exp(_K_RANGE[0]))
  high = (math.exp(_bisect(lambda lk: -excess(lk), lk_hat, _K_RANGE[1])) if excess(_K_RANGE[1]) > 0
          else math.exp(_K_RANGE[1]))
  return low, high


def fit_best_of_k(a, b, *, level: float = DEFAULT_LEVEL) -> BestOfKFit:
  """Interval-censored MLE of k in U ~ Beta(1, k) given U_i in [a_i, b_i] (0 <= a < b <= 1), with the profile
  likelihood interval {k : 2 (l(k̂) - l(k)) <= z**2} (z the two-sided normal quantile at ``level``).

  The log-likelihood sum log[(1 - a_i)**k - (1 - b_i)**k] is concave in k; k̂ is the root of its score on
  [1e-4, 1e7] (bisection in log k). As the intervals shrink to points u_i, k̂ -> -n / sum log(1 - u_i).
  """
  level = check_level(level)
  a = np.asarray(a, dtype=np.float64)
  b = np.asarray(b, dtype=np.float64)
  if a.shape != b.shape or a.ndim != 1 or a.size < 1 or np.any(a < 0) or np.any(b > 1) or np.any(b <= a):
    raise ValueError("a and b must be 1-D arrays of equal length with 0 <= a < b <= 1")
  log_s = np.log1p(-a)
  with np.errstate(divide="ignore"):
    log_t = np.log1p(-b)
  lk_hat = _bisect(lambda lk: _loglik_terms(math.exp(lk), log_s, log_t)[1], *_K_RANGE, iters=200)

  def loglik(lk):
    return float(_loglik_terms(math.exp(lk), log_s, log_t)[0])

  best = loglik(lk_hat)
  return BestOfKFit(math.exp(lk_hat), _profile(loglik, lk_hat, best, level), best, level)


# ------------------------------------------------------------------------------------ best of k: exact ranks


def best_of_k_log_sf(k, m: int) -> np.ndarray:
  """log P(c >= j) for j = 0 .. m + 1: float64 [..., m + 2] (k's shape first), -inf at j = m + 1.

  c is the number of m reference draws strictly better than the best of k further draws of the same continuous
  law (ties broken at random for a discrete one): the j best of all m + k draws are a uniform random j-subset, so
  P(c >= j) = C(m, j) / C(m + k, j) = prod_{i<j} (m - i) / (m + k - i); for real k > 0 the same product (a ratio of
  Gamma functions).
  """
  if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
    raise ValueError(f"m must be a positive integer, got {m!r}")
  k = np.asarray(k, dtype=np.float64)
  if np.any(~np.isfinite(k)) or np.any(k <= 0):
    raise ValueError("k must be in (0, inf)")
  i = np.arange(m + 1, dtype=np.float64)
  with np.errstate(divide="ignore"):
    terms = np.log(m - i) - np.log(m + k[..., None] - i)  # i = 0 .. m; the last term is log 0 = -inf
  zero = np.zeros(k.shape + (1,))
  return np.concatenate([zero, np.cumsum(terms, axis=-1)], axis=-1)


def _rank_loglik(log_sf, lo, hi):
  """sum_i log[P(c >= lo_i) - P(c >= hi_i + 1)] for log_sf [..., m + 2]."""
  a = log_sf[..., lo]
  b = log_sf[..., hi + 1]
  with np.errstate(divide="ignore"):
    return np.sum(a + np.log(-np.expm1(b - a)), axis=-1)


def _check_ranks(c, t, m):
  c = np.asarray(c)
  t = np.asarray(t)
  if c.ndim != 1 or c.shape != t.shape or c.size < 1:
    raise ValueError(f"c and t must be 1-D of equal, non-zero length, got shapes {c.shape} and {t.shape}")
  if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
    raise ValueError(f"m must be a positive integer, got {m!r}")
  if np.any(c < 0) or np.any(t < 0) or np.any(c + t > m):
    raise ValueError(f"ranks must satisfy 0 <= c, 0 <= t and c + t <= m = {m}")
  return c.astype(np.int64), (c + t).astype(np.int64)


def fit_best_of_k_ranks(c, t, m: int, *, level: float = DEFAULT_LEVEL) -> BestOfKFit:
  """MLE of k from ranks: observation i says c_i <= c <= c_i + t_i (t_i reference draws tie with the loss), under
  the exact best-of-k rank law of ``best_of_k_log_sf``; profile-likelihood interval at ``level``.

  k is searched on [1e-4, 1e7]: a grid of 241 points in log k, then golden-section refinement around the best
  grid point. The resolution of k is about m (k >> m is hard to tell from k = m: c = 0 nearly always).
  """
  level = check_level(level)
  lo, hi = _check_ranks(c, t, m)
  grid = np.linspace(*_K_RANGE, 241)
  values = _rank_loglik(best_of_k_log_sf(np.exp(grid), m), lo, hi)

  def loglik(lk):
    return float(_rank_loglik(best_of_k_log_sf(math.exp(lk), m), lo, hi))

  g = int(np.argmax(values))
  a, b = grid[max(g - 1, 0)], grid[min(g + 1, grid.size - 1)]
  phi = (math.sqrt(5) - 1) / 2
  x1, x2 = b - phi * (b - a), a + phi * (b - a)
  f1, f2 = loglik(x1), loglik(x2)
  for _ in range(60):
    if f1 < f2:
      a, x1, f1 = x1, x2, f2
      x2 = a + phi * (b - a)
      f2 = loglik(x2)
    else:
      b, x2, f2 = x2, x1, f1
      x1 = b - phi * (b - a)
      f1 = loglik(x1)
  lk_hat = 0.5 * (a + b)
  best = loglik(lk_hat)
  return BestOfKFit(math.exp(lk_hat), _profile(loglik, lk_hat, best, level), best, level)


def best_of_k_rank_gof(c, t, m: int, k: float, *, seed: int = 0) -> tuple[float, float]:
  """(D, p): KS test of ranks against the best-of-k rank law, by the randomized probability integral transform.

  Z_i = P(c < lo_i) + V_i P(lo_i <= c <= hi_i) (V_i ~ U(0, 1), numpy seeded by ``seed``) is exactly Uniform(0, 1)
  when each rank follows the law (discrete ranks and ties included); D is its KS distance from the uniform and p
  the asymptotic p-value (``ks_uniform``; conservative when k was fitted on the same ranks).
  """
  lo, hi = _check_ranks(c, t, m)
  k = _check_positive("k", k)
  sf = np.exp(best_of_k_log_sf(k, m))
  v = np.random.default_rng(seed).random(lo.size)
  z = (1.0 - sf[lo]) + v * (sf[lo] - sf[hi + 1])
  return ks_uniform(np.clip(z, 0.0, 1.0))
