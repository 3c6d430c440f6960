"""The live server: WebSocket sessions on localhost, one wall-clock tick of 200 ms for all of them.

Each connection to `/v1/realtime` gets a slot of the `SlotEngine` (or an error and a close when every
slot is taken) and a `LiveSession`. A ticker advances every slot once per 200 ms of wall time: it takes
each session's inputs (padding a stalled client with silence), runs the batched step on a worker thread
(the event loop keeps receiving meanwhile), and sends each session its events. A tick that starts late
is recorded, not skipped: `tick_lateness` is what the load test reads. A bad event gets an `error`
event on its own connection only; a client that goes away frees its slot at once. Plain HTTP GETs are
answered from the browser page's folder.
"""
from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import json
import logging
import mimetypes
from pathlib import Path

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from interaction import MICROTURN_SECONDS
from interaction.live import protocol
from interaction.live.engine import SlotEngine
from interaction.live.session import LiveSession
from interaction.reasoner.base import Reasoner
from interaction.reasoner.runtime import ReasonerRuntime

PAGE_DIR = Path(__file__).parent / "page"
REALTIME_PATH = "/v1/realtime"
_SEND_TIMEOUT_S = 1.0  # a client that cannot take a tick's events within this is dropped

log = logging.getLogger(__name__)


class LiveServer:
    def __init__(self, engine: SlotEngine, *, reasoner: Reasoner | None = None, seed: int = 0):
        self.engine, self.reasoner = engine, reasoner
        self._seeds = itertools.count(seed)
        self._sessions: dict[int, tuple[LiveSession, ServerConnection]] = {}
        self.tick_lateness: list[float] = []  # seconds past the deadline each tick's events were all sent
        self.tick_start_lateness: list[float] = []
        self.tick_work: list[float] = []  # seconds from a tick's start to its events all sent
        self.ticks = 0

    # ------------------------------------------------------------ connections

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        """Serves the page for plain GETs; lets WebSocket upgrades to /v1/realtime through."""
        path = request.path.split("?")[0]
        if path == REALTIME_PATH:
            return None
        name = "index.html" if path in ("", "/") else path.lstrip("/")
        file = (PAGE_DIR / name).resolve()
        if PAGE_DIR.resolve() not in file.parents or not file.is_file():
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"no such page: {path}\n")
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        body = file.read_bytes()
        headers = Headers({"Content-Type": kind, "Content-Length": str(len(body)), "Cache-Control": "no-store"})
        return Response(http.HTTPStatus.OK, "OK", headers, body)

    async def _handle(self, ws: ServerConnection) -> None:
        slot = self.engine.attach(next(self._seeds))
        if slot is None:
            await ws.send(json.dumps(protocol.error(protocol.ProtocolError(
                "server_full", f"all {self.engine.max_sessions} session slots are taken; try again later "
                               "or start the server with a larger --serve.sessions."))))
            await ws.close(1013, "server full")
            return
        runtime = None if self.reasoner is None else ReasonerRuntime(self.reasoner, self.engine.layout.text_in_slots)
        session = LiveSession(self.engine.layout, runtime)
        self._sessions[slot] = (session, ws)
        try:
            await ws.send(json.dumps(protocol.event("session.created", session=session.settings())))
            async for raw in ws:
                try:
                    events = session.handle(protocol.parse(raw))
                except protocol.ProtocolError as err:
                    events = [protocol.error(err)]
                for ev in events:
                    await ws.send(json.dumps(ev))
        except ConnectionClosed:
            pass
        finally:
            self._sessions.pop(slot, None)
            self.engine.detach(slot)
            session.close()

    # ------------------------------------------------------------ the tick

    async def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        inputs = self.engine.idle_inputs()
        sessions = dict(self._sessions)
        padded = {}
        for slot, (session, _) in sessions.items():
            turn, padded[slot] = session.inputs()
            for name, value in turn.items():
                inputs[name][slot] = value
        paused = getattr(self.reasoner, "paused", None)  # a reasoner in its own process is stopped meanwhile
        with paused() if paused is not None else contextlib.nullcontext():
            out = await loop.run_in_executor(None, self.engine.step, inputs)
        sends = []
        for slot, (session, ws) in sessions.items():
            if slot not in self._sessions:  # gone during the step
                continue
            events = session.outputs(out["audio"][slot], out["text_tokens"][slot])
            events.append(protocol.event("input_audio_buffer.timeline", microturn=session.microturn - 1,
                                         padded=bool(padded[slot])))
            sends.append(self._send_all(ws, events))
        await asyncio.gather(*sends)

    async def _send_all(self, ws: ServerConnection, events: list[dict]) -> None:
        try:
            async with asyncio.timeout(_SEND_TIMEOUT_S):
                for ev in events:
                    await ws.send(json.dumps(ev))
        except (ConnectionClosed, TimeoutError):
            await ws.close(1011, "could not deliver events in time")

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            due = start + self.ticks * MICROTURN_SECONDS
            await asyncio.sleep(max(0.0, due - loop.time()))
            began = loop.time()
            self.tick_start_lateness.append(began - due)
            if self._sessions:
                try:
                    await self._tick(loop)
                except Exception:  # noqa: BLE001 - one bad tick must not end every session
                    log.exception("tick %d failed", self.ticks)
                self.tick_lateness.append(loop.time() - (due + MICROTURN_SECONDS))
                self.tick_work.append(loop.time() - began)
            self.ticks += 1

    @contextlib.asynccontextmanager
    async def running(self, host: str = "127.0.0.1", port: int = 8765):
        """Serves until the block exits; yields the bound port (give port=0 for any free one). The step is
        compiled and the vocoder warmed first, so that the first client's ticks are on time."""
        await asyncio.get_running_loop().run_in_executor(None, self._warm)
        async with serve(self._handle, host, port, process_request=self._http,
                         max_size=4 * protocol.MAX_MESSAGE_BYTES, ping_interval=20) as server:
            ticker = asyncio.create_task(self._ticker())
            try:
                yield server.sockets[0].getsockname()[1]
            finally:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker

    def _warm(self) -> None:
        out = self.engine.step(self.engine.idle_inputs())
        LiveSession(self.engine.layout).outputs(out["audio"][0], out["text_tokens"][0])

    def lateness_summary(self) -> dict:
        late = np.maximum(np.asarray(self.tick_lateness or [0.0]), 0.0)
        start = np.asarray(self.tick_start_lateness or [0.0])
        return {"ticks": len(self.tick_lateness), "p50_late_ms": 1000 * float(np.percentile(late, 50)),
                "p99_late_ms": 1000 * float(np.percentile(late, 99)), "max_late_ms": 1000 * float(late.max()),
                "p99_start_late_ms": 1000 * float(np.percentile(start, 99)),
                "p50_work_ms": 1000 * float(np.percentile(self.tick_work or [0.0], 50)),
                "p99_work_ms": 1000 * float(np.percentile(self.tick_work or [0.0], 99)),
                "on_time": float(np.mean(late == 0.0))}
