"""The interaction model's training forward on real pipeline batches: shapes, causality, teacher
forcing, and that a few optimizer steps reduce both losses; for one position per frame and text slot and for
the configs' groups."""

import dataclasses

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from experiments.configs.model import GROUPS
from interaction.data import layout as layout_lib
from interaction.models import model as model_lib
from interaction.models import routing
from interaction.models.transformer import DecoderSpec, MoESpec

LAYOUT = layout_lib.MicroTurnLayout()


def _spec(layout):
    return model_lib.ModelSpec(decoder=DecoderSpec(embed=32, layers=2, heads=4, kv_heads=2, head_dim=8, mlp=64,
                                                   moe=MoESpec(num_experts=4, top_k=2, every=2)),
                               layout=layout, flow_hidden=32, flow_depth=1)


SPEC = _spec(LAYOUT)
SPECS = {"ungrouped": SPEC, "grouped": _spec(layout_lib.MicroTurnLayout(**GROUPS)),
         "grouped, depth reads before": dataclasses.replace(_spec(layout_lib.MicroTurnLayout(**GROUPS)),
                                                            depth_reads_before=True)}
WINDOW = 6  # the `batch` fixture's windows (conftest)


@pytest.fixture(scope="module")
def model():
    return model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module", params=list(SPECS))
def either(request):
    """The model in either layout."""
    return model_lib.InteractionModel(SPECS[request.param], rngs=nnx.Rngs(0))


def test_output_shapes(either, batch):
    lay = either.spec.layout
    logits, cond, _, aux = either(batch)
    assert logits.shape == (2, WINDOW, lay.text_out_slots, 272)
    assert cond.shape == (2, WINDOW, lay.audio_positions, 32)
    assert aux["expert_load"].shape == (4,)


def test_later_micro_turns_do_not_change_earlier_outputs(either, batch):
    model = either
    logits, cond, _, _ = model(batch)
    later = dict(batch)
    for name in ("user_audio", "user_pitch", "text_in", "text_out", "model_audio"):
        later[name] = batch[name].at[:, 3:].set(batch[name][:, ::-1][:, 3:])
    later["video"] = batch["video"].at[:, 3:].set(255)
    logits2, cond2, _, _ = model(later)
    np.testing.assert_allclose(logits2[:, :3], logits[:, :3], atol=1e-5)
    np.testing.assert_allclose(cond2[:, :3], cond[:, :3], atol=1e-5)
    assert not np.allclose(logits2[:, 3:], logits[:, 3:], atol=1e-5)


@pytest.mark.parametrize("hears", [False, True])
def test_the_pitch_is_heard_only_where_asked(hears, batch):
    """The same pitch, once falling and once rising through each micro-turn, is told apart with the layout's `pitch`
    only (its stem starts at zero, so it is given weights first)."""
    model = model_lib.InteractionModel(_spec(dataclasses.replace(LAYOUT, pitch=hears)), rngs=nnx.Rngs(0))
    if hears:
        model.pitch_stem.kernel.value = 0.1 * jax.random.normal(jax.random.key(1), model.pitch_stem.kernel.shape)
    octaves = np.linspace(-0.5, 0.5, LAYOUT.frames, dtype=np.float32)
    rising, falling = (np.broadcast_to(np.stack([np.ones_like(o), o, np.sign(o[-1]) * np.ones_like(o)], -1),
                                       batch["user_pitch"].shape) for o in (octaves, octaves[::-1]))
    logits, _, listen, _ = model(dict(batch, user_pitch=rising))
    logits2, _, listen2, _ = model(dict(batch, user_pitch=falling))
    assert np.allclose(listen2, listen, atol=1e-6) != hears
    assert np.allclose(logits2, logits, atol=1e-6) != hears


