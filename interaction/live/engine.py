"""Live sessions as slots of one batched streaming state, advanced together by one jitted step.

The batch has a fixed number of slots (`max_sessions`), so the step compiles once: an idle slot is
computed on silence and its outputs dropped. The model's audio frames become 200 ms of waveform per
slot in the same call, through one live vocoder that renders every slot's stream at once. A session
attached to a slot starts from an empty state (the slot is reset inside the next step), with its own
random key, so nothing of an earlier session in that slot, or of the sessions beside it, reaches it: a
row's arithmetic never reads other rows, and its samples come from its own key.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
from flax import nnx

from interaction.codecs import vocoder
from interaction.models import streaming
from interaction.models.model import InteractionModel


@dataclasses.dataclass
class _Slot:
    seed: int
    microturn: int = 0


class SlotEngine:
    def __init__(self, model: InteractionModel, *, max_sessions: int = 8, context_turns: int = 150, **sampling):
        """`sampling`: the streaming step's keywords (flow_steps, temperature, audio_temperature,
        speak_threshold, keep_threshold)."""
        if max_sessions < 1:
            raise ValueError(f"max_sessions={max_sessions} must be at least 1.")
        if context_turns < 1:
            raise ValueError(f"context_turns={context_turns} must be at least 1.")
        self.layout = model.spec.layout
        self.max_sessions = max_sessions
        graphdef, self._params = nnx.split(model)
        self._step = streaming.make_step(graphdef, **sampling)
        self._state = streaming.init_state(model, max_sessions, context_turns)
        self._vocoder = vocoder.live_decoder(self.layout.dmel, max_sessions)
        self._slots: list[_Slot | None] = [None] * max_sessions
        self._fresh = np.zeros(max_sessions, bool)

    @property
    def active(self) -> int:
        return sum(s is not None for s in self._slots)

    def attach(self, seed: int) -> int | None:
        """A free slot for a new session sampling from `seed` (None when every slot is taken)."""
        for i, slot in enumerate(self._slots):
            if slot is None:
                self._slots[i] = _Slot(seed)
                self._fresh[i] = True
                self._vocoder.reset(i)
                return i
        return None

    def detach(self, slot: int) -> None:
        self._slots[slot] = None

    def idle_inputs(self) -> dict[str, np.ndarray]:
        """One micro-turn of nothing for every slot: silence (dMel bin 0), no video, no text."""
        return streaming.idle_inputs(self.layout, self.max_sessions)

    def step(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Advances every slot one micro-turn on `inputs` ((max_sessions, ...) arrays, as `idle_inputs`);
        returns host arrays: mel (B, F, n_mels), text_tokens (B, S_out) and audio (B, samples), the 16 kHz
        waveform of the frames (delayed by the vocoder's `added_latency_s`)."""
        seeds = np.array([s.seed if s else 0 for s in self._slots], np.uint32)
        turns = np.array([s.microturn if s else 0 for s in self._slots], np.int32)
        fresh, self._fresh = self._fresh, np.zeros(self.max_sessions, bool)
        self._state, out = self._step(self._params, self._state, inputs, seeds, turns, fresh)
        for s in self._slots:
            if s is not None:
                s.microturn += 1
        mel, tokens = jax.device_get((out["mel"], out["text_tokens"]))
        return {"mel": mel, "text_tokens": tokens, "audio": self._vocoder.push(mel)}
