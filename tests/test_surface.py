"""Generative UI: surfaces validate against the schema and bad ones are refused with the reason; the rules
reasoner composes a countdown, a table and a sourced card; a live session sends a valid surface as a
Realtime `render_ui` function call, refuses an invalid one with an error event, and takes the client's
acknowledgement."""
import copy
import datetime
import json
import threading

import numpy as np
import pytest

from interaction.codecs import text
from interaction.data import layout as layout_lib
from interaction.data import lexicon
from interaction.live import protocol
from interaction.live.session import LiveSession
from interaction.reasoner import rules, surface
from interaction.reasoner.base import Answer, CallableReasoner, Request
from interaction.reasoner.runtime import ReasonerRuntime
from interaction.tools import documents

NOW = datetime.datetime(2026, 3, 14, 15, 9)
GOOD = {"surfaceId": "units-1", "root": "card", "components": [
    {"id": "card", "component": "Card", "title": "12 inches", "children": ["table", "list"]},
    {"id": "table", "component": "Table", "rows": [["from", "12 inches"], ["to", "30.48 cm"]]},
    {"id": "list", "component": "List", "children": ["t", "link"]},
    {"id": "t", "component": "Text", "text": "<script>alert(1)</script> stays text", "style": "caption"},
    {"id": "link", "component": "Link", "text": "more", "url": "https://example.org/a?b=c"}]}


def _with(change):
    s = copy.deepcopy(GOOD)
    change(s)
    return s


def _chain(n):
    comps = [{"id": f"n{i}", "component": "Card", "children": [f"n{i + 1}"]} for i in range(n - 1)]
    return {"surfaceId": "deep", "root": "n0", "components": comps + [{"id": f"n{n - 1}", "component": "Text",
                                                                        "text": "x"}]}


def test_a_well_formed_surface_validates_and_reads_as_text():
    assert surface.validate(GOOD) is GOOD
    assert surface.validate(json.dumps(GOOD)) == GOOD
    assert surface.validate({"surfaceId": "units-1", "delete": True})
    assert surface.validate(_chain(surface.MAX_DEPTH))
    assert surface.to_text(GOOD).splitlines() == [
        "[units-1]", "12 inches", "  from | 12 inches", "  to | 30.48 cm",
        "    <script>alert(1)</script> stays text", "    more <https://example.org/a?b=c>"]


@pytest.mark.parametrize("bad, reason", [
    ("{not json", "not valid JSON"),
    ([GOOD], "a surface is a JSON object"),
    (_with(lambda s: s.update(surfaceId="a b")), "surfaceId"),
    (_with(lambda s: s["components"][3].update(onerror="alert(1)")), "unknown fields ['onerror']"),
    (_with(lambda s: s["components"][3].update(component="Html")), "unknown type 'Html'"),
    (_with(lambda s: s["components"][4].update(url="javascript:alert(1)")), "http:// or https://"),
    (_with(lambda s: s["components"][4].update(url="JAVASCRIPT://%0aalert(1)")), "http:// or https://"),
    (_with(lambda s: s["components"][4].update(doc="g-x")), "exactly one of doc and url"),
    (_with(lambda s: s["components"].append({"id": "t", "component": "Text", "text": "again"})), "used twice"),
    (_with(lambda s: s["components"][2]["children"].append("ghost")), "child 'ghost'"),
    (_with(lambda s: s["components"][2]["children"].append("card")), "reached twice"),
    (_with(lambda s: s["components"].append({"id": "lost", "component": "Text", "text": "x"})), "not reachable"),
    (_with(lambda s: s.update(root="nowhere")), "root 'nowhere'"),
    (_with(lambda s: s["components"][3].update(text="x" * 501)), "over the 500 allowed"),
    (_with(lambda s: s["components"][1].update(rows=[["a"] * 7])), "1 to 6 cells"),
    (_with(lambda s: s["components"][1].update(rows="<tr>")), "1 to 20 rows"),
    (_with(lambda s: s["components"].append({"id": "tm", "component": "Timer", "seconds": True})), "seconds"),
    (_with(lambda s: s["components"][0].pop("children")), "needs children"),
    (_with(lambda s: s.update(html="<b>")), "unknown surface fields"),
    ({"surfaceId": "x", "delete": True, "root": "a"}, "only surfaceId and delete"),
    (_chain(surface.MAX_DEPTH + 1), "deeper than 8"),
    ({"surfaceId": "many", "root": "c0", "components": [
        {"id": f"c{i}", "component": "Text", "text": "x"} for i in range(10_000)]}, "bytes"),
    ({"surfaceId": "many", "root": "c0", "components": [
        {"id": f"c{i}", "component": "Text", "text": "x"} for i in range(65)]}, "1 to 64 components"),
])
def test_bad_surfaces_are_refused_with_the_reason(bad, reason):
    with pytest.raises(surface.SurfaceError, match=reason.replace("[", r"\[").replace("?", r"\?")):
        surface.validate(bad)


