"""``memory``: a small Neural-Turing-Machine-like model: a GRU controller that reads and writes an external memory
by content-based attention, for ``steps`` steps.

    M_0[i] = Dense_m(token_i) + position_i         (one memory row per input token: coefficient or bit of n)
    h_0 = 0;  each step t = 1 .. T:
      read:  a = softmax(M q / sqrt(m)), q = Dense_m(h);  r = a M
      think: h = GRU([r, h])
      write: w = softmax(M k / sqrt(m)), k = Dense_m(h);  erase e = sigmoid(Dense_m(h)), add v = tanh(Dense_m(h))
             M <- M * (1 - w e^T) + w v^T
      out_t = head([h, r])
T is ``steps`` in training and any T >= 1 at test time (``predict(..., iterations=T)``); the head reads every step.
``loss_on``: "last" (default) or "all".
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from mesabench.models import base

MAX_STEPS = 1024


class _Step(nn.Module):
  width: int
  mem_width: int

  @nn.compact
  def __call__(self, carry, _):
    h, mem = carry
    scale = 1.0 / jnp.sqrt(jnp.float32(self.mem_width))
    q = nn.Dense(self.mem_width, name="read_query")(h)
    read = jax.nn.softmax(jnp.einsum("bim,bm->bi", mem, q) * scale, axis=-1)
    r = jnp.einsum("bi,bim->bm", read, mem)
    h, _ = nn.GRUCell(self.width, name="controller")(h, r)
    k = nn.Dense(self.mem_width, name="write_key")(h)
    w = jax.nn.softmax(jnp.einsum("bim,bm->bi", mem, k) * scale, axis=-1)
    erase = jax.nn.sigmoid(nn.Dense(self.mem_width, name="erase")(h))
    add = jnp.tanh(nn.Dense(self.mem_width, name="add")(h))
    mem = mem * (1.0 - w[:, :, None] * erase[:, None, :]) + w[:, :, None] * add[:, None, :]
    return (h, mem), jnp.concatenate([h, r], axis=-1)


class MemoryNet(nn.Module):
  """Inputs [B, ...] -> head outputs [T, B, out_size]."""
  width: int
  mem_width: int
  steps: int
  out_size: int
  spec: object

  @nn.compact
  def __call__(self, inputs, iterations=None):
    t = self.steps if iterations is None else iterations
    toks = base.tokens(self.spec, inputs).astype(jnp.float32)
    mem = nn.Dense(self.mem_width, name="embed")(toks)
    pos = self.param("position", nn.initializers.normal(0.02), (toks.shape[1], self.mem_width), jnp.float32)
    mem = mem + pos  # float32 position rows also under x64 (the initializer's default dtype is float64 there)
    h = jnp.zeros((inputs.shape[0], self.width), jnp.float32)
    loop = nn.scan(_Step, variable_broadcast="params", split_rngs={"params": False}, length=t)
    _, feats = loop(self.width, self.mem_width, name="step")((h, mem), None)
    return nn.Dense(self.out_size, name="head")(feats)


@dataclasses.dataclass(frozen=True)
class Memory(base.IterativeNetModel):
  """Config: width (controller units, 1..2048, default 64), mem_width (1..1024, default 32), steps (1..1024,
  default 6), loss_on, head, bins."""

  shares_weights_across_positions = True  # one Dense embedding per token, a learned position row per token, and
  # the controller reads memory rows by content: no weight is tied to one bit of the input

  max_iterations = MAX_STEPS

  def module(self):
    o = self.options
    return MemoryNet(width=o["width"], mem_width=o["mem_width"], steps=o["steps"], out_size=self.out_size,
                     spec=self.spec)


def make(spec, **config) -> Memory:
  filled = {"width": base.check_int("width", config.get("width", 64), 1, 2048),
            "mem_width": base.check_int("mem_width", config.get("mem_width", 32), 1, 1024),
            "steps": base.check_int("steps", config.get("steps", 6), 1, MAX_STEPS),
            "loss_on": base.check_choice("loss_on", config.get("loss_on", "last"), ("all", "last")),
            **base.head_defaults(spec, config)}
  return Memory("memory", spec, base.finish_config("memory", config, filled))


base.register("memory", make)
