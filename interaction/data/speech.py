"""espeak-ng speech with word timings, through libespeak-ng in-process.

Calling the library (not the command) gives two things the corpus needs: the start sample of every
word (espeak's WORD events), and speed (no process per utterance). Output is resampled from espeak's
22050 Hz to 16 kHz.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import os
import re

import numpy as np
from scipy.signal import resample_poly

from interaction import SAMPLE_RATE

INSTALL_HINT = "espeak-ng is not installed: install the system package with `apt-get install espeak-ng`."

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class EspeakMissingError(RuntimeError):
    """Raised (with a one-line install hint) when libespeak-ng cannot be loaded."""


@dataclasses.dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: language, variant (e.g. 'f3', 'm3'), words per minute and pitch (0-99)."""

    language: str
    variant: str
    rate: int = 165
    pitch: int = 50

    @property
    def name(self) -> str:
        return f"{self.language}+{self.variant}"


@dataclasses.dataclass(frozen=True)
class Utterance:
    """16 kHz float32 audio (leading/trailing silence trimmed) and its words as (start_s, end_s, word)."""

    audio: np.ndarray
    words: tuple[tuple[float, float, str], ...]

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


class _Engine:
    """The process-wide espeak-ng state (the library is a singleton)."""

    def __init__(self, lib_path: str | None):
        if lib_path is None:
            raise EspeakMissingError(INSTALL_HINT)
        try:
            self.lib = ctypes.CDLL(lib_path)
        except OSError as err:
            raise EspeakMissingError(INSTALL_HINT) from err
        self.rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_DONT_EXIT)
        if self.rate <= 0:
            raise EspeakMissingError(INSTALL_HINT + " (libespeak-ng found, but its data did not load)")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, int]] = []
        self._callback = _Callback(self._on_audio)  # keep a reference: the library holds a raw pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.data_dir = _data_dir()

    def _on_audio(self, wav, n, events):
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type == _EVENT_WORD and e.length > 0:
                self._events.append((e.text_position, e.length, e.sample))
            i += 1
        return 0

    def synthesize(self, text: str, voice: Voice) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        if self.lib.espeak_SetVoiceByName(voice.language.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice for language {voice.language!r} (see `espeak-ng --voices`).")
        if self.data_dir and not os.path.exists(os.path.join(self.data_dir, "voices", "!v", voice.variant)):
            raise ValueError(f"espeak-ng has no voice variant {voice.variant!r} (see `espeak-ng --voices=variant`).")
        self.lib.espeak_SetVoiceByName(voice.name.encode())
        self.lib.espeak_SetParameter(_PARAM_RATE, int(voice.rate), 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, int(voice.pitch), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        err = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        if err != 0:
            raise RuntimeError(f"espeak-ng failed (error {err}) on {text!r}")
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return pcm, list(self._events)


def _data_dir() -> str | None:
    for d in ("/usr/lib/x86_64-linux-gnu/espeak-ng-data", "/usr/lib/aarch64-linux-gnu/espeak-ng-data",
              "/usr/share/espeak-ng-data", "/usr/local/share/espeak-ng-data"):
        if os.path.isdir(d):
            return d
    return None


@functools.lru_cache(maxsize=1)
def _engine() -> _Engine:
    # ESPEAK_NG_LIBRARY points at a libespeak-ng outside the linker's search path.
    return _Engine(os.environ.get("ESPEAK_NG_LIBRARY") or ctypes.util.find_library("espeak-ng"))


def check_available() -> None:
    """Raises EspeakMissingError with the install hint if espeak-ng cannot be used."""
    _engine()


_PUNCTUATION = " ,.;:!?¿¡\"'"


def synthesize(text: str, voice: Voice) -> Utterance:
    """Speaks `text`; word times are relative to the start of the (trimmed) audio."""
    engine = _engine()
    pcm, events = engine.synthesize(text, voice)
    wave = resample_poly(pcm.astype(np.float32) / 32768.0, SAMPLE_RATE, engine.rate).astype(np.float32)
    scale = SAMPLE_RATE / engine.rate
    loud = np.flatnonzero(np.abs(wave) > 1e-3)
    if loud.size == 0:
        return Utterance(np.zeros(0, np.float32), ())
    lo, hi = int(loud[0]), int(loud[-1]) + 1
    wave = wave[lo:hi]
    # espeak reports one WORD event per spoken word, so "1632" gives several: keep the first per token.
    tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    firsts: dict[int, int] = {}
    for pos, _, sample in events:  # positions count characters from 1
        tok = next((i for i, (a, b) in enumerate(tokens) if a <= pos - 1 < b), None)
        if tok is not None and tok not in firsts:
            firsts[tok] = min(max(int(sample * scale) - lo, 0), len(wave))
    # Some short words get no event of their own ("am" in "I am watching" after a comma, "of" in "most of it"):
    # they are spoken inside the span of the word before them (the first event's, if they come before it), so
    # that span is shared among its words by their length. Dropping them would leave the text without words
    # that the audio says.
    bare = [text[a:b].strip(_PUNCTUATION) for a, b in tokens]
    order = sorted(firsts)
    words = []
    for j, tok in enumerate(order):
        said = [w for w in bare[0 if j == 0 else tok : order[j + 1] if j + 1 < len(order) else len(tokens)] if w]
        start = 0 if j == 0 and any(bare[:tok]) else firsts[tok]
        stop = firsts[order[j + 1]] if j + 1 < len(order) else len(wave)
        voiced = np.flatnonzero(np.abs(wave[start:stop]) > 1e-3)
        end = max(start + (int(voiced[-1]) + 1 if voiced.size else 0), start + 1)
        shares = np.cumsum([0] + [len(w) + 1 for w in said])
        edges = [start + (end - start) * int(c) // int(shares[-1]) for c in shares]
        words += [(a / SAMPLE_RATE, max(b, a + 1) / SAMPLE_RATE, w) for w, a, b in zip(said, edges, edges[1:])]
    return Utterance(wave, tuple(words))
