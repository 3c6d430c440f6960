"""What the voice is saying: the last two words of the model's own text stream and when each began, to the frame.

A word's bytes are written at once, in the micro-turn its sound begins (docs/data.md), and its sound lasts a few
hundred ms more. The flow head draws each patch from one vector, so to voice a word the decoder must work out, at
every audio position, which word is being said and how far into it the voice is: an alignment that a small
decoder learns late (docs/results.md, "What its voice knows of its words"). With `model.voice_reads_words` the
flow head is told both. Each of the last two complete words (closing space written) is a hashed embedding of its
bytes (no vocabulary: a word is its bytes' hash into `BUCKETS` rows, as fastText hashes n-grams; collisions are
rare among a corpus' few hundred word types) plus an embedding of its age at the patch's first frame (negative
where the word begins later in the patch or the micro-turn); a small MLP, zero at the start, adds them to the
flow head's conditioning. Which frame of its micro-turn a word begins in is written with it: the data's
(`word_onset`) in training, the model's own choice when it streams, drawn by a third MLP of the tracker's words
before the word (`onset_logits`) and taught by its cross-entropy alone.

With `model.voice_prior` a second MLP of the same words (`mean`) draws the patch's mean, and the flow starts from
it (`flow_head.FlowHead` with `prior`): the voice then only adds what the words leave open. What a word sounds
like at a given frame of it is nearly a table (the mean frame of each (word, frames into it) pair), so this MLP
draws one frame at a time from the words' ages at that frame (every frame of a word teaches the same rows,
whichever patch it falls in), and it also reads each role's (word, age) pair hashed into `PAIRS` embeddings. It
has its own embeddings and hidden layer and is taught by its squared error alone, so only that loss sets its pace,
on every voiced micro-turn whose words the window has seen, not only those whose speech is trained.

The words are tracked by one function of one text row at a time (`advance`), a fixed-shape carry per session: run
over a window's rows in training (`track`) and once per micro-turn when streaming, so both see the same words.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from interaction.codecs import text
from interaction.models.embedders import embedding_table
from interaction.models.layers import Linear

BUCKETS = 4096  # hashed word rows; row 0 means no word
PAIRS = 65536  # hashed (word, age, role) rows of the prior
AGE_TURNS = 5  # ages up to this many micro-turns of frames; the oldest means "this long ago or more, or never"
ROLES = 2  # the last complete word and the one before it
_SPACE = text.NUM_SPECIAL + ord(" ")
# carry columns: the word being written (its hash so far, 0 between words) and its first frame, then (hash, first
# frame) of the last complete word and of the one before it; frames count from the session's (window's) start
CARRY = 6


def empty(sessions: int) -> jax.Array:
    """(sessions, CARRY) int32: no words yet."""
    return jnp.zeros((sessions, CARRY), jnp.int32)


def push(carry: jax.Array, token: jax.Array, onset: jax.Array, turn: jax.Array, frames: int) -> jax.Array:
    """carry (B, CARRY) and one text-out slot of micro-turn `turn` (B,): its token (B,) and `onset` (B,) the frame of
    the micro-turn (of `frames`) in which a word starting there begins -> the carry after it. A byte other than a
    space extends the word being written (the first starts it at its onset; a negative one counts as frame 0); a
    space completes it. Specials (the speaking state, PAD, delegation marks) are not bytes and change nothing."""
    current, start, last, last_start, before, before_start = (carry[:, i] for i in range(CARRY))
    letter = (token >= text.NUM_SPECIAL) & (token != _SPACE)
    start = jnp.where(letter & (current == 0), turn * frames + jnp.clip(onset, 0, frames - 1), start)
    current = jnp.where(letter, 1 + (current * 257 + token) % (BUCKETS - 1), current)
    done = (token == _SPACE) & (current > 0)
    before, before_start = jnp.where(done, last, before), jnp.where(done, last_start, before_start)
    last, last_start = jnp.where(done, current, last), jnp.where(done, start, last_start)
    current = jnp.where(token == _SPACE, 0, current)
    return jnp.stack([current, start, last, last_start, before, before_start], axis=1)


def advance(carry: jax.Array, row: jax.Array, onsets: jax.Array, turn: jax.Array,
            frames: int) -> tuple[jax.Array, jax.Array]:
    """carry (B, CARRY), row (B, S) text-out tokens of micro-turn `turn` (B,) and their `onsets` (B, S) -> the
    carry after the row and (B, S, CARRY) the carry before each slot (what the onset head reads there)."""
    def body(c, xs):
        return push(c, *xs, turn, frames), c

    slots_first = lambda x: jnp.moveaxis(x.astype(jnp.int32), -1, 0)  # noqa: E731
    carry, before = jax.lax.scan(body, carry, (slots_first(row), slots_first(onsets)))
    return carry, jnp.moveaxis(before, 0, 1)


def track(rows: jax.Array, onsets: jax.Array, turns: jax.Array, frames: int) -> tuple[jax.Array, jax.Array]:
    """(B, T, S) text-out rows of a window, their onsets and their (B, T) micro-turns -> (B, T, CARRY) the carry
    after each row and (B, T, S, CARRY) before each slot, from no words at the window's start."""
    def body(carry, xs):
        carry, before = advance(carry, *xs, frames)
        return carry, (carry, before)

    time_first = lambda x: jnp.moveaxis(x, 1, 0)  # noqa: E731
    _, (after, before) = jax.lax.scan(body, empty(rows.shape[0]),
                                      (time_first(rows), time_first(onsets), time_first(turns)))
    return time_first(after), time_first(before)


def ages_count(frames: int) -> int:
    """Age embeddings of one role: from -(frames - 1) (the word begins at the micro-turn's last frame) to the
    oldest."""
    return frames - 1 + AGE_TURNS * frames