def test_an_output_slot_never_sees_its_own_target(either, batch):
    """Text slot s sees the tokens before it (through the depth head within its group, through the fed-back
    group embedding across groups) and not its own; an audio position sees the frames of the groups before it."""
    model, lay = either, either.spec.layout
    logits, cond, _, _ = model(batch)
    for s in (1, 3):  # with text_group 4: slot 2 sees slot 1 in the depth head, slot 4 sees slot 3's group
        text_out = batch["text_out"].at[:, 2, s].set((batch["text_out"][:, 2, s] + 50) % 272)
        logits2, _, _, _ = model(dict(batch, text_out=text_out))
        np.testing.assert_allclose(logits2[:, 2, : s + 1], logits[:, 2, : s + 1], atol=1e-5)  # up to slot s
        assert not np.allclose(logits2[:, 2, s + 1], logits[:, 2, s + 1], atol=1e-5)  # the next slot sees it
    q = 2 // lay.audio_group  # the position whose patch holds frame 2
    audio = batch["model_audio"].at[:, 2, 2].set(15 - batch["model_audio"][:, 2, 2])
    _, cond2, _, _ = model(dict(batch, model_audio=audio))
    np.testing.assert_allclose(cond2[:, 2, : q + 1], cond[:, 2, : q + 1], atol=1e-5)
    assert not np.allclose(cond2[:, 2, q + 1], cond[:, 2, q + 1], atol=1e-5)


@pytest.mark.parametrize("layout", list(SPECS))
def test_training_steps_reduce_both_losses(batch, layout):
    model = model_lib.InteractionModel(SPECS[layout], rngs=nnx.Rngs(1))
    graphdef, params = nnx.split(model)
    tx = optax.adam(3e-3)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, rng):
        def loss_fn(p):
            return model_lib.losses(nnx.merge(graphdef, p), batch, rng)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    history = []
    for i in range(40):
        params, opt_state, metrics = step(params, opt_state, jax.random.key(i))
        history.append({k: float(v) for k, v in metrics.items() if k != "expert_load"})
    first, last = history[0], np.mean([h["text_loss"] for h in history[-5:]])
    assert last < 0.5 * first["text_loss"], (first, history[-1])
    flow_last = np.mean([h["flow_loss"] for h in history[-5:]])
    assert flow_last < 0.8 * np.mean([h["flow_loss"] for h in history[:5]]), history[-1]
    assert all(np.isfinite(v) for h in history for v in h.values())


def _adam_steps(graphdef, params, batch, metric: str, steps: int):
    """`steps` Adam steps of the model's losses on one batch -> (parameters, the history of `metric`)."""
    tx = optax.adam(3e-3)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, rng):
        grad_fn = jax.value_and_grad(lambda p: model_lib.losses(nnx.merge(graphdef, p), batch, rng), has_aux=True)
        (_, metrics), grads = grad_fn(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics[metric]

    history = []
    for i in range(steps):
        params, opt_state, value = step(params, opt_state, jax.random.key(i))
        history.append(float(value))
    return params, history


def test_the_transcript_read_out_learns_the_users_words_and_costs_nothing_when_off(tiny_corpus):
    """With a transcript weight the user-audio slots learn to read out the user's words (the loss on their
    bytes falls well below its start); with weight 0 (the default) the loss is not computed and the batch
    needs no transcript."""
    import dataclasses

    from interaction.data import pipeline

    ds = pipeline.make_dataset(str(tiny_corpus / "train.array_record"), LAYOUT, window_turns=12, batch_size=2,
                               seed=0, decision_share=1.0)
    batch = {k: jax.numpy.asarray(v) for k, v in next(iter(ds)).items()}
    spec = dataclasses.replace(SPEC, transcript_weight=1.0, own_audio_share=0.0)
    graphdef, params = nnx.split(model_lib.InteractionModel(spec, rngs=nnx.Rngs(2)))
    def words_loss(params):  # cross-entropy on the slots that hold a byte of the user's words
        model = nnx.merge(graphdef, params)
        logits = model.transcript_logits(model.hidden(batch)[0])
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["user_text"])
        return float(ce[batch["user_text"] != 0].mean())

    assert (batch["user_text"] != 0).sum() >= 10
    before = words_loss(params)
    # at 30 steps some inits left the loss on the words just above half its start
    params, history = _adam_steps(graphdef, params, batch, "transcript_loss", 40)
    assert np.mean(history[-5:]) < 0.5 * history[0], history
    assert words_loss(params) < 0.5 * before, (before, words_loss(params))
    without = {k: v for k, v in batch.items() if k != "user_text"}
    _, metrics = model_lib.losses(model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(2)), without, jax.random.key(0))
    assert "transcript_loss" not in metrics


