"""Live sessions: the protocol refuses bad events clearly, the slot engine keeps sessions apart bit for
bit, and the server carries on through bad clients, stalls and disconnects, freeing their slots."""
import asyncio
import base64
import dataclasses
import json

import numpy as np
import pytest
from flax import nnx
from websockets.asyncio.client import connect

from interaction.codecs import text
from interaction.data import layout as layout_lib
from interaction.data import pipeline, speech
from interaction.live import protocol
from interaction.live.client import Conversation
from interaction.live.engine import SlotEngine
from interaction.live.resample import StreamingResampler
from interaction.live.server import LiveServer
from interaction.live.session import LiveSession
from interaction.models import model as model_lib
from interaction.models.transformer import DecoderSpec, MoESpec
from interaction.reasoner import rules, surface
from interaction.reasoner.base import CallableReasoner

SPEC = model_lib.ModelSpec(
    decoder=DecoderSpec(embed=32, layers=2, heads=4, kv_heads=2, head_dim=8, mlp=64,
                        moe=MoESpec(num_experts=4, top_k=2, every=2)),
    layout=layout_lib.MicroTurnLayout(), flow_hidden=32, flow_depth=1,
)


class DelegatingEngine(SlotEngine):
    """The untrained test model with its delegations scripted: when a stretch of speech it hears ends, its
    text stream carries the next of `requests` (cycling), as the trained model is to write them itself."""

    def __init__(self, *args, requests, **kw):
        super().__init__(*args, **kw)
        self.requests = requests
        self._heard = {}  # slot -> [speech ticks in this stretch, silent ticks since, requests made, tokens to write]

    def step(self, inputs):
        out = super().step(inputs)
        rows = out["text_tokens"].copy()
        for slot in range(self.max_sessions):
            st = self._heard.setdefault(slot, [0, 0, 0, []])
            if np.mean(inputs["user_audio"][slot] > 0) > 0.3:  # dMel bin 0 is silence
                st[0], st[1] = st[0] + 1, 0
            elif st[0]:
                st[1] += 1
                if st[0] >= 3 and st[1] == 2:  # 0.4 s of quiet after at least 0.6 s of speech
                    request = self.requests[st[2] % len(self.requests)]
                    st[2], st[0] = st[2] + 1, 0
                    st[3] += text.wrap(text.Special.DELEGATE, request, text.Special.DELEGATE_END)
            if st[3]:
                n = rows.shape[1]
                row, st[3] = st[3][:n], st[3][n:]
                rows[slot] = np.pad(row, (0, n - len(row)), constant_values=int(text.Special.PAD))
        return {**out, "text_tokens": rows}


@pytest.fixture(scope="module")
def engine():
    return SlotEngine(model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(0)), max_sessions=2, context_turns=8,
                      flow_steps=2, speak_threshold=0.0, keep_threshold=0.0,
                      byte_threshold=0.0)  # untrained: always speaks


def _audio_event(samples) -> str:
    return json.dumps({"type": "input_audio_buffer.append",
                       "audio": base64.b64encode(np.asarray(samples, "<i2").tobytes()).decode()})


@pytest.mark.parametrize("raw, code", [
    ("{not json", "invalid_json"),
    ("[1, 2]", "invalid_event"),
    ('{"type": "response.teleport"}', "unknown_event"),
    (b"\x00\x01", "binary_frame"),
    ("x" * (protocol.MAX_MESSAGE_BYTES + 1), "message_too_large"),
])
def test_bad_frames_are_refused_with_a_code_and_a_fix(raw, code):
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.parse(raw)
    assert err.value.code == code and len(err.value.message) > 20


