"""Causal multi-head attention with grouped KV heads and rotary positions over absolute time.

Positions are absolute slot indices (micro-turn index x block length + slot), so the model can tell
how much time has passed, silences included. `attend` is the core shared by the full-sequence forward
(causal mask) and the streaming step (queries against a cache of keys at known positions).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from interaction.models.layers import LECUN, param


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


class Attention(nnx.Module):
    def __init__(self, embed: int, heads: int, kv_heads: int, head_dim: int, *, rope_base: float = 10_000.0,
                 rngs: nnx.Rngs, dtype=jnp.float32):
        if heads % kv_heads:
            raise ValueError(f"heads={heads} must be a multiple of kv_heads={kv_heads}.")
        if head_dim % 2:
            raise ValueError(f"head_dim={head_dim} must be even for rotary positions.")
        self.q = param(rngs, LECUN, ("embed", "heads", "kv"), (embed, heads, head_dim))
        self.k = param(rngs, LECUN, ("embed", "heads", "kv"), (embed, kv_heads, head_dim))
        self.v = param(rngs, LECUN, ("embed", "heads", "kv"), (embed, kv_heads, head_dim))
        self.o = param(rngs, LECUN, ("heads", "kv", "embed"), (heads, head_dim, embed))
        self.rope_base, self.dtype = rope_base, dtype

    def project_kv(self, x: jax.Array, positions: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Rotated keys and values of x (B, S, embed): what a cache stores."""
        k = jnp.einsum("bse,egd->bsgd", x, self.k[...].astype(self.dtype))
        v = jnp.einsum("bse,egd->bsgd", x, self.v[...].astype(self.dtype))
        return rope(k, positions, self.rope_base), v

    def query(self, x: jax.Array, positions: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
        """Attention output for queries from x (B, S, embed) over keys/values k, v."""
        q = rope(jnp.einsum("bse,ehd->bshd", x, self.q[...].astype(self.dtype)), positions, self.rope_base)
        return jnp.einsum("bshd,hde->bse", attend(q, k, v, mask), self.o[...].astype(self.dtype))

    def __call__(self, x: jax.Array, positions: jax.Array) -> jax.Array:
        """Causal self-attention over x (B, S, embed) at positions (B, S)."""
        k, v = self.project_kv(x, positions)
        s = x.shape[1]
        causal = jnp.tril(jnp.ones((s, s), bool))[None]
        return self.query(x, positions, k, v, causal)
