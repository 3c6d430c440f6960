"""Intelligibility apart from turn-taking: the model voices the reference text (its own frames fed back),
speaks exactly where the reference does, and the scoring counts word edits against the words it was given."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from interaction.data import layout as layout_lib
from interaction.data import pipeline, records
from interaction.evals import intelligibility
from interaction.evals import words as wordlib
from interaction.models import flow_head
from interaction.models import model as model_lib
from interaction.models.transformer import DecoderSpec

LAYOUT = layout_lib.MicroTurnLayout()
SPEC = model_lib.ModelSpec(decoder=DecoderSpec(embed=32, layers=2, heads=2, kv_heads=1, head_dim=16, mlp=64),
                           layout=LAYOUT, flow_hidden=32, flow_depth=1)


class _Hears:
    """A recognizer that always hears the same words."""
    name = "fixed"

    def __init__(self, said: str):
        self.said = said

    def words(self, wave, sample_rate=16_000):
        return [(0.0, 0.1, w) for w in self.said.split()]


def test_the_model_voices_the_reference_text_where_the_reference_speaks(tiny_corpus):
    conv = next(c for c in records.read(tiny_corpus / "eval.array_record") if c.kind == "turn_taking")
    graphdef, params = nnx.split(model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(0)))
    feats = pipeline.conversation_features(conv, LAYOUT)
    m = len(feats["valid"])
    whole = {k: jnp.asarray(v) for k, v in pipeline.whole(feats, LAYOUT.dmel.log_min).items()}
    mel = np.asarray(intelligibility.voicer(graphdef)(params, whole, 0)[0])
    assert mel.shape == (len(whole["valid"]), LAYOUT.frames, LAYOUT.dmel.n_mels)
    voiced = feats["text_out"][:, 0] == 13
    assert voiced.any() and not voiced.all()
    np.testing.assert_array_equal(mel[:m][~voiced], LAYOUT.dmel.log_min)  # silent where the reference is
    assert (mel[:m][voiced] > LAYOUT.dmel.log_min).mean() > 0.5
    wave = intelligibility.wave_of(mel[:m], LAYOUT)
    assert len(wave) == m * LAYOUT.frames * LAYOUT.dmel.hop


def test_word_errors_are_counted_against_the_words_given(tiny_corpus):
    conv = next(c for c in records.read(tiny_corpus / "eval.array_record") if c.model_words)
    said = " ".join(w for _, _, w in conv.model_words)
    wave = np.zeros(16_000 * 60, np.float32)  # longer than the conversation: every word counts
    edits, words = intelligibility.errors(conv, wave, _Hears(said))
    assert edits == 0 and words == len(wordlib.normalize(said)) > 0
    edits, _ = intelligibility.errors(conv, wave, _Hears(said + " extra words"))
    assert edits == 2
    short = np.zeros(int(16_000 * (conv.model_words[0][0] - 0.3)), np.float32)  # played from 0.2 s: ends before
    assert intelligibility.errors(conv, short, _Hears(""))[1] == 0
    pooled = intelligibility.summarize([(1, 10), (3, 10)])
    assert pooled["value"] == 0.2 and pooled["words"] == 20 and pooled["ci"][0] <= 0.2 <= pooled["ci"][1]


def test_the_prior_alone_is_voiced_with_no_flow(tiny_corpus):
    """With `voice_prior`, `measure` also plays the patch means the flow starts from: no flow steps and no noise,
    so what the flow head would add changes the model's voicing and not the prior's; `data_onsets` dates its words
    by the data's onsets. Without them, `measure` says how many words its onset head dates to the data's frame."""
    spec = dataclasses.replace(SPEC, voice_reads_words=True, voice_prior=True)
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))
    mean = model.spoken.mean.down.kernel
    mean[...] = 0.05 * jax.random.normal(jax.random.key(1), mean.shape)
    graphdef, params = nnx.split(model)
    conv = next(c for c in records.read(tiny_corpus / "eval.array_record") if c.model_words)
    whole = {k: jnp.asarray(v) for k, v in pipeline.whole(pipeline.conversation_features(conv, LAYOUT),
                                                          LAYOUT.dmel.log_min).items()}
    voices = {n: intelligibility.voicer(graphdef, flow_steps=n, audio_temperature=0.0) for n in (0, 4)}
    before = {n: np.asarray(run(params, whole, 0)[0]) for n, run in voices.items()}
    moved = jax.tree.map(lambda x: x + 0.1 if x.ndim >= 2 else x, nnx.State(params)["flow"])
    params = nnx.State(params)
    params["flow"] = moved
    after = {n: np.asarray(run(params, whole, 0)[0]) for n, run in voices.items()}
    np.testing.assert_array_equal(after[0], before[0])
    assert not np.allclose(after[4], before[4])
    dated = intelligibility.voicer(graphdef, flow_steps=0, audio_temperature=0.0, data_onsets=True)
    assert not np.allclose(np.asarray(dated(params, whole, 0)[0]), after[0])  # the data's dates, not its onset head's
    said = " ".join(w for _, _, w in conv.model_words)
    result = intelligibility.measure(graphdef, params, [conv], LAYOUT, _Hears(said), prior_alone=True)
    assert result["prior"]["value"] == 0.0 and result["prior"]["words"] == result["model"]["words"] > 0
    truth = pipeline.conversation_features(conv, LAYOUT)["word_onset"]
    truth = truth[truth >= 0]  # a fresh onset head dates every word to the micro-turn's first frame
    assert result["onset_exact"]["words"] == truth.size
    assert result["onset_exact"]["value"] == pytest.approx(np.mean(truth == 0))
    assert result["onset_near"]["value"] == pytest.approx(np.mean(truth <= 1))
    dated = intelligibility.measure(graphdef, params, [conv], LAYOUT, _Hears(said), data_onsets=True)
    assert "onset_exact" not in dated


class _Loud:
    """A voice-activity stand-in: speech wherever a 20 ms frame's peak is above a tenth of full scale."""

    def segments(self, wave):
        frames = np.abs(np.asarray(wave)[: len(wave) // 320 * 320]).reshape(-1, 320).max(-1) > 0.1
        return [(i * 0.02, (i + 1) * 0.02) for i in np.flatnonzero(frames)]


def test_heard_as_speech_is_the_share_of_the_references_speech_the_voicing_covers():
    t = np.arange(16_000) / 16_000
    reference = np.where((t > 0.2) & (t < 0.6), 0.5, 0.0).astype(np.float32)  # 0.4 s of "speech"
    assert intelligibility.heard_as_speech(reference, reference, _Loud()) == (20.0, 20.0)
    half = np.where((t > 0.2) & (t < 0.4), 0.5, 0.0).astype(np.float32)
    hits, frames = intelligibility.heard_as_speech(half, reference, _Loud())
    assert frames == 20 and 9 <= hits <= 11
    elsewhere = np.where(t > 0.7, 0.5, 0.0).astype(np.float32)  # speech, but not where the reference speaks
    assert intelligibility.heard_as_speech(elsewhere, reference, _Loud())[0] == 0


def _trained_head(depends: bool, steps: int = 300):
    """A small flow head trained on 2-channel patches that are +1 or -1 everywhere: chosen by the one-hot
    conditioning (`depends`) or at random whatever it says."""
    rng = np.random.default_rng(0)
    which = rng.integers(0, 2, 512)
    conds = jnp.asarray(np.eye(2, dtype=np.float32)[which])
    sign = which if depends else rng.integers(0, 2, 512)
    targets = jnp.asarray(np.where(sign[:, None] == 1, 1.0, -1.0) * np.ones((1, 2), np.float32))
    head = flow_head.FlowHead(2, 2, 32, 1, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(head, optax.adam(3e-3), wrt=nnx.Param)

    @nnx.jit
    def step(head, optimizer, key):
        loss, grads = nnx.value_and_grad(lambda h: flow_head.flow_loss(h, targets, conds, key))(head)
        optimizer.update(head, grads)
        return loss

    for i in range(steps):
        step(head, optimizer, jax.random.key(i))
    return head, targets, conds, np.arange(512) % 8


def test_the_conditioning_gap_is_what_the_conditioning_tells_of_the_frames():
    head, targets, conds, groups = _trained_head(depends=True)
    told = intelligibility.conditioning_gap(head, targets, conds, groups)
    assert told["value"] > 0.3 and told["ci"][0] > 0.2 and told["other"] > told["own"]
    head, targets, conds, groups = _trained_head(depends=False)
    untold = intelligibility.conditioning_gap(head, targets, conds, groups)
    assert abs(untold["value"]) < 0.1 and told["value"] > 3 * abs(untold["value"])
    assert told["patches"] == 512 and told["n"] == 8


def test_the_draws_spread_is_measured_about_the_flows_draw_at_zero():
    """Untrained (zero velocity), the flow's draws are its starting noise: they spread temperature^2 * noise^2
    about its draw at 0 (the origin) whatever the data. Trained where the conditioning fixes the patch, its draws
    spread little and lie near the data."""
    rng = np.random.default_rng(0)
    targets, conds = rng.normal(size=(2000, 2)) + 3.0, rng.normal(size=(2000, 2))
    head = flow_head.FlowHead(2, 2, 8, 1, rngs=nnx.Rngs(0), noise=0.5)
    fig = intelligibility.draw_spread(head, targets, conds, temperature=0.8)
    np.testing.assert_allclose(fig["draws"], (0.8 * 0.5) ** 2, rtol=0.05)
    np.testing.assert_allclose(fig["data"], np.square(targets).mean(), rtol=1e-5)
    head, targets, conds, _ = _trained_head(depends=True)
    fig = intelligibility.draw_spread(head, targets, conds, temperature=1.0)
    assert fig["draws"] < 0.1 and fig["error"] < 0.1 and fig["data"] < 0.1, fig


def test_the_linear_readout_scores_on_conversations_it_was_not_fit_on():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 6))
    groups = np.arange(400) // 20
    readable = features @ rng.normal(size=(6, 3)) + 0.1 * rng.normal(size=(400, 3))
    assert intelligibility.linear_readout(features, readable, groups) > 0.95
    assert intelligibility.linear_readout(features, rng.normal(size=(400, 3)), groups) < 0.05
    # Memorised, not read: a target that is each conversation's own offset is not readable in another one.
    offsets = rng.normal(size=(20, 3))[groups]
    assert intelligibility.linear_readout(np.eye(20)[groups], offsets, groups) < 0.05
    with pytest.raises(ValueError, match="at least two"):
        intelligibility.linear_readout(features, readable, np.zeros(400, int))


def test_a_word_table_voices_back_the_frames_it_was_fit_on(tiny_corpus):
    """`word_table`'s means are the frames of each (word, frames into it) pair; `table_voice` plays them inside the
    words and silence outside; its noise scales the frames' spread about their means."""
    conv = next(c for c in records.read(tiny_corpus / "eval.array_record") if len(c.model_words) > 3)
    reference = pipeline.conversation_features(conv, LAYOUT)["model_mel"].reshape(-1, LAYOUT.dmel.n_mels)
    keys = intelligibility.word_frames(conv, len(reference), LAYOUT.dmel.frame_rate)
    inside = np.array([k is not None for k in keys])
    assert inside.any() and not inside.all()
    firsts = [i for i, k in enumerate(keys) if k is not None and k[1] == 0]
    start = conv.model_words[0][0]
    assert abs(firsts[0] - (start - 0.2) * LAYOUT.dmel.frame_rate) < 1  # counted from micro-turn 1
    table = intelligibility.word_table([conv], LAYOUT)
    voiced = intelligibility.table_voice(conv, table, LAYOUT).reshape(reference.shape)
    np.testing.assert_array_equal(voiced[~inside], LAYOUT.dmel.log_min)
    once = np.array([k is not None and sum(k == j for j in keys) == 1 for k in keys])
    assert once.sum() > 10
    np.testing.assert_allclose(voiced[once], reference[once], atol=1e-5)
    assert table[1].mean() > 0.1  # repeated pairs (and the word before a pause) spread
    spread_free = (table[0], np.zeros_like(table[1]))
    np.testing.assert_array_equal(intelligibility.table_voice(conv, spread_free, LAYOUT, noise=1.0),
                                  intelligibility.table_voice(conv, table, LAYOUT))
    noisy = intelligibility.table_voice(conv, table, LAYOUT, base="reference", noise=1.0).reshape(reference.shape)
    assert not np.allclose(noisy[inside], reference[inside])
    with pytest.raises(ValueError, match="no model words"):
        intelligibility.word_table([], LAYOUT)


def test_the_patch_mean_mlp_fitted_alone_learns_the_words_patches(tiny_corpus):
    """`fit_prior` fits the model's patch-mean MLP alone on the voiced patches whose word is known
    (`known_patches`): it explains most of their variance; `prior_voice` plays its means where the text stream is
    voiced and silence elsewhere."""
    spec = dataclasses.replace(SPEC, voice_reads_words=True, voice_prior=True)
    convs = [c for c in records.read(tiny_corpus / "train.array_record") if c.model_words][:6]
    known = intelligibility.known_patches(convs, spec)
    prior = intelligibility.fit_prior(known, spec, steps=300, batch=64)
    assert intelligibility.prior_explains(prior, known) > 0.5
    assert intelligibility.prior_explains(intelligibility.fit_prior(known, spec, steps=1), known) < 0.1
    mel = intelligibility.prior_voice(convs[0], prior, spec)
    voiced = intelligibility.word_patches(convs[0], spec)[2]
    assert mel.shape == (len(voiced), LAYOUT.frames, LAYOUT.dmel.n_mels)
    np.testing.assert_array_equal(mel[~voiced], LAYOUT.dmel.log_min)
    assert (mel[voiced] > LAYOUT.dmel.log_min).mean() > 0.5
    with pytest.raises(ValueError, match="no voiced model words"):
        intelligibility.known_patches([], spec)
