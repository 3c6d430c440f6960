"""Pitch as numbers: per dMel frame, whether the voice is voiced, its fundamental frequency on a log scale, and
how far it moved over the last 100 ms.

The dMel tokens keep a channel's level in 16 steps of 5.6 dB, which blurs the harmonics that carry pitch,
and a turn's end is told from a pause largely by it: a sentence said to its end falls, one that goes on
after the pause stays level or rises. So what the model hears of the user carries the pitch as well, from
the same causal frames as the dMel tokens (`dmel.causal_frames`: frame k ends at sample (k + 1) * hop, no
look-ahead): the autocorrelation of the windowed frame, divided by the window's own, peaks at the pitch
period; a frame is voiced where that peak is at least `VOICED` of the frame's power and the frame is
louder than `FLOOR`. Of the local peaks within `PEAK_SHARE` of the highest the shortest lag is taken, so
that a period's multiples (which the autocorrelation also peaks at) are not read as an octave down.

The numbers (`features`) go to the model as they are, not as classes picked from a table: a linear map of a
micro-turn's frames can then read a rise or a fall as one direction (`InteractionModel.heard`).
"""
from __future__ import annotations

import functools

import numpy as np

from interaction.codecs import dmel

FMIN, FMAX = 60.0, 480.0  # Hz: three octaves, speaking voices' range
REFERENCE = 150.0  # Hz: the log frequency is in octaves above or below this
VOICED = 0.5  # the autocorrelation peak's share of the frame's power at least
PEAK_SHARE = 0.9
FLOOR = 1e-6  # mean power of the windowed frame (about -60 dB of full scale) at least
CHANGE_S = 0.1  # the change is taken over this long
CHANGE_SCALE = 6.0  # the change in octaves times this: a half-octave move is 1
CHANGE_CLIP = 2.0  # the scaled change is clipped to [-CHANGE_CLIP, CHANGE_CLIP]
FEATURES = 3  # per frame: voiced, log frequency, change


@functools.lru_cache(maxsize=4)
def _window_autocorrelation(n_fft: int) -> np.ndarray:
    """The analysis window's own autocorrelation, normalised at lag 0 (computed once per frame size: live
    sessions ask for it every tick)."""
    spec = np.fft.rfft(np.hanning(n_fft + 1)[:-1], 2 * n_fft)
    r = np.fft.irfft(np.abs(spec) ** 2)[:n_fft]
    r = r / r[0]
    r.flags.writeable = False
    return r


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
    r = r / _window_autocorrelation(cfg.n_fft)[: hi + 2]
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


def span(cfg: dmel.DMelConfig) -> int:
    """Frames between a frame and the one its change is taken from."""
    return max(1, round(CHANGE_S * cfg.frame_rate))


def octaves(f0: np.ndarray) -> np.ndarray:
    """Frequencies in Hz (0 unvoiced) -> octaves above `REFERENCE` (0 where unvoiced)."""
    return np.where(f0 > 0, np.log2(np.maximum(f0, FMIN) / REFERENCE), 0.0).astype(np.float32)


def features(wave: np.ndarray, cfg: dmel.DMelConfig, history: np.ndarray | None = None,
             before: np.ndarray | None = None) -> np.ndarray:
    """(N,) samples -> (N // hop, FEATURES) float32, frame for frame with `dmel.tokens_from_wave`
    (`features_of` its `frequencies`). `history` as in `dmel.causal_frames`; `before` as in `features_of`."""
    return features_of(frequencies(wave, cfg, history), cfg, before)


def features_of(f0: np.ndarray, cfg: dmel.DMelConfig, before: np.ndarray | None = None) -> np.ndarray:
    """(N,) frequencies in Hz (0 unvoiced) -> (N, FEATURES) float32: voiced (0 or 1), octaves above `REFERENCE`
    (0 unvoiced) and the change in octaves since `span(cfg)` frames before, times `CHANGE_SCALE` and clipped to
    ±`CHANGE_CLIP` (0 where either frame is unvoiced). `before`: the frequencies of the `span(cfg)` frames just
    before (zeros, unvoiced, at a stream's start)."""
    before = np.zeros(span(cfg), np.float32) if before is None else np.asarray(before, np.float32)
    if before.shape != (span(cfg),):
        raise ValueError(f"before has shape {before.shape}; give the {span(cfg)} frequencies before these")
    then = np.concatenate([before, f0])[: len(f0)]
    moved = np.clip(CHANGE_SCALE * (octaves(f0) - octaves(then)), -CHANGE_CLIP, CHANGE_CLIP)
    change = np.where((f0 > 0) & (then > 0), moved, 0.0)
    return np.stack([(f0 > 0).astype(np.float32), octaves(f0), change.astype(np.float32)], axis=-1)
