"""The word tracker the flow head reads with `voice_reads_words`: which words the text stream has said, the frame
each began in, and their ages at a micro-turn's audio positions."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from interaction.codecs import text
from interaction.models import spoken_words as sw

PAD, VOICED = int(text.Special.PAD), int(text.Special.VOICED)
F = 8  # frames of a micro-turn


def _rows(*rows: str, slots: int = 8) -> jnp.ndarray:
    """(1, T, slots) text-out rows: the speaking state, then each row's text as bytes, PAD after."""
    out = np.full((1, len(rows), slots), PAD, np.int32)
    for t, r in enumerate(rows):
        b = text.encode(r)
        out[0, t, 0] = VOICED if r else PAD
        out[0, t, 1 : 1 + len(b)] = b
    return jnp.asarray(out)


def _onsets(rows, at: dict) -> jnp.ndarray:
    """-1 at every slot of `rows` but those in `at`: {(row, slot): frame}."""
    out = np.full(rows.shape, -1, np.int32)
    for (t, j), frame in at.items():
        out[0, t, j] = frame
    return jnp.asarray(out)


def _hash(word: str) -> int:
    row = jnp.asarray([text.encode(word + " ")])
    return int(sw.advance(sw.empty(1), row, jnp.full(row.shape, -1), jnp.zeros(1, jnp.int32), F)[0][0, 2])


def test_words_are_hashed_by_their_bytes_and_dated_to_the_frame_they_begin_in():
    rows = _rows("a cat ", "", "sat", " on ", "")
    onsets = _onsets(rows, {(0, 1): 2, (0, 3): 5, (2, 1): 1, (3, 2): 6})
    after, before = sw.track(rows, onsets, jnp.arange(5)[None] + 10, F)  # the window starts at turn 10
    carries = np.asarray(after)[0]
    a, cat, sat, on = (_hash(w) for w in ("a", "cat", "sat", "on"))
    assert len({a, cat, sat, on}) == 4 and min(a, cat, sat, on) > 0
    assert _hash("a") == a  # the same bytes, the same row of the table, wherever they are said
    # after row 0: "cat" last (frame 5 of micro-turn 10), "a" before it (frame 2); nothing being written
    np.testing.assert_array_equal(carries[0], [0, 85, cat, 85, a, 82])
    np.testing.assert_array_equal(carries[1], carries[0])  # a silent row changes nothing
    assert carries[2][0] > 0 and carries[2][1] == 97 and carries[2][2] == cat  # "sat" begun, not yet complete
    np.testing.assert_array_equal(carries[3], [0, 110, on, 110, sat, 97])  # its space completes it
    np.testing.assert_array_equal(carries[4], carries[3])
    before = np.asarray(before)[0]  # (T, S, CARRY): what the onset head reads at each slot
    np.testing.assert_array_equal(before[0, 0], sw.empty(1)[0])
    np.testing.assert_array_equal(before[0, 3], [0, 82, a, 82, 0, 0])  # before "cat": "a" complete, dated
    np.testing.assert_array_equal(before[1, 0], carries[0])  # a row starts from the last one's end
    np.testing.assert_array_equal(before[3, 1], carries[2])
    np.testing.assert_array_equal(before[3, 2], [0, 97, sat, 97, cat, 85])  # the space has completed "sat"
    unmarked = np.asarray(sw.track(rows, _onsets(rows, {}), jnp.arange(5)[None] + 10, F)[0])[0]
    assert unmarked[0][3] == 80 and unmarked[3][3] == 104  # without an onset a word begins at its row's frame 0


