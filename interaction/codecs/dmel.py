"""dMel: discretised log-mel audio tokens (one token per frame = 80 channel bins of 16 levels).

Waveform (16 kHz) -> power spectrogram on *causal* frames -> 80 mel channels (80-7600 Hz) -> log10,
clipped to [-7, 2] -> 16 uniform bins per channel. Frame k summarises the `n_fft` samples that end at
sample (k + 1) * hop, so a frame is known as soon as its hop of audio has arrived: the codec streams
with no look-ahead, and N samples give exactly N / hop frames.

Every array function works on NumPy and on JAX arrays alike (the array module follows the input), so
the grain pipeline runs it in NumPy and the model runs the same code under `jax.jit`.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import librosa
import numpy as np

from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.codecs import audio


@dataclasses.dataclass(frozen=True)
class DMelConfig:
    """Codec parameters. `frame_rate` is frames per second: 80 (paper) or 40 (CPU default)."""

    frame_rate: int = 40
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 1024
    n_mels: int = 80
    fmin: float = 80.0
    fmax: float = 7600.0
    log_min: float = -7.0
    log_max: float = 2.0
    n_bins: int = 16

    def __post_init__(self):
        if self.frame_rate <= 0 or self.sample_rate % self.frame_rate:
            raise ValueError(f"frame_rate={self.frame_rate} must divide sample_rate={self.sample_rate}.")
        per_turn = self.frame_rate * MICROTURN_SECONDS
        if abs(per_turn - round(per_turn)) > 1e-9:
            raise ValueError(
                f"frame_rate={self.frame_rate} gives {per_turn:g} frames per 200 ms micro-turn; "
                "a micro-turn must hold a whole number of frames (use a multiple of 5, e.g. 40 or 80)."
            )
        if self.n_fft < self.hop:
            raise ValueError(f"n_fft={self.n_fft} is shorter than the hop {self.hop}: frames would leave gaps.")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= {self.sample_rate / 2}, got {self.fmin}, {self.fmax}.")
        if self.log_min >= self.log_max or self.n_bins < 2:
            raise ValueError("need log_min < log_max and n_bins >= 2.")

    @property
    def hop(self) -> int:
        return self.sample_rate // self.frame_rate

    @property
    def history(self) -> int:
        """Samples before a chunk that its first frame looks at (n_fft - hop)."""
        return self.n_fft - self.hop

    @property
    def frames_per_microturn(self) -> int:
        return round(self.frame_rate * MICROTURN_SECONDS)

    @property
    def bin_width(self) -> float:
        return (self.log_max - self.log_min) / self.n_bins


def _xp(x):
    return jnp if isinstance(x, jax.Array) else np


@functools.cache
def mel_filterbank(cfg: DMelConfig) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) Slaney mel filterbank, the one librosa's inverse expects."""
    fb = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    return np.ascontiguousarray(fb.T.astype(np.float32))


@functools.cache
def _window(n_fft: int) -> np.ndarray:
    return np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann


def causal_frames(wave, cfg: DMelConfig, history=None):
    """(..., N) samples -> (..., N // hop, n_fft) windowed frames; frame k ends at sample (k+1)*hop.

    `history` holds the `cfg.history` samples that precede `wave` (zeros when None: start of a stream).
    """
    xp = _xp(wave)
    n = wave.shape[-1]
    if n % cfg.hop:
        raise ValueError(f"{n} samples is not a whole number of {cfg.hop}-sample hops.")
    if history is None:
        history = xp.zeros(wave.shape[:-1] + (cfg.history,), wave.dtype)
    padded = xp.concatenate([history.astype(wave.dtype), wave], axis=-1)
    idx = np.arange(n // cfg.hop)[:, None] * cfg.hop + np.arange(cfg.n_fft)[None, :]
    return padded[..., idx] * _window(cfg.n_fft)


def log_mel(wave, cfg: DMelConfig, history=None):
    """(..., N) float waveform -> (..., N // hop, n_mels) log10 mel power, clipped to [log_min, log_max]."""
    xp = _xp(wave)
    frames = causal_frames(wave, cfg, history)
    spec = xp.fft.rfft(frames, axis=-1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = power @ mel_filterbank(cfg)
    return xp.clip(xp.log10(xp.maximum(mel, 10.0**cfg.log_min)), cfg.log_min, cfg.log_max)


def quantize(logmel, cfg: DMelConfig):
    """log-mel -> int32 bin indices in [0, n_bins)."""
    xp = _xp(logmel)
    idx = xp.floor((logmel - cfg.log_min) / cfg.bin_width)
    return xp.clip(idx, 0, cfg.n_bins - 1).astype(np.int32)


def dequantize(tokens, cfg: DMelConfig):
    """Bin indices -> log-mel at the bin centres (error at most half a bin inside the range)."""
    return cfg.log_min + (tokens.astype(np.float32) + 0.5) * cfg.bin_width


def levels(tokens, cfg: DMelConfig):
    """Bin indices (of the caller's float dtype) -> numbers in [-1, 1]: bin 0 is -1, the top bin 1."""
    return tokens * (2.0 / (cfg.n_bins - 1)) - 1.0


def tokens_from_wave(wave, cfg: DMelConfig, history=None):
    """The jit-able encode path: waveform -> dMel tokens, no input checks."""
    return quantize(log_mel(wave, cfg, history), cfg)


@functools.partial(jax.jit, static_argnums=1)
def _encode_jit(wave, cfg):
    return tokens_from_wave(wave, cfg)


def encode(wave, sample_rate: int, cfg: DMelConfig = DMelConfig()) -> jax.Array:
    """Checked encode of whole recordings: (..., N) audio at `sample_rate` -> (..., frames, n_mels) tokens.

    N is padded with zeros to a whole number of hops. Raises ValueError for a wrong sample rate, empty,
    non-finite, out-of-range or clipped audio, and for audio that the codec's log range clips to
    nothing (every value at the floor: silent or scaled far too low).
    """
    wave = audio.as_float_waveform(wave, sample_rate, cfg.sample_rate)
    pad = (-wave.shape[-1]) % cfg.hop
    if pad:
        wave = np.pad(wave, [(0, 0)] * (wave.ndim - 1) + [(0, pad)])
    logmel = np.asarray(log_mel(wave, cfg))
    if np.all(logmel <= cfg.log_min):
        raise ValueError(
            f"audio (peak {np.max(np.abs(wave)):.3g}) is below the codec floor of 10^{cfg.log_min:g} mel power "
            "in every frame, so it encodes to nothing: it is silent or scaled far too low."
        )
    return _encode_jit(jnp.asarray(wave), cfg)