def test_text_alone_slots_see_the_bytes_before_them_and_not_their_own(either, batch):
    """Text alone reads out the rows as the stream does: slot s sees the slots before it (within its group in
    the depth head, across groups through the fed-back group) and not its own or later ones."""
    rows, at = batch["text_alone"], batch["time_index"]
    logits = either.text_alone_logits(rows, at)
    assert logits.shape == rows.shape + (272,)
    for s in (1, 3):
        changed = rows.at[:, 2, s].set((rows[:, 2, s] + 50) % 272)
        logits2 = either.text_alone_logits(changed, at)
        np.testing.assert_allclose(logits2[:, :2], logits[:, :2], atol=1e-5)
        np.testing.assert_allclose(logits2[:, 2, : s + 1], logits[:, 2, : s + 1], atol=1e-5)
        assert not np.allclose(logits2[:, 2, s + 1], logits[:, 2, s + 1], atol=1e-5)


def test_byte_loss_scores_bytes_among_bytes_where_the_reference_says_one():
    logits = np.full((1, 3, 272), -5.0, np.float32)
    logits[0, :, 0] = 20.0  # PAD likeliest everywhere: no matter, a byte slot is scored among the bytes
    logits[0, 0, 16 + 97] = 3.0
    labels = np.array([[16 + 97, 0, 16 + 98]])
    total, count = model_lib.byte_loss(jax.numpy.asarray(logits), jax.numpy.asarray(labels))
    assert float(count) == 2.0
    first = -(3.0 - np.log(np.exp(3.0) + 255 * np.exp(-5.0)))
    second = np.log(256.0)  # all bytes alike there
    np.testing.assert_allclose(float(total), first + second, rtol=1e-5)


def test_text_alone_learns_its_words_and_costs_nothing_when_off(batch):
    """With a text-alone weight the packed words' byte loss falls well below its start (from about ln 256);
    with weight 0 (the default) it is not computed."""
    spec = dataclasses.replace(SPEC, text_alone_weight=1.0, own_audio_share=0.0)
    graphdef, params = nnx.split(model_lib.InteractionModel(spec, rngs=nnx.Rngs(3)))
    _, history = _adam_steps(graphdef, params, batch, "text_alone_loss", 40)
    assert history[0] > 4.0 and np.mean(history[-5:]) < 0.5 * history[0], history
    _, metrics = model_lib.losses(model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(3)), batch, jax.random.key(0))
    assert "text_alone_loss" not in metrics


def test_the_onset_head_learns_where_words_begin_and_teaches_nothing_else(batch):
    """With `voice_reads_words` the onset head's loss (from ln 8, the frames of a micro-turn) falls on the batch
    it is trained on, and it teaches the onset head alone: nothing of the decoder or the voice's other MLPs. It
    reads the window's own text, not the babble fed back in its place, and learns where the speech is not trained
    too. Without `voice_reads_words` it is not computed."""
    spec = dataclasses.replace(SPEC, voice_reads_words=True, own_audio_share=0.0)
    graphdef, params = nnx.split(model_lib.InteractionModel(spec, rngs=nnx.Rngs(4)))
    onset = jax.grad(lambda p: model_lib.losses(nnx.merge(graphdef, p), batch, jax.random.key(0))[1]["onset_loss"])
    grads = nnx.State(onset(params))
    largest = lambda tree: max(float(np.abs(np.asarray(g)).max()) for g in jax.tree.leaves(tree))  # noqa: E731
    assert largest(grads["spoken"]["onset"]) > 0
    assert largest({k: v for k, v in grads.items() if k != "spoken"}) == 0 and largest(grads["spoken"]["said"]) == 0
    untrained = dict(batch, trained=jax.numpy.zeros_like(batch["trained"]))
    fresh = model_lib.losses(nnx.merge(graphdef, params), untrained, jax.random.key(0))[1]["onset_loss"]
    assert float(fresh) == pytest.approx(float(np.log(spec.layout.frames)), abs=1e-3)  # taught there too
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(4))
    down = model.spoken.onset.down.kernel
    down[...] = 0.05 * jax.random.normal(jax.random.key(1), down.shape)
    babbled = model_lib.InteractionModel(dataclasses.replace(spec, babble_text_share=1.0), rngs=nnx.Rngs(4))
    nnx.update(babbled, nnx.state(model))
    plain, fed_babble = (float(model_lib.losses(m, batch, jax.random.key(0))[1]["onset_loss"])
                         for m in (model, babbled))
    assert plain == pytest.approx(fed_babble) and abs(plain - float(fresh)) > 1e-3  # its own words, not the babble
    _, history = _adam_steps(graphdef, params, batch, "onset_loss", 40)
    assert history[0] > 1.5 and np.mean(history[-5:]) < 0.75 * history[0], history
    _, metrics = model_lib.losses(model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(4)), batch, jax.random.key(0))
    assert "onset_loss" not in metrics


