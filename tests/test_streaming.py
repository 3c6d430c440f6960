"""The streaming step: equals the training forward, traces once, fixed state, resets, long sessions.

The model here has a local layer (a window of 2 micro-turns, shorter than the 6-turn training windows,
so the window binds) under a global one: every test covers both kinds of cache. The tests that compare
streaming with the training forward run for both layouts (`model`): one position per frame and text slot, and
the configs' groups (`experiments/configs/model.py`); the others run for the configs' groups (`grouped`)."""
import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments.configs.model import GROUPS
from interaction.codecs import text
from interaction.data import layout as layout_lib
from interaction.data import listening
from interaction.models import model as model_lib
from interaction.models import streaming
from interaction.models.transformer import DecoderSpec, MoESpec

LAYOUTS = {"ungrouped": layout_lib.MicroTurnLayout(), "grouped": layout_lib.MicroTurnLayout(**GROUPS)}
INPUTS = streaming.INPUTS
TEACHER = ("text_out", "model_audio")


def _spec(lay):
    return model_lib.ModelSpec(
        decoder=DecoderSpec(embed=32, layers=2, heads=4, kv_heads=2, head_dim=8, mlp=64,
                            moe=MoESpec(num_experts=4, top_k=2, every=2),
                            local_window=2 * lay.block_len, global_every=2),
        layout=lay, flow_hidden=32, flow_depth=1)


@pytest.fixture(scope="module", params=list(LAYOUTS))
def spec(request):
    return _spec(LAYOUTS[request.param])


@pytest.fixture(scope="module")
def model(spec):
    """The model in either layout."""
    return model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def grouped():
    """The model in the configs' layout."""
    return model_lib.InteractionModel(_spec(LAYOUTS["grouped"]), rngs=nnx.Rngs(0))


def _turn(batch, t, names):
    return {k: batch[k][:, t] for k in names}


