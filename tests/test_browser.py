"""The live page in headless Chromium: a fake microphone plays a WAV, audio comes back from the model,
the transcript updates, typed text is acknowledged; a spoken timer request and unit question become a
countdown and a table beside the transcript, and hostile surfaces are refused or inert. Needs Debian's
chromium and the driver in tests/browser (`npm install --prefix tests/browser`): .ci/run installs both;
elsewhere the test is skipped, with what to install, unless CI is set."""
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

from interaction.codecs import audio
from interaction.data import speech
from interaction.live.engine import SlotEngine
from interaction.live.server import LiveServer
from interaction.models import model as model_lib
from interaction.reasoner import rules
from interaction.reasoner.base import Answer, CallableReasoner
from test_live import SPEC, DelegatingEngine

DRIVER = Path(__file__).parent / "browser"
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
