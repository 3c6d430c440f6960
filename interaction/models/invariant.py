"""Batch-invariant arithmetic: a row's result does not depend on how many rows are computed with it.

A plain `x @ w` on XLA:CPU is not row-invariant: the kernel (and with it the order in which a row's
products are summed) is chosen by the whole operand's shape, so a row computed alone and the same row
inside a 256-row product can differ in the last bits. Here every product is computed in tiles of exactly
`ROW_TILE` rows (the rows are padded and a loop runs one fixed-shape product per tile), so every row goes
through the same kernel with the same summation order whatever its batch, its position, or its neighbours.
Row sums (norms) go through the same product, with a column of ones.

The price is a loop over tiles instead of one large product (its cost is in docs/results.md). Used by the
model when its spec says `deterministic`.

Randomness is batch-invariant when every session has its own key: the helpers below take either one
key (shape ()) for the whole batch or a (B,) array of keys, one per session, and then draw row by row.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

ROW_TILE = 8


def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """x (..., K) @ w (K, N), each row computed in a fixed-shape (ROW_TILE, K) x (K, N) product."""
    *lead, k = x.shape
    rows = x.reshape(-1, k)
    m = rows.shape[0]
    tiles = jnp.pad(rows, ((0, -m % ROW_TILE), (0, 0))).reshape(-1, ROW_TILE, k)
    out = jax.lax.map(lambda tile: tile @ w, tiles)
    return out.reshape(-1, w.shape[-1])[:m].reshape(*lead, w.shape[-1])


def rows_dot(a: jax.Array, b: jax.Array) -> jax.Array:
    """a (M, K) against b (N, K): (M, N) dot products of rows, as products summed by `row_sum`.

    For operands that are slices of larger arrays (attention's keys and values), whose memory layout XLA
    picks per program: a plain product would then sum in a layout-dependent order."""
    return row_sum(a[:, None, :] * b[None, :, :])


def row_sum(x: jax.Array) -> jax.Array:
    """Sum over the last axis, (..., K) -> (...), as a batch-invariant product with ones."""
    return matmul(x, jnp.ones((x.shape[-1], 1), x.dtype))[..., 0]


def split(key: jax.Array) -> jax.Array:
    """Two keys from `key`, or from each of a (B,) array of keys: (2,) or (2, B)."""
    return jax.vmap(jax.random.split, out_axes=1)(key) if key.ndim else jax.random.split(key)


def categorical(key: jax.Array, logits: jax.Array) -> jax.Array:
    """One sample per row of (B, V) logits; with (B,) keys, row b uses key b alone."""
    if key.ndim:
        return jax.vmap(jax.random.categorical)(key, logits)
    return jax.random.categorical(key, logits)


def normal(key: jax.Array, shape: tuple) -> jax.Array:
    """Standard normal of `shape` (B, ...); with (B,) keys, row b is drawn from key b alone."""
    if key.ndim:
        return jax.vmap(lambda k: jax.random.normal(k, shape[1:]))(key)
    return jax.random.normal(key, shape)
