"""Pitch tokens: per dMel frame, the voice's fundamental frequency in half-semitone classes (0: unvoiced), and
how far it moved over the last 100 ms.

The dMel tokens keep a channel's level in 16 steps of 5.6 dB, which blurs the harmonics that carry pitch,
and a turn's end is told from a pause largely by it: a sentence said to its end falls, one that goes on
after the pause stays level or rises. So what the model hears of the user carries the pitch as well, from
the same causal frames as the dMel tokens (`dmel.causal_frames`: frame k ends at sample (k + 1) * hop, no
look-ahead): the autocorrelation of the windowed frame, divided by the window's own, peaks at the pitch
period; a frame is voiced where that peak is at least `VOICED` of the frame's power and the frame is
louder than `FLOOR`. Of the local peaks within `PEAK_SHARE` of the highest the shortest lag is taken, so
that a period's multiples (which the autocorrelation also peaks at) are not read as an octave down.

Beside the class, its change since the frame `CHANGE_S` before, in half-semitones clipped to
`CHANGE_STEPS` (0 where either frame is unvoiced): the rise or fall itself, which a table of absolute
classes leaves a model to work out by comparing unrelated rows.
"""
from __future__ import annotations

import numpy as np

from interaction.codecs import dmel

FMIN, FMAX = 60.0, 480.0  # Hz: three octaves, speaking voices' range
STEPS_PER_SEMITONE = 2
CLASSES = 1 + int(round(12 * np.log2(FMAX / FMIN))) * STEPS_PER_SEMITONE  # 0 unvoiced, then 72 pitch steps
VOICED = 0.5  # the autocorrelation peak's share of the frame's power at least
PEAK_SHARE = 0.9
FLOOR = 1e-6  # mean power of the windowed frame (about -60 dB of full scale) at least
CHANGE_S = 0.1  # the change is taken over this long
CHANGE_STEPS = 12  # half-semitones either way, at most
CHANGE_CLASSES = 2 * CHANGE_STEPS + 2  # 0: no change to tell (unvoiced now or then), then -12 .. +12


def _window_autocorrelation(cfg: dmel.DMelConfig) -> np.ndarray:
    spec = np.fft.rfft(np.hanning(cfg.n_fft + 1)[:-1], 2 * cfg.n_fft)
    r = np.fft.irfft(np.abs(spec) ** 2)[: cfg.n_fft]
    return r / r[0]


def frequencies(wave: np.ndarray, cfg: dmel.DMelConfig, history: np.ndarray | None = None) -> np.ndarray:
    """(N,) samples at cfg.sample_rate -> (N // hop,) fundamental frequency in Hz of each frame, 0 where
    unvoiced. `history` as in `dmel.causal_frames`."""
    frames = np.asarray(dmel.causal_frames(np.asarray(wave, np.float32), cfg,
                                           None if history is None else np.asarray(history, np.float32)))
    if frames.shape[0] == 0:
        return np.zeros(0, np.float32)
    lo, hi = int(cfg.sample_rate // FMAX), int(np.ceil(cfg.sample_rate / FMIN))
    r = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * cfg.n_fft, axis=-1)) ** 2, axis=-1)[:, : hi + 2]
    power = r[:, 0]
    r = r / _window_autocorrelation(cfg)[: hi + 2]
    share = r[:, lo - 1 : hi + 2] / np.maximum(power, 1e-20)[:, None]  # lags lo - 1 .. hi + 1
    inner = share[:, 1:-1]
    peak = inner.max(axis=-1)
    tops = (inner >= share[:, :-2]) & (inner >= share[:, 2:]) & (inner >= PEAK_SHARE * peak[:, None])
    lag = lo + np.argmax(tops, axis=-1)  # the shortest lag whose local peak is near the highest
    # parabolic refinement of the peak between its neighbours
    rows = np.arange(len(lag))
    a, b, c = r[rows, lag - 1], r[rows, lag], r[rows, lag + 1]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > 1e-20, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    f0 = cfg.sample_rate / (lag + np.clip(shift, -0.5, 0.5))
    voiced = (peak >= VOICED) & (power / cfg.n_fft >= FLOOR)
    return np.where(voiced, f0, 0.0).astype(np.float32)


def classes(f0: np.ndarray) -> np.ndarray:
    """Frequencies in Hz (0 unvoiced) -> int32 classes: 0 unvoiced, else 1 + half-semitone steps above FMIN."""
    steps = np.round(12 * STEPS_PER_SEMITONE * np.log2(np.maximum(f0, FMIN) / FMIN))
    return np.where(f0 > 0, 1 + np.clip(steps, 0, CLASSES - 2), 0).astype(np.int32)


def span(cfg: dmel.DMelConfig) -> int:
    """Frames between a frame and the one its change is taken from."""
    return max(1, round(CHANGE_S * cfg.frame_rate))


def changes(steps: np.ndarray, before: np.ndarray) -> np.ndarray:
    """(N,) classes and the (span,) classes before them (zeros at a stream's start) -> (N,) change classes."""
    then = np.concatenate([before, steps])[: len(steps)]
    moved = np.clip(steps.astype(np.int64) - then, -CHANGE_STEPS, CHANGE_STEPS)
    return np.where((steps > 0) & (then > 0), 1 + CHANGE_STEPS + moved, 0).astype(np.int32)


def tokens_from_wave(wave: np.ndarray, cfg: dmel.DMelConfig, history: np.ndarray | None = None,
                     before: np.ndarray | None = None) -> np.ndarray:
    """(N,) samples -> (N // hop, 2) int32: each frame's class and change class, frame for frame with
    `dmel.tokens_from_wave`. `history` as there; `before`, the `span(cfg)` classes of the frames just before
    (zeros, unvoiced, when None: a stream's start)."""
    steps = classes(frequencies(wave, cfg, history))
    before = np.zeros(span(cfg), np.int32) if before is None else np.asarray(before, np.int32)
    if before.shape != (span(cfg),):
        raise ValueError(f"before has shape {before.shape}; give the {span(cfg)} classes before the wave")
    return np.stack([steps, changes(steps, before)], axis=-1)
