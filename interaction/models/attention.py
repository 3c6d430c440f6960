"""Causal multi-head attention with grouped KV heads and rotary positions over absolute time.

Positions are absolute slot indices (micro-turn index x block length + slot), so the model can tell
how much time has passed, silences included. `attend` is the core shared by the full-sequence forward
(causal mask) and the streaming step (queries against a cache of keys at known positions).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from interaction.models import invariant
from interaction.models.layers import LECUN, dense, param


def rope(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """Rotates (..., seq, heads, head_dim) by angle position * base^(-2i/head_dim) on (first, second) halves."""
    half = x.shape[-1] // 2
    freq = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angle = positions.astype(jnp.float32)[..., None, None] * freq  # (..., seq, 1, half)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    x1, x2 = x[..., :half].astype(jnp.float32), x[..., half:].astype(jnp.float32)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def attend(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """q (B, Sq, H, D), k/v (B, Sk, G, D) with H a multiple of G, mask (B or 1, Sq, Sk) -> (B, Sq, H, D).

    Scores and softmax are float32 whatever the activation dtype.
    """
    b, sq, h, d = q.shape
    g = k.shape[2]
    q = q.reshape(b, sq, g, h // g, d)
    scores = jnp.einsum("bqgrd,bkgd->bgrqk", q, k, preferred_element_type=jnp.float32) / jnp.sqrt(d).astype(jnp.float32)
    scores = jnp.where(mask[:, None, None], scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    out = jnp.einsum("bgrqk,bkgd->bqgrd", probs, v)
    return out.reshape(b, sq, h, d)


def attend_invariant(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, key_positions: jax.Array,
                     chunk: int) -> jax.Array:
    """`attend`, computed so that a query's result depends only on the keys it sees, bit for bit.

    Not on the batch (each (session, kv head) pair is its own loop iteration), not on the other queries
    (every product is a fixed-tile `invariant.matmul`), and not on where the keys sit or how many masked
    ones lie around them: keys are taken in splits of `chunk` consecutive positions aligned to absolute
    position (a micro-turn), each split's scores, exponentials, row sums and weighted values come from
    fixed-shape products, and the splits are added in order of absolute position, so a ring-buffer cache
    and a training window give the same sum. Masked keys weigh exactly zero. key_positions (B, Sk), Sk a
    multiple of `chunk`, every split holding one aligned span of positions (or masked keys only).
    """
    b, sq, h, d = q.shape
    g, sk = k.shape[2], k.shape[1]
    r, n = h // g, k.shape[1] // chunk
    if sk % chunk:
        raise ValueError(f"{sk} keys are not a whole number of {chunk}-key splits.")
    qs = q.reshape(b, sq, g, r, d).transpose(0, 2, 3, 1, 4).reshape(b * g, r * sq, d)  # rows: (head, query)
    split = lambda x: x.transpose(0, 2, 1, 3).reshape(b * g, n, chunk, d)  # noqa: E731
    ks, vs = split(k), split(v)
    masks = jnp.broadcast_to(mask[:, None, None], (b, g, r, sq, sk)).reshape(b * g, r * sq, n, chunk)
    # The order the splits are added in: by the absolute position they hold (splits of masked keys add 0).
    span = jnp.max(key_positions.reshape(b, n, chunk), axis=-1) // chunk
    order = jnp.repeat(jnp.argsort(span, axis=-1, stable=True), g, axis=0)  # (b * g, n)

    def one(args):
        qi, ki, vi, mi, oi = args
        scores = jax.lax.map(lambda kj: invariant.rows_dot(qi, kj.astype(qi.dtype)), ki)  # (n, rows, chunk)
        scores = jnp.where(mi.transpose(1, 0, 2), scores.astype(jnp.float32) / jnp.sqrt(d).astype(jnp.float32),
                           -jnp.inf)
        top = jnp.max(scores, axis=(0, 2), keepdims=True)
        weights = jnp.exp(scores - jnp.where(jnp.isfinite(top), top, 0.0))
        sums = invariant.row_sum(weights)  # (n, rows)
        values = jax.lax.map(lambda wv: invariant.rows_dot(wv[0].astype(vi.dtype), wv[1].T), (weights, vi))

        def add(acc, j):
            return (acc[0] + values[j], acc[1] + sums[j]), None

        (total, norm), _ = jax.lax.scan(add, (jnp.zeros_like(values[0]), jnp.zeros_like(sums[0])), oi)
        return total / norm[:, None].astype(total.dtype)

    out = jax.lax.map(one, (qs, ks, vs, masks, order))  # (b * g, r * sq, d)
    return out.reshape(b, g, r, sq, d).transpose(0, 3, 1, 2, 4).reshape(b, sq, h, d)


class Attention(nnx.Module):
    def __init__(self, embed: int, heads: int, kv_heads: int, head_dim: int, *, rope_base: float = 10_000.0,
                 rngs: nnx.Rngs, dtype=jnp.float32, deterministic: bool = False, key_chunk: int = 1):
        if heads % kv_heads:
            raise ValueError(f"heads={heads} must be a multiple of kv_heads={kv_heads}.")
        if head_dim % 2:
            raise ValueError(f"head_dim={head_dim} must be even for rotary positions.")
        self.q = param(rngs, LECUN, ("embed", "heads", "kv"), (embed, heads, head_dim))
        self.k = param(rngs, LECUN, ("embed", "heads", "kv"), (embed, kv_heads, head_dim))
        self.v = param(rngs, LECUN, ("embed", "heads", "kv"), (embed, kv_heads, head_dim))
        self.o = param(rngs, LECUN, ("heads", "kv", "embed"), (heads, head_dim, embed))
        self.rope_base, self.dtype, self.deterministic, self.key_chunk = rope_base, dtype, deterministic, key_chunk

    def _project(self, x: jax.Array, w: nnx.Param) -> jax.Array:
        """x (B, S, embed) through an (embed, heads, head_dim) projection -> (B, S, heads, head_dim)."""
        e, h, d = w.shape
        y = dense(x, w[...].astype(self.dtype).reshape(e, h * d), self.deterministic)
        return y.reshape(*x.shape[:-1], h, d)

    def project_kv(self, x: jax.Array, positions: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Rotated keys and values of x (B, S, embed): what a cache stores."""
        return rope(self._project(x, self.k), positions, self.rope_base), self._project(x, self.v)

    def query(self, x: jax.Array, positions: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array,
              key_positions: jax.Array) -> jax.Array:
        """Attention output for queries from x (B, S, embed) at `positions` over keys/values k, v at
        `key_positions` (B, Sk)."""
        q = rope(self._project(x, self.q), positions, self.rope_base)
        if self.deterministic:
            out = attend_invariant(q, k, v, mask, key_positions, self.key_chunk)
        else:
            out = attend(q, k, v, mask)
        h, d, e = self.o.shape
        return dense(out.reshape(*out.shape[:-2], h * d), self.o[...].astype(self.dtype).reshape(h * d, e),
                     self.deterministic)

    def __call__(self, x: jax.Array, positions: jax.Array) -> jax.Array:
        """Causal self-attention over x (B, S, embed) at positions (B, S)."""
        k, v = self.project_kv(x, positions)
        s = x.shape[1]
        causal = jnp.tril(jnp.ones((s, s), bool))[None]
        return self.query(x, positions, k, v, causal, positions)
