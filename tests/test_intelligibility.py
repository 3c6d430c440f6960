"""Intelligibility apart from turn-taking: the model voices the reference text (its own frames fed back),
speaks exactly where the reference does, and the scoring counts word edits against the words it was given."""

import jax.numpy as jnp
import numpy as np
from flax import nnx

from interaction.data import layout as layout_lib
from interaction.data import pipeline, records
from interaction.evals import intelligibility
from interaction.evals import words as wordlib
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
    mel = np.asarray(intelligibility.voicer(graphdef)(params, whole, 0))
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
