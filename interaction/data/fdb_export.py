"""Exports held-out conversations in Full-Duplex-Bench's per-sample layout.

Each conversation becomes `<task>/<id>/input.wav` (the user channel, 16 kHz mono PCM16: what the model
hears) plus the annotation file its task reads, with every time in seconds. As in the benchmark, a
pause-handling sample ends with the user's turn (its whole output is scored: any turn taken is taken
in a pause) and a turn-taking sample ends where the user's next turn would begin.
  pause            -> v1 `pause_handling`:       pause.json       [{"text": "[PAUSE]", "timestamp": [s, e]}]
  turn_taking      -> v1 `smooth_turn_taking`:   turn_taking.json [{"text": "[TURN-TAKING]", "timestamp": [end, start]}]
  interruption     -> v1 `user_interruption`:    interrupt.json   [{"context", "interrupt", "timestamp": [s, e]}]
  model_backchannel-> v1 `backchannel`:          (input.wav and transcription.json only, as in the benchmark)
  user_backchannel -> v1.5 `user_backchannel`:   metadata.json {"context_text", "backchannel_text", "timestamps"}
  side_talk        -> v1.5 `talking_to_other`:   metadata.json {"context_text", "current_turn_text", "timestamps"}
  background_speech-> v1.5 `background_speech`:  metadata.json {"context_text", "background_text", "timestamps"}
The remaining kinds (visual cues, translation, timers, delegation) have no benchmark counterpart; they are
exported under their own names with metadata.json. Every sample also gets `transcription.json` (the user's
words, [{"text", "timestamp": [s, e]}]) and `events.json` (all labels of the conversation), and the
model's reference channel as `reference_output.wav`: aligned with the input but not cropped, so that a
baseline can play the reference reply that follows a cropped sample's end.
"""
from __future__ import annotations

import json
from pathlib import Path

from interaction import SAMPLE_RATE
from interaction.codecs import audio
from interaction.data import records
from interaction.data.conversation import Conversation

TASKS = {
    "pause": "pause_handling", "turn_taking": "smooth_turn_taking", "interruption": "user_interruption",
    "model_backchannel": "backchannel", "user_backchannel": "user_backchannel", "side_talk": "talking_to_other",
    "background_speech": "background_speech", "visual_cue": "visual_cue", "translation": "translation",
    "timer": "timer", "delegation": "delegation",
}


def _first(conv: Conversation, kind: str):
    events = conv.events_of(kind)
    if not events:
        raise ValueError(f"{conv.id} has no {kind!r} event to export")
    return events[0]


def _crop_end(conv: Conversation) -> float:
    """Turn-taking samples end where the user's second turn would begin: one user turn per sample."""
    turns = conv.events_of("user_turn")
    return turns[1].start if len(turns) > 1 else conv.duration


def annotations(conv: Conversation) -> tuple[dict[str, object], float]:
    """{file name: JSON content} of the benchmark files for this conversation, and the crop end (s)."""
    end = conv.duration
    files: dict[str, object] = {}
    if conv.kind == "pause":
        files["pause.json"] = [{"text": "[PAUSE]", "timestamp": [e.start, e.end]} for e in conv.events_of("pause")]
        end = _first(conv, "user_turn").end
    elif conv.kind == "turn_taking":
        turn, reply = _first(conv, "user_turn"), _first(conv, "model_turn")
        files["turn_taking.json"] = [{"text": "[TURN-TAKING]", "timestamp": [turn.end, reply.start]}]
        end = _crop_end(conv)
    elif conv.kind == "interruption":
        e = _first(conv, "interruption")
        files["interrupt.json"] = [{"context": e.data["context"], "interrupt": e.data["text"],
                                    "timestamp": [e.start, e.end]}]
    elif conv.kind == "user_backchannel":
        e = _first(conv, "user_backchannel")
        files["metadata.json"] = {"context_text": e.data["context"], "backchannel_text": e.data["text"],
                                  "timestamps": [e.start, e.end]}
    elif conv.kind == "side_talk":
        e = _first(conv, "side_talk")
        files["metadata.json"] = {"context_text": e.data["context"], "current_turn_text": e.data["text"],
                                  "timestamps": [e.start, e.end]}
    elif conv.kind == "background_speech":
        e = _first(conv, "background_speech")
        files["metadata.json"] = {"context_text": e.data["context"], "background_text": e.data["text"],
                                  "timestamps": [e.start, e.end]}
    elif conv.kind != "model_backchannel":
        files["metadata.json"] = {"kind": conv.kind, "timestamps": [0.0, conv.duration], **conv.meta}
    files["transcription.json"] = [{"text": w, "timestamp": [a, b]} for a, b, w in conv.user_words if b <= end]
    files["events.json"] = [{"kind": e.kind, "timestamp": [e.start, e.end], **e.data} for e in conv.events]
    return files, end


def export_conversation(conv: Conversation, root) -> Path:
    files, end = annotations(conv)
    out = Path(root) / TASKS[conv.kind] / conv.id
    out.mkdir(parents=True, exist_ok=True)
    n = int(round(end * SAMPLE_RATE))
    audio.write_wav(out / "input.wav", conv.user_audio[:n], SAMPLE_RATE)
    audio.write_wav(out / "reference_output.wav", conv.model_audio, SAMPLE_RATE)  # whole: replies after the crop too
    for name, content in files.items():
        (out / name).write_text(json.dumps(content, indent=1, ensure_ascii=False))
    return out


def export(array_record_path, root) -> int:
    """Exports every conversation of an ArrayRecord file; returns how many."""
    convs = records.read(array_record_path)
    for conv in convs:
        export_conversation(conv, root)
    return len(convs)
