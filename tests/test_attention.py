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
    part = layer.query(x[:, 8:], pos[:, 8:], k, v, mask)
    np.testing.assert_allclose(part, full[:, 8:], atol=1e-5)


def test_grouped_heads_and_bad_config():
    assert attention.Attention(E, 4, 1, 8, rngs=nnx.Rngs(0))(jnp.ones((1, 3, E)), jnp.zeros((1, 3), int)).shape == (1, 3, E)
    with pytest.raises(ValueError, match="multiple of kv_heads"):
        attention.Attention(E, 4, 3, 8, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="even"):
        attention.Attention(E, 4, 2, 7, rngs=nnx.Rngs(0))
