"""Modular addition a + b mod p (Nanda et al. 2023, "Progress measures for grokking"): the data law and its split.

Plain pure functions (numpy, exact integers), not a ``Task``: the grokking study trains on a fixed fraction of the
finite table of all p * p pairs, which is a split of one table rather than a sampler.

* ``pairs(p)``: every (a, b) with 0 <= a, b < p once, row-major (index a * p + b), int32 [p * p, 2].
* ``answers(p, ab)``: (a + b) mod p, int32.
* ``tokens(p, ab)``: the model input (a, b, "=") with "=" the token p, int32 [N, 3] (vocabulary size p + 1).
* ``split(p, frac_train, seed)``: the train/test partition of the p * p pair indices: train holds exactly
  floor(frac_train * p * p) pairs (the authors' ``int(frac_train * len(pairs))``), test the rest; disjoint, their
  union is every pair once. Deterministic in ``seed`` (numpy PCG64 permutation; the authors shuffle with Python's
  ``random.seed(seed)``, so the same seed does not give their split).
* ``fourier_basis(p)``: the real orthonormal Fourier basis of functions on Z_p (rows: constant, then cos k, sin k
  for k = 1 .. p // 2), float64 [p, p] for odd p; what the grokking analyses project weights and activations on.
"""
from __future__ import annotations

import numpy as np

MAX_P = 2039
"""Largest modulus accepted (p * p pairs must fit comfortably in memory as int32 indices)."""


def check_p(p) -> int:
  """``p`` as an int; ValueError unless it is an integer in [3, MAX_P]."""
  if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 3 <= int(p) <= MAX_P:
    raise ValueError(f"p must be an integer in [3, {MAX_P}], got {p!r}")
  return int(p)


def check_frac(frac_train) -> float:
  """``frac_train`` as a float; ValueError unless it is in (0, 1)."""
  if isinstance(frac_train, bool) or not isinstance(frac_train, (int, float)) or not 0.0 < float(frac_train) < 1.0:
    raise ValueError(f"frac_train must be in (0, 1), got {frac_train!r}")
  return float(frac_train)


def pairs(p: int) -> np.ndarray:
  """Every pair (a, b), 0 <= a, b < p, once, in row-major order (row a * p + b): int32 [p * p, 2]."""
  p = check_p(p)
  a, b = np.meshgrid(np.arange(p, dtype=np.int32), np.arange(p, dtype=np.int32), indexing="ij")
  return np.stack([a.reshape(-1), b.reshape(-1)], axis=1)


def answers(p: int, ab: np.ndarray) -> np.ndarray:
  """(a + b) mod p of pairs ``ab`` [..., 2] (entries in [0, p)): int32 [...]."""
  p = check_p(p)
  ab = np.asarray(ab)
  return ((ab[..., 0].astype(np.int64) + ab[..., 1]) % p).astype(np.int32)


def tokens(p: int, ab: np.ndarray) -> np.ndarray:
  """Model inputs (a, b, "=") of pairs ``ab`` [N, 2], with "=" the token p: int32 [N, 3] in [0, p]."""
  p = check_p(p)
  ab = np.asarray(ab, dtype=np.int32)
  return np.concatenate([ab, np.full(ab.shape[:-1] + (1,), p, np.int32)], axis=-1)


def train_size(p: int, frac_train: float) -> int:
  """Number of training pairs: floor(frac_train * p * p), at least 1 and at most p * p - 1."""
  n = check_p(p) ** 2
  return min(max(int(check_frac(frac_train) * n), 1), n - 1)


def split(p: int, frac_train: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(train, test) pair indices into ``pairs(p)``, each sorted int32: an exact partition of range(p * p) with
  ``train_size(p, frac_train)`` training indices chosen uniformly at random given ``seed`` (an integer >= 0)."""
  n, k = check_p(p) ** 2, train_size(p, frac_train)
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
  perm = np.random.default_rng(int(seed)).permutation(n)
  return np.sort(perm[:k]).astype(np.int32), np.sort(perm[k:]).astype(np.int32)


def frequencies(p: int) -> np.ndarray:
  """The non-constant frequencies k = 1 .. p // 2 of ``fourier_basis(p)``, int [p // 2]."""
  return np.arange(1, check_p(p) // 2 + 1)


def fourier_basis(p: int) -> np.ndarray:
  """Orthonormal real Fourier basis of R^p as rows, float64 [p, p], for odd p (ValueError for even p): row 0 the
  constant 1/sqrt(p); rows 2k-1 and 2k cos(2 pi k x / p) and sin(2 pi k x / p), normalized, for k = 1 .. p // 2."""
  p = check_p(p)
  if p % 2 == 0:
    raise ValueError(f"p must be odd for the Fourier basis (a prime in the grokking study), got {p}")
  x = np.arange(p, dtype=np.float64)
  rows = [np.full(p, 1.0 / np.sqrt(p))]
  for k in range(1, p // 2 + 1):
    for f in (np.cos, np.sin):
      v = f(2.0 * np.pi * k * x / p)
      rows.append(v / np.linalg.norm(v))
  return np.stack(rows)
