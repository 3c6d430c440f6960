"""Causal multi-head attention with grouped KV heads and rotary positions over absolute time.

Positions are absolute slot indices (micro-turn index x block length + slot), so the model can tell
how much time has passed, silences included. `attend` is the core shared by the full-sequence forward
(a window's queries over its own keys, causal by position) and the streaming step (queries over a
session's cache and the micro-turn's block of new keys, with one softmax across both).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from interaction.models import invariant
from interaction.models.cache import KVCache
from interaction.models.layers import LECUN, dense, param


def rope(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """Rotates (..., seq, heads, head_dim) by angle position * base^(-2i/head_dim) on (first, second) halves."""
    half = x.shape[-1] // 2
    freq = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angle = positions.astype(jnp.float32)[..., None, None] * freq  # (..., seq, 1, half)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    x1, x2 = x[..., :half].astype(jnp.float32), x[..., half:].astype(jnp.float32)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def attend(q: jax.Array, parts: Sequence[tuple[jax.Array, jax.Array, jax.Array]]) -> jax.Array:
    """q (B, Sq, H, D) over one or more sets of keys, with one softmax across all of them -> (B, Sq, H, D).

    parts: (k (B, G, D, Sk), v (B, G, Sk, D), mask (B or 1, Sq, Sk)) for each set, laid out as `KVCache`
    stores them; H is a multiple of G. The queries of a kv head are the rows of one product, (head,
    query) major, so that every product is a plain batched matmul over (B, G). Scores and softmax are
    float32 whatever the activation dtype; a query that sees no key gets zeros.
    """
    b, sq, h, d = q.shape
    g = parts[0][0].shape[1]
    r = h // g
    rows = q.reshape(b, sq, g, r, d).transpose(0, 2, 3, 1, 4).reshape(b, g, r * sq, d)
    scale = 1.0 / jnp.sqrt(d).astype(jnp.float32)

    def scores(k, mask):
        s = jnp.einsum("bgqd,bgdk->bgqk", rows, k, preferred_element_type=jnp.float32).reshape(b, g, r, sq, -1)
        return jnp.where(mask[:, None, None], s * scale, -jnp.inf)

    scored = [scores(k, mask) for k, _, mask in parts]
    top = functools.reduce(jnp.maximum, [s.max(axis=-1, keepdims=True) for s in scored])
    weights = [jnp.exp(s - jnp.where(jnp.isfinite(top), top, 0.0)) for s in scored]
    norm = sum(w.sum(axis=-1) for w in weights)  # (b, g, r, sq)
    out = sum(jnp.einsum("bgqk,bgkd->bgqd", w.reshape(b, g, r * sq, -1).astype(v.dtype), v)
              for w, (_, v, _) in zip(weights, parts)).reshape(b, g, r, sq, d)
    out = out / jnp.where(norm > 0, norm, 1.0)[..., None].astype(out.dtype)
    return out.transpose(0, 3, 1, 2, 4).reshape(b, sq, h, d)


def attend_invariant(q: jax.Array, parts: Sequence[tuple[jax.Array, jax.Array, jax.Array, jax.Array]],
                     chunk: int) -> jax.Array:
    """`attend`, computed so that a query's result depends only on the keys it sees, bit for bit.

    Not on the batch (each (session, kv head) pair is its own loop iteration), not on the other queries
    (every product is a fixed-tile `invariant.matmul`), and not on where the keys sit, how many masked
    ones lie around them or how they are divided into parts: keys are taken in splits of `chunk`
    consecutive positions aligned to absolute position (a micro-turn), each split's scores,
    exponentials, row sums and weighted values come from fixed-shape products, and the splits of all
    parts are added in order of absolute position, so a ring-buffer cache plus a micro-turn's block and
    a training window give the same sum. Masked keys weigh exactly zero. parts: `attend`'s parts, each
    with its key positions (B, Sk) appended; Sk a multiple of `chunk`, every split holding one aligned
    span of positions (or masked keys only).
    """
    b, sq, h, d = q.shape
    g = parts[0][0].shape[1]
    r = h // g
    qs = q.reshape(b, sq, g, r, d).transpose(0, 2, 3, 1, 4).reshape(b * g, r * sq, d)  # rows: (head, query)

    def splits(k, v, mask, key_positions):
        sk = v.shape[2]
        if sk % chunk:
            raise ValueError(f"{sk} keys are not a whole number of {chunk}-key splits.")
        n = sk // chunk
        masks = jnp.broadcast_to(mask[:, None, None], (b, g, r, sq, sk)).reshape(b * g, r * sq, n, chunk)
        span = jnp.max(key_positions.reshape(b, n, chunk), axis=-1) // chunk  # the micro-turn each split holds
        keys = k.reshape(b * g, d, n, chunk).transpose(0, 2, 3, 1)  # each split's keys as rows (chunk, d)
        return keys, v.reshape(b * g, n, chunk, d), masks, jnp.repeat(span, g, axis=0)

    pieces = [splits(*part) for part in parts]
    ks, vs, spans = (jnp.concatenate([piece[i] for piece in pieces], axis=1) for i in (0, 1, 3))
    masks = jnp.concatenate([piece[2] for piece in pieces], axis=2)
    order = jnp.argsort(spans, axis=-1, stable=True)  # the order the splits are added in (masked ones add 0)

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
        return total / jnp.where(norm > 0, norm, 1.0)[:, None].astype(total.dtype)

    out = jax.lax.map(one, (qs, ks, vs, masks, order))  # (b * g, r * sq, d)
    return out.reshape(b, g, r, sq, d).transpose(0, 3, 1, 2, 4).reshape(b, sq, h, d)


def query_splits() -> int:
    """Runs of queries in a training window's attention (`Attention.__call__`): 10 on XLA:CPU, where the
    masked half of a causal square cost most of a step; one elsewhere, where each run adds its own kernels
    to a step that is bound by their launches and to the compile (docs/results.md)."""
    return 10 if jax.default_backend() == "cpu" else 1


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
        """Rotated keys (B, kv_heads, head_dim, S) and values (B, kv_heads, S, head_dim) of x (B, S, embed),
        laid out as `KVCache` stores them."""
        k = rope(self._project(x, self.k), positions, self.rope_base)
        return k.transpose(0, 2, 3, 1), self._project(x, self.v).swapaxes(1, 2)

    def query(self, x: jax.Array, positions: jax.Array, parts: Sequence[KVCache],
              window: int | None = None) -> jax.Array:
        """Attention output for queries from x (B, S, embed) at `positions` over the keys of `parts`, one
        softmax across all: each query sees stored keys at or before its position, less than `window`
        behind it."""
        q = rope(self._project(x, self.q), positions, self.rope_base)
        masks = [part.visible(positions, window) for part in parts]
        if self.deterministic:
            out = attend_invariant(q, [(p.k, p.v, m, p.pos) for p, m in zip(parts, masks)], self.key_chunk)
        else:
            out = attend(q, [(p.k, p.v, m) for p, m in zip(parts, masks)])
        h, d, e = self.o.shape
        return dense(out.reshape(*out.shape[:-2], h * d), self.o[...].astype(self.dtype).reshape(h * d, e),
                     self.deterministic)

    def __call__(self, x: jax.Array, positions: jax.Array, window: int | None = None) -> jax.Array:
        """Causal self-attention over x (B, S, embed) at strictly increasing positions (B, S), each query seeing
        the keys less than `window` positions behind it (all earlier ones when None).

        The queries go in `query_splits()` runs, each over only the keys it can see (none after its last
        query, none more than `window` before its first): causal scores are a triangle, and computing the
        whole square spent most of a training step on masked-out exponentials."""
        k, v = self.project_kv(x, positions)
        pos = positions.astype(jnp.int32)
        if self.deterministic:
            return self.query(x, positions, [KVCache(k, v, pos)], window=window)
        s = x.shape[1]
        step = -(-s // (query_splits() * self.key_chunk)) * self.key_chunk
        outs = []
        for a in range(0, s, step):
            b = min(a + step, s)
            lo = 0 if window is None else max(0, a - window + 1)
            keys = KVCache(k[..., lo:b], v[:, :, lo:b], pos[:, lo:b])
            outs.append(self.query(x[:, a:b], positions[:, a:b], [keys], window=window))
        return jnp.concatenate(outs, axis=1)
