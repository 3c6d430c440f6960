"""Small helpers shared by the experiment entry points."""
import json
import sys
import time
import traceback
import zlib
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
from absl import app, flags, logging
from flax import nnx
from ml_collections import config_flags

from experiments.configs import train as train_config
from interaction import MICROTURN_SECONDS
from interaction.data import pipeline, records, speech
from interaction.evals import asr, runner
from interaction.live.engine import SlotEngine
from interaction.models import streaming
from interaction.models.model import ModelSpec
from interaction.train import checkpoint


# What a user can fix: a bad config or flag value (ValueError), a missing workdir, corpus or checkpoint
# (FileNotFoundError), a missing system tool or model file (espeak-ng, the Whisper weights).
EXPECTED = (ValueError, FileNotFoundError, NotADirectoryError, speech.EspeakMissingError, asr.WhisperMissingError)


def run(main) -> None:
    """`app.run(main)`, with an expected error said in one line (its traceback with `-v 1`) and exit code 1."""
    def guarded(argv):
        try:
            return main(argv)
        except EXPECTED as err:
            if logging.get_verbosity() >= logging.DEBUG:
                traceback.print_exc()
            sys.exit(f"error: {err}" + ("" if logging.get_verbosity() >= logging.DEBUG else
                                        "  (-v 1 shows where it was raised)"))

    if not jax.config.jax_compilation_cache_dir:  # reruns skip most of the compile time
        jax.config.update("jax_compilation_cache_dir", str(Path.home() / ".cache" / "interaction-jax"))
    app.run(guarded)


def quiet_libraries() -> None:
    """Library INFO logs (orbax's, on every save and restore) only when `-v` asks for them."""
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)


def write_results(path: str, results: dict) -> None:
    """Writes a benchmark's results as JSON (creating the folder) and says where."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=1))
    print(f"wrote {path}")


def memory_bandwidth(megabytes: int = 256, repeats: int = 10) -> float:
    """Measured read bandwidth (bytes/s) of the default device: a jitted sum over a large float32 array."""
    a = jnp.ones(megabytes * 2**20 // 4, jnp.float32)
    f = jax.jit(jnp.sum)
    f(a).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = f(a)
    out.block_until_ready()
    return a.nbytes * repeats / (time.perf_counter() - t0)


def matmul_peak(n: int = 2048, repeats: int = 20) -> float:
    """Measured float32 matmul FLOP/s on the default device."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = f(a)
    out.block_until_ready()
    return 2 * n**3 * repeats / (time.perf_counter() - t0)


def held_out(corpus_dir: Path, kinds=(), per_kind: int = 0) -> list:
    """The held-out conversations of a corpus: of `kinds` only (if any), the first `per_kind` of every kind
    (0: all)."""
    path = Path(corpus_dir) / "eval.array_record"
    if not path.exists():
        raise FileNotFoundError(f"no held-out conversations at {path}: make a corpus with "
                                "`python -m experiments.make_corpus`.")
    convs = records.read(path)
    if kinds:
        convs = [conv for conv in convs if conv.kind in kinds]
        if not convs:
            raise FileNotFoundError(f"no held-out conversations of kinds {list(kinds)} in {corpus_dir}.")
    return records.first_of_each_kind(convs, per_kind)


def whole_windows(convs, layout) -> list[tuple[int, dict]]:
    """(M blocks, the whole conversation as one padded window) of every conversation."""
    out = []
    for conv in convs:
        features = pipeline.conversation_features(conv, layout)
        out.append((len(features["valid"]), pipeline.whole(features, layout.dmel.log_min)))
    return out


def define_kinds_flag():
    """Defines --kinds, the scenario kinds of held-out conversations to run, and returns it."""
    return flags.DEFINE_list("kinds", [], "run only held-out conversations of these scenario kinds (default: all)")


def trained_run_on_held_out(workdir, corpus_dir: str | None, per_kind: int, step: int | None = None, kinds=()):
    """(config, graphdef, params, step, layout, conversations) of a training run (its newest checkpoint, or
    step `step`'s) and the first `per_kind` held-out conversations of every kind (of `kinds`, if given) of
    its corpus (or of `corpus_dir`'s)."""
    workdir = Path(workdir)
    c, graphdef, params, step = checkpoint.load_trained(workdir, step)
    layout = ModelSpec.from_config(c.model).layout
    convs = held_out(Path(corpus_dir or c.corpus_dir or workdir / "corpus"), kinds, per_kind)
    return c, graphdef, params, step, layout, convs


def define_step_flag():
    """Defines --step, which checkpoint of a run to load, and returns it."""
    return flags.DEFINE_integer("step", None, "load this step's checkpoint, not the newest (a learning curve's "
                                "point: the run must have kept it, see the config's keep_every)")


def result_path(out: str | None, workdir: Path, name: str, step: int | None) -> Path:
    """--out, else <workdir>/<name>.json, or <name>-<step>.json for a chosen step."""
    return Path(out) if out else workdir / (f"{name}.json" if step is None else f"{name}-{step}.json")


def define_serve_flag():
    """Defines --serve.FIELD=VALUE, overrides of a trained run's serve block, and returns the flag."""
    return config_flags.DEFINE_config_dict(
        "serve", train_config.serve_config(), "how the run is served: its config.json's serve block, a field given "
        "here overriding it, e.g. --serve.context_s=30 --serve.sessions=4 --serve.audio_temperature=0.8")


def serve_settings(c: ml_collections.ConfigDict, flag=None) -> ml_collections.ConfigDict:
    """The run `c`'s serve block (the defaults where it has none, or lacks a field) with every field given as
    --serve.FIELD on the command line (`flag`, if given) put over it; refuses values that cannot work."""
    s = train_config.serve_config()
    s.update({k: v for k, v in (c.get("serve") or {}).items() if k in s})
    if flag is not None:
        s.update(config_flags.get_override_values(flags.FLAGS[flag.name]))
    train_config.check_serve(s)
    return s


def sampling(s: ml_collections.ConfigDict) -> dict:
    """The streaming step's keywords (`streaming.make_step`, `SlotEngine`) of a serve block."""
    return dict(flow_steps=s.flow_steps, temperature=s.temperature, audio_temperature=s.audio_temperature,
                speak_threshold=s.speak_threshold, keep_threshold=s.keep_threshold, byte_threshold=s.byte_threshold)


def context_turns(s: ml_collections.ConfigDict) -> int:
    return round(s.context_s / MICROTURN_SECONDS)


def engine(model, s: ml_collections.ConfigDict, sessions: int | None = None) -> SlotEngine:
    """The live engine of a trained model as the serve block `s` says (`sessions` slots, else its own)."""
    return SlotEngine(model, max_sessions=sessions or s.sessions, context_turns=context_turns(s), **sampling(s))


def free_running(graphdef, params, convs, layout, serve, seed: int = 0) -> list[dict]:
    """`runner.run_sessions`' result of every conversation, its own output fed back, served as `serve` says:
    text `tokens` (M, S_out; slot 0 its speaking state) and `listen` (M, K) among them. A conversation's draws
    come from its id and `seed`, so it is drawn alike whichever others run with it."""
    step = streaming.make_step(graphdef, **sampling(serve))
    model = nnx.merge(graphdef, params)
    state = streaming.init_state(model, serve.sessions, context_turns(serve))
    sessions = (runner.conversation_session(conv, layout, seed=seed * 100_003 + zlib.crc32(conv.id.encode()))
                for conv in convs)
    results = {}
    for session, result in runner.run_sessions(step, params, state, sessions, layout):
        results[session.conv.id] = result
    return [results[conv.id] for conv in convs]
