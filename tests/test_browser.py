"""The live page in headless Chromium: a fake microphone plays a WAV, audio comes back from the model,
the transcript updates, typed text is acknowledged; a spoken timer request and unit question become a
countdown and a table beside the transcript, and hostile surfaces are refused or inert; the main job's
trained model answers a spoken question after it ends, not over it. Needs Debian's chromium and the driver
in tests/browser (`npm install --prefix tests/browser`): .ci/run installs both; elsewhere the test is
skipped, with what to install, unless CI is set. The trained model's test needs the main job's run
(`bash main.sh` trains it into workdir/tiny; INTERACTION_MAIN_RUN names another run) and is skipped without
it."""
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from experiments import common
from interaction.codecs import audio
from interaction.data import corpus, speech
from interaction.live.engine import SlotEngine
from interaction.live.server import LiveServer
from interaction.models import model as model_lib
from interaction.reasoner import rules
from interaction.reasoner.base import Answer, CallableReasoner
from interaction.train import checkpoint
from test_live import SPEC, DelegatingEngine

DRIVER = Path(__file__).parent / "browser"
MAIN_RUN = Path(os.environ.get("INTERACTION_MAIN_RUN", Path(__file__).resolve().parents[1] / "workdir" / "tiny"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM)"
    if shutil.which("node") is None:
        return "no node: apt-get install nodejs"
    if not (DRIVER / "node_modules" / "playwright-core").exists():
        return f"no driver: npm install --prefix {DRIVER}"
    return None


def _engine(cls=SlotEngine, **kw):
    return cls(model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(0)), max_sessions=2, context_turns=8, flow_steps=2,
               speak_threshold=0.0, keep_threshold=0.0, byte_threshold=0.0, **kw)  # untrained: always speaks


@contextlib.contextmanager
def _serving(engine, reasoner):
    """A live server on a thread of its own; yields its page's URL."""
    server = LiveServer(engine, reasoner=reasoner)
    ready, stop = threading.Event(), threading.Event()
    holder = {}

    async def serve():
        async with server.running(port=0) as port:
            holder["port"] = port
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(120), "the server did not start"
    try:
        yield f"http://127.0.0.1:{holder['port']}/"
    finally:
        stop.set()
        thread.join(10)


@pytest.fixture()
def server_url():
    """The untrained model (it babbles: enough to see audio and text come back)."""
    with _serving(_engine(), CallableReasoner(lambda request: "42")) as url:
        yield url


HOSTILE = {"surfaceId": "evil", "root": "r", "components": [
    {"id": "r", "component": "Card", "children": ["a"]},
    {"id": "a", "component": "Link", "text": "click", "url": "javascript:alert(1)"}]}


def _reasoner(request):
    return Answer("here", surface=HOSTILE) if request.text == "hostile" else rules.respond(request)


def _needs_browser():
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {missing}")
        pytest.skip(missing)


def test_the_page_talks_with_a_fake_microphone(server_url, tmp_path):
    _needs_browser()
    wave = speech.synthesize("hello there, can you hear me? what is six times seven?",
                             speech.Voice("en-us", "f3")).audio
    wav = tmp_path / "mic.wav"
    audio.write_wav(wav, np.concatenate([wave * 0.5, np.zeros(8000, np.float32)]), 16000)
    shot = tmp_path / "page.png"
    run = subprocess.run(["node", str(DRIVER / "live_page.mjs"), server_url, str(wav), str(shot)],
                         capture_output=True, text=True, timeout=180, env={**os.environ, "CHROMIUM": CHROMIUM})
    assert run.returncode == 0, run.stderr[-3000:]
    stats = json.loads(run.stdout.strip().splitlines()[-1])
    assert stats["micChunks"] > 0 and stats["heardTicks"] >= 5  # the fake microphone reached the model
    assert stats["audioPieces"] >= 10 and stats["transcriptChars"] > 0  # audio came back, the transcript updated
    assert stats["errors"] == 0 and not stats["problems"], stats
    assert shot.stat().st_size > 0


LOUD = 0.02  # a tick's microphone peak above this: the question is being said
VOICED = 0.01  # a tick's audio peak from the model above this: it speaks (a silent tick plays exact zeros)


