"""Encoder-free embedders: dMel bag of embeddings, hMLP patch stem, tables; pure use through split/merge."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from interaction.models import embedders

ALLOWED_AXES = {None, "batch", "time", "embed", "mlp", "heads", "kv", "vocab", "expert", "layers"}


def test_dmel_token_is_the_sum_of_its_channel_rows():
    emb = embedders.DMelEmbed(80, 16, 24, rngs=nnx.Rngs(0))
    tokens = np.random.default_rng(0).integers(0, 16, (3, 80))
    table = np.asarray(emb.table[...])
    expected = np.stack([sum(table[c * 16 + t[c]] for c in range(80)) for t in tokens])
    np.testing.assert_allclose(emb(jnp.asarray(tokens)), expected, rtol=1e-5, atol=1e-5)
    # The same bin in two channels is two different rows.
    a, b = np.zeros(80, int), np.zeros(80, int)
    a[0], b[1] = 5, 5
    assert not np.allclose(emb(jnp.asarray(a)), emb(jnp.asarray(b)))
    with pytest.raises(ValueError, match="80 channel tokens"):
        emb(jnp.zeros((2, 79), jnp.int32))


def test_hmlp_tokens_depend_only_on_their_own_patch():
    stem = embedders.HMLPStem(32, rngs=nnx.Rngs(0))
    patches = jnp.asarray(np.random.default_rng(1).integers(0, 256, (2, 4, 40, 40, 3)), jnp.uint8)
    out = stem(patches)
    assert out.shape == (2, 4, 32)
    changed = patches.at[0, 2].set(0)
    out2 = stem(changed)
    np.testing.assert_array_equal(np.delete(np.asarray(out2[0]), 2, axis=0), np.delete(np.asarray(out[0]), 2, axis=0))
    assert not np.allclose(out2[0, 2], out[0, 2])
    np.testing.assert_array_equal(out2[1], out[1])
    # Every pixel of a patch reaches its token (the 5x5 -> 2x2 -> 2x2 -> 2x2 hierarchy covers 40x40).
    grad = jax.grad(lambda p: stem(p).sum())(patches[0, 0].astype(jnp.float32))
    assert (np.abs(np.asarray(grad)).sum(axis=-1) > 0).all()
    with pytest.raises(ValueError, match="patches"):
        stem(jnp.zeros((1, 32, 32, 3), jnp.uint8))
    with pytest.raises(ValueError, match="divisible by 4"):
        embedders.HMLPStem(30, rngs=nnx.Rngs(0))
    narrow = embedders.HMLPStem(32, rngs=nnx.Rngs(0), signed=True, width=16)  # merges 16 wide, then a map to 32
    signed = jnp.asarray(patches, jnp.int16) - 128
    assert narrow(signed).shape == (2, 4, 32) and narrow.out is not None
    count = lambda m: sum(x.size for x in jax.tree.leaves(nnx.state(m, nnx.Param)))  # noqa: E731
    assert count(narrow) < count(embedders.HMLPStem(32, rngs=nnx.Rngs(0), signed=True))


def test_split_merge_jit_equals_eager_and_axes_are_logical():
    stem = embedders.HMLPStem(16, rngs=nnx.Rngs(2))
    graphdef, state = nnx.split(stem)
    patches = jnp.asarray(np.random.default_rng(3).integers(0, 256, (3, 40, 40, 3)), jnp.uint8)

    @jax.jit
    def apply(state, patches):
        return nnx.merge(graphdef, state)(patches)

    np.testing.assert_allclose(apply(state, patches), stem(patches), rtol=1e-6, atol=1e-6)
    for module in (stem, embedders.DMelEmbed(80, 16, 8, rngs=nnx.Rngs(0)),
                   embedders.embedding_table(272, 8, rngs=nnx.Rngs(0))):
        params = nnx.state(module, nnx.Param)
        specs = jax.tree.leaves(nnx.get_partition_spec(params),
                                is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
        values = jax.tree.leaves(params)
        assert len(specs) == len(values) > 0
        for spec, value in zip(specs, values):  # every axis of every parameter is named
            assert len(spec) == value.ndim and set(spec) <= ALLOWED_AXES, (spec, value.shape)


def test_a_group_is_its_items_mapped_and_laid_side_by_side():
    """Each item of a group gets its share of the position's vector, in order: swapping two items of a group
    moves their shares, and a group sees nothing of the next one."""
    emb = embedders.GroupEmbed(4, 32, rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 32)), jnp.float32)
    out = np.asarray(emb(x))
    assert out.shape == (2, 2, 32)
    np.testing.assert_allclose(out[:, 0, 8:16], np.asarray(emb.proj(x[:, 1])), rtol=1e-5, atol=1e-6)
    swapped = np.asarray(emb(x[:, [1, 0, 2, 3, 4, 5, 6, 7]]))
    np.testing.assert_allclose(swapped[:, 0, :8], out[:, 0, 8:16], rtol=1e-5, atol=1e-6)
    assert not np.allclose(swapped[:, 0], out[:, 0]) and np.array_equal(swapped[:, 1], out[:, 1])
    with pytest.raises(ValueError, match="divisible"):
        embedders.GroupEmbed(3, 32, rngs=nnx.Rngs(0))


def test_the_change_stem_trains_on_no_change_and_hears_a_flicker_as_small():
    """Most of a frame's change is zero. Its stem's norms have a floor, so there its gradients stay of the order
    of a changed patch's (through norms without one they were about 1e10 and clipping then stalled every other
    weight), and a one-level flicker moves its embedding less than a shape appearing."""
    stem = embedders.HMLPStem(32, rngs=nnx.Rngs(0), signed=True)
    graphdef, params = nnx.split(stem, nnx.Param)
    shape = jnp.zeros((1, 40, 40, 3), jnp.int16).at[:, 10:30, 10:30].set(200)

    upstream = jax.random.normal(jax.random.key(1), (1, 32))  # what the decoder sends back, whatever the change

    def grad_norm(change):
        grads = jax.grad(lambda p: (nnx.merge(graphdef, p)(change) * upstream).sum())(params)
        return float(jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads))))

    still, moved = grad_norm(jnp.zeros_like(shape)), grad_norm(shape)
    assert np.isfinite(still) and still < 10 * moved, (still, moved)
    base = stem(jnp.zeros_like(shape))
    flicker = float(jnp.abs(stem(jnp.ones_like(shape)) - base).sum())
    assert flicker < float(jnp.abs(stem(shape) - base).sum())