def test_the_rules_compose_a_countdown_a_table_and_a_sourced_card():
    timer = rules.respond(Request("Set a timer for five minutes.", "", NOW))
    assert timer.text == "Five minutes have passed." and timer.after_s == 300  # said when the time is up
    assert [c for c in timer.surface["components"] if c["component"] == "Timer"][0]["seconds"] == 300
    assert rules.respond(Request("Tell me when a minute has passed.", "", NOW)).text == "One minute has passed."
    assert rules.timer("start a timer for 90 seconds") == (90, "90 seconds")
    for form in lexicon.TIMER_REQUESTS:  # every way the corpus' users ask, as the model hands it over
        for n, word in lexicon.NUMBER_WORDS.items():
            assert {rules.timer(said.format(n=word)) for said in lexicon.forms(form)} == {(n, f"{word} seconds")}
    assert rules.timer("set a timer for 0 seconds") is None and rules.timer("what is a timer") is None

    units = rules.respond(Request("How many kilometres are in 12 miles?", "", NOW))
    assert units.text == rules.answer(Request("How many kilometres are in 12 miles?", "", NOW))
    table = [c for c in units.surface["components"] if c["component"] == "Table"][0]
    assert table["rows"] == [["from", "12 miles"], ["to", units.trace[0]["result"]]]

    question = documents.search_questions()[0]
    found = rules.respond(Request(question.question, "", NOW))
    link = [c for c in found.surface["components"] if c["component"] == "Link"][0]
    assert found.text.endswith(f"{question.answer}.") and link["doc"] == question.doc_id
    missing = rules.respond(Request(documents.unanswerable()[0], "", NOW))
    assert missing.surface is None and "could not find" in missing.text
    assert rules.respond(Request("What is 6 times 7?", "", NOW)).surface is None
    for answer in (timer, units, found):
        surface.validate(answer.surface)


def test_a_surface_from_any_trace_is_valid_or_none():
    """What a learned reasoner's calls make: a table for a conversion, a card for a read document, and
    nothing (never an exception) for calls that would make an invalid surface."""
    units = surface.from_trace("convert", [{"call": "units(3 ft to m)", "result": "0.9144 m"}], "About 0.9.")
    assert units["components"][1]["rows"] == [["from", "3 ft"], ["to", "0.9144 m"]]
    read = [{"call": "search(Kogin)", "result": "g-kogin-bridge | Kogin Bridge | snippet"},
            {"call": "open(g-kogin-bridge)", "result": "Kogin Bridge: text"}]
    assert surface.from_trace("q", read, "It was.")["components"][2]["doc"] == "g-kogin-bridge"
    for trace in ([{"call": "open(javascript:alert(1))", "result": "x"}, *read[:1]],
                  [read[0], {"call": "open(<img src=x>)", "result": "Kogin"}],
                  [{"call": "units(", "result": "error: bad"}], [{"call": "calculator(1+1)", "result": "2"}], []):
        assert surface.from_trace("q", trace, "x" * 900) is None
    assert surface.line_of_trace(read) == "card|g-kogin-bridge|Kogin Bridge"  # what a learned reasoner writes
    assert surface.from_line("table|3 ft|0.9144 m", "convert", "")["components"][1]["rows"][1] == ["to", "0.9144 m"]
    for line in ("", "table|3 ft", "card|<img src=x>|Kogin", "card|g-kogin|", "chart|a|b", "table||x", "|||"):
        assert surface.from_line(line, "q", "x") is None, line


def _session(reasoner) -> LiveSession:
    lay = layout_lib.MicroTurnLayout()
    return LiveSession(lay, ReasonerRuntime(reasoner, lay.text_in_slots))


def _deliver(session, question: str) -> list[dict]:
    """Delegates `question`, waits for the answer, and ticks once: the events of that micro-turn."""
    session.runtime.delegate(question, "", microturn=session.microturn)
    for _ in range(200):
        if not session.runtime.pending or session.runtime._pending[next(iter(session.runtime._pending))][0].done():
            break
        threading.Event().wait(0.01)
    session.inputs()
    silent = np.full(session.layout.text_out_slots, text.Special.PAD, np.int32)
    return session.outputs(np.zeros(3200, np.float32), silent)


def test_a_session_sends_a_surface_as_a_render_ui_call_and_takes_the_acknowledgement():
    session = _session(CallableReasoner(rules.respond))
    try:
        events = _deliver(session, "set a timer for two minutes")
        kinds = [e["type"] for e in events]
        assert "response.output_item.added" in kinds and "response.function_call_arguments.done" in kinds
        added = next(e for e in events if e["type"] == "response.output_item.added")["item"]
        done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
        assert added["type"] == "function_call" and added["name"] == done["name"] == "render_ui"
        assert added["call_id"] == done["call_id"] and added["arguments"] == done["arguments"]
        shown = surface.validate(done["arguments"])
        assert [c["seconds"] for c in shown["components"] if c["component"] == "Timer"] == [120]
        assert "render_ui" in {t["name"] for t in session.settings()["tools"]}

        ack = {"type": "conversation.item.create",
               "item": {"type": "function_call_output", "call_id": done["call_id"], "output": "shown"}}
        echoed = session.handle(ack)
        assert echoed[0]["item"]["call_id"] == done["call_id"]
        with pytest.raises(protocol.ProtocolError) as twice:  # acknowledged once only
            session.handle(ack)
        assert twice.value.code == "unknown_call"
    finally:
        session.close()


def test_an_invalid_surface_from_a_reasoner_becomes_an_error_event_and_is_not_sent():
    hostile = _with(lambda s: s["components"][4].update(url="javascript:alert(document.cookie)"))
    session = _session(CallableReasoner(lambda request: Answer("here", surface=hostile)))
    try:
        events = _deliver(session, "anything")
        assert not [e for e in events if e.get("name") == "render_ui"]
        errors = [e for e in events if e["type"] == "error"]
        assert errors and errors[0]["error"]["code"] == "invalid_surface"
        assert "http:// or https://" in errors[0]["error"]["message"]
        assert any(e["type"] == "conversation.item.created" and e["item"].get("output") == "here" for e in events)
    finally:
        session.close()
