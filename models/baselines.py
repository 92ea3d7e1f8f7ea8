"""Baselines without gradient training: the ground truths of the two behaviours the suite looks for.

``lookup`` — pure memorization. ``fit`` stores the training pool (its inputs and the oracle's answers); ``predict``
returns the answer of the nearest stored input in Euclidean distance (Hamming distance for bit inputs; ties to the
earliest row). Exact on the pool (distinct inputs are at distance > 0); outside the pool it answers with a
neighbour's answer, which is about chance. Its "parameters" are the stored numbers (N * prod(input_shape) + N).

``search`` — the task's own algorithm under a compute budget of ``budget`` candidates; reads only the spec and
the kernels, never task code:
  * PolyMax: decode the coefficients from the inputs (float, or the binary fixed-point words: sign bit, then
    the magnitude in units of 2**-frac_bits, LSB first), evaluate P on the uniform grid of ``budget`` >= 3
    points of [0, 1] (``kernels.polymax.grid_x``), refine the grid's best local maxima by bisection on P' and pick
    the best candidate, ties to the smallest x (``mesabench.kernels.polymax``). With ``budget`` = the oracle's grid
    (``kernels.polymax.default_grid_points(max_degree)``, the default) it is the oracle itself
    (``kernels.polymax.maximize``), so it is exact to the oracle's error bound (1e-6 * max(1, sum|c|)).
  * ModSearch: decode n from its bits (LSB first) and run the seed loop over i = 1 .. min(K, budget), K =
    floor(n**0.7) exactly, keeping the first strict maximum of i*i mod n. With ``budget`` >= K (the default,
    ``spec.num_classes - 1``, covers every n of the input width) it equals the oracle exactly.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mesabench.kernels import modsearch as ms_kernel
from mesabench.kernels import polymax as pm_kernel
from mesabench.models import base

MAX_BUDGET = 2**22
_BLOCK = 512


def _answers(spec, targets):
  return targets["x"].astype(jnp.float32) if spec.output_kind == "interval" else targets["k"].astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class Lookup(base.Model):
  """Nearest neighbour over the training pool. Config: none. ``fit`` must be called before ``predict``."""

  trainable = False

  def init(self, key):
    del key
    size = self.spec.input_size
    dtype = jnp.float32 if self.spec.output_kind == "interval" else jnp.int32
    return {"keys": jnp.zeros((1, size), jnp.float32), "answers": jnp.zeros((1,), dtype)}

  def fit(self, params, inputs, targets):
    """Stores ``inputs`` [N, ...] (flattened) and the oracle's answers [N] (x or k)."""
    del params
    return {"keys": inputs.reshape(inputs.shape[0], -1).astype(jnp.float32),
            "answers": _answers(self.spec, targets)}

  def predict(self, params, inputs):
    """The stored answer of the nearest stored input, [B]."""
    q = inputs.reshape(inputs.shape[0], -1).astype(jnp.float32)
    keys = params["keys"]
    d = jnp.sum(q * q, axis=1)[:, None] - 2.0 * q @ keys.T + jnp.sum(keys * keys, axis=1)[None, :]
    return params["answers"][jnp.argmin(d, axis=1)]


def decode_polymax(spec, inputs):
  """Coefficients [B, max_degree + 1] float32 from PolyMax inputs (float or binary fixed point, per spec.meta)."""
  if spec.input_kind == "real":
    return inputs.astype(jnp.float32)
  frac_bits = spec.get("frac_bits")
  bits = (inputs[..., 1:] > 0.5).astype(jnp.int32)
  mag = jnp.sum(bits << jnp.arange(bits.shape[-1], dtype=jnp.int32), axis=-1)
  sign = jnp.where(inputs[..., 0] > 0.5, -1, 1)
  return (sign * mag).astype(jnp.float32) / 2.0**frac_bits


def decode_modsearch(inputs):
  """n [B] int32 from ModSearch inputs (bits, LSB first)."""
  bits = (inputs > 0.5).astype(jnp.int32)
  return jnp.sum(bits << jnp.arange(inputs.shape[-1], dtype=jnp.int32), axis=-1)


@dataclasses.dataclass(frozen=True)
class Search(base.Model):
  """The task's algorithm with ``budget`` candidates (see the module docstring). Config: budget."""

  trainable = False

  def init(self, key):
    del key
    return {}

  def predict(self, params, inputs):
    del params
    budget = self.options["budget"]
    if self.spec.output_kind == "interval":
      coeffs = decode_polymax(self.spec, inputs)
      return pm_kernel.maximize(coeffs, grid_points=budget)[1]
    n = jnp.maximum(decode_modsearch(inputs), 1)
    limit = jnp.minimum(ms_kernel.kmax(n), budget)
    blocks = -(-budget // _BLOCK)

    def body(j, carry):
      best_k, best_r = carry
      i = 1 + j * _BLOCK + jnp.arange(_BLOCK, dtype=jnp.int32)
      _, r = ms_kernel.sqmod(jnp.broadcast_to(i, n.shape + (_BLOCK,)), n[:, None])
      r = jnp.where(i[None, :] <= limit[:, None], r, -1)
      pos = jnp.argmax(r, axis=1)
      r_blk = jnp.take_along_axis(r, pos[:, None], axis=1)[:, 0]
      take = r_blk > best_r
      return jnp.where(take, i[pos], best_k), jnp.where(take, r_blk, best_r)

    zeros = jnp.zeros(n.shape, jnp.int32)
    k, _ = jax.lax.fori_loop(0, blocks, body, (zeros, zeros))
    return k

  def flops_per_example(self, params, inputs):
    """XLA's count, which covers a loop body once: the ModSearch loop is scaled by its trip count."""
    flops = super().flops_per_example(params, inputs)
    if self.spec.output_kind == "integer":
      flops *= -(-self.options["budget"] // _BLOCK)
    return flops


def make_lookup(spec, **config) -> Lookup:
  return Lookup("lookup", spec, base.finish_config("lookup", config, {}))


def full_budget(spec) -> int:
  """The budget at which ``search`` runs the oracle's algorithm in full (see the module docstring)."""
  if spec.output_kind == "interval":
    return pm_kernel.default_grid_points(spec.input_shape[0] - 1)
  return int(spec.num_classes) - 1


def make_search(spec, **config) -> Search:
  budget = config.get("budget")
  budget = full_budget(spec) if budget is None else budget
  lo = 3 if spec.output_kind == "interval" else 1
  filled = {"budget": base.check_int("budget", budget, lo, MAX_BUDGET)}
  return Search("search", spec, base.finish_config("search", config, filled))


base.register("lookup", make_lookup)
base.register("search", make_search)
