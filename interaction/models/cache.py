"""Fixed-size KV cache: a ring buffer of keys and values stamped with their absolute positions.

Slot `position % capacity` holds a token's key and value; a query attends to every cached token at or
before its own position and less than `capacity` behind it. Nothing grows as a session goes on: after
`capacity` tokens the oldest are overwritten and attention becomes a sliding window.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class KVCache:
    k: jax.Array  # (B, capacity, kv_heads, head_dim)
    v: jax.Array
    pos: jax.Array  # (B, capacity) int32 absolute position in each slot; -1 when empty

    @classmethod
    def create(cls, batch: int, capacity: int, kv_heads: int, head_dim: int, dtype=jnp.float32) -> "KVCache":
        shape = (batch, capacity, kv_heads, head_dim)  # k and v are separate buffers, so the state can be donated
        return cls(k=jnp.zeros(shape, dtype), v=jnp.zeros(shape, dtype), pos=jnp.full((batch, capacity), -1, jnp.int32))

    @property
    def capacity(self) -> int:
        return self.pos.shape[1]

    def write(self, k: jax.Array, v: jax.Array, positions: jax.Array) -> "KVCache":
        """Stores (B, S, ...) keys and values at (B, S) positions (S <= capacity)."""
        slots = positions % self.capacity
        rows = jnp.arange(positions.shape[0])[:, None]
        return KVCache(k=self.k.at[rows, slots].set(k.astype(self.k.dtype)),
                       v=self.v.at[rows, slots].set(v.astype(self.v.dtype)),
                       pos=self.pos.at[rows, slots].set(positions.astype(jnp.int32)))

    def mask(self, positions: jax.Array) -> jax.Array:
        """(B, S, capacity): which cached tokens each query at `positions` may attend to."""
        q, p = positions[:, :, None], self.pos[:, None, :]
        return (p >= 0) & (p <= q) & (p > q - self.capacity)

    def clear(self, rows: jax.Array) -> "KVCache":
        """Empties the sessions whose flag in `rows` (B,) is set; the others are untouched."""
        return self.replace(pos=jnp.where(rows[:, None], -1, self.pos))