def _streams_as_it_trains(model, batch, seen=None, teacher=TEACHER):
    """Teacher-forced streaming of `batch` (its inputs, or those of `seen`) equals the training forward; -> the
    session's last state and its outputs."""
    seen = batch if seen is None else seen
    logits, cond, _, _ = model(seen)
    state = streaming.init_state(model, 2, capacity_turns=8, start_time=batch["time_index"][:, 0])
    state, out = jax.jit(lambda s, i, t: streaming.run_session(model, s, i, jax.random.key(0), teacher=t))(
        state, {k: seen[k] for k in INPUTS}, {k: batch[k] for k in teacher})
    np.testing.assert_allclose(out["text_logits"], logits, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(out["audio_cond"], cond, atol=1e-4, rtol=1e-4)
    return state, out


def test_streaming_equals_the_training_forward(model, batch):
    _, out = _streams_as_it_trains(model, batch)
    np.testing.assert_array_equal(out["text_tokens"], batch["text_out"])


def test_a_camera_that_starts_late_and_skips_frames_is_seen_as_in_training(grouped, batch):
    """Each new frame's change is measured against the last new frame before it: within the training window,
    and in streaming through the state, which also starts a session with no frame before its first."""
    b, t = batch["video_new"].shape
    new = np.array([[False, True, False, True, True, False], [True, False, False, True, False, True]])[:, :t]
    frames = np.random.default_rng(0).integers(0, 256, batch["video"].shape, dtype=np.uint8)
    latest = np.maximum.accumulate(np.where(new, np.arange(t), -1), axis=1)  # the latest new frame's block
    held = frames[np.arange(b)[:, None], np.maximum(latest, 0)] * (latest >= 0)[..., None, None, None, None]
    seen = dict(batch, video=jnp.asarray(held.astype(np.uint8)), video_new=jnp.asarray(new))
    state, _ = _streams_as_it_trains(grouped, batch, seen)
    np.testing.assert_array_equal(state.last_frame, held[:, -1])
    assert np.asarray(state.saw_frame).all()
    # The change is seen: the same latest frames, each new frame compared with itself, read differently.
    still = grouped.seen(seen["video"], seen["video"], seen["video_new"])
    moving = grouped.seen(seen["video"], jnp.roll(seen["video"], 1, axis=1), seen["video_new"])
    assert not np.allclose(still[new], moving[new], atol=1e-3)
    np.testing.assert_array_equal(moving[~new], 0.0)  # no new frame: nothing seen


def test_a_local_layer_keeps_its_window_and_the_window_binds(spec, model, batch):
    block = spec.layout.block_len
    state = streaming.init_state(model, 2, capacity_turns=8)
    assert [c.capacity for c in state.caches] == [2 * block, 8 * block]  # local, global
    assert state.caches[0].k.shape == (2, 2, 8, 2 * block)
    unwindowed = dataclasses.replace(spec, decoder=dataclasses.replace(spec.decoder, local_window=None,
                                                                        global_every=None))
    wide = model_lib.InteractionModel(unwindowed, rngs=nnx.Rngs(0))  # the same parameters, every layer global
    logits, _, _, _ = model(batch)
    wide_logits, _, _, _ = wide(batch)
    np.testing.assert_array_equal(logits[:, :2], wide_logits[:, :2])  # within the window: the same
    assert not np.allclose(logits[:, 3:], wide_logits[:, 3:], atol=1e-4)  # beyond it: not
    with pytest.raises(ValueError, match="whole number"):
        bad = dataclasses.replace(spec, decoder=dataclasses.replace(spec.decoder, local_window=2 * block + 1))
        streaming.init_state(model_lib.InteractionModel(bad, rngs=nnx.Rngs(0)), 1, capacity_turns=4)


def test_one_trace_fixed_state_and_sessions_longer_than_the_cache(grouped, batch):
    graphdef, params = nnx.split(grouped)
    chex.clear_trace_counter()  # count this test's traces only

    @functools.partial(jax.jit, donate_argnums=1)  # the state is updated in place
    @chex.assert_max_traces(n=1)
    def step(params, state, inputs, rng):
        return streaming.step(nnx.merge(graphdef, params), state, inputs, rng, flow_steps=2)

    state = streaming.init_state(grouped, 2, capacity_turns=4)
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
    top = 1000 * grouped.spec.layout.block_len
    assert sorted(pos.tolist()) == list(range(top - len(pos), top))


def test_reset_starts_one_session_and_leaves_the_other(grouped, batch):
    teach = lambda t: _turn(batch, t, TEACHER)  # noqa: E731
    run = jax.jit(lambda s, t: streaming.step(grouped, s, _turn(batch, t, INPUTS), jax.random.key(7), teacher=teach(t)),
                  static_argnums=1)
    state = streaming.init_state(grouped, 2, capacity_turns=8)
    for t in range(3):
        state, _ = run(state, t)
    _, continued = run(state, 3)
    restarted_state = streaming.reset(state, jnp.array([True, False]))
    _, restarted = run(restarted_state, 3)
    _, fresh = run(streaming.init_state(grouped, 2, capacity_turns=8), 3)
    np.testing.assert_allclose(restarted["text_logits"][0], fresh["text_logits"][0], atol=1e-5)
    np.testing.assert_allclose(restarted["text_logits"][1], continued["text_logits"][1], atol=1e-5)
    assert not np.allclose(restarted["text_logits"][0], continued["text_logits"][0], atol=1e-5)


def test_free_running_outputs_are_valid_and_greedy_is_deterministic(grouped, batch):
    state = streaming.init_state(grouped, 2, capacity_turns=8)
    inputs = _turn(batch, 0, INPUTS)
    _, a = streaming.step(grouped, state, inputs, jax.random.key(1), temperature=0.0)
    _, b = streaming.step(grouped, state, inputs, jax.random.key(2), temperature=0.0)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    lay = grouped.spec.layout
    assert a["text_tokens"].shape == (2, lay.text_out_slots) and a["mel"].shape == (2, lay.frames, 80)
    assert (np.asarray(a["text_tokens"]) < 272).all()
    np.testing.assert_array_equal(a["audio_tokens"], np.clip(np.floor((np.asarray(a["mel"]) + 7) / (9 / 16)), 0, 15))


def test_the_speaking_state_gates_text_and_audio(grouped, batch):
    """The first slot decides: silent means all-PAD text and exact silence, played and fed back; speaking
    means bytes (never the state token) and the flow head's frames. The chance is VOICED against PAD there."""
    state = streaming.init_state(grouped, 2, capacity_turns=8)
    inputs = _turn(batch, 0, INPUTS)
    silent_state, silent = streaming.step(grouped, state, inputs, jax.random.key(1), temperature=1.0,
                                          speak_threshold=1.0)
    assert not np.asarray(silent["voiced"]).any()
    assert (np.asarray(silent["text_tokens"]) == text.Special.PAD).all()
    log_min = grouped.spec.layout.dmel.log_min
    assert (np.asarray(silent["mel"]) == log_min).all() and not np.asarray(silent["audio_tokens"]).any()
    assert not np.asarray(silent_state.last_audio).any() and (np.asarray(silent_state.last_text) == 0).all()
    _, spoken = streaming.step(grouped, state, inputs, jax.random.key(1), temperature=1.0, speak_threshold=0.0)
    tokens = np.asarray(spoken["text_tokens"])
    assert np.asarray(spoken["voiced"]).all() and (tokens[:, 0] == text.Special.VOICED).all()
    assert (tokens[:, 1:] != text.Special.VOICED).all()
    assert (np.asarray(spoken["mel"]) > log_min).any()
    first = np.asarray(spoken["text_logits"])[:, 0]
    expected = 1 / (1 + np.exp(first[:, text.Special.PAD] - first[:, text.Special.VOICED]))
    np.testing.assert_allclose(spoken["speak"], expected, rtol=1e-5)
    assert spoken["listen"].shape == (2, len(listening.NAMES))
    logits, _, listen, _ = grouped(batch)  # the listening heads read the first text slot, as in training
    np.testing.assert_allclose(spoken["listen"], jax.nn.sigmoid(listen[:, 0]), atol=1e-5)
    np.testing.assert_allclose(first, logits[:, 0, 0], atol=1e-4)


def test_keeping_the_floor_takes_its_own_threshold(grouped, batch):
    """Silent, the model starts when its chance of speaking passes speak_threshold; speaking, it goes on
    while that chance passes keep_threshold. The state remembers which bar applies, and a reset forgets it."""
    state = streaming.init_state(grouped, 2, capacity_turns=8)
    inputs = _turn(batch, 0, INPUTS)
    _, probe = streaming.step(grouped, state, inputs, jax.random.key(1), temperature=0.0)
    p = np.asarray(probe["speak"])
    above, below = float(p.min()) - 1e-3, float(p.max()) + 1e-3  # every chance passes one, none the other
    silent_state, silent = streaming.step(grouped, state, inputs, jax.random.key(1), temperature=0.0,
                                          speak_threshold=below, keep_threshold=above)
    assert not np.asarray(silent["voiced"]).any() and not np.asarray(silent_state.speaking).any()
    spoken_state, spoken = streaming.step(grouped, state, inputs, jax.random.key(1), temperature=0.0,
                                          speak_threshold=above)
    assert np.asarray(spoken["voiced"]).all() and np.asarray(spoken_state.speaking).all()
    # Speaking already (nothing else changed, so the chance is the same): it now meets keep_threshold.
    speaking = state.replace(speaking=jnp.ones(2, bool))
    _, kept = streaming.step(grouped, speaking, inputs, jax.random.key(1), temperature=0.0,
                             speak_threshold=below, keep_threshold=above)
    assert np.asarray(kept["voiced"]).all()
    _, dropped = streaming.step(grouped, speaking, inputs, jax.random.key(1), temperature=0.0,
                                speak_threshold=above, keep_threshold=below)
    assert not np.asarray(dropped["voiced"]).any()
    restarted = streaming.reset(speaking, jnp.array([True, False]))
    np.testing.assert_array_equal(restarted.speaking, [False, True])


def test_a_byte_comes_while_its_chance_of_not_pad_passes_byte_threshold(grouped, batch):
    """Speaking, a byte slot emits a byte when its chance of not PAD (VOICED aside) is above byte_threshold,
    and once it has not, the rest of the row is PAD."""
    state = streaming.init_state(grouped, 2, capacity_turns=8)
    inputs = _turn(batch, 0, INPUTS)
    run = lambda **kw: streaming.step(grouped, state, inputs, jax.random.key(1), temperature=0.0,  # noqa: E731
                                      speak_threshold=0.0, **kw)[1]
    logits = np.asarray(run(byte_threshold=0.0)["text_logits"], np.float64)[:, 1]  # slot 1 follows VOICED
    logits[:, text.Special.VOICED] = -np.inf
    p = np.exp(logits - logits.max(-1, keepdims=True))
    byte = 1.0 - p[:, text.Special.PAD] / p.sum(-1)
    opened = np.asarray(run(byte_threshold=float(byte.min()) - 1e-4)["text_tokens"])
    closed = np.asarray(run(byte_threshold=float(byte.max()) + 1e-4)["text_tokens"])
    assert (opened[:, 1] != text.Special.PAD).all()
    assert (closed[:, 0] == text.Special.VOICED).all() and (closed[:, 1:] == text.Special.PAD).all()
    np.testing.assert_array_equal(run()["text_tokens"], run(byte_threshold=streaming.BYTE_THRESHOLD)["text_tokens"])


def test_the_step_draws_its_frames_at_the_specs_audio_temperature(grouped, batch):
    """By default the frames come at the temperature the model's own frames were trained with."""
    state = streaming.init_state(grouped, 2, capacity_turns=8)
    inputs = _turn(batch, 0, INPUTS)
    run = lambda **kw: np.asarray(streaming.step(grouped, state, inputs, jax.random.key(1), temperature=0.0,  # noqa: E731
                                                 speak_threshold=0.0, **kw)[1]["mel"])
    np.testing.assert_array_equal(run(), run(audio_temperature=grouped.spec.audio_temperature))
    assert not np.allclose(run(), run(audio_temperature=grouped.spec.audio_temperature + 0.8))


# ---------------------------------------------------------------- deterministic mode

def _deterministic(spec):
    return dataclasses.replace(spec, decoder=dataclasses.replace(
        spec.decoder, deterministic=True, moe=MoESpec(num_experts=4, top_k=2, every=2, impl="dense")))


@pytest.fixture(scope="module")
def det_model(spec):
    return model_lib.InteractionModel(_deterministic(spec), rngs=nnx.Rngs(0))


def test_deterministic_streaming_equals_the_training_forward_bit_for_bit(det_model, batch):
    """Teacher-forced streaming against the full-window forward: exact, with the window starting mid-session
    (so the cache is a rotated ring of 8 micro-turns, partly empty) and not at position 0."""
    graphdef, params = nnx.split(det_model)  # parameters as arguments: constants would be folded at compile time
    logits, cond, _, _ = jax.jit(lambda p, b: nnx.merge(graphdef, p)(b))(params, batch)
    assert int(batch["time_index"][0, 0]) % 8 != 0 or int(batch["time_index"][1, 0]) % 8 != 0
    state = streaming.init_state(det_model, 2, capacity_turns=8, start_time=batch["time_index"][:, 0])
    inputs, teacher = {k: batch[k] for k in INPUTS}, {k: batch[k] for k in TEACHER}
    _, out = jax.jit(lambda p, s, i, t: streaming.run_session(nnx.merge(graphdef, p), s, i, jax.random.key(0),
                                                              teacher=t))(params, state, inputs, teacher)
    np.testing.assert_array_equal(out["text_logits"], logits)
    np.testing.assert_array_equal(out["audio_cond"], cond)


def test_deterministic_sessions_sample_the_same_alone_and_in_any_slot_of_a_batch(det_model, batch):
    """Eight sessions of different inputs, each with its own key, sampled at temperature 1: every one gives the
    same text, logits and audio, bit for bit, as the same session run alone."""
    graphdef, params = nnx.split(det_model)
    run = jax.jit(lambda p, s, i, k: streaming.run_session(nnx.merge(graphdef, p), s, i, k, flow_steps=2,
                                                           speak_threshold=0.0, keep_threshold=0.0))  # speaking
    rows = np.arange(8) % 2  # the corpus batch has 2 windows; sessions differ in inputs and keys
    shifts = np.arange(8) // 2  # and in where their window starts
    inputs = {k: jnp.stack([jnp.roll(batch[k][r], int(sh), axis=0) for r, sh in zip(rows, shifts)]) for k in INPUTS}
    keys = jax.random.split(jax.random.key(3), 8)
    _, together = run(params, streaming.init_state(det_model, 8, capacity_turns=4), inputs, keys)
    for slot in (0, 5, 7):
        alone_inputs = {k: v[slot:slot + 1] for k, v in inputs.items()}
        _, alone = run(params, streaming.init_state(det_model, 1, capacity_turns=4), alone_inputs, keys[slot:slot + 1])
        for name in ("text_tokens", "text_logits", "mel", "audio_tokens"):
            np.testing.assert_array_equal(alone[name][0], together[name][slot], err_msg=f"slot {slot}: {name}")
    assert len({np.asarray(together["text_tokens"][i]).tobytes() for i in range(8)}) > 1  # they did differ


def test_deterministic_mode_is_the_same_model_and_trains(grouped, batch):
    """Same parameters, same function up to summation order; its gradients (through the tile loops) are finite."""
    det_model = model_lib.InteractionModel(_deterministic(grouped.spec), rngs=nnx.Rngs(0))
    for a, b in zip(grouped(batch)[:2], det_model(batch)[:2]):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)
    graphdef, params = nnx.split(det_model)
    loss, grads = jax.jit(jax.value_and_grad(
        lambda p: model_lib.losses(nnx.merge(graphdef, p), batch, jax.random.key(0))[0]))(params)
    assert np.isfinite(float(loss)) and all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    assert any(float(np.abs(np.asarray(g)).max()) > 0 for g in jax.tree.leaves(grads))