def test_the_voice_prior_learns_the_patches_from_the_words_and_the_flow_starts_there(batch):
    """With `voice_prior` an MLP of the words draws each patch's mean: taught by its squared error alone (no
    gradient into the decoder, none from the flow), it falls on the batch it is trained on, and it learns where the
    speech is not trained too; the flow starts from it, so a fresh flow head (zero velocity) at temperature 0
    returns it exactly. It needs the words."""
    from interaction.models.flow_head import sample

    spec = dataclasses.replace(SPEC, voice_reads_words=True, voice_prior=True, own_audio_share=0.0)
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(5))
    mean = model.spoken.mean.down.kernel
    mean[...] = 0.05 * jax.random.normal(jax.random.key(1), mean.shape)
    _, cond, _, _ = model(batch)
    d = spec.decoder.embed
    assert cond.shape[-1] == d + spec.layout.audio_group * spec.layout.dmel.n_mels
    np.testing.assert_allclose(sample(model.flow, cond, jax.random.key(0), steps=4, temperature=0.0),
                               cond[..., d:], atol=1e-6)
    graphdef, params = nnx.split(model)
    prior = jax.grad(lambda p: model_lib.losses(nnx.merge(graphdef, p), batch, jax.random.key(0))[1]["prior_loss"])
    grads = nnx.State(prior(params))
    assert np.abs(np.asarray(grads["spoken"]["mean"]["pairs"]["embedding"][...])).max() > 0
    for part in (grads["decoder"], grads["spoken"]["said"]):
        assert max(float(np.abs(np.asarray(g)).max()) for g in jax.tree.leaves(part)) == 0
    untrained = dict(batch, trained=jax.numpy.zeros_like(batch["trained"]))
    taught = jax.grad(lambda p: model_lib.losses(nnx.merge(graphdef, p), untrained, jax.random.key(0))[1]
                      ["prior_loss"])(params)
    assert np.abs(np.asarray(nnx.State(taught)["spoken"]["mean"]["pairs"]["embedding"][...])).max() > 0
    flow = jax.grad(lambda p: model_lib.losses(nnx.merge(graphdef, p), batch, jax.random.key(0))[1]["flow_loss"])
    assert max(float(np.abs(np.asarray(g)).max()) for g in jax.tree.leaves(nnx.State(flow(params))["spoken"]
                                                                             ["mean"])) == 0
    _, history = _adam_steps(graphdef, params, batch, "prior_loss", 40)
    assert np.mean(history[-5:]) < 0.5 * history[0], history
    with pytest.raises(ValueError, match="voice_reads_words"):
        dataclasses.replace(SPEC, voice_prior=True)


def test_routing_statistics_read_the_choices_the_forward_makes(model, batch):
    stats = routing.statistics(model, batch)
    assert [s["layer"] for s in stats] == [1]  # every=2: the second of two layers is MoE
    _, _, _, aux = model(batch)
    assert bool(np.all(batch["valid"]))  # so the statistics cover the same tokens as the forward's load
    np.testing.assert_allclose(stats[0]["load"], aux["expert_load"], atol=1e-6)
    by_stream = stats[0]["by_stream"]
    np.testing.assert_allclose(by_stream.sum(1), 1.0, atol=1e-9)
    assert 1 / 2 <= stats[0]["top1_weight"] <= 1  # top-2: the first choice weighs at least half



