"""The micro-turn block (DESIGN §3): a fixed number of slots per stream, the same in every block.

    [ input: user-audio frames | video patches | text-in slots ][ output: text-out slots | audio-out frames ]

Block m's input segment is what arrived during micro-turn m; its output segment is what the model
plays during micro-turn m + 1 (it is emitted at the end of m, having seen m's input and nothing later).
"""
from __future__ import annotations

import dataclasses
import enum

import numpy as np

from interaction.codecs import dmel, video


class Stream(enum.IntEnum):
    USER_AUDIO = 0
    VIDEO = 1
    TEXT_IN = 2
    TEXT_OUT = 3
    MODEL_AUDIO = 4


@dataclasses.dataclass(frozen=True)
class MicroTurnLayout:
    dmel: dmel.DMelConfig = dmel.DMelConfig()
    video_size: int = 80  # square frames; (video_size / 40)^2 patches per micro-turn
    text_in_slots: int = 8
    text_out_slots: int = 8

    def __post_init__(self):
        if self.video_size % video.PATCH:
            raise ValueError(f"video_size={self.video_size} must be a multiple of {video.PATCH}.")
        if self.text_in_slots < 1 or self.text_out_slots < 2:
            raise ValueError("a micro-turn needs at least one text-in slot and two text-out slots (the speaking "
                             f"state and a byte); got text_in_slots={self.text_in_slots}, "
                             f"text_out_slots={self.text_out_slots}.")

    @property
    def frames(self) -> int:
        return self.dmel.frames_per_microturn

    @property
    def patches(self) -> int:
        return (self.video_size // video.PATCH) ** 2

    @property
    def input_len(self) -> int:
        return self.frames + self.patches + self.text_in_slots

    @property
    def output_len(self) -> int:
        return self.text_out_slots + self.frames

    @property
    def block_len(self) -> int:
        return self.input_len + self.output_len

    def stream_ids(self) -> np.ndarray:
        """(block_len,) int32: the Stream of every slot of a block, in layout order."""
        counts = [(Stream.USER_AUDIO, self.frames), (Stream.VIDEO, self.patches), (Stream.TEXT_IN, self.text_in_slots),
                  (Stream.TEXT_OUT, self.text_out_slots), (Stream.MODEL_AUDIO, self.frames)]
        return np.concatenate([np.full(n, int(s), np.int32) for s, n in counts])