def test_a_depth_head_reading_the_group_before_streams_as_it_trains(batch):
    """With `depth_reads_before` each text position's depth head also reads the group the position was fed (the
    last one of the micro-turn before, for its first): streamed teacher-forced, it equals the training forward."""
    spec = dataclasses.replace(_spec(LAYOUTS["grouped"]), depth_reads_before=True)
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))
    _streams_as_it_trains(model, batch)
    head, d = model.text_depth, spec.decoder.embed
    h, tokens = jnp.zeros((1, d)), jax.random.normal(jax.random.key(1), (1, 4, d))
    a, b = (head.slot(h, tokens, 0, previous) for previous in jax.random.normal(jax.random.key(2), (2, 1, 4, d)))
    assert not np.allclose(a, b, atol=1e-5)  # even its first slot hears the group before, not only the decoder
    with pytest.raises(ValueError, match="previous"):
        head.slot(h, tokens, 0)


@pytest.mark.parametrize("option", ["turn_stem", "pitch"])
def test_a_stem_hears_a_micro_turn_whole_and_streams_as_it_trains(option, batch):
    """With `turn_stem` (the dMel bins) or the layout's `pitch` (the pitch numbers), every user-audio position of a
    micro-turn hears all of its frames (its first position the last frame too), and nothing of another
    micro-turn; teacher-forced streaming still equals the training forward."""
    spec = dataclasses.replace(_spec(dataclasses.replace(LAYOUTS["grouped"], pitch=option == "pitch")),
                               turn_stem=option == "turn_stem")
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))
    stem = model.turn_stem if option == "turn_stem" else model.pitch_stem
    stem.kernel.value = 0.02 * jax.random.normal(jax.random.key(1), stem.kernel.shape)  # it starts at zero
    tokens, pitches = batch["user_audio"], batch["user_pitch"]
    if option == "turn_stem":
        moved = (tokens.at[:, 2, -1].set(jnp.minimum(tokens[:, 2, -1] + 5, spec.layout.dmel.n_bins - 1)), pitches)
    else:
        moved = (tokens, pitches.at[:, 2, -1].set(jnp.array([1.0, 0.5, 1.0])))
    before, after = np.asarray(model.heard(tokens, pitches)), np.asarray(model.heard(*moved))
    assert not np.allclose(before[:, 2, 0], after[:, 2, 0])  # the micro-turn's first position hears its last frame
    np.testing.assert_array_equal(np.delete(before, 2, axis=1), np.delete(after, 2, axis=1))
    _streams_as_it_trains(model, batch)


