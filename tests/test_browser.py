"""The live page in headless Chromium: a fake microphone plays a WAV, audio comes back from the model,
the transcript updates, typed text is acknowledged. Needs Debian's chromium and the driver in
tests/browser (`npm install --prefix tests/browser`): .ci/run installs both; elsewhere the test is
skipped, with what to install, unless CI is set."""
import asyncio
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
from interaction.reasoner.base import CallableReasoner
from test_live import SPEC

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


@pytest.fixture()
def server_url():
    """A live server on a thread of its own, serving an untrained model (it babbles: enough to see
    audio and text come back)."""
    engine = SlotEngine(model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(0)), max_sessions=2, context_turns=8,
                        flow_steps=2, speak_threshold=0.0, keep_threshold=0.0,
                        byte_threshold=0.0)  # untrained: always speaks
    server = LiveServer(engine, reasoner=CallableReasoner(lambda request: "42"))
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
    yield f"http://127.0.0.1:{holder['port']}/"
    stop.set()
    thread.join(10)


def test_the_page_talks_with_a_fake_microphone(server_url, tmp_path):
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run in CI: {missing}")
        pytest.skip(missing)
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
