"""The search tool: BM25 over the default collection, the sandbox, and incremental folder indexing."""
import datetime
import os

import pytest

from interaction.reasoner import rules
from interaction.reasoner.base import Request
from interaction.tools import documents, registry, search
from interaction.tools.errors import ToolError


NOW = datetime.datetime(2026, 12, 4, 12, 0)


@pytest.fixture(scope="module")
def index():
    ix = search.SearchIndex()
    ix.add(documents.default_collection())
    return ix


def test_the_default_collection_is_deterministic_and_holds_every_answer():
    a, b = documents.default_collection(seed=0), documents.default_collection(seed=0)
    assert a == b and a != documents.default_collection(seed=1)
    assert len(a) >= 300 and len({d.id for d in a}) == len(a)
    by_id = {d.id: d for d in a}
    for q in documents.search_questions():
        assert q.answer in by_id[q.doc_id].body


def test_every_gazetteer_question_finds_its_article_first(index):
    questions = documents.search_questions()
    first = [index.search(q.question).split(" | ")[0] for q in questions]
    assert sum(f == q.doc_id for f, q in zip(first, questions)) == len(questions)


def test_open_returns_the_passage_with_the_answer(index):
    q = documents.search_questions()[2]
    assert q.answer in index.open(q.doc_id)
    with pytest.raises(ToolError, match="no document"):
        index.open("g-no-such-thing")
    with pytest.raises(ToolError, match="not a document id"):
        index.open("x' OR '1'='1")


def test_questions_about_nothing_in_the_collection_find_no_article_named_for_them(index):
    for question in documents.unanswerable():
        name = max(question.split()[1:], key=lambda w: w[0].isupper() * len(w))  # the invented name
        hits = index.search(question)
        assert name not in hits  # the subject is nowhere: any hit is only a word in common ("River")


@pytest.mark.parametrize("query, reason", [
    ('"capital"', '"'), ("capit*", "*"), ("Peru NEAR capital", "NEAR"), ("Peru AND capital", "AND"),
    ("x; DROP TABLE docs", ";"), ("capital -- comment", "--"), ("1 OR 1=1", "="), ("UNION SELECT title", "SELECT"),
    ("title:Peru", ":"), ("(Peru)", "("), ("^Peru", "^"), ("", "empty"), ("word " * 60, "longer than"),
])
def test_the_sandbox_refuses_query_syntax_and_sql_with_the_reason(index, query, reason):
    with pytest.raises(ToolError, match=None) as err:
        index.search(query)
    assert reason in str(err.value)
    result = registry.run_tool("search", query)
    assert not result.ok and result.text.startswith("error: ") and reason in result.text


def test_plain_punctuation_and_lower_case_operator_words_are_words(index):
    assert index.search("what's the capital of Peru, near or not?").startswith("kb-peru")


def test_results_are_bounded(index):
    text = index.search(" ".join(["lighthouse", "river", "bridge", "festival", "beetle", "ship"]))
    assert len(text) <= search.MAX_RESULT and len(text.splitlines()) <= search.MAX_HITS


def test_a_slow_query_is_interrupted(index, monkeypatch):
    monkeypatch.setattr(search, "TIME_LIMIT_S", -1.0)  # already past its deadline at the first check
    with pytest.raises(ToolError, match="took longer"):
        index.search("lighthouse river bridge festival")


def test_folder_indexing_is_incremental(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("# Garden notes\nThe quince tree flowers in April.\n")
    (docs / "page.html").write_text("<html><title>Harbour page</title><script>var secret='kumquat';</script>"
                                    "<body><p>The ferry leaves at noon.</p></body></html>")
    (docs / "ignored.bin").write_bytes(b"quince")
    ix = search.SearchIndex(tmp_path / "index.sqlite")
    assert ix.sync_folder(docs) == dict(added=2, updated=0, removed=0, unchanged=0)
    assert "Garden notes" in ix.search("quince")
    assert "Harbour page" in ix.search("ferry") and ix.search("kumquat") == "no results"

    (docs / "notes.md").write_text("# Garden notes\nThe medlar tree flowers in May.\n")
    os.utime(docs / "notes.md", ns=(1, 1))  # a changed file: its stamp differs even within one clock tick
    (docs / "page.html").unlink()
    assert ix.sync_folder(docs) == dict(added=0, updated=1, removed=1, unchanged=0)
    assert ix.search("quince") == "no results" and "Garden notes" in ix.search("medlar")
    assert ix.search("ferry") == "no results"
    # a second handle on the same file sees the same index; nothing changed means nothing re-read
    assert search.SearchIndex(tmp_path / "index.sqlite").sync_folder(docs)["unchanged"] == 1
    with pytest.raises(FileNotFoundError, match="not a folder"):
        ix.sync_folder(tmp_path / "missing")


def test_the_tools_read_the_default_index_and_the_users_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERACTION_CACHE", str(tmp_path / "cache"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "plan.txt").write_text("The zeppelin hangar opens on Thursday.")
    monkeypatch.setenv("INTERACTION_DOCS", str(docs))
    hit = registry.run_tool("search", "zeppelin hangar")
    assert hit.ok and hit.text.startswith("f-plan-")
    assert "Thursday" in registry.run_tool("open", hit.text.split(" | ")[0]).text
    q = documents.search_questions()[0]
    assert registry.run_tool("search", q.question).text.startswith(q.doc_id)
    assert list((tmp_path / "cache" / "search").glob("*.sqlite"))


def test_the_rule_based_reasoner_searches_opens_and_reads_or_says_not_found(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERACTION_CACHE", str(tmp_path))
    monkeypatch.delenv("INTERACTION_DOCS", raising=False)
    questions = documents.search_questions()
    right = 0
    for q in questions[:60]:
        spoken, trace = rules.search_and_read(q.question)
        assert [t["call"].split("(")[0] for t in trace] == ["search", "open"]
        assert trace[1]["call"] == f"open({q.doc_id})"
        right += q.answer in spoken
    assert right == 60
    for question in documents.unanswerable(n=12):
        spoken, trace = rules.search_and_read(question)
        assert spoken.startswith("I could not find anything about") and len(trace) == 1
    assert rules.answer(Request(questions[0].question, "", NOW)).endswith(f"{questions[0].answer}.")


def test_corpus_search_delegations_follow_the_reasoner_split_and_plan():
    """The corpus' search delegations: training conversations ask about training subjects only, held-out ones
    about held-out subjects; each is traced search -> open (or search alone, not found) and its answer says
    the result."""
    import numpy as np

    from interaction.data import scenarios
    from interaction.reasoner import episodes

    rng = np.random.default_rng(0)
    for heldout in (False, True):
        split = set(episodes.search_questions("eval" if heldout else "train"))
        for _ in range(30):
            question, result, answer, trace = scenarios.search_question(heldout, rng)
            assert question in split
            assert trace[0]["call"].startswith("search(") and len(trace) in (1, 2)
            assert result in answer
