"""What training at scale switches on: layers under a scan, rematerialisation and grouped capacity
dispatch. Each is the same model as the plain one, checked against it."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from interaction.data import layout as layout_lib
from interaction.models import model as model_lib
from interaction.models import moe, streaming
from interaction.models.transformer import DecoderSpec, MoESpec

LAYOUT = layout_lib.MicroTurnLayout()
DECODER = DecoderSpec(embed=32, layers=2, heads=4, kv_heads=2, head_dim=8, mlp=64,
                      moe=MoESpec(num_experts=4, top_k=2, every=1))
SPEC = model_lib.ModelSpec(decoder=DECODER, layout=LAYOUT, flow_hidden=32, flow_depth=1)
SCANNED = dataclasses.replace(SPEC, decoder=dataclasses.replace(DECODER, scan_layers=True))


@pytest.fixture(scope="module")
def pair():
    """A scanned model and a plain one holding the same parameters, layer for layer."""
    scanned = model_lib.InteractionModel(SCANNED, rngs=nnx.Rngs(0))
    plain = model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(0))
    stacked = nnx.state(scanned.decoder.stack, nnx.Param)
    for i, block in enumerate(plain.decoder.blocks):
        nnx.update(block, jax.tree.map(lambda a: a[i], stacked))  # noqa: B023 - mapped at once
    for name in ("audio", "video", "text", "streams", "flow"):
        nnx.update(getattr(plain, name), nnx.state(getattr(scanned, name)))
    plain.text_head[...] = scanned.text_head[...]
    nnx.update(plain.decoder.final_norm, nnx.state(scanned.decoder.final_norm))
    return scanned, plain


def test_scanned_layers_are_the_same_model(pair, batch):
    scanned, plain = pair
    logits, cond, _, aux = scanned(batch)
    logits_p, cond_p, _, aux_p = plain(batch)
    np.testing.assert_allclose(logits, logits_p, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(cond, cond_p, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(aux["expert_load"], aux_p["expert_load"], atol=1e-6)
    assert model_lib.parameter_counts(scanned) == model_lib.parameter_counts(plain)
    spec = nnx.get_partition_spec(nnx.state(scanned.decoder.stack, nnx.Param))
    assert tuple(spec["attn"]["q"].get_value()) == ("layers", "embed", "heads", "kv")


def test_scanned_streaming_equals_its_training_forward(pair, batch):
    scanned, _ = pair
    logits, cond, _, _ = scanned(batch)
    state = streaming.init_state(scanned, 2, capacity_turns=8, start_time=batch["time_index"][:, 0])
    inputs = {k: batch[k] for k in streaming.INPUTS}
    teacher = {k: batch[k] for k in ("text_out", "model_audio")}
    _, out = jax.jit(lambda s, i, t: streaming.run_session(scanned, s, i, jax.random.key(0), teacher=t))(
        state, inputs, teacher)
    np.testing.assert_allclose(out["text_logits"], logits, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(out["audio_cond"], cond, atol=1e-4, rtol=1e-4)
    (cache,) = state.caches  # one cache for all layers
    assert cache.k.shape[0] == SCANNED.decoder.layers


def test_scanned_streaming_resets_one_session(pair, batch):
    scanned, plain = pair
    inputs = {k: batch[k][:, 0] for k in streaming.INPUTS}
    outs = []
    for model in (scanned, plain):
        state = streaming.init_state(model, 2, capacity_turns=4)
        state, _ = streaming.step(model, state, inputs, jax.random.key(0), temperature=0.0)
        state = streaming.reset(state, jnp.array([True, False]))
        outs.append(streaming.step(model, state, inputs, jax.random.key(0), temperature=0.0)[1])
    np.testing.assert_allclose(outs[0]["text_logits"], outs[1]["text_logits"], atol=1e-4, rtol=1e-4)
    fresh = streaming.step(plain, streaming.init_state(plain, 2, capacity_turns=4), inputs, jax.random.key(0),
                           temperature=0.0)[1]
    np.testing.assert_allclose(outs[1]["text_logits"][0], fresh["text_logits"][0], atol=1e-5)  # slot 0 starts anew
    assert not np.allclose(outs[1]["text_logits"][1], fresh["text_logits"][1], atol=1e-4)  # slot 1 goes on


def test_remat_changes_memory_not_gradients(batch):
    remat = dataclasses.replace(SCANNED, decoder=dataclasses.replace(SCANNED.decoder, remat=True))
    grads = []
    for spec in (SCANNED, remat):
        graphdef, params = nnx.split(model_lib.InteractionModel(spec, rngs=nnx.Rngs(0)))
        loss = lambda p: model_lib.losses(nnx.merge(graphdef, p), batch, jax.random.key(1))[0]  # noqa: E731, B023
        grads.append(jax.jit(jax.grad(loss))(params))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4), *grads)
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads[0]))


def test_mixed_dense_and_moe_layers_cannot_be_scanned():
    with pytest.raises(ValueError, match="every layer alike"):
        dataclasses.replace(DECODER, moe=MoESpec(num_experts=4, top_k=2, every=2), scan_layers=True)


def test_capacity_groups_by_row_each_have_their_own_slots():
    layer = moe.MoE(16, 32, 4, 2, dispatch="capacity", capacity_factor=0.5, capacity_groups="row", rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (4, 8, 16))
    y, aux = layer(x)
    capacity = layer.capacity(8)
    np.testing.assert_allclose(y, moe.moe_reference(layer, x, capacity=capacity, group=8), atol=1e-5, rtol=1e-5)
    assert not np.allclose(y, moe.moe_reference(layer, x, capacity=capacity), atol=1e-4)  # one group differs
    assert 0 < float(aux["dropped_fraction"]) < 1
    with pytest.raises(ValueError, match="capacity_groups='window' must be one of"):
        moe.MoE(16, 32, 4, 2, dispatch="capacity", capacity_groups="window", rngs=nnx.Rngs(0))
