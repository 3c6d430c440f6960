"""Turn-based baselines: a detector decides where the user's turn ends, then the baseline replies there.

Two detectors. The silence threshold ends the turn after `threshold` seconds of silence. The cascade is the
one a Pipecat user gets: Silero VAD with a short stop time declares a stop, Pipecat's Smart Turn model
judges the turn's audio, and the turn ends at the stop if P(complete) > threshold, or after Pipecat's stop
timeout of silence if not. Sweeping either threshold trades answering quickly against barging into pauses:
it traces the frontier the model is judged against.

The reply is the next reference reply of the conversation (the reference model's turns and translations,
in order), decoded from its log-mel by the same Griffin-Lim vocoder as the model's output. The baseline
is half duplex: while it speaks it does not listen, so ends of turn detected meanwhile are ignored, and
it never stops for an interruption.

Recognition runs once per reference reply (words relative to its start); a baseline output's words are
those replies' words shifted to where they are played.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from interaction import SAMPLE_RATE
from interaction.codecs import audio, dmel, vocoder
from interaction.data.conversation import Word
from interaction.evals.vad import check_wave

End = tuple[float, float]  # (speech end, detection time): where the user stopped, when the detector knew

THRESHOLDS = (0.2, 0.4, 0.6, 0.8, 1.0)  # the silence threshold's sweep, in seconds
TURN_THRESHOLD = 0.5  # Pipecat's: Smart Turn's P(complete) above it ends the turn
TURN_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the cascade's sweep
# Pipecat's VAD defaults (VADParams); its docs recommend this stop time with Smart Turn.
VAD_CONFIDENCE, VAD_START_S, VAD_STOP_S = 0.7, 0.2, 0.2
PRE_SPEECH_S = 0.5  # Smart Turn also hears this much audio before the turn's first speech (pre_speech_ms)
FALLBACK_S = 3.0  # Smart Turn's stop timeout (stop_secs): silence after a VAD stop that ends the turn anyway
REPLY_KINDS = ("model_turn", "translation")
_EARLY_S = 0.5  # a reply may start this much before the user's speech ends (overlapping replies)


@dataclasses.dataclass
class Reply:
    start: float  # where the reference model said it
    text: str  # what it said
    wave: np.ndarray  # vocoded
    words: list[Word]  # recognized, relative to the reply's start
    segments: list[tuple[float, float]] | None = None  # its speech (Silero), relative to its start


def reference_replies(events: list[dict], reference_wave: np.ndarray, cfg: dmel.DMelConfig, recognizer,
                      vad=None) -> list[Reply]:
    """The reference model's replies, each vocoded (with the mel inversion of the live decoder that renders
    the model's output) and recognized once, and with a `vad` its speech segments found once."""
    out = []
    for e in sorted((e for e in events if e["kind"] in REPLY_KINDS), key=lambda e: e["timestamp"][0]):
        a, b = (int(round(t * SAMPLE_RATE)) for t in e["timestamp"])
        piece = reference_wave[a // cfg.hop * cfg.hop: b]  # a sample may end mid-reply: its audio ends there
        if len(piece) < cfg.hop:
            continue
        piece = np.pad(piece, (0, -len(piece) % cfg.hop))
        wave = vocoder.decode(np.asarray(dmel.log_mel(piece, cfg)), cfg, inversion="pinv")
        wave = wave * audio.fit_gain(wave)  # scaled down where it would clip, as the model's output is
        out.append(Reply(start=e["timestamp"][0], text=e.get("target") or e["text"], wave=wave,
                         words=recognizer.words(wave), segments=None if vad is None else vad.segments(wave)))
    return out


def ends_of_turn(input_segments: Sequence[tuple[float, float]], threshold: float) -> list[End]:
    """The silence threshold: (speech end, detection time) for each input segment followed by at least
    `threshold` s of silence."""
    out = []
    for i, (_, end) in enumerate(input_segments):
        following = input_segments[i + 1][0] if i + 1 < len(input_segments) else np.inf
        if following - end >= threshold:
            out.append((end, end + threshold))
    return out


@dataclasses.dataclass(frozen=True)
class VadRun:
    """One speech run as Pipecat's VAD state machine sees it, in seconds."""

    onset: float  # first window of the run above the confidence
    started: float  # when the VAD declared speech (after start time of speech)
    speech_end: float  # start of the first window of the silence that stopped it
    stopped: float  # when the VAD declared the stop (after stop time of silence)


def vad_runs(vad_probs: Sequence[float], window_samples: int = 512, confidence: float = VAD_CONFIDENCE,
             start_s: float = VAD_START_S, stop_s: float = VAD_STOP_S) -> list[VadRun]:
    """Pipecat's VAD states over Silero's per-window probabilities: speech is declared after `start_s` of
    consecutive confident windows (a doubtful one cancels the start), a stop after `stop_s` of consecutive
    doubtful ones (a confident one cancels the stop). Pipecat's volume gate is not modelled. A run still
    going at the end of the audio has no stop and is left out."""
    dt = window_samples / SAMPLE_RATE
    n_start, n_stop = round(start_s / dt), round(stop_s / dt)
    runs = []
    state, count, onset, started, end = "quiet", 0, 0, 0.0, 0
    for i, p in enumerate(vad_probs):
        speaking = p >= confidence
        if state == "quiet" and speaking:
            state, count, onset = "starting", 1, i
        elif state == "starting":
            state, count = ("starting", count + 1) if speaking else ("quiet", 0)
        elif state == "speaking" and not speaking:
            state, count, end = "stopping", 1, i
        elif state == "stopping":
            state, count = ("speaking", 0) if speaking else ("stopping", count + 1)
        if state == "starting" and count >= n_start:
            state, count, started = "speaking", 0, (i + 1) * dt
        elif state == "stopping" and count >= n_stop:
            state, count = "quiet", 0
            runs.append(VadRun(onset * dt, started, end * dt, (i + 1) * dt))
    return runs


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A VAD stop, where Smart Turn judges the turn; computed once per sample for every threshold."""

    speech_end: float
    stop: float  # when the VAD declared the stop, and Smart Turn judged (its inference time not counted)
    resume: float  # when the VAD next declared speech (inf if never): the fallback timer runs until then
    p_complete: tuple[float, ...]  # [i]: P(complete) if the turn began with VAD run i (i <= this one's)


def cascade_candidates(wave: np.ndarray, vad_probs: Sequence[float], smart_turn, window_samples: int = 512,
                       **vad_params) -> list[Candidate]:
    """Smart Turn's verdict at each VAD stop of `wave` for each run the turn may have begun with.

    Which run began the turn depends on the threshold (the last accepted end), so every start is judged
    here, in one batch, and `cascade_ends` only picks: a sweep runs the model once. As in Pipecat, the
    model hears the turn from `PRE_SPEECH_S` before its first speech (but never what came before the last
    turn's end) to the stop, its last 8 s: starts further back give the same audio and share one inference.
    `vad_probs` are `SileroVad.probabilities(wave)`, `vad_params` those of `vad_runs`.
    """
    wave = check_wave(wave, SAMPLE_RATE, "cascade input")
    runs = vad_runs(vad_probs, window_samples, **vad_params)
    window = 8 * SAMPLE_RATE  # what Smart Turn hears
    spans = []
    for j, run in enumerate(runs):
        b = min(len(wave), int(round(run.stopped * SAMPLE_RATE)))
        row = []
        for i in range(j + 1):
            a = int(round((runs[i].onset - PRE_SPEECH_S) * SAMPLE_RATE))
            after = int(round(runs[i - 1].stopped * SAMPLE_RATE)) if i else 0  # the last turn's audio is gone
            row.append((max(a, after, b - window, 0), b))
        spans.append(row)
    distinct = sorted({span for row in spans for span in row})
    probs = dict(zip(distinct, smart_turn.probabilities([wave[a:b] for a, b in distinct])))
    return [Candidate(speech_end=run.speech_end, stop=run.stopped,
                      resume=runs[j + 1].started if j + 1 < len(runs) else np.inf,
                      p_complete=tuple(float(probs[span]) for span in spans[j])) for j, run in enumerate(runs)]


def cascade_ends(candidates: Sequence[Candidate], threshold: float = TURN_THRESHOLD,
                 fallback_s: float = FALLBACK_S) -> list[End]:
    """The cascade's ends of turn: at a VAD stop where P(complete) > threshold, else `fallback_s` after it
    if the user stays silent that long (Pipecat's stop timeout); if speech resumes first, the turn goes on."""
    out, first = [], 0  # first: the VAD run that began the current turn
    for j, c in enumerate(candidates):
        if c.p_complete[first] > threshold:
            out.append((c.speech_end, c.stop))
        elif c.resume - c.stop >= fallback_s:
            out.append((c.speech_end, c.stop + fallback_s))
        else:
            continue
        first = j + 1
    return out


def respond_at(replies: Sequence[Reply], ends: Sequence[End], n_samples: int
               ) -> tuple[np.ndarray, list[Word], list[tuple[float, float]]]:
    """The baseline's output for one sample, given a detector's ends of turn (speech end, detection time) in
    time order: its wave, its (shifted) recognized words and its speech segments (the replies' own, shifted:
    the output is silence but for them; empty where the replies have none)."""
    wave = np.zeros(n_samples, np.float32)
    words: list[Word] = []
    segments: list[tuple[float, float]] = []
    queue = list(replies)
    busy_until = -np.inf
    duration = n_samples / SAMPLE_RATE
    for speech_end, at in ends:
        if at < busy_until:
            continue  # speaking: not listening
        while queue and queue[0].start < speech_end - _EARLY_S:
            queue.pop(0)  # a reply to something earlier that the baseline never answered
        if not queue:
            break
        reply = queue.pop(0)
        a = int(round(at * SAMPLE_RATE))
        piece = reply.wave[: max(0, n_samples - a)]
        wave[a: a + len(piece)] = piece
        busy_until = at + len(reply.wave) / SAMPLE_RATE
        words += [(s + at, e + at, w) for s, e, w in reply.words if s + at < duration]
        segments += [(s + at, min(e + at, duration)) for s, e in reply.segments or () if s + at < duration]
    return wave, words, segments

