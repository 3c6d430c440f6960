"""Attention: causal, relative in position (rotary), grouped KV heads, cache-style queries match."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from interaction.models import attention

B, S, E = 2, 12, 32


@pytest.fixture(scope="module")
def layer():
    return attention.Attention(E, heads=4, kv_heads=2, head_dim=8, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def x():
    return jax.random.normal(jax.random.key(1), (B, S, E))


def _positions(offset=0):
    return jnp.broadcast_to(jnp.arange(S) + offset, (B, S))


def test_later_tokens_do_not_change_earlier_outputs(layer, x):
    out = layer(x, _positions())
    changed = x.at[:, 7:].set(3.0)
    np.testing.assert_allclose(layer(changed, _positions())[:, :7], out[:, :7], atol=1e-6)
    assert not np.allclose(layer(changed, _positions())[:, 7:], out[:, 7:])


def test_rotary_positions_are_relative(layer, x):
    # Shifting every position by the same amount keeps every query-key angle difference.
    np.testing.assert_allclose(layer(x, _positions(1000)), layer(x, _positions()), atol=2e-4)
    # Spreading them (more time between tokens) changes the output.
    assert not np.allclose(layer(x, _positions() * 5), layer(x, _positions()), atol=1e-3)


def test_queries_against_cached_keys_equal_the_full_pass(layer, x):
    pos = _positions()
    k, v = layer.project_kv(x, pos)
    full = layer(x, pos)
    # Queries for the last 4 tokens against all 12 cached keys, causal by position.
    mask = pos[:, 8:, None] >= pos[:, None, :]
    part = layer.query(x[:, 8:], pos[:, 8:], k, v, mask, pos)
    np.testing.assert_allclose(part, full[:, 8:], atol=1e-5)


def test_deterministic_attention_is_exact_across_batches_queries_and_key_layouts(x):
    """A query's output, bit for bit: alone or in a batch, alone or among other queries, and over keys in
    window order or rotated as in a ring-buffer cache with masked slots around them."""
    layer = attention.Attention(E, 4, 2, 8, rngs=nnx.Rngs(0), deterministic=True, key_chunk=4)
    pos = _positions()  # 12 positions: three aligned splits of 4
    full = np.asarray(layer(x, pos))
    np.testing.assert_array_equal(np.asarray(layer(x[1:], pos[1:])), full[1:])  # another batch
    k, v = layer.project_kv(x, pos)
    mask = pos[:, 8:, None] >= pos[:, None, :]
    np.testing.assert_array_equal(np.asarray(layer.query(x[:, 8:], pos[:, 8:], k, v, mask, pos)), full[:, 8:])
    # The same keys in a 16-slot ring, rotated by one split, with an empty split (position -1).
    slots = np.r_[8:12, 0:8, 12:16]  # slot i holds window key slots[i]; 12-15 are empty
    ring_pos = np.where(slots < 12, np.asarray(pos)[:, np.minimum(slots, 11)], -1)
    ring = lambda a: jnp.where((slots < 12)[None, :, None, None], a[:, np.minimum(slots, 11)], 0.0)  # noqa: E731
    ring_mask = (pos[:, 8:, None] >= ring_pos[:, None, :]) & (ring_pos[:, None, :] >= 0)
    out = layer.query(x[:, 8:], pos[:, 8:], ring(k), ring(v), ring_mask, jnp.asarray(ring_pos))
    np.testing.assert_array_equal(np.asarray(out), full[:, 8:])
    plain = attention.Attention(E, 4, 2, 8, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(full, plain(x, pos), atol=1e-5)  # the same attention, summed in another order


def test_grouped_heads_and_bad_config():
    assert attention.Attention(E, 4, 1, 8, rngs=nnx.Rngs(0))(jnp.ones((1, 3, E)), jnp.zeros((1, 3), int)).shape == (1, 3, E)
    with pytest.raises(ValueError, match="multiple of kv_heads"):
        attention.Attention(E, 4, 3, 8, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="even"):
        attention.Attention(E, 4, 2, 7, rngs=nnx.Rngs(0))
