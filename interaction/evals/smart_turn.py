"""Pipecat's Smart Turn v3.2 end-of-turn model, run the way Pipecat runs it, for the cascade baseline.

The ONNX file ships inside the pipecat-ai wheel; it is found there without importing pipecat (whose
import pulls in much of its framework). The input features are Whisper's log-mel front end over the last
8 s of the turn, left-padded with zeros, as the model was trained with; they are computed here in numpy.
"""
from __future__ import annotations

import functools
import importlib.util
import pathlib
from collections.abc import Sequence

import librosa
import numpy as np
import onnxruntime as ort

from interaction import SAMPLE_RATE
from interaction.evals.vad import check_wave

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
INSTALL_HINT = (f"Smart Turn's model ({MODEL_FILE}) ships in the pipecat-ai wheel, which is not installed: "
                "`pip install pipecat-ai`.")
WINDOW_S = 8  # the model hears the last 8 s of the turn
N_FFT, HOP, N_MELS = 400, 160, 80
_N = WINDOW_S * SAMPLE_RATE
_HANN = np.hanning(N_FFT + 1)[:-1]  # periodic, as torch.hann_window
# Whisper's filters are librosa's (Slaney scale and area normalisation), kept (bins, mels) for the product.
_MEL = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, dtype=np.float64).T


def model_path() -> pathlib.Path:
    """The ONNX file inside the installed pipecat package, or FileNotFoundError saying how to get it."""
    spec = importlib.util.find_spec("pipecat")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = pathlib.Path(root) / "audio" / "turn" / "smart_turn" / "data" / MODEL_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(INSTALL_HINT)


def window(wave: np.ndarray) -> np.ndarray:
    """The last 8 s of `wave`, zero-padded on the left: the turn's end always sits at the window's end."""
    out = np.zeros(_N, np.float32)
    tail = wave[-_N:]
    if len(tail):
        out[-len(tail):] = tail
    return out


def log_mel(waves: np.ndarray) -> np.ndarray:
    """Whisper log-mel features (batch, 80, 800) of 8 s windows (batch, 128000).

    Each window is first normalised to zero mean and unit variance in float32, as Pipecat does
    (the transformers feature extractor's do_normalize); frames are centred with reflect padding.
    """
    x = np.asarray(waves, np.float32)
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + np.float32(1e-7))
    padded = np.pad(x.astype(np.float64), ((0, 0), (N_FFT // 2, N_FFT // 2)), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=-1)[:, ::HOP]
    power = np.abs(np.fft.rfft(frames * _HANN, axis=-1)) ** 2  # (batch, frames, bins)
    mel = np.log10(np.maximum(power @ _MEL, 1e-10))[:, :-1]  # Whisper drops the last frame
    mel = np.maximum(mel, mel.max(axis=(1, 2), keepdims=True) - 8.0)
    return ((mel + 4.0) / 4.0).transpose(0, 2, 1).astype(np.float32)


class SmartTurn:
    """P(turn complete) from the audio of the user's turn so far; the model loads on first use.

    One CPU thread by default, sequential, as Pipecat's analyzer runs it: evaluation runs beside other work.
    """

    def __init__(self, path: str | pathlib.Path | None = None, threads: int = 1, batch_size: int = 8):
        self._path = path
        self.threads = threads
        self.batch_size = batch_size

    @functools.cached_property
    def _session(self) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = self.threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(self._path or model_path()), sess_options=options,
                                    providers=["CPUExecutionProvider"])

    def features(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """The model's input (80, 800) for the turn audio `wave`."""
        return log_mel(window(check_wave(wave, sample_rate, "Smart Turn input"))[None])[0]

    def probability(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
        """P(turn complete) for the turn so far (its last 8 s are used)."""
        return float(self.probabilities([wave], sample_rate)[0])

    def probabilities(self, waves: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """P(turn complete) of each turn, in batches (the graph takes any batch size)."""
        out = np.zeros(len(waves))
        for i in range(0, len(waves), self.batch_size):
            batch = np.stack([window(check_wave(w, sample_rate, "Smart Turn input"))
                              for w in waves[i: i + self.batch_size]])
            out[i: i + len(batch)] = self._session.run(None, {"input_features": log_mel(batch)})[0].reshape(-1)
        return out