def words_and_ages(carry: jax.Array, turn: jax.Array, frames: int, group: int) -> tuple[jax.Array, jax.Array]:
    """carry (..., CARRY) after micro-turn `turn` (...) -> hashes and age indices (..., frames // group, ROLES) of
    the last two complete words at each audio position (`group` frames) of the micro-turn: the word's age at the
    position's first frame, offset by frames - 1; no word is hash 0 at the oldest age."""
    hashes = carry[..., 2::2]  # (..., ROLES)
    first_frame = turn[..., None] * frames + jnp.arange(0, frames, group)  # (..., positions)
    ages = first_frame[..., None] - carry[..., None, 3::2] + frames - 1
    oldest = ages_count(frames) - 1
    ages = jnp.where(hashes[..., None, :] > 0, jnp.clip(ages, 0, oldest), oldest)
    return jnp.broadcast_to(hashes[..., None, :], ages.shape), ages


def window_words(rows: jax.Array, onsets: jax.Array, turns: jax.Array, frames: int,
                 group: int) -> tuple[jax.Array, jax.Array]:
    """`track` then `words_and_ages`: (B, T, S) text-out rows of a window, their onsets and (B, T) micro-turns ->
    hashes and age indices (B, T, frames // group, ROLES) at every audio position."""
    return words_and_ages(track(rows, onsets, turns, frames)[0], turns, frames, group)


def pair_rows(hashes: jax.Array, ages: jax.Array) -> jax.Array:
    """(..., ROLES) word hashes and age indices -> (..., ROLES) rows of the (word, age, role) table."""
    return (hashes * 7919 + ages * 104729 + jnp.arange(ROLES) * 31337) % PAIRS


class WordsMLP(nnx.Module):
    """(..., ROLES) word hashes and age indices -> (..., out): an MLP of their embeddings, zero at the start; with
    `pairs`, each role's (word, age) pair is also hashed to an embedding of its own."""

    def __init__(self, embed: int, frames: int, out: int, *, rngs: nnx.Rngs, dtype=jnp.float32,
                 deterministic: bool = False, pairs: bool = False, out_axis: str | None = "embed"):
        self.per_role = ages_count(frames)
        self.words = embedding_table(BUCKETS, embed, rngs=rngs, dtype=dtype)
        self.ages = embedding_table(ROLES * self.per_role, embed, rngs=rngs, dtype=dtype)
        self.pairs = embedding_table(PAIRS, embed, rngs=rngs, dtype=dtype) if pairs else None
        self.up = Linear(ROLES * embed, 4 * embed, (None, "mlp"), rngs, dtype, deterministic=deterministic)
        self.down = Linear(4 * embed, out, ("mlp", out_axis), rngs, dtype, zero=True, deterministic=deterministic)

    def __call__(self, hashes: jax.Array, ages: jax.Array) -> jax.Array:
        v = self.words(hashes) + self.ages(ages + self.per_role * jnp.arange(ROLES))
        if self.pairs is not None:
            v = v + self.pairs(pair_rows(hashes, ages))
        return self.down(jax.nn.gelu(self.up(v.reshape(*v.shape[:-2], -1))))


class SpokenWords(nnx.Module):
    """(..., ROLES) word hashes and age indices at audio positions of `group` frames -> (..., embed), added to the
    flow head's conditioning, and with `prior` mel bins (..., embed + group * prior): the patch's mean after it,
    drawn a frame at a time by an MLP of its own (`mean`). `onset_logits` dates the words the stream writes."""

    def __init__(self, embed: int, frames: int, *, rngs: nnx.Rngs, dtype=jnp.float32, deterministic: bool = False,
                 group: int = 1, prior: int = 0):
        self.group, self.frames = group, frames
        self.onset = WordsMLP(embed, frames, frames, rngs=rngs, dtype=dtype, deterministic=deterministic, pairs=True,
                              out_axis=None)
        self.said = WordsMLP(embed, frames, embed, rngs=rngs, dtype=dtype, deterministic=deterministic)
        self.mean = WordsMLP(embed, frames, prior, rngs=rngs, dtype=dtype, deterministic=deterministic, pairs=True,
                             out_axis=None) if prior else None

    def patch_mean(self, hashes: jax.Array, ages: jax.Array) -> jax.Array:
        """(..., ROLES) -> (..., group * prior): each frame of the patch from the words' ages at that frame, so
        every frame of a word teaches the same rows whichever patch it falls in."""
        oldest = self.mean.per_role - 1
        ages = jnp.minimum(ages[..., None, :] + jnp.arange(self.group)[:, None], oldest)  # (..., group, ROLES)
        frames = self.mean(jnp.broadcast_to(hashes[..., None, :], ages.shape), ages)
        return frames.reshape(*frames.shape[:-2], -1)

    def onset_logits(self, carry: jax.Array, turn: jax.Array) -> jax.Array:
        """The carry (..., CARRY) before a text slot of micro-turn `turn` (...) -> (..., frames) logits of the frame
        of the micro-turn in which a word whose first byte is at that slot begins: from the last two words and
        their ages at the micro-turn's first frame. A word's sound follows the one before it, so where that one
        began and what it was nearly fix where this one begins; the decoder's state, which has to work that out,
        dated them little better than chance."""
        hashes, ages = words_and_ages(carry, turn, self.frames, self.frames)
        return self.onset(hashes[..., 0, :], ages[..., 0, :]).astype(jnp.float32)

    def __call__(self, hashes: jax.Array, ages: jax.Array) -> jax.Array:
        said = self.said(hashes, ages)
        return said if self.mean is None else jnp.concatenate([said, self.patch_mean(hashes, ages)], axis=-1)
