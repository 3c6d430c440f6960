"""The wire protocol of live sessions: a documented subset of the OpenAI Realtime API's events.

Client -> server (JSON text frames):
  session.update              {"session": {"input_audio_format": ..., "output_audio_format": ...}}
                              formats: "pcm16" (24 kHz, as Realtime's beta), {"type": "audio/pcm", "rate": R}
                              (as its GA API) with R 24000 or 16000 (the model's own rate, no resampling)
  input_audio_buffer.append   {"audio": base64 little-endian PCM16 mono at the input rate}
  input_audio_buffer.commit / .clear, response.create, response.cancel
                              accepted for compatibility: the model listens and speaks continuously, so
                              there is nothing to commit or request (clear drops audio not yet heard)
  conversation.item.create    {"item": {"type": "message", "role": "user",
                                        "content": [{"type": "input_text", "text": ...}]}}: typed text, or
                              {"item": {"type": "function_call_output", "call_id", "output"}}: the client's
                              acknowledgement of a render_ui call (the surface shown, or why not)

Server -> client:
  session.created / session.updated     {"session": {...the session's settings...}}
  conversation.item.created             typed text, acknowledged ({"item": {"type": "message", ...}}), and
                                        the reasoner's answer as it enters the model's text-in slots
                                        ({"item": {"type": "function_call_output", "call_id", "output"}})
  input_audio_buffer.cleared
  response.output_audio.delta           {"delta": base64 PCM16}: 200 ms of model audio every micro-turn
  response.output_audio_transcript.delta {"delta": text}: the model's text stream as it is emitted
  response.function_call_arguments.done {"name": "reasoner", "call_id", "arguments": JSON {"request"}}:
                                        the model delegated to the background reasoner
  response.output_item.added            {"item": {"type": "function_call", "name": "render_ui", "call_id",
                                        "arguments"}}, then
  response.function_call_arguments.done {"name": "render_ui", "call_id", "arguments": a UI surface as JSON
                                        (interaction/reasoner/surface.py)}: show it beside the transcript;
                                        a surface that fails the schema is never sent: an "invalid_surface"
                                        error says why
  input_audio_buffer.timeline           {"microturn", "padded"}: one per tick (not a Realtime event;
                                        clients ignore unknown types)
  error                                 {"error": {"type", "code", "message", "event_id"}}

The model has no transcript of the user's speech, so no input_audio_transcription events are sent.
Every event carries "type" and a server-made "event_id"; an error names the client event it answers.
"""
from __future__ import annotations

import base64
import binascii
import itertools
import json

import numpy as np

MAX_MESSAGE_BYTES = 1 << 20  # a larger frame is refused (about 20 s of 24 kHz audio in base64)
RATES = (24000, 16000)
DEFAULT_RATE = 24000  # Realtime's pcm16
IGNORED = ("input_audio_buffer.commit", "response.create", "response.cancel")
HANDLED = ("session.update", "input_audio_buffer.append", "input_audio_buffer.clear", "conversation.item.create")

_ids = itertools.count()


class ProtocolError(Exception):
    """A bad client event: `code` is machine-readable, the message says what was wrong and how to fix it."""

    def __init__(self, code: str, message: str, event_id: str | None = None):
        super().__init__(message)
        self.code, self.message, self.event_id = code, message, event_id


def event(kind: str, **fields) -> dict:
    return {"type": kind, "event_id": f"event_{next(_ids)}", **fields}


def error(err: ProtocolError) -> dict:
    return event("error", error={"type": "invalid_request_error", "code": err.code, "message": err.message,
                                 "event_id": err.event_id})