def test_fed_back_audio_is_flattened_in_voiced_micro_turns_of_chosen_windows():
    rng = np.random.default_rng(0)
    tokens = jax.numpy.asarray(rng.integers(0, 16, (2, 3, 4, 5)).astype(np.int32))
    voiced = jax.numpy.asarray([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    flat = np.asarray(model_lib.flatten_fed_audio(tokens, voiced, 1.0, jax.random.key(0)))
    t = np.asarray(tokens)
    np.testing.assert_array_equal(flat[0, 1], t[0, 1])  # a silent micro-turn is kept
    np.testing.assert_array_equal(flat[0, 0], np.broadcast_to(np.round(t[0, 0].mean(0)), (4, 5)))
    assert (flat[:, :, 1:] == flat[:, :, :1]).all(axis=(2, 3))[voiced > 0].all()  # one frame repeated
    np.testing.assert_array_equal(model_lib.flatten_fed_audio(tokens, voiced, 0.0, jax.random.key(0)), t)


def test_fed_back_audio_is_one_flat_frame_at_a_level_drawn_per_chosen_window():
    rng = np.random.default_rng(0)
    tokens = jax.numpy.asarray(rng.integers(0, 16, (64, 3, 4, 5)).astype(np.int32))
    voiced = jax.numpy.asarray(np.tile([1.0, 0.0, 1.0], (64, 1)))
    level = np.asarray(model_lib.level_fed_audio(tokens, voiced, 0.5, 16, jax.random.key(0)))
    t = np.asarray(tokens)
    np.testing.assert_array_equal(level[:, 1], t[:, 1])  # a silent micro-turn is kept
    chosen = (level[:, [0, 2]] != t[:, [0, 2]]).any(axis=(1, 2, 3))
    assert 16 < chosen.sum() < 48  # about half the windows
    flat = level[chosen][:, [0, 2]]
    assert (flat == flat[:, :1, :1, :1]).all()  # one frame, one bin, through the window
    assert len(np.unique(flat[:, 0, 0, 0])) > 8 and flat.min() >= 0 and flat.max() < 16  # levels drawn per window
    np.testing.assert_array_equal(level[~chosen], t[~chosen])
    np.testing.assert_array_equal(model_lib.level_fed_audio(tokens, voiced, 0.0, 16, jax.random.key(0)), t)


def test_fed_back_bytes_are_babble_of_the_windows_own_bytes_in_voiced_rows_of_chosen_windows():
    from interaction.codecs import text

    rng = np.random.default_rng(0)
    tokens = rng.integers(text.NUM_SPECIAL, text.NUM_SPECIAL + 8, (64, 3, 8)) + 8 * np.arange(64)[:, None, None]
    tokens[..., 0] = text.Special.VOICED
    tokens[:, 1] = text.Special.PAD  # a silent row
    tokens[:, 0, 5:] = text.Special.PAD
    voiced = jax.numpy.asarray(np.tile([1.0, 0.0, 1.0], (64, 1)))
    fed, picked = model_lib.babble_fed_text(jax.numpy.asarray(tokens, np.int32), voiced, 0.5, jax.random.key(0))
    fed, picked = np.asarray(fed), np.asarray(picked)
    assert 16 < picked.sum() < 48  # about half the windows
    np.testing.assert_array_equal(fed[~picked], tokens[~picked])
    np.testing.assert_array_equal(fed[:, 1], tokens[:, 1])  # the silent row is kept
    np.testing.assert_array_equal(fed[..., 0], tokens[..., 0])  # so is the speaking state
    babble = fed[picked][:, [0, 2], 1:]
    assert (babble != tokens[picked][:, [0, 2], 1:]).any(axis=(1, 2)).all()
    for window, own in zip(babble, tokens[picked]):  # bytes of its own window, or PAD
        assert set(np.unique(window)) <= set(np.unique(own[:, 1:])) | {text.Special.PAD}
    density = (babble != text.Special.PAD).mean(axis=(1, 2))
    assert density.min() < 0.35 and density.max() > 0.65  # drawn per window
    kept, none = model_lib.babble_fed_text(jax.numpy.asarray(tokens, np.int32), voiced, 0.0, jax.random.key(0))
    np.testing.assert_array_equal(kept, tokens)
    assert not np.asarray(none).any()
    # An end mark is kept where it is and never drawn as babble.
    mark = int(tokens[0, 0, 3])
    at = tokens == mark
    marked, picked = model_lib.babble_fed_text(jax.numpy.asarray(tokens, np.int32), voiced, 1.0, jax.random.key(0),
                                               keep=mark)
    assert np.asarray(picked).all()
    np.testing.assert_array_equal(np.asarray(marked) == mark, at)


def test_babble_runs_read_the_windows_text_on_in_order_and_do_not_run_out():
    from interaction.codecs import text

    said = text.encode("Sure I will tell you ")
    tokens = np.full((16, 6, 9), text.Special.PAD, np.int32)
    tokens[:, :5, 0] = text.Special.VOICED
    for row, (a, b) in enumerate([(0, 5), (5, 12), (12, 17), (17, 21)]):  # the last voiced row has no byte
        tokens[:, row, 1:1 + b - a] = said[a:b]
    voiced = jax.numpy.asarray((tokens[..., 0] == text.Special.VOICED).astype(np.float32))
    fed, picked = model_lib.babble_fed_text(jax.numpy.asarray(tokens), voiced, 1.0, jax.random.key(5), runs=True)
    fed = np.asarray(fed)
    assert np.asarray(picked).all()
    np.testing.assert_array_equal(fed[:, 5], tokens[:, 5])  # the silent row is kept
    np.testing.assert_array_equal(fed[..., 0], tokens[..., 0])
    bytes_ = fed[:, :5, 1:] != text.Special.PAD
    assert (bytes_[..., 1:] <= bytes_[..., :-1]).all()  # a row's bytes come first
    assert bytes_[:, 4].any(axis=-1).mean() > 0.5  # the voiced row past the text's end has bytes too
    runs = [[int(t) for t in window[:5, 1:].ravel() if t != text.Special.PAD] for window in fed]
    looped = said * 4
    for run in runs:  # read in order from some byte, round and round
        assert any(looped[i:i + len(run)] == run for i in range(len(said)))
    assert len({tuple(run[:3]) for run in runs}) > 3  # from a byte drawn per window
    assert max(len(run) for run in runs) > len(said) // 2


def test_babbled_windows_train_the_speaking_state_not_their_bytes_or_frames(batch):
    import dataclasses

    import jax.numpy as jnp
    import optax

    from interaction.codecs import text

    spec = dataclasses.replace(SPEC, babble_text_share=1.0, own_audio_share=0.0)
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))
    rng = jax.random.key(3)
    _, metrics = model_lib.losses(model, batch, rng)
    state = (batch["text_out"][..., 0] == text.Special.VOICED).astype(jnp.float32)
    trained = batch["trained"].astype(jnp.float32)
    assert float((state * trained).sum()) > 0  # the windows have voiced rows to babble
    fed, _ = model_lib.babble_fed_text(batch["text_out"], state, 1.0, jax.random.fold_in(rng, 4))
    logits = model(dict(batch, text_out=fed))[0]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["text_out"])
    weights = model_lib.text_weights(spec, trained, state, ce.shape[-1], model_lib.holds(batch["listen"], state))
    weights = weights.at[..., 1:].multiply((1.0 - state)[..., None])  # a voiced row's bytes: untrained
    expected = jnp.sum(ce * weights) / (jnp.sum(trained) * ce.shape[-1])
    np.testing.assert_allclose(metrics["text_loss"], expected, rtol=1e-5)
    plain = model_lib.losses(model_lib.InteractionModel(dataclasses.replace(spec, babble_text_share=0.0),
                                                        rngs=nnx.Rngs(0)), batch, rng)[1]
    assert float(metrics["text_loss"]) < float(plain["text_loss"])  # fewer slots weigh in
    assert float(metrics["flow_loss"]) == 0.0 < float(plain["flow_loss"])  # no voiced frame is trained


