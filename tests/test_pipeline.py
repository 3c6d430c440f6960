"""The grain pipeline: micro-turn blocks with constant shapes, text placement, exact resume, sharding."""
import itertools

import numpy as np
import pytest

from interaction.codecs import dmel, text
from interaction.data import layout as layout_lib
from interaction.data import listening, pipeline, records

LAYOUT = layout_lib.MicroTurnLayout()
WINDOW, BATCH = 16, 2


def _dataset(corpus_dir, **kw):
    args = dict(window_turns=WINDOW, batch_size=BATCH, seed=3)
    args.update(kw)
    return pipeline.make_dataset(str(corpus_dir / "train.array_record"), LAYOUT, **args)


def test_layout_counts_and_stream_ids():
    assert (LAYOUT.frames, LAYOUT.patches) == (8, 4)
    ids = LAYOUT.stream_ids()
    assert len(ids) == LAYOUT.block_len == LAYOUT.input_len + LAYOUT.output_len
    assert list(ids[: LAYOUT.input_len]) == [0] * 8 + [1] * 4 + [2] * 8
    assert list(ids[LAYOUT.input_len :]) == [3] * 8 + [4] * 8
    with pytest.raises(ValueError):
        layout_lib.MicroTurnLayout(video_size=100)


def test_groups_set_the_positions_and_the_passes_not_the_batch():
    grouped = layout_lib.MicroTurnLayout(user_audio_group=4, audio_group=8, text_group=2)
    assert list(grouped.stream_ids()) == [0] * 2 + [1] * 4 + [2] * 8 + [3] * 4 + [4] * 1
    assert (grouped.block_len, grouped.passes, LAYOUT.passes) == (19, 5, 16)
    assert grouped.batch_spec(2, 3) == LAYOUT.batch_spec(2, 3)  # the data keep a row per frame and per slot
    frames = np.arange(2 * 8 * 80).reshape(2, 8, 80)
    patches = grouped.audio_patches(frames)
    assert patches.shape == (2, 1, 640) and (patches[0, 0, 80:160] == frames[0, 1]).all()
    assert (grouped.audio_frames(patches) == frames).all()
    for bad in (dict(audio_group=3), dict(user_audio_group=0), dict(text_group=16)):
        with pytest.raises(ValueError, match="must divide"):
            layout_lib.MicroTurnLayout(**bad)


def test_batches_have_constant_shapes(tiny_corpus):
    f, p = LAYOUT.frames, LAYOUT.patches
    expected = {
        "user_audio": ((BATCH, WINDOW, f, 80), np.int32), "user_pitch": ((BATCH, WINDOW, f, 3), np.float32),
        "video": ((BATCH, WINDOW, p, 40, 40, 3), np.uint8),
        "video_new": ((BATCH, WINDOW), np.bool_), "text_in": ((BATCH, WINDOW, 8), np.int32),
        "text_out": ((BATCH, WINDOW, 8), np.int32), "word_onset": ((BATCH, WINDOW, 8), np.int32),
        "model_mel": ((BATCH, WINDOW, f, 80), np.float32),
        "model_audio": ((BATCH, WINDOW, f, 80), np.int32), "time_index": ((BATCH, WINDOW), np.int32),
        "listen": ((BATCH, WINDOW, len(listening.NAMES)), np.float32),
        "user_text": ((BATCH, WINDOW, f), np.int32), "text_alone": ((BATCH, WINDOW, 8), np.int32),
        "valid": ((BATCH, WINDOW), np.bool_), "trained": ((BATCH, WINDOW), np.bool_),
    }
    for batch in itertools.islice(iter(_dataset(tiny_corpus)), 12):  # more than one epoch of 22 // 2
        assert {k: (v.shape, v.dtype) for k, v in batch.items()} == expected
        assert (np.diff(batch["time_index"], axis=1) == 1).all()


def test_long_window_pads_past_the_end(tiny_corpus):
    batch = next(iter(_dataset(tiny_corpus, window_turns=200, batch_size=1)))
    valid = batch["valid"][0]
    n = int(valid.sum())
    assert 0 < n < 200 and valid[:n].all() and not valid[n:].any()
    assert (batch["text_out"][0, n:] == text.Special.PAD).all()
    assert (batch["model_mel"][0, n:] == LAYOUT.dmel.log_min).all()


