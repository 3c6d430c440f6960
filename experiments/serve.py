r"""Serves a trained model live: a WebSocket server speaking a subset of the OpenAI Realtime API, and a
browser page, on localhost.

  python -m experiments.serve --workdir=workdir/tiny [--port=8765] [--serve.sessions=8]
  python -m interaction.live.client --wav=some_16k_or_24k.wav       # a Python client
  open http://127.0.0.1:8765/                                          # the browser page

The protocol is documented in interaction/live/protocol.py. How sessions run (context, sessions at once,
sampling, the floor thresholds) is the run's serve block (`experiments/configs/train.py:serve_config`),
each field overridable as --serve.FIELD=VALUE. Delegations go to --serve.reasoner: 'none', the rules
reasoner (default: `interaction.reasoner.rules:respond`, instant, with UI surfaces), 'learned' (the
reasoner trained under --reasoner_dir, in its own idle-priority process, stopped while the model steps), or
any 'module:function'.
"""
import asyncio
import functools
import os
import signal
from pathlib import Path

from absl import flags, logging
from flax import nnx

from experiments import common
from interaction.live.engine import SlotEngine
from interaction.live.server import LiveServer
from interaction.models.model import ModelSpec
from interaction.reasoner import choice, learned
from interaction.reasoner.base import Reasoner, SerialReasoner
from interaction.reasoner.process import ProcessReasoner
from interaction.tools import search
from interaction.train import checkpoint

_WORKDIR = flags.DEFINE_string("workdir", "workdir/tiny", "a trained run (experiments.train)")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "address to listen on")
_PORT = flags.DEFINE_integer("port", 8765, "port to listen on")
_SERVE = common.define_serve_flag()
_REASONER_DIR = flags.DEFINE_string("reasoner_dir", "workdir/reasoner", "the trained reasoner of --reasoner=learned")
_DOCS = flags.DEFINE_string("docs", "", "a folder of Markdown, text or HTML files the reasoner's search tool "
                             "indexes beside its default collection (incrementally; see docs/reasoner.md)")
_SEED = flags.DEFINE_integer("seed", 0, "sessions sample from seed, seed + 1, ... in order of arrival")


def load_reasoner(name: str) -> Reasoner | None:
    if name == "learned":
        choice.from_choice("learned", _REASONER_DIR.value)  # fails here, with the fix, when it is missing
        return SerialReasoner(ProcessReasoner(functools.partial(learned.load, _REASONER_DIR.value)))
    return choice.from_choice(name, _REASONER_DIR.value, none="none")


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
    if _DOCS.value:
        os.environ["INTERACTION_DOCS"] = str(Path(_DOCS.value).resolve())  # the reasoner's process reads it too
        # indexed here, so that a bad folder is said before the model loads
        logging.info("--docs=%s: %d documents searchable", _DOCS.value, len(search.default_index()))
    c, graphdef, params, step_count = checkpoint.load_trained(_WORKDIR.value)
    s = common.serve_settings(c, _SERVE)
    try:
        reasoner = load_reasoner(s.reasoner)
    except ValueError as err:
        raise ValueError(f"--serve.reasoner: {err}") from err
    model = nnx.merge(graphdef, params)
    logging.info("model %s at step %d", ModelSpec.from_config(c.model).decoder, step_count)
    engine = common.engine(model, s)
    engine.step(engine.idle_inputs())  # compile before the first client
    asyncio.run(serve(engine, reasoner))


if __name__ == "__main__":
    common.run(main)
