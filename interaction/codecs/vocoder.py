"""Log-mel -> waveform with Griffin-Lim, offline and in live 200 ms pieces.

Offline decoding is librosa's Griffin-Lim (fast variant, momentum 0.99) on the linear spectrogram that
librosa's NNLS mel inversion recovers. It runs on causal frames (`center=False`), so its output is the
input signal with the same alignment: frame k's hop is samples [k*hop, (k+1)*hop).

Live decoding (`StreamingGriffinLim`) runs the same iteration on a sliding buffer: past frames keep
their phase from the previous piece (warm start), new frames start from their neighbours' phase
advanced by one hop, and only the newest piece's samples are emitted. A sample is final once every
frame overlapping it has arrived, i.e. `n_fft - hop` samples after the end of its own frame, so live
audio lags the frames by `added_latency_s` plus the compute time of one call. Its iterations run as one
jitted XLA program over every stream at once (`_refine`): the element-wise work fuses, where NumPy and
librosa would make a pass over memory per operation and recompute the overlap-add's window sum each time.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import librosa
import numpy as np

from interaction.codecs import dmel


def _linear_magnitude(logmel: np.ndarray, cfg: dmel.DMelConfig) -> np.ndarray:
    """(T, n_mels) log10 mel power -> (n_fft//2+1, T) linear magnitude (NNLS inversion)."""
    mel_power = np.power(10.0, np.asarray(logmel, np.float64)).T
    return librosa.feature.inverse.mel_to_stft(
        mel_power, sr=cfg.sample_rate, n_fft=cfg.n_fft, power=2.0, fmin=cfg.fmin, fmax=cfg.fmax
    ).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _mel_pseudo_inverse(cfg: dmel.DMelConfig) -> np.ndarray:
    basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    return np.linalg.pinv(basis)


def _linear_magnitude_fast(logmel: np.ndarray, cfg: dmel.DMelConfig) -> np.ndarray:
    """`_linear_magnitude` by the mel basis' pseudo-inverse, negatives clipped: NNLS's starting point
    without its refinement, several times cheaper (live STOI in experiments/results/vocoder.json)."""
    mel_power = np.power(10.0, np.asarray(logmel, np.float64)).T
    return np.sqrt(np.maximum(_mel_pseudo_inverse(cfg) @ mel_power, 0.0)).astype(np.float32)


_INVERSIONS = {"nnls": _linear_magnitude, "pinv": _linear_magnitude_fast}


def decode(logmel, cfg: dmel.DMelConfig, n_iter: int = 32, seed: int = 0, inversion: str = "nnls") -> np.ndarray:
    """(T, n_mels) log-mel (e.g. `dmel.dequantize(tokens)`) -> (T * hop,) float32 waveform; `inversion` as
    `StreamingGriffinLim`'s."""
    logmel = np.asarray(logmel)
    if logmel.ndim != 2 or logmel.shape[1] != cfg.n_mels:
        raise ValueError(f"expected (frames, {cfg.n_mels}) log-mel, got shape {logmel.shape}.")
    # Silent frames after the end, so that the last hop is overlapped by as many windows as any other:
    # without them the overlap-add divides its final samples by a window sum near zero (a loud click).
    tail = np.full((-(-cfg.history // cfg.hop), cfg.n_mels), cfg.log_min, logmel.dtype)
    if inversion not in _INVERSIONS:
        raise ValueError(f"inversion={inversion!r}: choose one of {sorted(_INVERSIONS)}.")
    mag = _INVERSIONS[inversion](np.concatenate([logmel, tail]), cfg)
    y = librosa.griffinlim(
        mag, n_iter=n_iter, hop_length=cfg.hop, win_length=cfg.n_fft, n_fft=cfg.n_fft,
        window="hann", center=False, random_state=seed,
    )
    return y[cfg.history : cfg.history + len(logmel) * cfg.hop].astype(np.float32)  # drop the causal left padding


@functools.lru_cache(maxsize=8)
def _inverse_window_sum(cfg: dmel.DMelConfig, count: int) -> np.ndarray:
    """1 / the squared Hann windows' sum over the overlap-add of `count` frames (1 where that sum is nearly 0,
    as librosa's istft leaves those samples)."""
    total = librosa.filters.window_sumsquare(window="hann", n_frames=count, hop_length=cfg.hop,
                                             win_length=cfg.n_fft, n_fft=cfg.n_fft, dtype=np.float32)
    nonzero = total > np.finfo(np.float32).tiny
    return np.where(nonzero, 1.0 / np.where(nonzero, total, 1.0), 1.0).astype(np.float32)


def _overlap_add(frames, hop: int):
    """(rows, T, n) frames -> (rows, n + hop * (T - 1)) samples, frame t added at t * hop."""
    count, n = frames.shape[-2:]
    length = n + hop * (count - 1)
    return sum(jnp.pad(frames[:, t], ((0, 0), (t * hop, length - n - t * hop))) for t in range(count))


@functools.partial(jax.jit, static_argnames=("hop", "n_iter"))
def _refine(mag, angles, window, inverse_window_sum, *, hop: int, n_iter: int):
    """Fast Griffin-Lim (Perraudin et al., momentum 0.99) on causal frames, as librosa's with center=False:
    (rows, T, n_freq) magnitude and unit phase -> the refined phase and the buffer's samples (rows, L)."""
    n, count = window.shape[0], mag.shape[1]

    def istft(spec):
        return _overlap_add(jnp.fft.irfft(spec, n=n, axis=-1) * window, hop) * inverse_window_sum

    def stft(y):
        return jnp.fft.rfft(jnp.stack([y[:, t * hop: t * hop + n] for t in range(count)], 1) * window, axis=-1)

    def iteration(_, carry):
        angles, prev = carry
        rebuilt = stft(istft(mag * angles))
        step = rebuilt - (0.99 / 1.99) * prev
        return step / (jnp.abs(step) + 1e-16), rebuilt

    angles, _ = jax.lax.fori_loop(0, n_iter, iteration, (angles, jnp.zeros_like(angles)))
    return angles, istft(mag * angles)


@dataclasses.dataclass
class StreamingGriffinLim:
    """Griffin-Lim over successive log-mel pieces; `push` returns exactly piece_frames * hop samples.

    The output stream is the offline signal delayed by `cfg.history` samples (`added_latency_s`).
    State (magnitude and phase of the last `context_frames`) lives in this object. With `sessions` set,
    one object renders that many streams at once, each a row of every array, in one call: a row's
    arithmetic never reads another row (`reset` starts a row's stream anew).
    """

    cfg: dmel.DMelConfig
    n_iter: int = 16
    context_frames: int | None = None  # default: 2 * ceil(n_fft / hop), enough to cover each new hop
    # mel -> linear magnitude: "nnls" (librosa's), or "pinv" (its cheap start, for many sessions)
    inversion: str = "nnls"
    sessions: int | None = None  # None: one stream, pieces (frames, n_mels); else pieces (sessions, frames, n_mels)

    def __post_init__(self):
        if self.inversion not in _INVERSIONS:
            raise ValueError(f"inversion={self.inversion!r}: choose one of {sorted(_INVERSIONS)}.")
        if self.context_frames is None:
            self.context_frames = 2 * -(-self.cfg.n_fft // self.cfg.hop)
        n_freq = self.cfg.n_fft // 2 + 1
        rows = self.sessions or 1
        # Silence before a stream's start: zero magnitude, zero phase, over the whole context.
        self._mag = np.zeros((rows, self.context_frames, n_freq), np.float32)
        self._angles = np.ones((rows, self.context_frames, n_freq), np.complex64)
        self._window = librosa.filters.get_window("hann", self.cfg.n_fft, fftbins=True).astype(np.float32)
        self._bin_advance = np.exp(2j * np.pi * np.arange(n_freq) * self.cfg.hop / self.cfg.n_fft).astype(np.complex64)

    @property
    def added_latency_s(self) -> float:
        """Delay of the emitted audio behind its frames, compute time excluded."""
        return self.cfg.history / self.cfg.sample_rate

    def reset(self, row: int | None = None) -> None:
        """Starts the stream (or, with `sessions`, the stream of `row`) anew."""
        if row is None:
            self.__post_init__()
        else:
            self._mag[row], self._angles[row] = 0.0, 1.0

    def push(self, logmel_piece) -> np.ndarray:
        piece = np.asarray(logmel_piece)
        lead = () if self.sessions is None else (self.sessions,)
        if piece.shape[:-2] != lead or piece.ndim != len(lead) + 2 or piece.shape[-1] != self.cfg.n_mels \
                or piece.shape[-2] == 0:
            raise ValueError(f"expected {'(' + str(lead[0]) + ', ' if lead else '('}frames > 0, {self.cfg.n_mels}) "
                             f"log-mel, got shape {piece.shape}.")
        frames = piece.shape[-2]
        new_mag = _INVERSIONS[self.inversion](piece.reshape(-1, self.cfg.n_mels), self.cfg)  # (n_freq, rows * frames)
        new_mag = new_mag.T.reshape(len(self._mag), frames, -1)
        # New frames start from the last known phase advanced by one hop per frame.
        new_angles = self._angles[:, -1:] * self._bin_advance ** np.arange(1, frames + 1)[:, None]
        mag = np.concatenate([self._mag, new_mag], axis=1)
        angles, y = _refine(mag, np.concatenate([self._angles, new_angles], axis=1), self._window,
                            _inverse_window_sum(self.cfg, mag.shape[1]), hop=self.cfg.hop, n_iter=self.n_iter)
        keep = self.context_frames
        self._mag, self._angles = mag[:, -keep:], np.array(angles[:, -keep:])  # a host copy `reset` can write
        # Samples of frame j's own hop sit at [j*hop, (j+1)*hop) of the buffer; emit the new hops.
        start = (mag.shape[1] - frames) * self.cfg.hop
        out = np.asarray(y[:, start : start + frames * self.cfg.hop])
        return out if lead else out[0]


def live_decoder(cfg: dmel.DMelConfig, sessions: int) -> StreamingGriffinLim:
    """The decoder live sessions hear, for `sessions` streams at once: the pseudo-inverse mel inversion
    and 8 iterations, several times cheaper than NNLS and 16 for a small loss of intelligibility
    (`experiments/benchmark_vocoder.py` measures both). The benchmark renders the model's output with it
    too, so that what it scores is what a live user hears."""
    return StreamingGriffinLim(cfg, n_iter=8, inversion="pinv", sessions=sessions)

