"""Offline speech recognition with word times, for scoring what the model said.

PocketSphinx is the only offline recognizer on PyPI whose wheel ships its English model (acoustic model,
language model, dictionary) and that gives word times; Whisper's wheels download their weights at run
time, which this project cannot rely on. It is far from Whisper's accuracy, so the benchmark measures its
word error rate on the corpus' espeak speech and reports it as a calibration figure beside the scores.
"""
from __future__ import annotations

import functools
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
    def words(self, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Word]:
        """Recognized words (start_s, end_s, lower-case text) in time order."""
        ...


class PocketSphinx:
    """PocketSphinx with its bundled US English model; one decoder per instance, created on first use."""

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