def parse(raw: str | bytes) -> dict:
    """A client frame -> its event (a dict with a known "type"), or ProtocolError."""
    if isinstance(raw, bytes):
        raise ProtocolError("binary_frame", "binary frames are not part of the protocol: send JSON text events "
                                            "(audio goes base64-encoded in input_audio_buffer.append).")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError("message_too_large", f"a {len(raw)}-byte event is over the {MAX_MESSAGE_BYTES}-byte "
                                                 "limit: send audio in pieces of a few hundred milliseconds.")
    try:
        msg = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ProtocolError("invalid_json",
                            f"the event is not valid JSON ({err.msg} at character {err.pos}).") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("invalid_event", 'an event is a JSON object with a string "type".')
    kind, event_id = msg["type"], msg.get("event_id")
    if kind not in HANDLED + IGNORED:
        raise ProtocolError("unknown_event", f"unknown event type {kind!r}; this server handles "
                                             f"{', '.join(HANDLED + IGNORED)}.", event_id)
    return msg


def audio_format(spec, event_id=None) -> int:
    """A session.update audio format -> its sample rate, or ProtocolError for anything but PCM16 mono."""
    if spec == "pcm16":
        return DEFAULT_RATE
    if isinstance(spec, dict) and spec.get("type") in ("audio/pcm", "pcm16"):
        rate = spec.get("rate", DEFAULT_RATE)
        if rate in RATES:
            return int(rate)
        raise ProtocolError("unsupported_audio_format", f"PCM at {rate} Hz is not supported: use one of {RATES}.",
                            event_id)
    raise ProtocolError("unsupported_audio_format", f"audio format {spec!r} is not supported: use \"pcm16\" "
                                                    f"(24 kHz) or {{\"type\": \"audio/pcm\", \"rate\": 16000}}.",
                        event_id)


def decode_audio(msg: dict) -> np.ndarray:
    """input_audio_buffer.append -> int16 samples, or ProtocolError."""
    data = msg.get("audio")
    if not isinstance(data, str):
        raise ProtocolError("invalid_audio", 'input_audio_buffer.append needs "audio": base64 PCM16.',
                            msg.get("event_id"))
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("invalid_audio", "the audio is not valid base64.", msg.get("event_id")) from None
    if len(raw) % 2:
        raise ProtocolError("invalid_audio", f"{len(raw)} bytes is not whole 16-bit samples: the audio must be "
                                             "little-endian PCM16 mono.", msg.get("event_id"))
    return np.frombuffer(raw, "<i2")


def encode_audio(samples: np.ndarray) -> str:
    return base64.b64encode(np.asarray(samples, "<i2").tobytes()).decode("ascii")


def function_call_output(msg: dict, calls) -> tuple[str, str]:
    """conversation.item.create of a function_call_output -> (call_id, output) for one of `calls` (the
    render_ui calls awaiting acknowledgement), or ProtocolError."""
    item, event_id = msg["item"], msg.get("event_id")
    call_id, output = item.get("call_id"), item.get("output", "")
    if not isinstance(call_id, str) or call_id not in calls:
        raise ProtocolError("unknown_call", f"function_call_output for call_id {str(call_id)[:60]!r}, which is no "
                                            "render_ui call awaiting acknowledgement.", event_id)
    if not isinstance(output, str) or len(output) > 2000:
        raise ProtocolError("invalid_item", "a function_call_output's output is text of at most 2000 characters.",
                            event_id)
    return call_id, output


def typed_text(msg: dict) -> str:
    """conversation.item.create -> the user's typed text, or ProtocolError."""
    item = msg.get("item")
    bad = ProtocolError("invalid_item", 'conversation.item.create takes {"item": {"type": "message", "role": "user", '
                                        '"content": [{"type": "input_text", "text": "..."}]}}.', msg.get("event_id"))
    if not isinstance(item, dict) or item.get("type") != "message" or item.get("role") != "user":
        raise bad
    content = item.get("content")
    if not isinstance(content, list) or not content:
        raise bad
    parts = [c.get("text") for c in content if isinstance(c, dict) and c.get("type") in ("input_text", "text")]
    if not parts or not all(isinstance(p, str) for p in parts) or not "".join(parts).strip():
        raise bad
    return " ".join(parts)