def _question_end(timeline) -> int:
    """The last loud tick of the first question heard (the question taken as over after 1 s of quiet)."""
    loud = [c["you"] > LOUD for c in timeline]
    last, quiet = loud.index(True), 0
    for j in range(last, len(loud)):
        last, quiet = (j, 0) if loud[j] else (last, quiet + 1)
        if quiet == 5:
            return last
    raise AssertionError(f"the question never ended: microphone peaks {[round(c['you'], 3) for c in timeline]}")


def test_the_trained_model_answers_a_spoken_question_after_it_ends(tmp_path):
    """The page's timeline resolves a tick (200 ms): the question's last loud tick holds its tail, and a reply
    begun in it was begun as the question ended, as a listener replies; one begun in an earlier tick was begun
    over the question."""
    _needs_browser()
    if not (MAIN_RUN / "checkpoints").is_dir():
        pytest.skip(f"no trained main job at {MAIN_RUN}: `bash main.sh` trains it (or set INTERACTION_MAIN_RUN)")
    c, graphdef, params, _ = checkpoint.load_trained(MAIN_RUN)
    engine = common.engine(nnx.merge(graphdef, params), common.serve_settings(c), sessions=1)
    held_out = corpus.voice(c.corpus.voices.heldout_user[1])  # a voice training never hears (en-us+f3)
    wave = speech.synthesize("excuse me, could you tell me what the capital of france is?", held_out).audio
    wav = tmp_path / "question.wav"
    audio.write_wav(wav, np.concatenate([np.zeros(8000), wave * 0.5, np.zeros(16000 * 8)]).astype(np.float32), 16000)
    with _serving(engine, None) as url:
        run = subprocess.run(["node", str(DRIVER / "conversation.mjs"), url, str(wav), "14"], capture_output=True,
                             text=True, timeout=180, env={**os.environ, "CHROMIUM": CHROMIUM})
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["stats"]["errors"] == 0 and not out["problems"], out
    timeline = out["timeline"]
    last = _question_end(timeline)
    speaks = [c["model"] > VOICED for c in timeline]
    shown = "".join(".UMX"[(c["you"] > LOUD) + 2 * m] for c, m in zip(timeline, speaks))  # X: both at once
    assert not any(speaks[: last]), f"it spoke before the question ended: {shown}"
    assert any(speaks[last : last + 11]), f"no reply within 2 s of the question's end: {shown}"
    said = [j for j, c in enumerate(timeline) if c["said"].strip()]
    assert said and said[0] >= last, f"its words came before the question ended: {said} ({shown})"


def test_spoken_requests_become_a_countdown_and_a_table_and_hostile_surfaces_do_nothing(tmp_path):
    """The model's delegations are scripted here (`DelegatingEngine`); the rest is the real path: the rules
    reasoner's answers and surfaces, the render_ui calls, the page's renderer and its acknowledgements."""
    _needs_browser()
    voice, gap = speech.Voice("en-us", "m3"), np.zeros(16000, np.float32)
    said = [speech.synthesize(t, voice).audio * 0.5 for t in
            ("set a timer for five minutes", "how many kilometres are in twelve miles", "show me something")]
    wav = tmp_path / "mic.wav"
    audio.write_wav(wav, np.concatenate([gap, said[0], gap, said[1], gap, said[2], gap, gap]), 16000)
    engine = _engine(DelegatingEngine, requests=["set a timer for five minutes",
                                                 "how many kilometres are in 12 miles", "hostile"])
    with _serving(engine, CallableReasoner(_reasoner)) as url:
        shot = tmp_path / "surfaces.png"
        run = subprocess.run(["node", str(DRIVER / "surfaces.mjs"), url, str(wav), str(shot)], capture_output=True,
                             text=True, timeout=240, env={**os.environ, "CHROMIUM": CHROMIUM})
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert 280 <= seen["left0"] <= 300 and seen["left1"] <= seen["left0"] - 1  # a live countdown
    assert seen["table"][:2] == ["from", "12 miles"] and seen["table"][3].endswith("km")
    assert seen["stats"]["errors"] >= 1  # the server refused the reasoner's javascript: link with an error event
    refused = {k: v for k, v in seen["verdicts"].items() if v is not None}
    assert set(refused) == {"onerror", "javascriptLink", "scriptType", "many", "deep", "malformed", "protoType"}
    assert seen["verdicts"]["scriptText"] is None and "<script>window.pwned" in seen["inert"]["shownText"]
    assert seen["inert"] == {**seen["inert"], "pwned": None, "scripts": 0, "images": 0, "handlers": 0, "jsLinks": 0}
    assert not seen["problems"] and not seen["dialogs"], seen