def test_ages_count_frames_from_a_words_first_to_each_positions_first():
    carry = jnp.asarray([[0, 0, 7, 30, 5, 10]], jnp.int32)  # last word (7) began at frame 30, the one before at 10
    hashes, ages = sw.words_and_ages(carry, jnp.asarray([4]), F, 4)  # positions at frames 32 and 36
    np.testing.assert_array_equal(hashes[0], [[7, 5], [7, 5]])
    np.testing.assert_array_equal(ages[0] - (F - 1), [[2, 22], [6, 26]])
    _, ages = sw.words_and_ages(carry.at[0, 3].set(35), jnp.asarray([4]), F, 4)
    assert int(ages[0, 0, 0]) - (F - 1) == -3  # it begins 3 frames into the position
    _, ages = sw.words_and_ages(carry, jnp.asarray([30]), F, 4)
    assert int(ages.min()) == sw.ages_count(F) - 1  # long ago
    hashes, ages = sw.words_and_ages(sw.empty(1), jnp.asarray([0]), F, 4)
    assert int(hashes.max()) == 0 and int(ages.min()) == sw.ages_count(F) - 1  # no word yet: never


def test_specials_are_not_bytes():
    marked = np.array(_rows("hi "))
    marked[0, 0, 4] = int(text.Special.DELEGATE)  # after the word, a mark that is not spoken
    none = jnp.full(marked.shape, -1)
    np.testing.assert_array_equal(sw.track(jnp.asarray(marked), none, jnp.zeros((1, 1), jnp.int32), F)[0],
                                  sw.track(_rows("hi "), none, jnp.zeros((1, 1), jnp.int32), F)[0])


_DURATIONS = {"a": 3, "bb": 5, "ccc": 7, "dddd": 10}  # frames each word's sound lasts, the next starting after it


def _timed_rows(rng: np.random.Generator, sessions: int, turns: int = 12, slots: int = 16):
    """Rows of words said back to back, each lasting its `_DURATIONS` and written in the micro-turn it begins in,
    with their onsets: (sessions, turns, slots) rows and onsets, and where each word's first byte is."""
    rows = np.full((sessions, turns, slots), PAD, np.int32)
    onsets = np.full(rows.shape, -1, np.int32)
    for b in range(sessions):
        start, filled = int(rng.integers(0, F)), np.ones(turns, np.int32)
        while start < turns * F:
            word = rng.choice(list(_DURATIONS))
            t, data = start // F, text.encode(word + " ")
            if filled[t] + len(data) > slots:
                break
            rows[b, t, 0] = VOICED
            onsets[b, t, filled[t]] = start - t * F
            rows[b, t, filled[t] : filled[t] + len(data)] = data
            filled[t] += len(data)
            start += _DURATIONS[word]
    return jnp.asarray(rows), jnp.asarray(onsets)


def test_the_onset_head_learns_where_a_word_begins_from_the_word_before():
    """Where each word's sound lasts a fixed time, the frame the next begins in follows from the last word and
    when it began: trained on some sessions, the onset head dates the words of others far better than chance
    (1 in 8), and better than the likeliest frame; before training it says nothing."""
    turns = jnp.arange(12)[None].repeat(64, 0)
    train, heldout = _timed_rows(np.random.default_rng(0), 64), _timed_rows(np.random.default_rng(1), 64)
    graphdef, params = nnx.split(sw.SpokenWords(16, F, rngs=nnx.Rngs(0)))

    def loss(params, rows, onsets):
        logits = nnx.merge(graphdef, params).onset_logits(sw.track(rows, onsets, turns, F)[1], turns[..., None])
        at = onsets >= 0
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(onsets, 0))
        return jnp.sum(ce * at) / jnp.sum(at), logits

    assert abs(float(loss(params, *heldout)[0]) - np.log(F)) < 1e-4
    opt = optax.adam(3e-3)
    opt_state = opt.init(params)

    @jax.jit
    def update(params, opt_state):
        grads = jax.grad(lambda p: loss(p, *train)[0])(params)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state

    for _ in range(150):
        params, opt_state = update(params, opt_state)
    rows, onsets = heldout
    _, logits = loss(params, rows, onsets)
    after_one = sw.track(rows, onsets, turns, F)[1][..., 2] > 0  # a word said before: there is something to read
    at = np.asarray((onsets >= 0) & after_one)
    hits = np.asarray(jnp.argmax(logits, -1) == onsets)[at]
    likeliest = np.bincount(np.asarray(onsets)[at]).max() / at.sum()
    assert at.sum() > 200 and hits.mean() > 0.8 and hits.mean() > likeliest + 0.5, (hits.mean(), likeliest)
