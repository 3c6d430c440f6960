"""Grain pipeline: conversations -> fixed-shape windows of micro-turn blocks, shuffled and batched.

Each element is a dict of arrays with a leading window axis of `window` micro-turns: the fields of
`MicroTurnLayout.batch_spec`, the one schema of a batch. Outputs are trained (`trained`) where valid, except
a voiced micro-turn among the window's first `burn_in`: there the window does not yet show why the model
speaks (an utterance begun before it, a question it did not hear), so those outputs are not trained (their
listening targets are), while silence is: with little heard, the model learns to wait. Nor is the model's
speech in a false start (`Script.false_start`): it is heard, and only the stop that follows is trained; nor its
silence in a false yield (`Script.false_yield`), where only the resumption that follows is.
Later in the window every output is trained, the ends of utterances longer than a window among them.
Text enters a stream at the micro-turn its time falls in; when more tokens arrive than a micro-turn has
slots, the rest waits for the next micro-turn (nothing is dropped, order is kept).
"""
from __future__ import annotations

import dataclasses
import os

import grain
import numpy as np

from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.codecs import dmel, pitch, text, video
from interaction.data.conversation import Conversation
from interaction.data import listening
from interaction.data.layout import END_MARK, MicroTurnLayout

_TEXT_CHANNELS = {"typed": (text.Special.TYPED, text.Special.TYPED_END),
                  "result": (text.Special.RESULT, text.Special.RESULT_END),
                  "delegate": (text.Special.DELEGATE, text.Special.DELEGATE_END)}


class SlotQueue:
    """Tokens waiting for a text stream's fixed slots: each micro-turn takes up to `slots` of them (PAD
    after), and the rest spill into later micro-turns. Used offline here and live by the reasoner runtime."""

    def __init__(self, slots: int):
        self.slots = slots
        self._tokens: list[int] = []

    def push(self, tokens) -> None:
        self._tokens.extend(int(t) for t in tokens)

    def take(self) -> np.ndarray:
        out = np.full(self.slots, text.Special.PAD, np.int32)
        head, self._tokens = self._tokens[: self.slots], self._tokens[self.slots:]
        out[: len(head)] = head
        return out


def _text_slots(items: list[tuple[float, list[int]]], n_turns: int, slots: int) -> np.ndarray:
    """Lays timed token runs into (n_turns, slots), spilling into later micro-turns when full."""
    queue = SlotQueue(slots)
    items = sorted(items, key=lambda x: x[0])
    rows, k = [], 0
    for m in range(n_turns):
        while k < len(items) and listening.turn_of(items[k][0]) <= m:
            queue.push(items[k][1])
            k += 1
        rows.append(queue.take())
    return np.stack(rows)


def word_onsets(items: list[tuple[float, list[int]]], n_turns: int, slots: int, frames: int) -> np.ndarray:
    """(n_turns, slots) for the model's text stream's timed token runs `items` laid out as `_text_slots` lays them,
    the frame of its micro-turn (0..frames - 1) in which a word begins, at the slot of its first byte; -1 at every
    other slot. A run that opens with a byte is a word (a delegation request opens with its mark). A word whose
    bytes spill into a later micro-turn than the one it begins in begins at that one's frame 0."""
    marks = [(t, [i + 1 if run[0] >= text.NUM_SPECIAL else 0] + [0] * (len(run) - 1))
             for i, (t, run) in enumerate(items)]
    placed = _text_slots(marks, n_turns, slots)
    out = np.full(placed.shape, -1, np.int32)
    row, slot = np.nonzero(placed)
    begins = np.asarray([items[i - 1][0] for i in placed[row, slot]], np.float64)
    per_frame = MICROTURN_SECONDS / frames
    out[row, slot] = np.clip(np.floor((begins - row * MICROTURN_SECONDS) / per_frame + 1e-6), 0, frames - 1)
    return out