def test_bad_audio_formats_and_items_are_refused():
    session = LiveSession(SPEC.layout)
    bad = [({"type": "session.update", "session": {"input_audio_format": "g711_ulaw"}}, "unsupported_audio_format"),
           ({"type": "session.update", "session": {"input_audio_format": {"type": "audio/pcm", "rate": 44100}}},
            "unsupported_audio_format"),
           ({"type": "input_audio_buffer.append", "audio": "%%%"}, "invalid_audio"),
           ({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"abc").decode()}, "invalid_audio"),
           ({"type": "conversation.item.create", "item": {"type": "message", "role": "assistant"}}, "invalid_item")]
    for msg, code in bad:
        with pytest.raises(protocol.ProtocolError) as err:
            session.handle(msg)
        assert err.value.code == code
    assert session.rate_in == protocol.DEFAULT_RATE  # nothing half-applied
    ok = session.handle({"type": "session.update",
                         "session": {"input_audio_format": {"type": "audio/pcm", "rate": 16000}}})
    assert ok[0]["type"] == "session.updated" and session.rate_in == 16000


def test_audio_ahead_of_real_time_is_capped_and_a_stalled_client_is_padded():
    session = LiveSession(SPEC.layout)
    with pytest.raises(protocol.ProtocolError, match="faster than real time"):
        session.handle(json.loads(_audio_event(np.zeros(24000 * 3))))
    turns = [session.inputs()[1] for _ in range(12)]
    assert turns == [False] * 10 + [True] * 2  # 2 s kept, then silence


def test_a_live_session_hears_what_the_pipeline_makes_of_the_same_audio():
    """Tick by tick, the dMel tokens of a live session fed speech in real time equal the offline path's: the same
    bins, but where float rounding (one frame at a time against a batch) lands a level on the other side of a bin
    edge, one bin off, in a handful of the 640 a micro-turn. With the layout's `pitch`, its pitch numbers equal the
    offline path's too."""
    wave = speech.synthesize("so I went down to the store, and then", speech.Voice("en-us", "m3")).audio
    pcm = np.round(np.clip(wave, -1, 1) * 32767).astype(np.int16)
    layout = dataclasses.replace(SPEC.layout, pitch=True)
    session = LiveSession(layout)
    session.handle({"type": "session.update", "session": {"input_audio_format": {"type": "audio/pcm", "rate": 16000}}})
    offline = pipeline.stream_inputs(pcm.astype(np.float32) / 32768, layout)
    assert (offline["user_audio"] > 0).mean() > 0.2  # speech, not silence
    assert (offline["user_pitch"][..., 2] != 0).any()  # the pitch moved and was heard moving
    assert not pipeline.stream_inputs(pcm.astype(np.float32) / 32768, SPEC.layout)["user_pitch"].any()  # not asked
    for m in range(len(offline["user_audio"])):
        session.handle(json.loads(_audio_event(pcm[m * 3200 : (m + 1) * 3200])))
        live = session.inputs()[0]
        off = np.abs(live["user_audio"].astype(int) - offline["user_audio"][m])
        assert off.max() <= 1 and (off > 0).sum() <= 3, f"micro-turn {m}: {(off > 0).sum()} bins differ, by {off.max()}"
        np.testing.assert_allclose(live["user_pitch"], offline["user_pitch"][m], atol=1e-4, err_msg=f"micro-turn {m}")


def test_streaming_resampler_pieces_equal_the_whole_stream():
    x = np.random.default_rng(0).standard_normal(4800 * 4).astype(np.float32)
    whole = StreamingResampler(24000, 16000).push(x)
    r = StreamingResampler(24000, 16000)
    np.testing.assert_array_equal(np.concatenate([r.push(x[i:i + 4800]) for i in range(0, len(x), 4800)]), whole)
    assert len(whole) == len(x) * 2 // 3


def _run(engine, slots_inputs, turns):
    """Steps the engine `turns` times; slots_inputs: slot -> fn(turn) -> (user_audio, text_in)."""
    outs = []
    for m in range(turns):
        inputs = engine.idle_inputs()
        for slot, fn in slots_inputs.items():
            inputs["user_audio"][slot], inputs["text_in"][slot] = fn(m)
        outs.append(engine.step(inputs))
    return outs