def test_text_spills_into_later_turns_without_loss():
    items = [(0.0, list(range(20, 33))), (0.05, [40, 41]), (0.65, [50])]
    slots = pipeline._text_slots(items, n_turns=5, slots=4)
    assert slots.tolist()[:4] == [[20, 21, 22, 23], [24, 25, 26, 27], [28, 29, 30, 31], [32, 40, 41, 50]]
    assert (slots[4] == 0).all()


def test_words_packed_as_text_alone_fill_every_slot_in_order_from_the_first_word():
    rows = pipeline.packed_words([(0.45, "so"), (0.7, "it"), (1.0, "goes")], n_rows=8, slots=4)
    said = rows[1:5]  # the first word is played in micro-turn 2: block 1's output
    assert (said[:, 0] == text.Special.VOICED).all() and (rows[[0, 5, 6, 7]] == text.Special.PAD).all()
    assert text.decode(said[:, 1:].reshape(-1)) == "so it goes "  # 11 bytes in 4 rows of 3, the last slot PAD
    assert (said[:3, 1:] >= text.NUM_SPECIAL).all() and said[3, 3] == text.Special.PAD
    cut = pipeline.packed_words([(0.45, "so"), (0.7, "it"), (1.0, "goes")], n_rows=3, slots=4)
    assert text.decode(cut[1:, 1:].reshape(-1)) == "so it "  # cut at the end, never round again
    assert (pipeline.packed_words([], n_rows=3, slots=4) == text.Special.PAD).all()


def test_features_line_up_with_the_conversation(tiny_corpus):
    conv = [c for c in records.read(tiny_corpus / "train.array_record") if c.kind == "delegation"][0]
    feats = pipeline.conversation_features(conv, LAYOUT)
    n = len(conv.user_audio) // 3200 - 1
    assert len(feats["valid"]) == n
    # Output of block m is micro-turn m + 1: its mel is that 200 ms of the model channel.
    m = 20
    audio = conv.model_audio[(m + 1) * 3200 - LAYOUT.dmel.history : (m + 2) * 3200]
    mel = dmel.log_mel(audio[LAYOUT.dmel.history :], LAYOUT.dmel, history=audio[: LAYOUT.dmel.history])
    np.testing.assert_allclose(feats["model_mel"][m], mel, atol=1e-5)
    np.testing.assert_array_equal(feats["model_audio"], dmel.quantize(feats["model_mel"], LAYOUT.dmel))
    # Every model word and the delegation request come out in order in the text-out stream.
    said = text.decode(feats["text_out"].reshape(-1))
    request = [t.text for t in conv.text_items if t.channel == "delegate"][0]
    assert f"<delegate>{request}<delegate_end>" in said
    words = [w for _, _, w in conv.model_words]
    assert said.replace(f"<delegate>{request}<delegate_end>", "").split() == words
    result = [t for t in conv.text_items if t.channel == "result"][0]
    first = int(np.argmax((feats["text_in"] == text.Special.RESULT).any(axis=1)))
    assert first == round(result.time / 0.2)
    assert text.decode(feats["text_in"].reshape(-1)) == f"<result>{result.text}<result_end>"
    # The user's words, in order, each first in the micro-turn after the one it ends in.
    heard = feats["user_text"]
    assert text.decode(heard.reshape(-1)).split() == [w for _, _, w in conv.user_words]
    rows = np.flatnonzero((heard != text.Special.PAD).any(axis=1))
    ends = sorted({listening.turn_of(b) + 1 for _, b, _ in conv.user_words if listening.turn_of(b) + 1 < n})
    assert rows[0] == ends[0] and set(ends) <= set(rows)
    # Its words as text alone: the same words, in order, packed from the first.
    alone = text.decode(feats["text_alone"][:, 1:].reshape(-1)).split()
    assert alone == words
    # Each word's first byte carries the frame its sound begins in (frame 0 of a later micro-turn it spills into).
    onset, per_frame = feats["word_onset"], 0.2 / LAYOUT.frames
    assert onset.shape == feats["text_out"].shape and (onset[:, 0] == -1).all()
    assert (onset >= 0).sum() == len(conv.model_words)
    for (a, _, w), r, j in zip(conv.model_words, *np.nonzero(onset >= 0)):
        assert feats["text_out"][r, j] == text.encode(w)[0]
        frame = (a - (r + 1) * 0.2) / per_frame  # row r plays micro-turn r + 1
        assert onset[r, j] == max(int(np.floor(frame + 1e-6)), 0) and frame < LAYOUT.frames