def test_babble_ends_teach_where_the_words_end_not_which_byte(batch):
    import jax.numpy as jnp

    from interaction.codecs import text

    labels = jnp.asarray([[[text.Special.VOICED, 40, 41, text.Special.PAD]]])
    rows = jnp.ones((1, 1))
    # Logits sure of PAD or of some byte: only whether a slot holds a byte counts, not which one.
    byte, other, pad = (jnp.zeros(text.VOCAB_SIZE).at[i].set(20.0) for i in (40, 90, text.Special.PAD))
    right = jnp.stack([pad, byte, other, pad])[None, None]
    wrong = jnp.stack([pad, pad, pad, byte])[None, None]
    assert float(model_lib.words_end_loss(right, labels, rows)) < 1e-6
    assert float(model_lib.words_end_loss(wrong, labels, rows)) > 3 * 14.0  # each slot about 20 - log(271)
    assert float(model_lib.words_end_loss(wrong, labels, jnp.zeros((1, 1)))) == 0.0
    # In training it is a loss of its own, beside a text loss it leaves unchanged.
    spec = dataclasses.replace(SPEC, babble_text_share=1.0, babble_runs=True, babble_ends=True)
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))
    rng = jax.random.key(3)
    _, metrics = model_lib.losses(model, batch, rng)
    assert float(metrics["words_end_loss"]) > 0
    plain = model_lib.losses(model_lib.InteractionModel(dataclasses.replace(spec, babble_ends=False),
                                                        rngs=nnx.Rngs(0)), batch, rng)[1]
    assert "words_end_loss" not in plain and float(plain["text_loss"]) == float(metrics["text_loss"])
    with pytest.raises(ValueError, match="babble_ends=True acts on the babble windows"):
        dataclasses.replace(spec, babble_text_share=0.0, babble_runs=False)