def test_sessions_are_isolated_bit_for_bit(engine):
    """Session B's outputs are the same whether A talks and types beside it or not, and a slot reused
    after A left starts from nothing of A's."""
    rng = np.random.default_rng(0)
    lay = SPEC.layout
    voice = rng.integers(0, lay.dmel.n_bins, (6, lay.frames, lay.dmel.n_mels)).astype(np.int32)
    secret = np.asarray((text.wrap(text.Special.TYPED, "my pin is 4711", text.Special.TYPED_END) + [0] * 16)[:8])
    quiet = np.full(lay.text_in_slots, text.Special.PAD, np.int32)
    b_input = lambda m: (voice[m], quiet)  # noqa: E731
    a_input = lambda m: (voice[::-1][m], secret)  # noqa: E731

    b = engine.attach(seed=7)
    alone = _run(engine, {b: b_input}, 6)
    engine.detach(b)
    a, b = engine.attach(seed=3), engine.attach(seed=7)
    beside = _run(engine, {a: a_input, b: b_input}, 6)
    for x, y in zip(alone, beside):
        np.testing.assert_array_equal(x["mel"][0], y["mel"][b])
        np.testing.assert_array_equal(x["text_tokens"][0], y["text_tokens"][b])
        np.testing.assert_array_equal(x["audio"][0], y["audio"][b])  # the vocoder's rows are apart too
    engine.detach(a)
    engine.detach(b)
    b = engine.attach(seed=7)  # the slot A had, or B's own: either way a fresh session
    again = _run(engine, {b: b_input}, 6)
    for x, y in zip(alone, again):
        np.testing.assert_array_equal(x["mel"][0], y["mel"][b])
        np.testing.assert_array_equal(x["audio"][0], y["audio"][b])
    engine.detach(b)


def test_server_carries_on_through_bad_clients_and_frees_slots(engine):
    async def scenario():
        server = LiveServer(engine, reasoner=CallableReasoner(lambda request: "42"))
        async with server.running(port=0) as port:
            url = f"ws://127.0.0.1:{port}/v1/realtime"
            good = await Conversation.open(url, rate=16000)
            bad = await connect(url)
            for raw in ("{oops", '{"type": "nope"}', "y" * (protocol.MAX_MESSAGE_BYTES + 10),
                        json.dumps({"type": "session.update", "session": {"input_audio_format": "g711_alaw"}})):
                await bad.send(raw)
            codes = []
            while len(codes) < 4:
                event = json.loads(await bad.recv())
                if event["type"] == "error":
                    codes.append(event["error"]["code"])
            assert codes == ["invalid_json", "unknown_event", "message_too_large", "unsupported_audio_format"]
            # The slots are full: a third client is told so and closed.
            third = await connect(url)
            refused = json.loads(await third.recv())
            assert refused["error"]["code"] == "server_full"
            # A client gone mid-utterance frees its slot for the next one.
            await bad.send(_audio_event(np.full(1600, 3000)))
            await bad.close()
            await asyncio.sleep(0.1)
            assert engine.active == 1
            late = await Conversation.open(url)
            await good.type_text("what is six times seven")
            await good.stream(np.zeros(16000, np.float32))  # 1 s, real time
            await asyncio.sleep(0.3)
            await late.close()
            await good.close()
            await asyncio.sleep(0.1)
            assert engine.active == 0
        return good, server

    good, server = asyncio.run(scenario())
    assert good.of("session.created") and good.of("conversation.item.created")
    deltas = good.of("response.output_audio.delta")
    assert len(deltas) >= 5  # one per tick while connected
    assert all(len(base64.b64decode(d["delta"])) == 2 * 3200 for d in deltas)  # 200 ms at 16 kHz
    timeline = good.of("input_audio_buffer.timeline")
    assert [t["microturn"] for t in timeline] == list(range(len(timeline)))
    assert not good.of("error")
    assert server.ticks >= 5


