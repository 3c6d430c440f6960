"""Keys and values stamped with their absolute positions: a session's KV cache, a micro-turn's block of
new keys, or a training window's own keys.

Slot `position % capacity` holds a token's key and value and `pos` its absolute position (-1 when
empty). As a session's cache this is a ring buffer: nothing grows as a session goes on, and after
`capacity` tokens the oldest are overwritten and attention becomes a sliding window.

Keys and values are stored head-major, (B, kv_heads, capacity, head_dim): each head's keys are one
contiguous matrix, which a query's scores and weighted sum read in place on XLA:CPU (the
(B, capacity, kv_heads, head_dim) layout costs a transposed copy of the cache per query). The streaming step also never writes the cache while
it runs a micro-turn's passes (XLA copies a loop-carried buffer that is updated in place and read by a
product): the turn's own keys go to a block of its own, the queries attend over cache and block
together, and the block is written into the cache once, at the end of the turn.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class KVCache:
    k: jax.Array  # (B, kv_heads, capacity, head_dim)
    v: jax.Array
    pos: jax.Array  # (B, capacity) int32 absolute position in each slot; -1 when empty

    @classmethod
    def create(cls, batch: int, capacity: int, kv_heads: int, head_dim: int, dtype=jnp.float32) -> "KVCache":
        shape = (batch, kv_heads, capacity, head_dim)  # k and v are separate buffers, so the state can be donated
        return cls(k=jnp.zeros(shape, dtype), v=jnp.zeros(shape, dtype), pos=jnp.full((batch, capacity), -1, jnp.int32))

    @property
    def capacity(self) -> int:
        return self.pos.shape[1]

    def write(self, k: jax.Array, v: jax.Array, positions: jax.Array) -> "KVCache":
        """Stores (B, kv_heads, S, head_dim) keys and values at (B, S) positions (S <= capacity)."""
        slots = positions % self.capacity
        put = jax.vmap(lambda buf, new, at: buf.at[:, at].set(new.astype(buf.dtype)))  # one session: (G, cap, D)
        rows = jnp.arange(positions.shape[0])[:, None]
        return KVCache(k=put(self.k, k, slots), v=put(self.v, v, slots),
                       pos=self.pos.at[rows, slots].set(positions.astype(jnp.int32)))

    def visible(self, positions: jax.Array, window: int | None = None) -> jax.Array:
        """(B, S, capacity): the stored tokens each query at `positions` (B, S) may attend to: its own
        position and earlier ones, less than `window` behind it (no limit when None)."""
        q, p = positions[:, :, None], self.pos[:, None, :]
        seen = (p >= 0) & (p <= q)
        return seen if window is None else seen & (p > q - window)

    def clear(self, rows: jax.Array) -> "KVCache":
        """Empties the sessions whose flag in `rows` (B,) is set; the others are untouched."""
        return self.replace(pos=jnp.where(rows[:, None], -1, self.pos))