def test_babble_voiced_windows_hear_their_babble_in_their_own_frames(batch):
    import jax.numpy as jnp

    from interaction.codecs import text

    spec = dataclasses.replace(SPEC, babble_text_share=1.0, own_audio_share=1e-9, babble_voiced=True)
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))
    state = (batch["text_out"][..., 0] == text.Special.VOICED).astype(jnp.float32)
    fed, _ = model_lib.babble_fed_text(batch["text_out"], state, 1.0, jax.random.key(1))
    babbled = dict(batch, text_out=fed)
    reference = np.asarray(batch["model_audio"])
    key = jax.random.key(0)
    # `also` takes its windows whatever the draw
    first = jnp.asarray([True, False])
    own = np.asarray(model_lib.own_fed_audio(model, babbled, state, 0.0, key, also=first))
    np.testing.assert_array_equal(own[1], reference[1])
    voiced = np.asarray(state[0]) > 0
    assert (own[0][voiced] != reference[0][voiced]).mean() > 0.5
    np.testing.assert_array_equal(own[0][~voiced], reference[0][~voiced])
    # in training, the babble windows' speaking state is learned from those frames
    rng = jax.random.key(3)
    heard = model_lib.losses(model, batch, rng)[1]["text_loss"]
    plain = model_lib.losses(model_lib.InteractionModel(dataclasses.replace(spec, babble_voiced=False),
                                                        rngs=nnx.Rngs(0)), batch, rng)[1]["text_loss"]
    assert float(heard) != float(plain)
    with pytest.raises(ValueError, match="babble_text_share > 0 and own_audio_share > 0"):
        dataclasses.replace(spec, own_audio_share=0.0)


def test_own_fed_audio_replaces_voiced_frames_with_the_flows_quantised_samples(model, batch):
    from interaction.codecs import dmel
    from interaction.models.flow_head import sample

    voiced = jax.numpy.asarray(np.arange(2 * WINDOW).reshape(2, WINDOW) % 3 > 0, np.float32)  # both kinds
    own = np.asarray(model_lib.own_fed_audio(model, batch, voiced, 1.0, jax.random.key(0)))
    reference = np.asarray(batch["model_audio"])
    silent = np.asarray(voiced) == 0
    np.testing.assert_array_equal(own[silent], reference[silent])
    _, cond, _, _ = model(batch)
    mel = sample(model.flow, cond, jax.random.key(0), steps=model_lib.OWN_AUDIO_FLOW_STEPS,
                 temperature=SPEC.audio_temperature)
    mel = np.clip(np.asarray(mel) * SPEC.mel_scale + SPEC.mel_center, LAYOUT.dmel.log_min, LAYOUT.dmel.log_max)
    np.testing.assert_array_equal(own[~silent], dmel.quantize(mel, LAYOUT.dmel)[~silent])
    with pytest.raises(ValueError, match="set one of them to 0"):
        model_lib.ModelSpec(decoder=SPEC.decoder, flat_audio_share=0.5)
    assert (own[~silent] != reference[~silent]).mean() > 0.5  # an untrained flow is not the reference
    kept = model_lib.own_fed_audio(model, batch, voiced, 0.0, jax.random.key(0))
    np.testing.assert_array_equal(kept, reference)