def packed_words(words: list[tuple[float, str]], n_rows: int, slots: int) -> np.ndarray:
    """(n_rows, slots) the model's timed `words` (start, word), each followed by a space, as text alone: rows as
    `text_out`'s, slot 0 VOICED and every other slot a byte, from the micro-turn its first word is played in,
    PAD after the last (never round again, which a window could copy from). Where the stream spreads a word's
    bytes over its time, here every slot holds one: the text-alone loss sees several times the stream's bytes
    in a row of positions (`model.text_alone_logits`)."""
    out = np.full((n_rows, slots), text.Special.PAD, np.int32)
    flat = [t for _, w in words for t in text.encode(w + " ")]
    if not flat or n_rows < 1:
        return out
    start = min(max(listening.turn_of(words[0][0]) - 1, 0), n_rows - 1)  # block m plays micro-turn m + 1
    per_row = slots - 1
    flat = np.asarray(flat[: (n_rows - start) * per_row], np.int32)  # what fits before the last row
    rows = -(-len(flat) // per_row)
    out[start : start + rows, 0] = text.Special.VOICED
    out[start : start + rows, 1:] = np.pad(flat, (0, rows * per_row - len(flat)),
                                           constant_values=text.Special.PAD).reshape(rows, per_row)
    return out


def end_marked(words: list[tuple[float, float, str]], voiced: np.ndarray) -> list[tuple[float, float, str]]:
    """The model's timed `words` (start, end, word), sorted, with `END_MARK` after the last word before its
    speaking state (`voiced`, per micro-turn) falls silent: the end of an answer, said in bytes. Not where the
    answer is cut (an interruption's stop, a false start's or a false yield's): nothing said before the cut could
    know of it, and `Script.cut_model` ends the cut word on a micro-turn's edge, where no spoken word ends."""
    out = []
    for i, (a, b, w) in enumerate(words):
        last = i + 1 == len(words) or not voiced[listening.turn_of(a) : listening.turn_of(words[i + 1][0]) + 1].all()
        cut = abs(b / MICROTURN_SECONDS - round(b / MICROTURN_SECONDS)) < 1e-6
        out.append((a, b, w + END_MARK if last and not cut else w))
    return out


def turns_of(samples: int) -> int:
    """Micro-turns that hold `samples` of audio (the last one zero-padded), at least two: block m's output
    is played in micro-turn m + 1, so a stream of n micro-turns runs n - 1 blocks."""
    return max(2, -(-samples // round(MICROTURN_SECONDS * SAMPLE_RATE)))


def stream_inputs(wave: np.ndarray, layout: MicroTurnLayout, *, video_frames: np.ndarray | None = None,
                  video_fps: float = 1.0 / MICROTURN_SECONDS, text_in: list[tuple[float, list[int]]] = ()
                  ) -> dict[str, np.ndarray]:
    """What the model hears, sees and reads in each micro-turn of a 16 kHz waveform: the step's inputs
    (`streaming.INPUTS`) for `turns_of(len(wave)) - 1` blocks. The audio is zero-padded to whole micro-turns.
    Without `video_frames` the camera is off (no patches, never new), as a live session without video.
    `text_in` holds timed token runs (typed text, reasoner results). The one path from audio to model
    inputs: the training corpus and any outside recording (a benchmark's input.wav) both take it."""
    per_turn = round(MICROTURN_SECONDS * SAMPLE_RATE)
    n_turns = turns_of(len(wave))
    m = n_turns - 1
    f = layout.frames
    padded = np.zeros(n_turns * per_turn, np.float32)
    padded[: len(wave)] = wave
    user_tokens = dmel.tokens_from_wave(padded, layout.dmel).reshape(n_turns, f, layout.dmel.n_mels)
    user_pitch = (pitch.features(padded, layout.dmel) if layout.pitch else
                  np.zeros((len(padded) // layout.dmel.hop, pitch.FEATURES), np.float32)).reshape(n_turns, f, -1)
    if video_frames is None:
        patches = np.zeros((m, layout.patches, video.PATCH, video.PATCH, 3), np.uint8)
        new = np.zeros(m, bool)
    else:
        if video_frames.shape[1:3] != (layout.video_size, layout.video_size):
            raise ValueError(f"{video_frames.shape[1]}x{video_frames.shape[2]} video; the layout expects "
                             f"{layout.video_size}x{layout.video_size}.")
        frame_of_turn = np.minimum((np.arange(m) * MICROTURN_SECONDS * video_fps + 1e-6).astype(int),
                                   len(video_frames) - 1)
        patches = video.patchify(video_frames[frame_of_turn])
        new = np.concatenate([[True], frame_of_turn[1:] != frame_of_turn[:-1]])
    return {"user_audio": user_tokens[:m], "user_pitch": user_pitch[:m], "video": patches, "video_new": new,
            "text_in": _text_slots(list(text_in), m, layout.text_in_slots)}


def conversation_features(conv: Conversation, layout: MicroTurnLayout, *,
                          results: bool = True) -> dict[str, np.ndarray]:
    """Per-micro-turn arrays for the whole conversation (M = micro-turns - 1 blocks): `stream_inputs` of the
    user channel and the targets of the model's. With `results=False` the reasoner results of the corpus
    are left out of text-in (a live reasoner supplies its own)."""
    cfg = layout.dmel
    per_turn = round(MICROTURN_SECONDS * SAMPLE_RATE)
    n_turns = len(conv.user_audio) // per_turn
    if n_turns < 2:
        raise ValueError(f"conversation {conv.id} is shorter than two micro-turns.")
    f = layout.frames
    whole = n_turns * per_turn
    model_mel = np.asarray(dmel.log_mel(conv.model_audio[:whole], cfg), np.float32).reshape(n_turns, f, cfg.n_mels)
    # Output of block m is micro-turn m + 1; text items are placed by the micro-turn they are played in.
    voiced = listening.voiced_turns(conv.model_words, n_turns)
    model_mel[~voiced] = cfg.log_min
    model_words = end_marked(conv.model_words, voiced) if layout.end_mark else conv.model_words
    out_items = [(a, text.encode(w + " ")) for a, _, w in model_words]
    in_items = []
    for item in conv.text_items:
        if item.channel == "result" and not results:
            continue
        opener, closer = _TEXT_CHANNELS[item.channel]
        (out_items if item.channel == "delegate" else in_items).append(
            (item.time, text.wrap(opener, item.text, closer)))
    try:
        inputs = stream_inputs(conv.user_audio[:whole], layout, video_frames=conv.video, video_fps=conv.video_fps,
                               text_in=in_items)
    except ValueError as err:
        raise ValueError(f"{conv.id}: {err}") from err
    m = n_turns - 1
    state = np.where(voiced, int(text.Special.VOICED), int(text.Special.PAD)).astype(np.int32)[:, None]
    # Heard, not trained: the voiced micro-turns of a false start (the stop after is trained) and the silent
    # ones of a false yield (the resumption after is trained).
    untaught = np.zeros(n_turns, bool)
    for e in [*conv.events_of("false_start"), *conv.events_of("false_yield")]:
        untaught[listening.turn_of(e.start) : listening.turn_of(e.end)] = True
    words = _text_slots(out_items, n_turns, layout.text_out_slots - 1)
    onsets = word_onsets(out_items, n_turns, layout.text_out_slots - 1, f)
    # A word enters the transcript once every slot of a micro-turn has heard all of it: the one after its end.
    heard = [(b + MICROTURN_SECONDS, text.encode(w + " ")) for _, b, w in conv.user_words]
    return {
        **inputs,
        "text_out": np.concatenate([state, words], axis=1)[1:],
        "word_onset": np.concatenate([np.full_like(state, -1), onsets], axis=1)[1:],
        "model_mel": model_mel[1:],
        "model_audio": dmel.quantize(model_mel[1:], cfg),
        "listen": listening.targets(conv, n_turns),
        "user_text": _text_slots(heard, n_turns, f)[:m],
        "text_alone": packed_words([(a, w) for a, _, w in model_words], m, layout.text_out_slots),
        "time_index": np.arange(m, dtype=np.int32),
        "valid": np.ones(m, bool),
        "decision": listening.decision_turns(conv, n_turns)[:m],
        "untaught": untaught[1:],
    }


def window(features: dict[str, np.ndarray], start: int, length: int, mel_floor: float,
           burn_in: int | None = None) -> dict[str, np.ndarray]:
    """`length` micro-turns from `start`, padded past the end (valid=False, PAD, silence at `mel_floor`).
    `burn_in` (default: half the window): the micro-turns at its start whose speech is not trained."""
    out = {}
    features = {k: v for k, v in features.items() if k != "decision"}
    for name, arr in features.items():
        piece = arr[start : start + length]
        if len(piece) < length:
            pad = np.zeros((length - len(piece),) + arr.shape[1:], arr.dtype)
            if name == "time_index":
                pad = np.arange(start + len(piece), start + length, dtype=np.int32)
            elif name == "model_mel":
                pad[:] = mel_floor
            elif name == "word_onset":
                pad[:] = -1
            piece = np.concatenate([piece, pad])
        out[name] = piece
    untaught = out.pop("untaught", None)
    if "text_out" in out:
        early = np.arange(length) < (length // 2 if burn_in is None else burn_in)
        out["trained"] = out["valid"] & ~(early & (out["text_out"][:, 0] == text.Special.VOICED))
        if untaught is not None:
            out["trained"] &= ~untaught
    return out


def whole(features: dict[str, np.ndarray], mel_floor: float, bucket: int = 25) -> dict[str, np.ndarray]:
    """A whole conversation as one window, padded to a multiple of `bucket` micro-turns (so that a jitted
    function of it compiles once per bucket, not once per length)."""
    m = len(features["valid"])
    return window(features, 0, bucket * -(-m // bucket), mel_floor)


@dataclasses.dataclass
class _Decode(grain.transforms.Map):
    layout: MicroTurnLayout

    def map(self, record: bytes):
        return conversation_features(Conversation.from_bytes(record), self.layout)


@dataclasses.dataclass
class _RandomWindow(grain.transforms.RandomMap):
    """A window at a uniformly random start; or, with chance `decision_share`, one that holds a floor
    decision (a turn end, a pause or interruption onset, the end of talk not for the model) in its second
    half, so the decision is seen with the context before it."""
    length: int
    mel_floor: float
    decision_share: float = 0.0
    burn_in: int | None = None

    def random_map(self, features, rng: np.random.Generator):
        blocks = len(features["valid"])
        start = int(rng.integers(0, max(blocks - self.length, 0) + 1))
        decisions = np.flatnonzero(features["decision"])
        if decisions.size and rng.uniform() < self.decision_share:
            at = int(decisions[rng.integers(decisions.size)])
            start = at - int(rng.integers(self.length // 2, self.length))
            start = int(np.clip(start, 0, max(blocks - self.length, 0)))
        return window(features, start, self.length, self.mel_floor, self.burn_in)


def make_dataset(paths, layout: MicroTurnLayout, *, window_turns: int, batch_size: int, seed: int,
                 shard_index: int = 0, shard_count: int = 1, num_epochs: int | None = None,
                 shuffle: bool = True, workers: int = 0, prefetch: int = 0,
                 decision_share: float = 0.0, burn_in: int | None = None) -> grain.IterDataset:
    """Shuffled, windowed, batched training data for one host (shard) of `shard_count`.

    `decision_share` of the windows are placed around a floor decision (see `_RandomWindow`); `burn_in`
    as in `window`.
    Iterators of the result have `get_state()` / `set_state()`: restoring a state resumes exactly.
    `num_epochs=None` repeats forever, reshuffling every epoch. `workers` > 0 decodes in that many worker
    processes; otherwise `prefetch` > 0 prepares that many batches ahead in a background thread.
    """
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index={shard_index} must lie in [0, shard_count={shard_count}).")
    source = grain.sources.ArrayRecordDataSource(
        [str(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)])
    if len(source) < shard_count:
        raise ValueError(f"{len(source)} conversations cannot be split over {shard_count} hosts.")
    # Equal shards (the last len % shard_count conversations are left out): every host then has the same
    # number of batches per epoch, which collectives over a finite (eval) dataset need.
    ds = grain.MapDataset.source(source)[: len(source) - len(source) % shard_count][shard_index::shard_count]
    ds = ds.seed(seed)
    if shuffle:
        ds = ds.shuffle()
    ds = ds.repeat(num_epochs).map(_Decode(layout)).random_map(
        _RandomWindow(window_turns, layout.dmel.log_min, decision_share, burn_in))
    ds = ds.batch(batch_size, drop_remainder=True).to_iter_dataset()
    if workers > 0:
        return ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    if prefetch > 0:
        return grain.experimental.ThreadPrefetchIterDataset(ds, prefetch_buffer_size=prefetch)
    return ds
