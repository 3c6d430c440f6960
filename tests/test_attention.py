"""Attention: causal, relative in position (rotary), grouped KV heads, cache-style queries match."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from interaction.models import attention
from interaction.models.cache import KVCache

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


def _ring(layer, x, pos, capacity, upto):
    """A `capacity`-slot cache holding the keys of tokens [0, upto) of x, written in pieces of 4 as a session would."""
    cache = KVCache.create(B, capacity, 2, 8)
    for start in range(0, upto, 4):
        piece = slice(start, start + 4)
        cache = cache.write(*layer.project_kv(x[:, piece], pos[:, piece]), pos[:, piece])
    return cache


def test_queries_over_a_cache_and_a_block_equal_the_full_pass(layer, x):
    pos = _positions()
    full = layer(x, pos)
    # The last 4 tokens as a micro-turn: over the first 8 in a cache (a 16-slot ring) and their own block.
    block = KVCache.create(B, 4, 2, 8)
    block = block.write(*layer.project_kv(x[:, 8:], pos[:, 8:]), pos[:, 8:])
    part = layer.query(x[:, 8:], pos[:, 8:], [_ring(layer, x, pos, 16, 8), block], window=16)
    np.testing.assert_allclose(part, full[:, 8:], atol=1e-5)
    # A window of 6: the query at position 11 sees positions 6..11 only.
    cut = layer.query(x[:, 11:], pos[:, 11:], [_ring(layer, x, pos, 16, 8), block], window=6)
    kv = KVCache(*layer.project_kv(x[:, 6:], pos[:, 6:]), pos[:, 6:])
    np.testing.assert_allclose(cut, layer.query(x[:, 11:], pos[:, 11:], [kv]), atol=1e-5)


def test_deterministic_attention_is_exact_across_batches_queries_and_key_layouts(x):
    """A query's output, bit for bit: alone or in a batch, alone or among other queries, and over keys in
    window order or in a ring-buffer cache (rotated, with empty slots) plus a block of the turn's own."""
    layer = attention.Attention(E, 4, 2, 8, rngs=nnx.Rngs(0), deterministic=True, key_chunk=4)
    pos = _positions()  # 12 positions: three aligned splits of 4
    full = np.asarray(layer(x, pos))
    np.testing.assert_array_equal(np.asarray(layer(x[1:], pos[1:])), full[1:])  # another batch
    k, v = layer.project_kv(x, pos)
    part = layer.query(x[:, 8:], pos[:, 8:], [KVCache(k, v, pos)])  # the last 4 queries only
    np.testing.assert_array_equal(np.asarray(part), full[:, 8:])
    # At positions 28..39: the first 8 keys in a 16-slot ring, wrapped (slots 12..15 then 0..3) with two
    # empty splits between, and the last 4 in the turn's block.
    later = pos + 28
    cache = KVCache.create(B, 16, 2, 8).write(*layer.project_kv(x[:, :8], later[:, :8]), later[:, :8])
    block = KVCache.create(B, 4, 2, 8).write(*layer.project_kv(x[:, 8:], later[:, 8:]), later[:, 8:])
    np.testing.assert_array_equal(np.asarray(cache.pos[0]), [32, 33, 34, 35] + [-1] * 8 + [28, 29, 30, 31])
    ring = np.asarray(layer.query(x[:, 8:], later[:, 8:], [cache, block], window=16))
    np.testing.assert_array_equal(ring, np.asarray(layer(x, later))[:, 8:])
    plain = attention.Attention(E, 4, 2, 8, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(full, plain(x, pos), atol=1e-5)  # the same attention, summed in another order


def test_grouped_heads_and_bad_config():
    assert attention.Attention(E, 4, 1, 8, rngs=nnx.Rngs(0))(jnp.ones((1, 3, E)),
                                                             jnp.zeros((1, 3), int)).shape == (1, 3, E)
    with pytest.raises(ValueError, match="multiple of kv_heads"):
        attention.Attention(E, 4, 3, 8, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="even"):
        attention.Attention(E, 4, 2, 7, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("window,spread", [(None, 1), (5, 1), (5, 3)])
@pytest.mark.parametrize("key_chunk", [1, 2, 5])
def test_the_split_training_pass_equals_one_square_pass(x, window, spread, key_chunk):
    """The training pass takes its queries in runs, each over the keys it can see; the same as every query
    over every key, masked (values and gradients), for windows and splits that do not divide the sequence."""
    split = attention.Attention(E, heads=4, kv_heads=2, head_dim=8, rngs=nnx.Rngs(0), key_chunk=key_chunk)
    pos = _positions() * spread + 7  # strictly increasing, with gaps when spread > 1

    def square(x):
        return split.query(x, pos, [KVCache(*split.project_kv(x, pos), pos)], window=window)

    np.testing.assert_allclose(split(x, pos, window=window), square(x), atol=1e-5)
    grad = lambda f: jax.grad(lambda x: jnp.sum(jnp.sin(f(x))))(x)  # noqa: E731
    np.testing.assert_allclose(grad(lambda x: split(x, pos, window=window)), grad(square), atol=1e-5)


def test_accelerators_take_the_training_pass_in_one_run(x, monkeypatch):
    """Off XLA:CPU the training pass is one masked square (runs would only add kernels): same values."""
    layer = attention.Attention(E, heads=4, kv_heads=2, head_dim=8, rngs=nnx.Rngs(0))
    pos = _positions()
    runs = layer(x, pos, window=5)
    assert attention.query_splits() > 1
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert attention.query_splits() == 1
    lowered = jax.jit(lambda x: layer(x, pos, window=5)).lower(x).as_text()
    assert lowered.count("stablehlo.exponential") == 1
    np.testing.assert_allclose(layer(x, pos, window=5), runs, atol=1e-5)


def test_local_layers_see_only_their_window_and_global_layers_everything():
    """Two local layers with a window of 4: the output at position 15 reads positions 9..15 (4 back, twice)
    and nothing before, exactly; with the second layer global it reads every earlier position."""
    from interaction.models.transformer import DecoderSpec, make_decoder

    x = jax.random.normal(jax.random.key(2), (1, 16, E))
    pos = jnp.arange(16)[None]
    early, edge = x.at[:, :9].set(5.0), x.at[:, 9].set(5.0)

    def last(spec, inputs):
        return np.asarray(make_decoder(spec, rngs=nnx.Rngs(0))(inputs, pos)[0][:, 15])

    local = DecoderSpec(embed=E, layers=2, heads=4, kv_heads=2, head_dim=8, mlp=64, local_window=4)
    np.testing.assert_array_equal(last(local, early), last(local, x))
    assert not np.allclose(last(local, edge), last(local, x))
    mixed = DecoderSpec(embed=E, layers=2, heads=4, kv_heads=2, head_dim=8, mlp=64, local_window=4, global_every=2)
    assert not np.allclose(last(mixed, early), last(mixed, x))


def test_bad_local_attention_configs_are_refused():
    from interaction.models.transformer import DecoderSpec

    spec = dict(embed=E, layers=4, heads=4, kv_heads=2, head_dim=8, mlp=64)
    assert [DecoderSpec(**spec, local_window=8, global_every=2).window(i) for i in range(4)] == [8, None, 8, None]
    with pytest.raises(ValueError, match="needs a local_window"):
        DecoderSpec(**spec, global_every=2)
    with pytest.raises(ValueError, match="at least 2"):
        DecoderSpec(**spec, local_window=8, global_every=1)
    with pytest.raises(ValueError, match="at least 1"):
        DecoderSpec(**spec, local_window=0)
    with pytest.raises(ValueError, match="every layer alike"):
        DecoderSpec(**spec, local_window=8, global_every=2, scan_layers=True)
    assert DecoderSpec(**spec, local_window=8, scan_layers=True).window(3) == 8  # all local: alike