def test_an_answer_ends_with_the_mark_a_cut_one_without(tiny_corpus):
    """With `end_mark`, every run of speech that ends as spoken has one period outside the delegation requests,
    its last word's, among the bytes that come before the next run begins (spilled bytes may outlast the speaking
    state); a run that is cut (an interruption's stop, a false start's or a false yield's) has none. The rest of
    the stream is as without the mark."""
    marked = layout_lib.MicroTurnLayout(end_mark=True)
    dot = text.encode(layout_lib.END_MARK)[0]

    def said(rows):  # the byte slots outside delegation requests
        flat = rows.reshape(-1)
        opened = np.cumsum(flat == text.Special.DELEGATE) - np.cumsum(flat == text.Special.DELEGATE_END)
        return np.where(opened > 0, text.Special.PAD, flat).reshape(rows.shape)

    ends, cut = 0, 0
    for conv in records.read(tiny_corpus / "train.array_record"):
        plain, feats = pipeline.conversation_features(conv, LAYOUT), pipeline.conversation_features(conv, marked)
        spoken = said(feats["text_out"])
        assert not (said(plain["text_out"]) == dot).any()
        unmarked = np.where(spoken == dot, text.Special.PAD, feats["text_out"])
        assert text.decode(unmarked.reshape(-1)).split() == text.decode(plain["text_out"].reshape(-1)).split()
        cuts = [e.end for e in conv.events_of("model_stop") + conv.events_of("false_start")]
        cuts += [e.start for e in conv.events_of("false_yield")]
        rows = np.flatnonzero(feats["text_out"][:, 0] == text.Special.VOICED)
        runs = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1) if rows.size else []
        firsts = [int(run[0]) for run in runs] + [len(spoken)]
        dots = np.flatnonzero((spoken == dot).any(-1))
        assert (spoken == dot).sum() == len(dots)  # one to a row at most
        for run, after in zip(runs, firsts[1:]):
            here = int(((run[0] <= dots) & (dots < after)).sum())
            if any(abs((run[-1] + 2) * 0.2 - c) < 1e-6 for c in cuts):  # row r plays micro-turn r + 1
                cut += 1
                assert here == 0
            else:
                ends += 1
                assert here == 1
        assert not len(dots) or dots[0] >= runs[0][0]
    assert ends > 20 and cut > 0


def test_iterator_resumes_exactly(tiny_corpus):
    it = iter(_dataset(tiny_corpus))
    for _ in range(5):
        next(it)
    state = it.get_state()
    after = [next(it) for _ in range(8)]  # crosses an epoch boundary
    resumed = iter(_dataset(tiny_corpus))
    resumed.set_state(state)
    for a, b in zip(after, (next(resumed) for _ in range(8))):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_epochs_are_reshuffled_and_seeds_differ(tiny_corpus):
    it = iter(_dataset(tiny_corpus, batch_size=1, window_turns=4))
    first = [next(it)["user_audio"].tobytes() for _ in range(22)]
    second = [next(it)["user_audio"].tobytes() for _ in range(22)]
    assert first != second
    other = iter(_dataset(tiny_corpus, batch_size=1, window_turns=4, seed=4))
    assert [next(other)["user_audio"].tobytes() for _ in range(22)] != first


def test_hosts_read_disjoint_shards(tiny_corpus):
    def elements(index, count):
        ds = _dataset(tiny_corpus, batch_size=1, window_turns=40, shard_index=index, shard_count=count,
                      num_epochs=1, shuffle=False)
        return [b["user_audio"].tobytes() for b in ds]

    whole, a, b = elements(0, 1), elements(0, 2), elements(1, 2)
    assert (len(a), len(b)) == (11, 11)
    assert not set(a) & set(b)
    assert len(whole) == len(a) + len(b)
    thirds = [elements(i, 3) for i in range(3)]  # 22 conversations: one left out, so that shards are equal
    assert [len(t) for t in thirds] == [7, 7, 7] and len(set().union(*map(set, thirds))) == 21
    with pytest.raises(ValueError, match="shard_index"):
        _dataset(tiny_corpus, shard_index=2, shard_count=2)
