"""Waveform checks and WAV I/O shared by every audio entry point.

Audio enters the system as float32 in [-1, 1] at 16 kHz. Anything else is refused with a message that
says what was wrong and how to fix it, before it can turn into silent garbage downstream.
"""
from __future__ import annotations

import numpy as np
import soundfile

# Fraction of samples sitting on the rails above which a waveform is called clipped.
_MAX_CLIPPED_FRACTION = 0.5


def as_float_waveform(wave, sample_rate: int, expected_rate: int, name: str = "audio") -> np.ndarray:
    """Returns `wave` as float32 in [-1, 1], or raises ValueError saying what is wrong with it.

    Integer PCM (int16, int32) is scaled to [-1, 1]; float input must already be in that range.
    """
    if sample_rate != expected_rate:
        raise ValueError(
            f"{name} has sample rate {sample_rate} Hz but {expected_rate} Hz is required: resample it "
            f"first, e.g. librosa.resample(y, orig_sr={sample_rate}, target_sr={expected_rate})."
        )
    wave = np.asarray(wave)
    if wave.size == 0 or wave.shape[-1] == 0:
        raise ValueError(f"{name} is empty (shape {wave.shape}): there is nothing to encode.")
    if np.issubdtype(wave.dtype, np.integer):
        wave = wave.astype(np.float32) / float(np.iinfo(wave.dtype).max + 1)
    elif not np.issubdtype(wave.dtype, np.floating):
        raise ValueError(f"{name} has dtype {wave.dtype}; expected float samples in [-1, 1] or integer PCM.")
    bad = ~np.isfinite(wave)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(-1))[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} NaN or Inf samples (first at flat index {first}): "
            "fix the producer of this audio; the codec will not guess values."
        )
    peak = float(np.max(np.abs(wave)))
    if peak > 1.0 + 1e-6:
        raise ValueError(
            f"{name} peaks at {peak:.4g}, outside [-1, 1]: float audio must be scaled to [-1, 1] "
            "(integer PCM divided by 32768, or pass the int16 array itself)."
        )
    clipped = float(np.mean(np.abs(wave) >= 0.999))
    if clipped > _MAX_CLIPPED_FRACTION:
        raise ValueError(
            f"{name} is clipped: {clipped:.0%} of its samples sit at full scale, so no speech is left "
            "in it. Lower the gain before recording or converting."
        )
    return wave.astype(np.float32, copy=False)


def read_wav(path, expected_rate: int) -> np.ndarray:
    """Reads a mono (or first channel of a multi-channel) WAV as checked float32."""
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise ValueError(f"cannot read {path} as audio ({err}); is it a complete WAV file?") from err
    return as_float_waveform(data[:, 0], rate, expected_rate, name=str(path))


def write_wav(path, wave: np.ndarray, sample_rate: int) -> None:
    """Writes float audio in [-1, 1] as 16-bit PCM."""
    soundfile.write(str(path), np.clip(np.asarray(wave, np.float32), -1.0, 1.0), sample_rate, subtype="PCM_16")


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    return np.round(np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.int16)


def from_pcm16(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32767.0


def fit_gain(wave: np.ndarray, peak: float = 0.9) -> float:
    """The gain (at most 1) that brings `wave` to at most `peak`: loud model audio is scaled down to be
    stored as PCM without clipping, never up."""
    top = float(np.max(np.abs(wave))) if np.size(wave) else 0.0
    return min(1.0, peak / top) if top > 0 else 1.0
