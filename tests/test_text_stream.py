"""The text-stream reader: words timed by the micro-turn they play in, requests kept out of speech, UTF-8
across micro-turns, and the same reading whether fed row by row or whole."""
import numpy as np

from interaction.codecs import text, text_stream

PAD = text.Special.PAD


def _rows(*rows, width=8):
    out = np.full((len(rows), width), PAD)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def test_spoken_words_are_timed_by_the_turn_they_play_in():
    rows = np.full((4, 4), PAD)
    rows[0, :3] = text.encode("hi ")
    rows[2, :2] = text.encode("yo")
    rows[3, 0] = 14  # a reserved id the model may emit: skipped
    rows[1] = text.wrap(text.Special.DELEGATE, "q?", text.Special.DELEGATE_END)  # a silent request: not words
    words = text_stream.spoken_words(rows)
    assert words == [(0.2, 0.4, "hi"), (0.6, 1.0, "yo")]


def test_requests_span_micro_turns_and_never_reach_speech():
    delegate, end, voiced = text.Special.DELEGATE, text.Special.DELEGATE_END, text.Special.VOICED
    rows = _rows([voiced, *text.encode("ok ")], [delegate, *text.encode("what is")],
                 [*text.encode(" 2+2"), end, *text.encode("so")], [voiced, *text.encode(" yes")])
    reader = text_stream.TextStreamReader()
    fed = [reader.feed(row) for row in rows]
    assert [spoken for spoken, _ in fed] == ["ok ", "", "so", " yes"]
    assert [requests for _, requests in fed] == [[], [], [{"time": 0.4, "request": "what is 2+2"}], []]
    assert reader.spoken_words() == [(0.2, 0.4, "ok"), (0.6, 1.0, "so"), (0.8, 1.0, "yes")]
    assert text_stream.read(rows) == text_stream.Reading(reader.spoken_words(), fed[2][1])
    assert text_stream.delegations(rows[:2]) == []  # a request still open is not finished


def test_utf8_split_over_micro_turns_decodes_once_whole():
    data = "é ü".encode()
    tokens = [b + text.NUM_SPECIAL for b in data]
    reader = text_stream.TextStreamReader()
    first, _ = reader.feed(_rows(tokens[:1])[0])  # the first byte of a two-byte character
    second, _ = reader.feed(_rows(tokens[1:])[0])
    assert (first, second) == ("", "é ü")
    assert [w for _, _, w in reader.spoken_words()] == ["é", "ü"]


def test_transcript_merges_a_speakers_adjacent_words_in_time_order():
    entries = [(0.4, "model", "sure"), (0.0, "user", "hello"), (0.2, "user", "there"), (1.0, "user", "thanks")]
    assert text_stream.transcript(entries) == "user: hello there\nmodel: sure\nuser: thanks"
    assert text_stream.transcript([]) == ""
