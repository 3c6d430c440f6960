"""One client's side of a live session: its audio and typed text in, the model's audio, text and
delegations out, as protocol events. No I/O here: the server feeds it frames and ticks.

Each tick (one micro-turn) `inputs` takes 200 ms of the client's audio (silence for whatever it has not
sent: a stalled client is padded, never waited for), resampled to 16 kHz and encoded to dMel tokens,
and the text-in slots (typed text and reasoner answers, queued); `outputs` turns the model's micro-turn
into events: its 200 ms of audio (rendered by the engine's live vocoder, resampled to the client's
rate), the spoken text, and a delegation when one completes, which goes to the background reasoner.
"""
from __future__ import annotations

import itertools
import json

import numpy as np

from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.codecs import audio, dmel, pitch, text, text_stream
from interaction.data.layout import MicroTurnLayout
from interaction.data.pipeline import SlotQueue
from interaction.live import protocol
from interaction.live.resample import StreamingResampler
from interaction.reasoner import surface
from interaction.reasoner.runtime import ReasonerRuntime

MAX_BUFFERED_S = 2.0  # audio a client may send ahead of real time; beyond it the oldest is dropped


class LiveSession:
    _numbers = itertools.count()

    def __init__(self, layout: MicroTurnLayout, runtime: ReasonerRuntime | None = None):
        self.layout, self.runtime = layout, runtime
        self.id = f"sess_{next(self._numbers)}"
        self.rate_in = self.rate_out = protocol.DEFAULT_RATE
        self._resample_in = StreamingResampler(self.rate_in, SAMPLE_RATE)
        self._resample_out = StreamingResampler(SAMPLE_RATE, self.rate_out)
        self._pending = np.zeros(0, np.int16)  # client audio not yet heard, at rate_in
        self._history = np.zeros(layout.dmel.history, np.float32)  # the codec's look-back, at 16 kHz
        self._pitch_before = np.zeros(pitch.span(layout.dmel), np.float32)  # the frequencies its change is from
        self._typed = runtime.queue if runtime is not None else SlotQueue(layout.text_in_slots)
        self._reader = text_stream.TextStreamReader()
        self._heard_typed: list[tuple[float, str, str]] = []  # (time, "user", text) of what the user typed
        self._calls = itertools.count()
        self._call_ids: dict[int, str] = {}  # reasoner request id -> the call id the client was told
        self._delivered = self._ready = 0
        self._shown: set[str] = set()  # render_ui call ids the client has not yet acknowledged
        self.microturn = 0

    def settings(self) -> dict:
        return {"id": self.id, "object": "realtime.session", "modalities": ["audio", "text"],
                "input_audio_format": {"type": "audio/pcm", "rate": self.rate_in},
                "output_audio_format": {"type": "audio/pcm", "rate": self.rate_out},
                "turn_detection": None, "tools": [{"type": "function", "name": "reasoner"},
                                                  {"type": "function", "name": "render_ui"}]}

    # ------------------------------------------------------------ client events

    def handle(self, msg: dict) -> list[dict]:
        """A parsed client event -> the events to send back (ProtocolError for a bad one)."""
        kind, event_id = msg["type"], msg.get("event_id")
        if kind == "session.update":
            session = msg.get("session")
            if not isinstance(session, dict):
                raise protocol.ProtocolError("invalid_session", 'session.update needs a "session" object.', event_id)
            fmt = session.get("audio", {}) if isinstance(session.get("audio"), dict) else {}
            spec_in = session.get("input_audio_format", fmt.get("input", {}).get("format"))
            spec_out = session.get("output_audio_format", fmt.get("output", {}).get("format"))
            rate_in = self.rate_in if spec_in is None else protocol.audio_format(spec_in, event_id)
            rate_out = self.rate_out if spec_out is None else protocol.audio_format(spec_out, event_id)
            if rate_in != self.rate_in:
                self.rate_in, self._pending = rate_in, np.zeros(0, np.int16)
                self._resample_in = StreamingResampler(rate_in, SAMPLE_RATE)
            if rate_out != self.rate_out:
                self.rate_out, self._resample_out = rate_out, StreamingResampler(SAMPLE_RATE, rate_out)
            return [protocol.event("session.updated", session=self.settings())]
        if kind == "input_audio_buffer.append":
            samples = protocol.decode_audio(msg)
            self._pending = np.concatenate([self._pending, samples])
            limit = round(MAX_BUFFERED_S * self.rate_in)
            if len(self._pending) > limit:
                dropped = len(self._pending) - limit
                self._pending = self._pending[dropped:]
                raise protocol.ProtocolError(
                    "input_audio_buffer_overflow", f"audio is arriving faster than real time: {dropped} samples "
                    f"beyond {MAX_BUFFERED_S:g} s ahead were dropped. Send audio as it is captured.", event_id)
            return []
        if kind == "input_audio_buffer.clear":
            self._pending = np.zeros(0, np.int16)
            return [protocol.event("input_audio_buffer.cleared")]
        if kind == "conversation.item.create" and isinstance(msg.get("item"), dict) and \
                msg["item"].get("type") == "function_call_output":
            call_id, output = protocol.function_call_output(msg, self._shown)
            self._shown.discard(call_id)
            item = {"id": f"item_{call_id}_ack", "type": "function_call_output", "call_id": call_id, "output": output}
            return [protocol.event("conversation.item.created", item=item)]
        if kind == "conversation.item.create":
            typed = protocol.typed_text(msg)
            self._typed.push(text.wrap(text.Special.TYPED, typed, text.Special.TYPED_END))
            self._heard_typed.append((round(self.microturn * MICROTURN_SECONDS, 6), "user", typed))
            item = {"id": f"item_{self.id}_{self.microturn}", "type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": typed}]}
            return [protocol.event("conversation.item.created", item=item)]
        return []  # accepted for compatibility, nothing to do (protocol.IGNORED)

    # ------------------------------------------------------------ ticks

    def inputs(self) -> tuple[dict[str, np.ndarray], bool]:
        """This micro-turn's model inputs (user_audio (F, n_mels), user_pitch (F, 3), text_in (S_in,)) and whether
        the client's audio ran short and was padded with silence."""
        per_tick = round(MICROTURN_SECONDS * self.rate_in)
        piece, self._pending = self._pending[:per_tick], self._pending[per_tick:]
        padded = len(piece) < per_tick
        wave = np.zeros(per_tick, np.float32)
        wave[: len(piece)] = audio.from_pcm16(piece)
        wave = self._resample_in.push(wave)
        tokens = dmel.tokens_from_wave(wave, self.layout.dmel, self._history)
        if self.layout.pitch:
            f0 = pitch.frequencies(wave, self.layout.dmel, self._history)
            pitches = pitch.features_of(f0, self.layout.dmel, self._pitch_before)
            self._pitch_before = np.concatenate([self._pitch_before, f0])[-len(self._pitch_before):]
        else:
            pitches = np.zeros((len(tokens), pitch.FEATURES), np.float32)
        self._history = np.concatenate([self._history, wave])[-self.layout.dmel.history:]
        text_in = self.runtime.arrived(self.microturn) if self.runtime is not None else self._typed.take()
        return {"user_audio": np.asarray(tokens), "user_pitch": pitches, "text_in": text_in}, padded

    def outputs(self, wave: np.ndarray, tokens: np.ndarray) -> list[dict]:
        """The model's micro-turn (its 16 kHz audio, text tokens (S_out,)) as events."""
        events = []
        wave = self._resample_out.push(wave)
        events.append(protocol.event("response.output_audio.delta", response_id=self.id,
                                     item_id=f"item_{self.id}_out", output_index=0, content_index=0,
                                     delta=protocol.encode_audio(audio.to_pcm16(wave))))
        spoken, requests = self._reader.feed(tokens)
        if spoken:
            events.append(protocol.event("response.output_audio_transcript.delta", response_id=self.id,
                                         item_id=f"item_{self.id}_out", output_index=0, content_index=0, delta=spoken))
        for request in requests:
            call_id = f"call_{self.id}_{next(self._calls)}"
            events.append(protocol.event("response.function_call_arguments.done", response_id=self.id, call_id=call_id,
                                         name="reasoner", arguments=json.dumps({"request": request["request"]})))
            if self.runtime is not None:
                rid = self.runtime.delegate(request["request"], self.context(), microturn=self.microturn)
                self._call_ids[rid] = call_id
        if self.runtime is not None:
            for rid, _, answer in self.runtime.delivered[self._delivered:]:
                events.append(protocol.event("conversation.item.created", item={
                    "type": "function_call_output", "call_id": self._call_ids.pop(rid, None),
                    "output": answer.text, "status": "completed" if answer.ok else "incomplete"}))
            for _, answer in self.runtime.ready[self._ready:]:  # a timer's countdown shows before it goes off
                if answer.surface is not None:
                    events.extend(self.render(answer.surface))
            self._delivered, self._ready = len(self.runtime.delivered), len(self.runtime.ready)
        self.microturn += 1
        return events

    def render(self, shown) -> list[dict]:
        """A reasoner's UI surface as a `render_ui` function call (Realtime's output_item.added, then
        function_call_arguments.done), or an `error` event saying why it was refused (`surface.validate`)."""
        try:
            checked = surface.validate(shown)
        except surface.SurfaceError as err:
            return [protocol.error(protocol.ProtocolError("invalid_surface", f"a UI surface from the reasoner was "
                                                                             f"refused: {err}."))]
        call_id = f"call_{self.id}_{next(self._calls)}"
        self._shown.add(call_id)
        arguments = json.dumps(checked)
        item = {"id": f"item_{call_id}", "object": "realtime.item", "type": "function_call", "status": "completed",
                "name": "render_ui", "call_id": call_id, "arguments": arguments}
        return [protocol.event("response.output_item.added", response_id=self.id, output_index=0, item=item),
                protocol.event("response.function_call_arguments.done", response_id=self.id, item_id=item["id"],
                               output_index=0, call_id=call_id, name="render_ui", arguments=arguments)]

    def context(self) -> str:
        """What the reasoner is handed with a request: the user's typed text and the model's speech so far."""
        model = [(a, "model", w) for a, _, w in self._reader.spoken_words()]
        return text_stream.transcript(self._heard_typed + model)

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.close()
