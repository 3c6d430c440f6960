"""Waveform checks and WAV I/O shared by every audio entry point.

Audio enters the system as float32 in [-1, 1] at 16 kHz. Anything else is refused with a message that
says what was wrong and how to fix it, before it can turn into silent garbage downstream.
"""
from __future__ import annotations

import librosa
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


def read_wav(path, expected_rate: int, *, resample: bool = False, mono: bool = False) -> np.ndarray:
    """Reads a WAV's first channel as checked float32 at `expected_rate`.

    `resample`: any other rate is resampled (else it is refused). `mono`: a file with more than one channel,
    or of 8-bit samples, is refused rather than read, as a benchmark input must be (which channel holds the
    user is not ours to guess, and 8 bits is no speech codec's rate of precision)."""
    rate, channels = _header(path, mono)
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise ValueError(f"cannot read {path} as audio ({err}); is it a complete WAV file?") from err
    wave = data[:, 0]
    if resample and rate != expected_rate:
        if not np.isfinite(wave).all():  # checked before resampling, which would smear NaN over the signal
            as_float_waveform(wave, rate, rate, name=str(path))
        wave = resample_to(wave, rate, expected_rate)
        rate = expected_rate
    return as_float_waveform(wave, rate, expected_rate, name=str(path))


def _header(path, mono: bool) -> tuple[int, int]:
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise ValueError(f"cannot read {path} as audio ({err}); is it a complete WAV file?") from err
    if mono and info.channels != 1:
        raise ValueError(f"{path} has {info.channels} channels; a benchmark input is the user's channel alone: "
                         "save that one channel as a mono WAV.")
    if mono and info.subtype in ("PCM_U8", "PCM_S8"):
        raise ValueError(f"{path} holds 8-bit samples ({info.subtype}); give 16-bit PCM or float audio.")
    if info.frames == 0:
        raise ValueError(f"{path} holds no samples: there is nothing to run.")
    return info.samplerate, info.channels


def resample_to(wave: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """`wave` resampled from `rate` to `target_rate` (soxr's high quality), kept in [-1, 1]."""
    if rate == target_rate:
        return np.asarray(wave, np.float32)
    out = librosa.resample(np.asarray(wave, np.float32), orig_sr=rate, target_sr=target_rate, res_type="soxr_hq")
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    """`wave` cropped or zero-padded to exactly `n` samples."""
    return np.pad(wave[:n], (0, max(0, n - len(wave))))


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
