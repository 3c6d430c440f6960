"""The streaming step: equals the training forward, traces once, fixed state, resets, long sessions."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from interaction.data import layout as layout_lib
from interaction.data import pipeline
from interaction.models import model as model_lib
from interaction.models import streaming
from interaction.models.transformer import DecoderSpec, MoESpec

LAYOUT = layout_lib.MicroTurnLayout()
SPEC = model_lib.ModelSpec(
    decoder=DecoderSpec(embed=32, layers=2, heads=4, kv_heads=2, head_dim=8, mlp=64,
                        moe=MoESpec(num_experts=4, top_k=2, every=2)),
    layout=LAYOUT, flow_hidden=32, flow_depth=1,
)
INPUTS = ("user_audio", "video", "video_new", "text_in")
TEACHER = ("text_out", "model_audio")


@pytest.fixture(scope="module")
def batch(tiny_corpus):
    ds = pipeline.make_dataset(str(tiny_corpus / "train.array_record"), LAYOUT, window_turns=6, batch_size=2, seed=0)
    return {k: jnp.asarray(v) for k, v in next(iter(ds)).items()}


@pytest.fixture(scope="module")
def model():
    return model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(0))


def _turn(batch, t, names):
    return {k: batch[k][:, t] for k in names}


def test_streaming_equals_the_training_forward(model, batch):
    logits, cond, _ = model(batch)
    state = streaming.init_state(model, 2, capacity_turns=8, start_time=batch["time_index"][:, 0])
    inputs = {k: batch[k] for k in INPUTS}
    teacher = {k: batch[k] for k in TEACHER}
    _, out = jax.jit(lambda s, i, t: streaming.run_session(model, s, i, jax.random.key(0), teacher=t))(state, inputs, teacher)
    np.testing.assert_allclose(out["text_logits"], logits, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(out["audio_cond"], cond, atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(out["text_tokens"], batch["text_out"])


def test_one_trace_fixed_state_and_sessions_longer_than_the_cache(model, batch):
    graphdef, params = nnx.split(model)

    @functools.partial(jax.jit, donate_argnums=1)  # the state is updated in place
    @chex.assert_max_traces(n=1)
    def step(params, state, inputs, rng):
        return streaming.step(nnx.merge(graphdef, params), state, inputs, rng, flow_steps=2)

    state = streaming.init_state(model, 2, capacity_turns=4)
    shapes = jax.tree.map(lambda x: (x.shape, x.dtype), state)  # read before the first step donates it
    for t in range(1000):  # 250 times the cache capacity
        state, out = step(params, state, _turn(batch, t % 6, INPUTS), jax.random.key(t))
    assert jax.tree.map(lambda x: (x.shape, x.dtype), state) == shapes
    assert int(state.time[0]) == 1000
    assert np.isfinite(np.asarray(out["text_logits"])).all()
    assert (np.asarray(out["mel"]) >= -7.0).all() and (np.asarray(out["mel"]) <= 2.0).all()  # the dMel range
    assert (np.asarray(out["audio_tokens"]) >= 0).all() and (np.asarray(out["audio_tokens"]) < 16).all()
    # The cache holds exactly the last `capacity` positions.
    pos = np.asarray(state.caches[0].pos[0])
    top = 1000 * LAYOUT.block_len
    assert sorted(pos.tolist()) == list(range(top - len(pos), top))


def test_reset_starts_one_session_and_leaves_the_other(model, batch):
    teach = lambda t: _turn(batch, t, TEACHER)  # noqa: E731
    run = jax.jit(lambda s, t: streaming.step(model, s, _turn(batch, t, INPUTS), jax.random.key(7), teacher=teach(t)),
                  static_argnums=1)
    state = streaming.init_state(model, 2, capacity_turns=8)
    for t in range(3):
        state, _ = run(state, t)
    _, continued = run(state, 3)
    restarted_state = streaming.reset(state, jnp.array([True, False]))
    _, restarted = run(restarted_state, 3)
    _, fresh = run(streaming.init_state(model, 2, capacity_turns=8), 3)
    np.testing.assert_allclose(restarted["text_logits"][0], fresh["text_logits"][0], atol=1e-5)
    np.testing.assert_allclose(restarted["text_logits"][1], continued["text_logits"][1], atol=1e-5)
    assert not np.allclose(restarted["text_logits"][0], continued["text_logits"][0], atol=1e-5)


def test_free_running_outputs_are_valid_and_greedy_is_deterministic(model, batch):
    state = streaming.init_state(model, 2, capacity_turns=8)
    inputs = _turn(batch, 0, INPUTS)
    _, a = streaming.step(model, state, inputs, jax.random.key(1), temperature=0.0)
    _, b = streaming.step(model, state, inputs, jax.random.key(2), temperature=0.0)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert a["text_tokens"].shape == (2, LAYOUT.text_out_slots) and a["mel"].shape == (2, LAYOUT.frames, 80)
    assert (np.asarray(a["text_tokens"]) < 272).all()
    np.testing.assert_array_equal(a["audio_tokens"], np.clip(np.floor((np.asarray(a["mel"]) + 7) / (9 / 16)), 0, 15))
