"""One synthetic duplex conversation: both audio channels, video, aligned text and labelled events.

Serialised as one msgpack record (PCM16 audio, uint8 video) so that an ArrayRecord file gives random
access to conversations and equal inputs always give equal bytes.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import numpy as np

from interaction import SAMPLE_RATE
from interaction.codecs import audio

Word = tuple[float, float, str]  # (start_s, end_s, text)

# Every labelled event kind, in the order a timeline lists them.
EVENT_KINDS = (
    "user_turn", "model_turn", "pause", "user_backchannel", "interruption", "model_stop", "side_talk",
    "background_speech", "model_backchannel", "visual_cue", "model_remark", "translation", "timer_request",
    "timer_due", "delegation", "false_start", "false_yield",
)


@dataclasses.dataclass
class Event:
    """A labelled moment or span. `kind` names it (one of EVENT_KINDS); `data` is JSON-able."""

    kind: str
    start: float
    end: float
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class TextItem:
    """Text entering a text stream at `time`: `channel` is 'typed' or 'result' (text-in) or 'delegate'
    (the model's delegation request, in its text-out stream)."""

    time: float
    channel: str
    text: str


@dataclasses.dataclass
class Conversation:
    id: str
    kind: str
    seed: int
    user_audio: np.ndarray  # (N,) float32, 16 kHz: what the model hears (user, background, noise)
    model_audio: np.ndarray  # (N,) float32, 16 kHz: what the model says
    video: np.ndarray  # (F, H, W, 3) uint8
    video_fps: float
    user_words: list[Word]
    model_words: list[Word]
    text_items: list[TextItem]
    events: list[Event]
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.user_audio) / SAMPLE_RATE

    def events_of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def to_bytes(self) -> bytes:
        record = {
            "id": self.id, "kind": self.kind, "seed": self.seed, "sample_rate": SAMPLE_RATE,
            "user_pcm": audio.to_pcm16(self.user_audio).tobytes(),
            "model_pcm": audio.to_pcm16(self.model_audio).tobytes(),
            "video": np.ascontiguousarray(self.video, np.uint8).tobytes(),
            "video_shape": list(self.video.shape), "video_fps": self.video_fps,
            "user_words": [list(w) for w in self.user_words],
            "model_words": [list(w) for w in self.model_words],
            "text_items": [[t.time, t.channel, t.text] for t in self.text_items],
            "events": [[e.kind, e.start, e.end, e.data] for e in self.events],
            "meta": self.meta,
        }
        return msgpack.packb(record, use_bin_type=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Conversation":
        r = msgpack.unpackb(data, raw=False)
        if r["sample_rate"] != SAMPLE_RATE:
            raise ValueError(f"record {r['id']} is at {r['sample_rate']} Hz, expected {SAMPLE_RATE} Hz.")
        return cls(
            id=r["id"], kind=r["kind"], seed=r["seed"],
            user_audio=audio.from_pcm16(np.frombuffer(r["user_pcm"], np.int16)),
            model_audio=audio.from_pcm16(np.frombuffer(r["model_pcm"], np.int16)),
            video=np.frombuffer(r["video"], np.uint8).reshape(r["video_shape"]),
            video_fps=r["video_fps"],
            user_words=[tuple(w) for w in r["user_words"]],
            model_words=[tuple(w) for w in r["model_words"]],
            text_items=[TextItem(*t) for t in r["text_items"]],
            events=[Event(*e) for e in r["events"]],
            meta=r["meta"],
        )