def test_the_page_is_served_and_unknown_paths_are_not(engine):
    import urllib.error
    import urllib.request

    async def scenario():
        server = LiveServer(engine)
        async with server.running(port=0) as port:
            loop = asyncio.get_running_loop()
            page = await loop.run_in_executor(None, lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/").read())
            try:
                await loop.run_in_executor(None, lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/../setup.cfg"))
                missing = None
            except urllib.error.HTTPError as err:
                missing = err.code
        return page, missing

    page, missing = asyncio.run(scenario())
    assert b"<html" in page.lower() and missing == 404


def test_the_openai_realtime_client_connects_and_reads_every_event(engine):
    """OpenAI's own Python SDK, pointed at this server, speaks to it and parses what it sends."""
    from openai import AsyncOpenAI

    async def scenario():
        server = LiveServer(engine)
        async with server.running(port=0) as port:
            client = AsyncOpenAI(api_key="unused", websocket_base_url=f"ws://127.0.0.1:{port}/v1")
            async with client.realtime.connect(model="interaction-tiny") as conn:
                await conn.session.update(session={"type": "realtime", "audio": {
                    "input": {"format": {"type": "audio/pcm", "rate": 24000}}}})
                await conn.input_audio_buffer.append(audio=base64.b64encode(np.zeros(4800, "<i2").tobytes()).decode())
                await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                          "content": [{"type": "input_text", "text": "hello"}]})
                events = []
                async for event in conn:
                    events.append(event)
                    if sum(e.type == "response.output_audio.delta" for e in events) == 3:
                        return events

    events = asyncio.run(scenario())
    kinds = {e.type: type(e).__name__ for e in events}
    assert kinds["session.created"] == "SessionCreatedEvent" and kinds["session.updated"] == "SessionUpdatedEvent"
    assert kinds["conversation.item.created"] == "ConversationItemCreatedEvent"
    assert kinds["response.output_audio.delta"] == "ResponseAudioDeltaEvent"
    assert kinds["response.output_audio_transcript.delta"] == "ResponseAudioTranscriptDeltaEvent"
    assert "error" not in kinds
    for e in events:
        if e.type == "response.output_audio.delta":
            assert len(base64.b64decode(e.delta)) == 2 * 4800  # 200 ms of PCM16 at the session's 24 kHz


def test_the_python_client_gets_a_surface_prints_it_and_acknowledges_it():
    """A scripted delegation ("set a timer ...") through the rules reasoner reaches the client as a render_ui
    call, which it acknowledges (the server echoes the acknowledgement) and reads as text."""
    scripted = DelegatingEngine(model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(0)), max_sessions=1, context_turns=8,
                                flow_steps=2, requests=["set a timer for ten seconds"])

    async def scenario():
        server = LiveServer(scripted, reasoner=CallableReasoner(rules.respond))
        async with server.running(port=0) as port:
            conv = await Conversation.open(f"ws://127.0.0.1:{port}/v1/realtime", rate=16000)
            noise = np.random.default_rng(0).normal(0, 0.3, 16000).astype(np.float32)  # 1 s heard as speech
            await conv.stream(np.concatenate([noise, np.zeros(12800, np.float32)]))
            for _ in range(200):  # the request spans 4 micro-turns; the answer, its surface and the echo follow
                if any(e["item"].get("id", "").endswith("_ack") for e in conv.of("conversation.item.created")):
                    break
                await asyncio.sleep(0.05)
            await conv.close()
        return conv

    conv = asyncio.run(scenario())
    assert [json.loads(e["arguments"]) for e in conv.of("response.function_call_arguments.done")
            if e["name"] == "reasoner"] == [{"request": "set a timer for ten seconds"}]
    (shown,) = conv.surfaces
    assert surface.to_text(shown).splitlines()[1:] == ["Timer: ten seconds", "  timer: 10 s (ten seconds)"]
    call = conv.of("response.output_item.added")[0]["item"]["call_id"]
    assert [e["item"]["call_id"] for e in conv.of("conversation.item.created") if e["item"].get("id", "").endswith(
        "_ack")] == [call]
    assert not conv.of("error")
