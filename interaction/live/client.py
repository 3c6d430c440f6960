r"""A small client of the live server: streams a WAV file in real time, types text, collects the reply.

  python -m interaction.live.client --wav=question.wav [--url=ws://127.0.0.1:8765/v1/realtime]
      [--type="What is 12 times 13?"] [--seconds=10] [--out=reply.wav]

`Conversation` is the library side: connect, stream audio in 200 ms pieces on the wall clock, and keep
every server event; the reply's audio, transcript, delegations, UI surfaces and errors are read off them.
Each `render_ui` call is acknowledged as it arrives (a function_call_output), as a page that shows it does.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math

import numpy as np
import soundfile
from websockets.asyncio.client import ClientConnection, connect

from interaction import MICROTURN_SECONDS
from interaction.codecs import audio
from interaction.reasoner import surface

DEFAULT_URL = "ws://127.0.0.1:8765/v1/realtime"


class Conversation:
    def __init__(self, ws: ClientConnection, rate: int = 24000):
        self.ws, self.rate = ws, rate
        self.events: list[dict] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str = DEFAULT_URL, rate: int = 24000) -> "Conversation":
        ws = await connect(url, max_size=None)
        conv = cls(ws, rate)
        await conv.send({"type": "session.update", "session": {
            "input_audio_format": {"type": "audio/pcm", "rate": rate},
            "output_audio_format": {"type": "audio/pcm", "rate": rate}}})
        return conv

    async def _read(self) -> None:
        async for raw in self.ws:
            event = json.loads(raw)
            self.events.append(event)
            if event["type"] == "response.function_call_arguments.done" and event.get("name") == "render_ui":
                await self.send({"type": "conversation.item.create", "item": {
                    "type": "function_call_output", "call_id": event["call_id"], "output": "shown as text"}})

    async def send(self, event: dict) -> None:
        await self.ws.send(json.dumps(event))

    async def type_text(self, typed: str) -> None:
        await self.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": typed}]}})

    async def stream(self, wave: np.ndarray, seconds: float | None = None) -> None:
        """Sends float audio at the session's rate in 200 ms pieces, one per 200 ms of wall time (then
        silence up to `seconds`)."""
        piece = round(MICROTURN_SECONDS * self.rate)
        total = max(len(wave), round((seconds or 0) * self.rate))
        wave = np.pad(np.asarray(wave, np.float32), (0, total - len(wave)))
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(math.ceil(total / piece)):
            await asyncio.sleep(max(0.0, start + i * MICROTURN_SECONDS - loop.time()))
            pcm = audio.to_pcm16(wave[i * piece: (i + 1) * piece])
            await self.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm.tobytes()).decode()})

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def reply_audio(self) -> np.ndarray:
        pcm = b"".join(base64.b64decode(e["delta"]) for e in self.of("response.output_audio.delta"))
        return audio.from_pcm16(np.frombuffer(pcm, "<i2"))

    @property
    def surfaces(self) -> list[dict]:
        """The UI surfaces the server sent (render_ui calls), in order."""
        return [json.loads(e["arguments"]) for e in self.of("response.function_call_arguments.done")
                if e.get("name") == "render_ui"]

    @property
    def transcript(self) -> str:
        return "".join(e["delta"] for e in self.of("response.output_audio_transcript.delta"))


async def _main(args) -> None:
    wave, rate = soundfile.read(args.wav, dtype="float32", always_2d=True)
    conv = await Conversation.open(args.url, rate)
    if args.type:
        await conv.type_text(args.type)
    await conv.stream(wave[:, 0], args.seconds)
    await asyncio.sleep(4 * MICROTURN_SECONDS)  # the last replies
    await conv.close()
    reply = conv.reply_audio
    if args.out:
        audio.write_wav(args.out, reply, rate)
    print(f"{len(reply) / rate:.1f} s of reply audio{f' in {args.out}' if args.out else ''}; "
          f"transcript: {conv.transcript!r}")
    for e in conv.of("response.function_call_arguments.done"):
        if e.get("name") == "reasoner":
            print("delegated:", json.loads(e["arguments"])["request"])
    for shown in conv.surfaces:
        print(surface.to_text(shown))
    for e in conv.of("error"):
        print("error:", e["error"]["message"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wav", required=True, help="mono WAV at 16 or 24 kHz")
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--type", default="", help="text to type at the start")
    parser.add_argument("--seconds", type=float, default=None,
                        help="keep the session this long (silence after the wav)")
    parser.add_argument("--out", default="", help="where to write the reply audio")
    args = parser.parse_args()
    if args.wav and soundfile.info(args.wav).samplerate not in (16000, 24000):
        parser.error(f"{args.wav} is at {soundfile.info(args.wav).samplerate} Hz: the server takes 16 or 24 kHz PCM.")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