@pytest.mark.parametrize("prior", [False, True], ids=["words", "words+prior"])
def test_a_voice_reading_the_words_said_streams_as_it_trains(batch, prior):
    """With `voice_reads_words` the flow head's conditioning adds the words of the text stream and the frames they
    begin in (`spoken_words`), and with `voice_prior` the patch's mean the flow starts from: streamed
    teacher-forced, the tracker's carry and the conditioning equal the training forward's, and the words move the
    conditioning. Free-running, the onset head dates its words from the words before them, as in training."""
    from interaction.models import spoken_words

    spec = dataclasses.replace(_spec(LAYOUTS["grouped"]), voice_reads_words=True, voice_prior=prior)
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))
    _, silent_cond, _, _ = model(batch)  # its output layers start at zero
    layers = (model.spoken.said.down, model.spoken.onset.down) + ((model.spoken.mean.down,) if prior else ())
    for layer in layers:
        layer.kernel[...] = 0.05 * jax.random.normal(jax.random.key(1), layer.kernel.shape)
    state, out = _streams_as_it_trains(model, batch, teacher=TEACHER + ("word_onset",))
    frames = spec.layout.frames
    carries = spoken_words.track(batch["text_out"], batch["word_onset"], batch["time_index"], frames)[0]
    assert int(carries[..., 2].max()) > 0  # the windows complete words
    np.testing.assert_array_equal(state.words, carries[:, -1])
    np.testing.assert_array_equal(out["word_onset"], batch["word_onset"])
    _, cond, _, _ = model(batch)
    assert not np.allclose(cond, silent_cond, atol=1e-4)

    state = streaming.init_state(model, 2, capacity_turns=8, start_time=batch["time_index"][:, 0])
    state, out = jax.jit(lambda s, i: streaming.run_session(model, s, i, jax.random.key(0), temperature=1.0,
                                                            speak_threshold=0.0, keep_threshold=0.0,
                                                            byte_threshold=0.0))(state, {k: batch[k] for k in INPUTS})
    begun = out["word_onset"][..., 1:]
    assert int(begun.min()) >= 0 and int(begun.max()) < frames and (out["word_onset"][..., 0] == -1).all()
    mine, before = spoken_words.track(out["text_tokens"], out["word_onset"], batch["time_index"], frames)
    assert int(mine[..., 0].max()) > 0  # it is saying a word of its own
    np.testing.assert_array_equal(state.words, mine[:, -1])
    dates = jnp.argmax(model.spoken.onset_logits(before, batch["time_index"][..., None]), -1)
    np.testing.assert_array_equal(out["word_onset"][..., 1:], dates[..., 1:])  # as the training forward dates them
    # Given the text alone (how its voice is heard apart from its turn-taking), it dates the given words.
    state = streaming.init_state(model, 2, capacity_turns=8, start_time=batch["time_index"][:, 0])
    state, out = jax.jit(lambda s, i: streaming.run_session(model, s, i, jax.random.key(0),
                                                            teacher={"text_out": batch["text_out"]}))(
        state, {k: batch[k] for k in INPUTS})
    _, before = spoken_words.track(batch["text_out"], out["word_onset"], batch["time_index"], frames)
    dates = jnp.argmax(model.spoken.onset_logits(before, batch["time_index"][..., None]), -1)
    first_bytes = np.asarray(batch["word_onset"] >= 0)
    assert len(np.unique(np.asarray(dates)[first_bytes])) > 1
    np.testing.assert_array_equal(np.asarray(out["word_onset"])[first_bytes], np.asarray(dates)[first_bytes])
