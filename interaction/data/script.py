"""A conversation under construction: utterances placed on a clock, events labelled as they happen.

Scenario functions (scenarios.py) call `user`, `model`, `cut_model`, `event` and `text`; `render` then
mixes both channels (levels, background speakers, noise, gain), draws the video and returns a
`Conversation` whose labels are exact because they come from the same numbers that placed the audio.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import scipy.signal

from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.data import lexicon, scene, speech
from interaction.data.listening import WORD_BRIDGE_S
from interaction.data.conversation import EVENT_KINDS, Conversation, Event, TextItem

_SPEECH_RMS = 0.08  # every utterance is normalised to this RMS before gains (about -22 dBFS)
_FADE_S = 0.02  # fade applied where the model is cut off


def _db(x: float) -> float:
    return float(10.0 ** (x / 20.0))


@dataclasses.dataclass
class _Part:
    start: float
    audio: np.ndarray
    gain_db: float


class Script:
    def __init__(self, rng: np.random.Generator, timing, user_voice: speech.Voice, model_voice: speech.Voice,
                 other_voices: list[speech.Voice], *, heldout: bool = False):
        self.rng, self.timing, self.heldout = rng, timing, heldout
        self.user_voice, self.model_voice, self.other_voices = user_voice, model_voice, other_voices
        self.user_parts: list[_Part] = []  # user and anyone near the user's microphone
        self.model_parts: list[_Part] = []
        self.user_words: list[tuple[float, float, str]] = []
        self.model_words: list[tuple[float, float, str]] = []
        self.events: list[Event] = []
        self.text_items: list[TextItem] = []
        self.shapes: list[scene.Shape] = []
        self.changes: list[scene.Change] = []
        self.meta: dict = {}

    # --- timing draws (conversation statistics; see experiments/configs/corpus.py) ---------------------
    def gap(self) -> float:
        t = self.timing
        return float(np.clip(self.rng.lognormal(np.log(t.gap_median), t.gap_sigma), 0.05, 1.5))

    def overlap(self) -> float:
        t = self.timing
        return float(np.clip(self.rng.lognormal(np.log(t.overlap_median), t.overlap_sigma), 0.05, 1.0))

    def stop_latency(self, longest: float) -> float:
        """How long the model talks on once the user has begun to speak over it."""
        t = self.timing
        return float(np.clip(self.rng.lognormal(np.log(t.stop_latency_median), t.stop_latency_sigma), 0.1, longest))

    def pause(self) -> float:
        return float(self.rng.uniform(self.timing.pause_min, self.timing.pause_max))

    def uniform(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def phrase(self, pool):
        """A row of a lexicon pool, phrased in one of this split's forms (`lexicon.pick_phrasing`)."""
        return lexicon.pick_phrasing(self.rng, lexicon.pick(self.rng, pool), self.heldout)

    # --- placing speech -----------------------------------------------------------------------------------
    def user(self, t: float, text: str, voice: speech.Voice | None = None, gain_db: float = 0.0,
             words: bool = True, lowpass_hz: float | None = None) -> tuple[float, float]:
        """Speech on the user's channel from `t`; `words=False` for speakers other than the user;
        `lowpass_hz` muffles it (someone turned away from the microphone)."""
        utt = speech.synthesize(text, voice or self.user_voice)
        wave = _normalised(utt.audio)
        if lowpass_hz is not None:
            sos = scipy.signal.butter(4, lowpass_hz, btype="low", fs=SAMPLE_RATE, output="sos")
            wave = scipy.signal.sosfilt(sos, wave).astype(np.float32)
        self.user_parts.append(_Part(t, wave, gain_db))
        if words:
            self.user_words += [(t + a, t + b, w) for a, b, w in utt.words]
        return t, t + utt.duration

    def backchannel(self, t: float, text: str) -> tuple[float, float]:
        """A user's backchannel over the model's speech: quieter and lower than the user's turns
        (`timing.backchannel_db`, `timing.backchannel_pitch`)."""
        return self._onset(t, text, self.timing.backchannel_db, self.timing.backchannel_pitch)

    def cut_in(self, t: float, text: str) -> tuple[float, float]:
        """A user's interruption of the model: a turn-competitive incoming, louder and higher than the user's
        turns (`timing.interruption_db`, `timing.interruption_pitch`)."""
        return self._onset(t, text, self.timing.interruption_db, self.timing.interruption_pitch)

    def _onset(self, t: float, text: str, gain_db: float, pitch: int) -> tuple[float, float]:
        voice = dataclasses.replace(self.user_voice, pitch=int(np.clip(self.user_voice.pitch + pitch, 0, 99)))
        return self.user(t, text, voice=voice, gain_db=gain_db)

    def model(self, t: float, text: str) -> tuple[float, float]:
        utt = speech.synthesize(text, self.model_voice)
        self.model_parts.append(_Part(t, _normalised(utt.audio), 0.0))
        self.model_words += [(t + a, t + b, w) for a, b, w in utt.words]
        return t, t + utt.duration

    def cut_model(self, t_stop: float) -> float:
        """The model stops talking at the end of the micro-turn `t_stop` falls in: its audio fades out there
        and later words are dropped. Returns that time, or the end of its speech if that came first. Cut inside
        a micro-turn, the audio the model hears of its last voiced one would already fall silent and tell it to
        stop, a cue it never has when it hears its own frames; cut at the edge, the stop has to come from
        hearing the user."""
        t_stop = float(np.ceil(t_stop / MICROTURN_SECONDS - 1e-9) * MICROTURN_SECONDS)
        part = self.model_parts[-1]
        keep = max(int(round((t_stop - part.start) * SAMPLE_RATE)), 0)
        if keep >= len(part.audio):  # it had already finished: nothing to cut
            return part.start + len(part.audio) / SAMPLE_RATE
        fade = min(int(_FADE_S * SAMPLE_RATE), keep)
        audio = part.audio[:keep].copy()
        audio[keep - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        part.audio = audio
        self.model_words = [(a, min(b, t_stop), w) for a, b, w in self.model_words if a < t_stop]
        return t_stop

    def false_start(self, pause_start: float, resume: float, text) -> None:
        """In the training split only, with chance `timing.false_start_prob`: the model takes the user's pause
        from `pause_start` for a turn end, starts saying `text` (a string, or a lexicon pool to draw one
        from) after a gap, and stops a stop latency after the user goes on at `resume`, cut as `cut_model`
        cuts an interruption. Free-running, a model that starts too soon meets exactly this; the pipeline
        leaves the start untrained and trains the stop (`pipeline.conversation_features`)."""
        if self.heldout or self.rng.uniform() >= self.timing.false_start_prob:
            return
        start = pause_start + self.gap()
        if start >= resume - MICROTURN_SECONDS:
            return
        m0, _ = self.model(start, text if isinstance(text, str) else lexicon.pick(self.rng, text))
        stop = self.cut_model(resume + self.stop_latency(1.0))
        self.event("false_start", m0, stop, resume=round(resume, 4), latency=round(stop - resume, 4))

    def contrast_onsets(self) -> bool:
        """In the training split only, with chance `timing.contrast_onset_prob`: whether a turn the user
        interrupts has backchannels first, or a turn the user backchannels through is interrupted after
        one, so that the model hears both onsets in one answer and learns from the words that follow them
        which one it heard. Draws nothing where the chance is 0, so the option left off changes no other draw."""
        chance = self.timing.contrast_onset_prob
        return not self.heldout and chance > 0 and self.rng.uniform() < chance

    def false_yield(self, b0: float, b1: float, m0: float, answer: str) -> tuple[float, float, float, str] | None:
        """In the training split only, with chance `timing.false_yield_prob`: the model, saying `answer` from
        `m0`, takes the user's backchannel over `b0`-`b1` for an interruption, stops as `cut_model` cuts one,
        and once the user is quiet again goes on with the next sentence of its answer. Free-running, a model
        that yields to a backchannel meets exactly this; the pipeline leaves the stop and the silence after
        it untrained and trains the resumption. Returns (stop, start and end of the resumed speech, its text),
        or None where it keeps the floor (no chance drawn, or no sentence left to go on with)."""
        if self.heldout or self.rng.uniform() >= self.timing.false_yield_prob:
            return None
        t_stop = float(np.ceil((b0 + self.stop_latency(1.0)) / MICROTURN_SECONDS - 1e-9) * MICROTURN_SECONDS)
        said = sum(1 for a, _, _ in self.model_words if m0 <= a < t_stop)
        sentences, words = [], 0
        for sentence in re.findall(r"[^.?!]+[.?!]*", answer):
            if words >= said and sentence.strip():
                sentences.append(sentence.strip())
            words += len(sentence.split())
        if not sentences:
            return None
        stop = self.cut_model(t_stop)
        resume = max(b1, stop + WORD_BRIDGE_S) + self.gap()  # a silence its speaking state shows
        rest = " ".join(sentences)
        r0, r1 = self.model(resume, rest)
        self.event("false_yield", stop, r0, backchannel=round(b0, 4))
        return stop, r0, r1, rest

    def event(self, kind: str, start: float, end: float, **data) -> None:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; add it to conversation.EVENT_KINDS")
        self.events.append(Event(kind, float(start), float(end), data))

    def text(self, t: float, channel: str, text: str) -> None:
        self.text_items.append(TextItem(float(t), channel, text))

    def speech_end(self) -> float:
        ends = [p.start + len(p.audio) / SAMPLE_RATE for p in self.user_parts + self.model_parts]
        return max(ends, default=0.0)

    def user_busy_until(self, t: float) -> float:
        """The first time >= t at which the user is not speaking (words only)."""
        for a, b, _ in sorted(self.user_words):
            if a <= t < b + 0.15:
                t = b + 0.15
        return t

    # --- rendering --------------------------------------------------------------------------------------
    def render(self, conv_id: str, kind: str, seed: int, video_fps: float, video_size: int) -> Conversation:
        t = self.timing
        duration = self.speech_end() + t.tail
        n_turns = int(np.ceil(duration / MICROTURN_SECONDS - 1e-9))
        n = n_turns * round(MICROTURN_SECONDS * SAMPLE_RATE)
        user_gain_db = self.uniform(t.user_gain_db_min, t.user_gain_db_max)
        snr_db = self.uniform(t.snr_db_min, t.snr_db_max)
        user = _mix(self.user_parts, n, _db(user_gain_db))
        noise_rms = _SPEECH_RMS * _db(user_gain_db) / _db(snr_db)
        user += (self.rng.standard_normal(n) * noise_rms).astype(np.float32)
        model = _mix(self.model_parts, n, 1.0)
        if not self.shapes:
            self.shapes = [scene.random_shape(self.rng) for _ in range(int(self.rng.integers(1, 3)))]
        video = scene.render(self.shapes, self.changes, n / SAMPLE_RATE, video_fps, video_size, self.rng)
        meta = dict(self.meta, user_voice=self.user_voice.name, model_voice=self.model_voice.name,
                    user_gain_db=round(user_gain_db, 2), snr_db=round(snr_db, 2), noise_rms=float(noise_rms))
        return Conversation(
            id=conv_id, kind=kind, seed=seed, user_audio=np.clip(user, -1, 1), model_audio=np.clip(model, -1, 1),
            video=video, video_fps=video_fps, user_words=sorted(self.user_words),
            model_words=sorted(self.model_words), text_items=sorted(self.text_items, key=lambda x: x.time),
            events=sorted(self.events, key=lambda e: (e.start, e.kind)), meta=meta,
        )


def _normalised(audio: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(audio**2))) if len(audio) else 0.0
    return audio * (_SPEECH_RMS / rms) if rms > 0 else audio


def _mix(parts: list[_Part], n: int, gain: float) -> np.ndarray:
    out = np.zeros(n, np.float32)
    for p in parts:
        start = int(round(p.start * SAMPLE_RATE))
        seg = p.audio[: max(n - start, 0)] * (gain * _db(p.gain_db))
        out[start : start + len(seg)] += seg
    return out
