"""Keys and values stamped with their absolute positions: a session's KV cache, a micro-turn's block of
new keys, or a training window's own keys.

Slot `position % capacity` holds a token's key and value and `pos` its absolute position (-1 when
empty). As a session's cache this is a ring buffer: nothing grows as a session goes on, and after
`capacity` tokens the oldest are overwritten and attention becomes a sliding window.

Keys and values are stored head-major, so that each head's are one contiguous matrix that a query's
scores and weighted sum read in place (a (B, capacity, kv_heads, head_dim) layout costs a transposed
copy of the cache per query): values as (B, kv_heads, capacity, head_dim), keys transposed as
(B, kv_heads, head_dim, capacity). A streaming pass has one or two queries per kv head, and its scores
are then a (queries x head_dim) by (head_dim x capacity) product, long in the dimension the product
vectorises over; with keys stored (capacity x head_dim) the same scores are a product of width 2,
which XLA:CPU ran at half the read bandwidth. The streaming step also never writes the cache while it
runs a micro-turn's passes (XLA copies a loop-carried buffer that is updated in place and read by a
product): the turn's own keys go to a block of its own, the queries attend over cache and block
together, and the block is written into the cache once, at the end of the turn.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class KVCache:
    k: jax.Array  # (B, kv_heads, head_dim, capacity): keys transposed
    v: jax.Array  # (B, kv_heads, capacity, head_dim)
    pos: jax.Array  # (B, capacity) int32 absolute position in each slot; -1 when empty

    @classmethod
    def create(cls, batch: int, capacity: int, kv_heads: int, head_dim: int, dtype=jnp.float32) -> "KVCache":
        # k and v are separate buffers, so that the state can be donated
        return cls(k=jnp.zeros((batch, kv_heads, head_dim, capacity), dtype),
                   v=jnp.zeros((batch, kv_heads, capacity, head_dim), dtype),
                   pos=jnp.full((batch, capacity), -1, jnp.int32))

    @property
    def capacity(self) -> int:
        return self.pos.shape[1]

    def write(self, k: jax.Array, v: jax.Array, positions: jax.Array) -> "KVCache":
        """Stores keys (B, kv_heads, head_dim, S) and values (B, kv_heads, S, head_dim), laid out as the cache
        holds them, at (B, S) positions (S <= capacity)."""
        slots = positions % self.capacity
        put_k = jax.vmap(lambda buf, new, at: buf.at[:, :, at].set(new.astype(buf.dtype)))  # one session: (G, D, cap)
        put_v = jax.vmap(lambda buf, new, at: buf.at[:, at].set(new.astype(buf.dtype)))  # one session: (G, cap, D)
        rows = jnp.arange(positions.shape[0])[:, None]
        return KVCache(k=put_k(self.k, k, slots), v=put_v(self.v, v, slots),
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
