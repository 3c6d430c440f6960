r"""Serves a trained model live: a WebSocket server speaking a subset of the OpenAI Realtime API, and a
browser page, on localhost.

  python -m experiments.serve --workdir=workdir/tiny [--port=8765] [--max_sessions=8]
  python -m interaction.live.client --wav=some_16k_or_24k.wav       # a Python client
  open http://127.0.0.1:8765/                                          # the browser page

The protocol is documented in interaction/live/protocol.py. Delegations go to --reasoner: 'none', the
rules reasoner (default: `interaction.reasoner.rules:answer`, instant), 'learned' (the reasoner trained
under --reasoner_dir, in its own idle-priority process, stopped while the model steps), or any
'module:function'.
"""
import asyncio
import functools
import signal

from absl import app, flags, logging
from flax import nnx

from experiments import common
from interaction import MICROTURN_SECONDS
from interaction.live.engine import SlotEngine
from interaction.live.server import LiveServer
from interaction.models.model import ModelSpec
from interaction.reasoner import choice, learned
from interaction.reasoner.base import Reasoner, SerialReasoner
from interaction.reasoner.process import ProcessReasoner
from interaction.train import checkpoint

_WORKDIR = flags.DEFINE_string("workdir", "workdir/tiny", "a trained run (experiments.train)")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "address to listen on")
_PORT = flags.DEFINE_integer("port", 8765, "port to listen on")
_MAX_SESSIONS = flags.DEFINE_integer("max_sessions", 8, "concurrent sessions (slots of the batched step)")
_CONTEXT_S = flags.DEFINE_float("context_s", 10.0, "attention context of a session (its KV cache), seconds: "
                                "2.5 times the tiny model's 4 s training windows")
_FLOW_STEPS = flags.DEFINE_integer("flow_steps", 8, "Euler steps of the audio flow head per frame")
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "sampling temperature of the text")
_AUDIO_TEMPERATURE = flags.DEFINE_float("audio_temperature", None, "sampling temperature of the audio frames "
                                        "(default: the run's model.audio_temperature; 0: the flow from its mean)")
_SPEAK_THRESHOLD, _KEEP_THRESHOLD = common.define_floor_flags()
_REASONER = flags.DEFINE_string("reasoner", "interaction.reasoner.rules:answer",
                                "who answers delegations: 'none', 'learned', or 'module:function'")
_REASONER_DIR = flags.DEFINE_string("reasoner_dir", "workdir/reasoner", "the trained reasoner of --reasoner=learned")
_SEED = flags.DEFINE_integer("seed", 0, "sessions sample from seed, seed + 1, ... in order of arrival")


def load_reasoner() -> Reasoner | None:
    if _REASONER.value == "learned":
        choice.from_choice("learned", _REASONER_DIR.value)  # fails here, with the fix, when it is missing
        return SerialReasoner(ProcessReasoner(functools.partial(learned.load, _REASONER_DIR.value)))
    return choice.from_choice(_REASONER.value, _REASONER_DIR.value, none="none")


async def serve(engine: SlotEngine, reasoner: Reasoner | None) -> None:
    server = LiveServer(engine, reasoner=reasoner, seed=_SEED.value)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server.running(_HOST.value, _PORT.value) as port:
        print(f"serving on http://{_HOST.value}:{port}/ (WebSocket ws://{_HOST.value}:{port}/v1/realtime), "
              f"{engine.max_sessions} session slots; Ctrl-C stops", flush=True)
        await stop.wait()
    print(f"stopped after {server.ticks} ticks; tick lateness {server.lateness_summary()}")


def main(argv):
    del argv
    try:
        reasoner = load_reasoner()
    except ValueError as err:
        raise app.UsageError(f"--reasoner: {err}") from err
    c, graphdef, params, step_count = checkpoint.load_trained(_WORKDIR.value)
    model = nnx.merge(graphdef, params)
    logging.info("model %s at step %d", ModelSpec.from_config(c.model).decoder, step_count)
    engine = SlotEngine(model, max_sessions=_MAX_SESSIONS.value,
                        context_turns=round(_CONTEXT_S.value / MICROTURN_SECONDS), flow_steps=_FLOW_STEPS.value,
                        temperature=_TEMPERATURE.value,
                        audio_temperature=_AUDIO_TEMPERATURE.value, speak_threshold=_SPEAK_THRESHOLD.value,
                        keep_threshold=_KEEP_THRESHOLD.value)
    engine.step(engine.idle_inputs())  # compile before the first client
    asyncio.run(serve(engine, reasoner))


if __name__ == "__main__":
    common.run(main)
