"""Codec round trips and refusals of bad audio."""
import multiprocessing

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from interaction.codecs import dmel, pitch, text, video, vocoder
from interaction.data import speech

RATES = [40, 80]


@pytest.fixture(scope="module")
def spoken():
    utt = speech.synthesize("The quick brown fox jumps over the lazy dog.", speech.Voice("en-us", "f3"))
    wave = np.pad(utt.audio * 0.5, (800, 800))
    return wave[: len(wave) // 400 * 400]


@pytest.mark.parametrize("sentence", ["Of course, I am watching.", "Well, there are a few things to think about.",
                                      "Not really, most of it you probably have at home already."])
def test_synthesized_words_hold_every_word_said(sentence):
    """espeak gives some short words no event of their own; they must still be in the words, in order, one word
    to an item, each timed inside the span of the word it is spoken with."""
    utt = speech.synthesize(sentence, speech.Voice("en-us", "f3"))
    assert [w for *_, w in utt.words] == sentence.replace(",", "").replace(".", "").split()
    assert all(b0 <= a1 for (_, b0, _), (a1, _, _) in zip(utt.words, utt.words[1:]))
    assert all(a < b <= utt.duration + 1e-6 for a, b, _ in utt.words)


@pytest.mark.parametrize("rate", RATES)
def test_quantisation_error_at_most_half_a_bin_in_range(rate, spoken):
    cfg = dmel.DMelConfig(frame_rate=rate)
    logmel = np.asarray(dmel.log_mel(spoken, cfg))
    back = dmel.dequantize(dmel.quantize(logmel, cfg), cfg)
    inside = (logmel > cfg.log_min) & (logmel < cfg.log_max)
    assert inside.mean() > 0.3  # the test speech really exercises the range
    assert np.abs(back - logmel)[inside].max() <= cfg.bin_width / 2 + 1e-5
    assert dmel.quantize(back, cfg).tolist() == dmel.quantize(logmel, cfg).tolist()


@pytest.mark.parametrize("rate", RATES)
def test_frames_are_causal_and_counted_by_hop(rate, spoken):
    cfg = dmel.DMelConfig(frame_rate=rate)
    full = np.asarray(dmel.log_mel(spoken, cfg))
    assert full.shape == (len(spoken) // cfg.hop, cfg.n_mels)
    assert cfg.frames_per_microturn == rate // 5
    # Changing audio after frame k's end leaves frames 0..k unchanged.
    k = full.shape[0] // 2
    altered = spoken.copy()
    altered[(k + 1) * cfg.hop :] = 0.3
    np.testing.assert_array_equal(np.asarray(dmel.log_mel(altered, cfg))[: k + 1], full[: k + 1])
    # Chunked encoding with history equals encoding the whole (what streaming relies on).
    cut = 8 * cfg.hop
    chunked = np.concatenate([
        dmel.log_mel(spoken[:cut], cfg),
        dmel.log_mel(spoken[cut:], cfg, history=spoken[cut - cfg.history : cut]),
    ])
    np.testing.assert_allclose(chunked, full, atol=1e-5)


@pytest.mark.parametrize("rate", RATES)
def test_pitch_of_tones_silence_and_noise(rate):
    cfg = dmel.DMelConfig(frame_rate=rate)
    t = np.arange(16000) / 16000
    for f0 in (90.0, 150.0, 240.0, 400.0):
        buzz = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8)).astype(np.float32) * 0.1  # harmonics
        heard = pitch.features(buzz, cfg)[cfg.n_fft // cfg.hop :]  # frames whose window is all tone
        assert np.all(heard[:, 0] == 1)
        assert np.all(np.abs(heard[:, 1] - np.log2(f0 / pitch.REFERENCE)) < 1 / 24)  # half a semitone: no octave errors
        assert np.all(np.abs(heard[:, 2]) < 0.1)  # a steady tone does not move
    assert not pitch.features(np.zeros(16000, np.float32), cfg).any()  # unvoiced: all zero
    noise = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    assert pitch.features(noise, cfg)[:, 0].mean() < 0.05


def test_pitch_change_is_the_move_since_a_span_before():
    cfg = dmel.DMelConfig(frame_rate=40)  # a span of 4 frames
    semitone_up = 150 * 2 ** (1 / 12)
    f0 = np.array([0, 150, 150, 150, 150, semitone_up, 150, 0, 150], np.float32)
    got = pitch.features_of(f0, cfg, before=np.array([0, 0, 0, 75], np.float32))
    assert got[:, 0].tolist() == [0, 1, 1, 1, 1, 1, 1, 0, 1]
    np.testing.assert_allclose(got[:, 1], np.where(f0 > 0, np.log2(np.maximum(f0, 1) / 150), 0), atol=1e-6)
    # each against the frame four before (the last four of `before`, then the frames): 150 against 75 is an octave
    # up, clipped to 2; a semitone up is 6 / 12; unvoiced then or now tells no change
    np.testing.assert_allclose(got[:, 2], [0, 0, 0, 2, 0, 0.5, 0, 0, 0], atol=1e-5)
    with pytest.raises(ValueError, match="frequencies before"):
        pitch.features_of(f0, cfg, before=np.zeros(5))


@pytest.mark.parametrize("rate", RATES)
def test_pitch_streams_like_the_dmel_frames(rate, spoken):
    cfg = dmel.DMelConfig(frame_rate=rate)
    whole = pitch.features(spoken, cfg)
    assert whole.shape == (len(spoken) // cfg.hop, pitch.FEATURES) and whole[:, 0].mean() > 0.3  # mostly voiced
    cut = 20
    first_f0 = pitch.frequencies(spoken[: cut * cfg.hop], cfg)
    rest = pitch.features(spoken[cut * cfg.hop :], cfg, history=spoken[cut * cfg.hop - cfg.history : cut * cfg.hop],
                          before=first_f0[-pitch.span(cfg) :])
    np.testing.assert_allclose(np.concatenate([pitch.features_of(first_f0, cfg), rest]), whole, atol=1e-5)


def test_pitch_hears_a_sentence_go_on_or_end():
    """The cue a pause is told from a turn's end by: said with a trailing comma a phrase ends rising, said to
    its full stop it falls (espeak's prosody, as in the corpus)."""
    cfg = dmel.DMelConfig()

    def final_slope(phrase: str) -> float:
        # Each phrase in a fresh process, as the corpus speaks: espeak carries state (its pitch flutter) from one
        # utterance to the next, so what ran before in this process would change the contour.
        with multiprocessing.get_context("forkserver").Pool(1, maxtasksperchild=1) as pool:
            wave = pool.apply(speech.synthesize, (phrase, speech.Voice("en-us", "m3"))).audio
        heard = pitch.features(wave[: len(wave) // cfg.hop * cfg.hop], cfg)
        voiced = 12 * heard[heard[:, 0] > 0, 1][-8:]  # the last 0.2 s voiced, in semitones
        return float(np.polyfit(np.arange(voiced.size), voiced, 1)[0])

    for phrase in ("so I went down to the store", "and then we looked at the new house"):
        assert final_slope(phrase + ",") > 0.05 > -0.05 > final_slope(phrase + ".")


def test_jax_encode_matches_numpy_and_is_batched(spoken):
    cfg = dmel.DMelConfig(frame_rate=40)
    batch = np.stack([spoken, spoken[::-1].copy()])
    expect = dmel.tokens_from_wave(batch, cfg)
    got = jax.jit(dmel.tokens_from_wave, static_argnums=1)(jnp.asarray(batch), cfg)
    assert got.shape == (2, len(spoken) // cfg.hop, 80)
    # float32 FFTs differ in the last bits; a token may move only where a value sits on a bin edge.
    assert np.mean(np.asarray(got) == expect) > 0.999
    np.testing.assert_array_equal(dmel.encode(batch, 16000, cfg), got)


@pytest.mark.parametrize(
    "wave, rate, message",
    [
        (np.zeros(16000, np.float32), 44100, "sample rate 44100"),
        (np.zeros(0, np.float32), 16000, "empty"),
        (np.array([0.1, np.nan, 0.2] * 400, np.float32), 16000, "NaN"),
        (np.full(16000, 1.0, np.float32), 16000, "clipped"),
        (np.linspace(-3000, 3000, 16000).astype(np.float32), 16000, "outside \\[-1, 1\\]"),
        (np.zeros(16000, np.float32), 16000, "encodes to nothing"),
        (np.full(16000, 1e-7, np.float32), 16000, "encodes to nothing"),
    ],
)
def test_bad_audio_is_refused_with_the_reason(wave, rate, message):
    with pytest.raises(ValueError, match=message):
        dmel.encode(wave, rate)


def test_int16_pcm_is_accepted(spoken):
    pcm = np.round(spoken * 32767).astype(np.int16)
    assert np.mean(dmel.encode(pcm, 16000) == dmel.encode(spoken, 16000)) > 0.99


def test_bad_codec_configs_are_refused():
    with pytest.raises(ValueError, match="whole number of frames"):
        dmel.DMelConfig(frame_rate=64)
    with pytest.raises(ValueError, match="shorter than the hop"):
        dmel.DMelConfig(frame_rate=10, n_fft=512)


@pytest.mark.parametrize("rate", RATES)
def test_vocoder_offline_and_streaming_reconstruct_speech(rate, spoken):
    from pystoi import stoi

    cfg = dmel.DMelConfig(frame_rate=rate)
    logmel = dmel.dequantize(dmel.quantize(dmel.log_mel(spoken, cfg), cfg), cfg)
    offline = vocoder.decode(logmel, cfg)
    assert offline.shape == spoken.shape  # aligned sample for sample, no delay
    assert stoi(spoken, offline, 16000) > 0.75
    cut = len(spoken) // 2 // cfg.hop * cfg.hop  # a piece that ends mid-speech ends without a click
    assert np.abs(vocoder.decode(logmel[: cut // cfg.hop], cfg)).max() < 2 * np.abs(spoken[:cut]).max()
    stream = vocoder.StreamingGriffinLim(cfg)
    f = cfg.frames_per_microturn
    pieces = [stream.push(logmel[i : i + f]) for i in range(0, len(logmel), f)]
    assert all(len(p) == len(c) * cfg.hop for p, c in zip(pieces, np.split(logmel, range(f, len(logmel), f))))
    live = np.concatenate(pieces)
    d = cfg.history  # the stated added latency, in samples
    assert stream.added_latency_s == pytest.approx(d / 16000)
    assert stoi(spoken[: len(spoken) - d], live[d:], 16000) > 0.75
    with pytest.raises(ValueError, match="log-mel"):
        stream.push(np.zeros((0, 80)))


def test_text_round_trip_and_specials():
    s = "¿Qué hora es? 17*23 = 391"
    ids = text.encode(s)
    assert min(ids) >= text.NUM_SPECIAL and max(ids) < text.VOCAB_SIZE
    assert text.decode(ids) == s
    wrapped = text.wrap(text.Special.DELEGATE, "capital of Peru", text.Special.DELEGATE_END)
    assert wrapped[0] == text.Special.DELEGATE and wrapped[-1] == text.Special.DELEGATE_END
    assert text.decode([0, 0] + wrapped + [0]) == "<delegate>capital of Peru<delegate_end>"
    assert text.decode(wrapped, markup=False) == "capital of Peru"
    assert text.decode([int(text.Special.SURFACE)]) == "<surface>"
    with pytest.raises(ValueError):
        text.decode([15])  # reserved


def test_video_patches_round_trip_in_numpy_and_jax():
    frames = np.random.default_rng(0).integers(0, 256, (3, 80, 120, 3), dtype=np.uint8)
    patches = video.patchify(frames)
    assert patches.shape == (3, 6, 40, 40, 3)
    np.testing.assert_array_equal(patches[1, 4], frames[1, 40:80, 40:80])  # row-major patch grid
    np.testing.assert_array_equal(video.unpatchify(patches, 80, 120), frames)
    np.testing.assert_array_equal(np.asarray(video.patchify(jnp.asarray(frames))), patches)
    with pytest.raises(ValueError, match="multiple"):
        video.patchify(np.zeros((50, 80, 3)))


def test_live_vocoder_renders_many_streams_each_as_alone():
    """A row's stream never depends on the others' (bit for bit), and it is the stream rendered alone (to
    rounding: one call's arithmetic is laid out by batch size)."""
    cfg = dmel.DMelConfig()
    rng = np.random.default_rng(0)
    pieces = rng.uniform(-5, 0, (4, 3, cfg.frames_per_microturn, cfg.n_mels)).astype(np.float32)
    others = pieces.copy()
    others[:, [0, 2]] = rng.uniform(-5, 0, others[:, [0, 2]].shape)
    many, beside = (vocoder.StreamingGriffinLim(cfg, inversion="pinv", sessions=3) for _ in range(2))
    alone = vocoder.StreamingGriffinLim(cfg, inversion="pinv")
    for i, turn in enumerate(pieces):
        row = many.push(turn)[1]
        np.testing.assert_array_equal(beside.push(others[i])[1], row)
        if i == 0:  # Griffin-Lim's iterations amplify rounding from one piece to the next
            np.testing.assert_allclose(alone.push(turn[1]), row, atol=1e-4)
    many.reset(1)  # a new stream in row 1, the others go on
    fresh = vocoder.StreamingGriffinLim(cfg, inversion="pinv", sessions=3)
    np.testing.assert_array_equal(many.push(pieces[0])[1], fresh.push(pieces[0])[1])
    with pytest.raises(ValueError, match="log-mel"):
        many.push(pieces[0][0])  # one stream's piece to a three-stream vocoder
