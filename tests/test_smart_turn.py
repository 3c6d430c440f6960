"""The cascade baseline (Silero VAD, then Pipecat's Smart Turn, then the reference reply): its features
against Pipecat's, its turn logic on hand-built VAD stops, and the real model on espeak speech, where it
must tell a finished question from a trailing-off phrase, which no silence threshold can."""
import numpy as np
import pytest

from interaction import SAMPLE_RATE
from interaction.data import speech
from interaction.evals import baseline, smart_turn, vad

W = 512  # Silero's window at 16 kHz
DT = W / SAMPLE_RATE
VOICE = speech.Voice("en-us", "m3")
QUESTION = "What time does the museum open tomorrow?"
TRAILING = ("I was thinking that maybe we could, um,", "go to the beach on Saturday.")


@pytest.fixture(scope="module")
def model():
    try:
        smart_turn.model_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    return smart_turn.SmartTurn()


@pytest.fixture(scope="module")
def detector():
    return vad.SileroVad()


def _say(*parts) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Text spoken and float seconds of silence, after 0.5 s of silence; and each text's (start, end)."""
    out, spans, t = [np.zeros(SAMPLE_RATE // 2, np.float32)], [], 0.5
    for part in parts:
        piece = speech.synthesize(part, VOICE).audio if isinstance(part, str) else np.zeros(
            int(part * SAMPLE_RATE), np.float32)
        if isinstance(part, str):
            spans.append((t, t + len(piece) / SAMPLE_RATE))
        out.append(piece)
        t += len(piece) / SAMPLE_RATE
    return np.concatenate(out), spans


# ---------------------------------------------------------------- the model and its features


def test_model_is_found_in_the_pipecat_wheel_or_named_missing(monkeypatch):
    if smart_turn.importlib.util.find_spec("pipecat") is not None:
        assert smart_turn.model_path().name == smart_turn.MODEL_FILE
    monkeypatch.setattr(smart_turn.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install pipecat-ai"):
        smart_turn.model_path()


def test_features_match_pipecats_whisper_front_end():
    reference = pytest.importorskip("pipecat.audio.turn.smart_turn._whisper_features")
    rng = np.random.default_rng(0)
    question, _ = _say(QUESTION, 0.2)
    for wave in (question, (rng.standard_normal(10 * SAMPLE_RATE) * 0.05).astype(np.float32), np.zeros(0)):
        last = wave[-8 * SAMPLE_RATE:]  # Pipecat keeps the last 8 s and pads on the left
        padded = np.pad(last, (8 * SAMPLE_RATE - len(last), 0)).astype(np.float32)
        expected = reference.compute_whisper_log_mel_features(padded, do_normalize=True)
        got = smart_turn.SmartTurn().features(wave)  # no model is loaded for features
        assert got.shape == (80, 800) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_batch_gives_each_turn_its_own_probability(model):
    question, _ = _say(QUESTION, 0.2)
    trailing, _ = _say(TRAILING[0], 0.2)
    batch = model.probabilities([question, trailing])
    np.testing.assert_allclose(batch, [model.probability(question), model.probability(trailing)], atol=1e-5)
    assert batch[0] > 0.5 > batch[1]
    with pytest.raises(ValueError, match="1-D"):
        model.probability(np.zeros((2, 100), np.float32))


# ---------------------------------------------------------------- the cascade's turn logic


def _candidate(speech_end, resume, *p):
    return baseline.Candidate(speech_end=speech_end, stop=speech_end + 0.2, resume=resume, p_complete=p)


def test_cascade_ends_at_a_confident_stop_and_judges_the_turn_since_the_last_end():
    # Stop 1 is doubtful (0.3); the user resumes at 1.6 s. At stop 2, p[0] judges the turn from run 0,
    # p[1] the turn from run 1 (after an end at stop 1).
    stops = [_candidate(1.0, 1.6, 0.3), _candidate(2.0, np.inf, 0.8, 0.1)]
    assert baseline.cascade_ends(stops, 0.5) == [(2.0, 2.2)]
    assert baseline.cascade_ends(stops, 0.2) == [(1.0, 1.2), (2.0, 2.2 + baseline.FALLBACK_S)]
    assert baseline.cascade_ends(stops, 0.85) == [(2.0, 2.2 + baseline.FALLBACK_S)]
    assert baseline.cascade_ends(stops, 0.8) == [(2.0, 2.2 + baseline.FALLBACK_S)]  # strictly above


def test_cascade_falls_back_after_the_stop_timeout_unless_speech_resumes():
    waited = [_candidate(1.0, 4.5, 0.1), _candidate(5.0, np.inf, 0.0, 0.9)]  # 3.3 s of silence after stop 1
    assert baseline.cascade_ends(waited, 0.5) == [(1.0, 1.2 + baseline.FALLBACK_S), (5.0, 5.2)]
    resumed = [_candidate(1.0, 4.0, 0.1), _candidate(5.0, np.inf, 0.0, 0.9)]  # speech again 2.8 s after it
    assert baseline.cascade_ends(resumed, 0.5) == [(5.0, 5.2 + baseline.FALLBACK_S)]
    assert baseline.cascade_ends(resumed, 0.5, fallback_s=2.0) == [(1.0, 3.2), (5.0, 5.2)]


def test_vad_runs_follow_pipecats_start_and_stop_times():
    probs = np.concatenate([np.zeros(10), np.full(5, 0.9), np.zeros(10),  # 5 windows: too short to start
                            np.full(20, 0.9), np.zeros(3), np.full(10, 0.9),  # 3 quiet windows: no stop
                            np.full(5, 0.6), np.zeros(10)])  # below Pipecat's 0.7 confidence
    (run,) = baseline.vad_runs(probs, W)
    assert run.onset == pytest.approx(25 * DT) and run.started == pytest.approx(31 * DT)
    assert run.speech_end == pytest.approx(58 * DT) and run.stopped == pytest.approx(64 * DT)


class _Lengths:
    """A stand-in for SmartTurn that answers each turn audio's duration, and counts what it heard."""

    def __init__(self):
        self.heard = 0

    def probabilities(self, waves):
        self.heard += len(waves)
        return np.array([len(w) / SAMPLE_RATE for w in waves])


def test_candidates_hear_the_turn_from_before_its_first_speech_at_most_8_s():
    runs = [(50, 100), (110, 200), (300, 400)]  # confident windows [a, b): 1.6-3.2 s, 3.52-6.4 s, 9.6-12.8 s
    probs = np.zeros(420)
    for a, b in runs:
        probs[a:b] = 0.9
    lengths = _Lengths()
    c = baseline.cascade_candidates(np.zeros(420 * W, np.float32), probs, lengths)
    stops = [b * DT + 6 * DT for _, b in runs]
    assert [x.stop for x in c] == pytest.approx(stops)
    assert [x.resume for x in c] == pytest.approx([116 * DT, 306 * DT, np.inf])
    assert c[0].p_complete == pytest.approx((stops[0] - (1.6 - baseline.PRE_SPEECH_S),))
    # From run 1, the audio starts at run 0's stop (that turn's audio is gone), not 0.5 s before run 1.
    assert c[1].p_complete == pytest.approx((stops[1] - 1.1, stops[1] - stops[0]), abs=1e-3)
    assert c[2].p_complete == pytest.approx((8.0, 8.0, stops[2] - 9.1), abs=1e-3)
    assert lengths.heard == 5  # the two starts more than 8 s back share one inference


def test_respond_at_places_replies_at_the_detections_and_skips_those_while_speaking():
    second = 0.1 * np.ones(SAMPLE_RATE, np.float32)
    replies = [baseline.Reply(start=2.1, text="sure", wave=second, words=[(0.0, 0.4, "sure")], segments=[(0.0, 1.0)]),
               baseline.Reply(start=4.2, text="fine", wave=second, words=[(0.1, 0.5, "fine")], segments=[(0.0, 1.0)])]
    ends = [(2.0, 2.2), (2.5, 2.9), (4.0, 4.5)]  # the second comes while the first reply plays
    wave, words, segments = baseline.respond_at(replies, ends, 8 * SAMPLE_RATE)
    assert segments == [(2.2, 3.2), (4.5, 5.5)]  # the replies' own speech, where they are played
    assert baseline.respond_at(replies, ends, int(5.0 * SAMPLE_RATE))[2] == [(2.2, 3.2), (4.5, 5.0)]  # cropped
    assert words == [(2.2, pytest.approx(2.6), "sure"), (pytest.approx(4.6), 5.0, "fine")]
    loud = np.flatnonzero(wave) / SAMPLE_RATE
    assert loud[0] == pytest.approx(2.2) and loud[-1] == pytest.approx(5.5, abs=1e-3)
    assert not np.any(wave[int(3.3 * SAMPLE_RATE): int(4.4 * SAMPLE_RATE)])


# ---------------------------------------------------------------- the real model on espeak speech


def test_cascade_answers_a_finished_question_at_the_vad_stop(model, detector):
    wave, [(_, spoken_end)] = _say(QUESTION, 2.0)
    candidates = baseline.cascade_candidates(wave, detector.probabilities(wave), model)
    (speech_end, at), = baseline.cascade_ends(candidates)
    assert speech_end == pytest.approx(spoken_end, abs=0.1)
    assert spoken_end < at < spoken_end + 0.5  # the stop, long before the fallback
    assert candidates[-1].p_complete[0] > 0.8


def test_cascade_waits_through_a_pause_after_a_trailing_off_phrase(model, detector):
    """The pause is longer than every silence threshold of the sweep, which all answer into it."""
    wave, [(_, paused), (resumed, spoken_end)] = _say(TRAILING[0], 1.2, TRAILING[1], 2.0)
    probs = detector.probabilities(wave)
    candidates = baseline.cascade_candidates(wave, probs, model)
    assert any(c.stop < resumed for c in candidates)  # the VAD did stop in the pause...
    assert all(c.p_complete[0] < 0.1 for c in candidates if c.stop < resumed)  # ...but Smart Turn said wait
    for threshold in (baseline.TURN_THRESHOLD, 0.2):
        ends = baseline.cascade_ends(candidates, threshold)
        assert ends and all(at > spoken_end for _, at in ends)
    segments = vad.segments_from_probabilities(probs, window_samples=W, total_samples=len(wave))
    for threshold in baseline.THRESHOLDS:
        assert any(paused < at < resumed for _, at in baseline.ends_of_turn(segments, threshold))
