"""The micro-turn block (docs/design.md): a fixed number of decoder positions per stream, the same in every block.

    [ input: user-audio groups | video patches | text-in slots ][ output: text-out groups | audio-out groups ]

Block m's input segment is what arrived during micro-turn m; its output segment is what the model
plays during micro-turn m + 1 (it is emitted at the end of m, having seen m's input and nothing later).

A position may carry several frames or text slots (`user_audio_group`, `audio_group`, `text_group`): the
data keep one row per frame and per slot (`batch_spec`), the model groups them. Streaming, every position of
the output segment is one sequential pass of the decoder, so the groups set the passes per micro-turn
(`passes`); 1 everywhere is one position per frame and per slot.
"""
from __future__ import annotations

import dataclasses
import enum

import numpy as np

from interaction.codecs import dmel, pitch, text, video
from interaction.data import listening


# With `end_mark`, the byte that ends the last word of each answer in the model's text stream: its turn's end,
# said in bytes a step before its speaking state falls silent (`pipeline.conversation_features`).
END_MARK = "."
END_MARK_TOKEN = text.encode(END_MARK)[0]


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
    user_audio_group: int = 1  # user-audio frames per position
    audio_group: int = 1  # model-audio frames per position: the flow head draws them as one patch
    text_group: int = 1  # text-out slots per position: a depth head reads them out one after another
    pitch: bool = False  # user_pitch holds the user's pitch (`codecs.pitch`) for the model's pitch stem; else zeros
    end_mark: bool = False  # the model's text stream ends each answer's last word with `END_MARK`

    def __post_init__(self):
        if self.video_size % video.PATCH:
            raise ValueError(f"video_size={self.video_size} must be a multiple of {video.PATCH}.")
        if self.text_in_slots < 1 or self.text_out_slots < 2:
            raise ValueError("a micro-turn needs at least one text-in slot and two text-out slots (the speaking "
                             f"state and a byte); got text_in_slots={self.text_in_slots}, "
                             f"text_out_slots={self.text_out_slots}.")
        for name, size, of in (("user_audio_group", self.user_audio_group, "frames"),
                               ("audio_group", self.audio_group, "frames"),
                               ("text_group", self.text_group, "text_out_slots")):
            whole = getattr(self, of)
            if size < 1 or whole % size:
                raise ValueError(f"{name}={size} must divide the micro-turn's {whole} {of} (1 to {whole}); "
                                 f"choose one of {[k for k in range(1, whole + 1) if whole % k == 0]}.")

    @property
    def frames(self) -> int:
        return self.dmel.frames_per_microturn

    @property
    def patches(self) -> int:
        return (self.video_size // video.PATCH) ** 2

    @property
    def user_positions(self) -> int:
        return self.frames // self.user_audio_group

    @property
    def text_positions(self) -> int:
        return self.text_out_slots // self.text_group

    @property
    def audio_positions(self) -> int:
        return self.frames // self.audio_group

    @property
    def input_len(self) -> int:
        return self.user_positions + self.patches + self.text_in_slots

    @property
    def output_len(self) -> int:
        return self.text_positions + self.audio_positions

    @property
    def block_len(self) -> int:
        return self.input_len + self.output_len

    @property
    def passes(self) -> int:
        """Sequential decoder passes of a streaming micro-turn: the input segment with the first text position
        (whose input, the last text group, is known when the turn begins), then each other output position."""
        return self.output_len

    def stream_ids(self) -> np.ndarray:
        """(block_len,) int32: the Stream of every position of a block, in layout order."""
        counts = [(Stream.USER_AUDIO, self.user_positions), (Stream.VIDEO, self.patches),
                  (Stream.TEXT_IN, self.text_in_slots), (Stream.TEXT_OUT, self.text_positions),
                  (Stream.MODEL_AUDIO, self.audio_positions)]
        return np.concatenate([np.full(n, int(s), np.int32) for s, n in counts])

    def audio_patches(self, frames):
        """(..., F, n_mels) model-audio frames -> (..., audio_positions, audio_group * n_mels): one patch per
        position, what the flow head draws."""
        return frames.reshape(*frames.shape[:-2], self.audio_positions, self.audio_group * frames.shape[-1])

    def audio_frames(self, patches):
        """The inverse of `audio_patches`."""
        return patches.reshape(*patches.shape[:-2], self.frames, patches.shape[-1] // self.audio_group)

    # ------------------------------------------------------------ the input schema: every batch and step input

    def batch_spec(self, batch: int, window: int) -> dict[str, tuple[tuple[int, ...], type]]:
        """name -> (shape, dtype) of every field of a training batch: `batch` windows of `window` micro-turns
        (what the pipeline yields; the train step, its compiled plan and the benchmarks' batches derive
        from this). Per micro-turn m of a window:

          user_audio  (F, 80) int32    dMel tokens of what the model hears in micro-turn m
          user_pitch  (F, 3) float32   the same frames' pitch as numbers (`codecs.pitch.features`) where
                                       `pitch` is set; zeros, not computed, where it is not
          video       (P, 40, 40, 3) uint8, video_new () bool: patches of the latest frame; whether it is new
          text_in     (S_in,) int32    typed text and reasoner results (PAD in empty slots)
          text_out    (S_out,) int32   the model's text for micro-turn m + 1: slot 0 its speaking state
                                       (VOICED, or PAD when silent), then its words' bytes
          word_onset  (S_out,) int32   at the slot of a word's first byte in `text_out`, the frame of micro-turn
                                       m + 1 in which the word begins; -1 at every other slot
          model_mel   (F, 80) float32  log-mel of the model's audio in micro-turn m + 1 (the flow target;
                                       exact silence in a silent micro-turn, as the step plays there)
          model_audio (F, 80) int32    the same as dMel tokens (what is fed back)
          listen      (K,) float32     listening targets after micro-turn m (`listening.NAMES`)
          user_text   (F,) int32       the user's words as bytes, each in the micro-turn after the one it
                                       ends in (PAD elsewhere): the transcript the user-audio slots read out
          text_alone  (S_out,) int32   the model's words of the conversation as text alone, packed: rows as
                                       `text_out`'s (slot 0 VOICED) with every slot a byte, from the
                                       micro-turn its first word is played in, PAD after the last
                                       (`pipeline.packed_words`); what the text-alone loss reads
          time_index  () int32         absolute micro-turn index (positions are absolute time)
          valid       () bool          False on padding past the end of a short conversation
          trained     () bool          whether this micro-turn's outputs are trained (`pipeline.window`)
        """
        lead = (batch, window)
        frames = (*lead, self.frames, self.dmel.n_mels)
        return {"user_audio": (frames, np.int32), "user_pitch": ((*lead, self.frames, pitch.FEATURES), np.float32),
                "video": ((*lead, self.patches, video.PATCH, video.PATCH, 3), np.uint8),
                "video_new": (lead, np.bool_), "text_in": ((*lead, self.text_in_slots), np.int32),
                "text_out": ((*lead, self.text_out_slots), np.int32),
                "word_onset": ((*lead, self.text_out_slots), np.int32), "model_mel": (frames, np.float32),
                "model_audio": (frames, np.int32), "listen": ((*lead, len(listening.NAMES)), np.float32),
                "user_text": ((*lead, self.frames), np.int32),
                "text_alone": ((*lead, self.text_out_slots), np.int32), "time_index": (lead, np.int32),
                "valid": (lead, np.bool_), "trained": (lead, np.bool_)}

    def step_spec(self, sessions: int) -> dict[str, tuple[tuple[int, ...], type]]:
        """name -> (shape, dtype) of one micro-turn of the streaming step's inputs for `sessions` sessions:
        the input-segment fields of `batch_spec`, without the window axis."""
        return {name: ((sessions, *shape[2:]), dtype) for name, (shape, dtype) in self.batch_spec(1, 1).items()
                if name in STEP_INPUTS}


# what the streaming step reads of a micro-turn
STEP_INPUTS = ("user_audio", "user_pitch", "video", "video_new", "text_in")
