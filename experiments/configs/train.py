r"""Training configs: `--config=experiments/configs/train.py:tiny` (default) | `:long` | `:small` | `:smoke`.

tiny: the README's main job, about 20 minutes of training on a 2-core CPU.
long: the main job's recipe (the tiny model, its bytes heard as babble in half the windows) with the user's pitch
  heard (`model.layout.pitch`), on the corpus ten times the tiny one with three times the stories (corpus.py:long)
  for 4,000 steps, under 2.5 hours on a 2-core CPU (the corpus included); it keeps every 1,000th checkpoint, the
  points of its learning curves.
small: the small model on the small corpus, for accelerators.
smoke: a very small model and few steps; what the tests run, in seconds.

Any field can be overridden on the command line, e.g. `--config.total_steps=2000 --config.model.mesh.fsdp=2`.
"""
import ml_collections

from experiments.configs import corpus as corpus_config
from experiments.configs import model as model_config
from interaction import MICROTURN_SECONDS

#            steps warmup  lr     window batch eval_every
_RUNS = {
    "tiny": dict(total_steps=600, warmup=40, lr=3e-3, window=20, batch=8, eval_every=300),
    "long": dict(total_steps=4_000, warmup=100, lr=3e-3, window=20, batch=8, eval_every=1_000),
    "small": dict(total_steps=20_000, warmup=500, lr=1e-3, window=25, batch=64, eval_every=2_000),
    "smoke": dict(total_steps=6, warmup=1, lr=3e-3, window=3, batch=8, eval_every=6),
}


def _smoke_model() -> ml_collections.ConfigDict:
    m = model_config.get_config("tiny")
    m.name = "smoke"
    m.decoder.update(embed=32, layers=2, heads=2, kv_heads=1, head_dim=16, mlp=64)
    m.decoder.moe.update(num_experts=4, top_k=2, every=2)
    m.flow_hidden, m.flow_depth = 32, 1
    m.own_audio_share = 0.0  # its extra forward pass is compiled in every test run; tests/test_model.py covers it
    return m


def serve_config(**fields) -> ml_collections.ConfigDict:
    """How a trained run is served, evaluated and probed (`experiments.serve`, `evaluate`, `probe_floor`,
    `intelligibility`, `load_test` read it from the run's config.json; `--serve.FIELD=VALUE` overrides)."""
    placeholder = ml_collections.config_dict.placeholder
    s = ml_collections.ConfigDict()
    s.context_s = 20.0  # attention context of a session (its KV cache), seconds
    s.sessions = 8  # sessions at once, as slots of one batched step
    s.flow_steps = 8  # Euler steps of the flow head per audio frame
    s.temperature = 0.0  # text sampling temperature (0: greedy)
    # The flow's temperature. 1 draws frames as the flow was trained to (from unit noise); its mean (0) is a flat,
    # loud spectrum that a listener's voice activity detector hears as speech in 1% of the reference's speech
    # (docs/results.md). None: the model's audio_temperature, the temperature its own frames were trained at.
    s.audio_temperature = 1.0
    s.speak_threshold = placeholder(float)  # silent, start when P(speak) is above this (None: the step's default)
    s.keep_threshold = placeholder(float)  # speaking, go on while P(speak) is above this (None: the default)
    s.byte_threshold = placeholder(float)  # speaking, a text slot emits a byte while P(not PAD) is above this
    # (None: the step's default)
    s.reasoner = "interaction.reasoner.rules:respond"  # who answers live delegations: 'none', 'learned', module:fn
    s.update(fields)
    return s


def check_serve(s) -> None:
    """Refuses a serve block that cannot work, naming the fields."""
    if s.sessions < 1 or s.flow_steps < 1 or s.context_s < MICROTURN_SECONDS or not 0 <= (s.byte_threshold or 0) < 1:
        raise ValueError(f"--serve: sessions={s.sessions} and flow_steps={s.flow_steps} must be at least 1, "
                         f"context_s={s.context_s} at least one micro-turn ({MICROTURN_SECONDS} s), "
                         f"byte_threshold={s.byte_threshold} in [0, 1).")


def check_config(c, processes: int = 1) -> None:
    """Refuses values that cannot work, naming the field."""
    problems = []
    for name in ("total_steps", "log_every", "eval_every", "checkpoint_every", "keep_checkpoints"):
        if c[name] < 1:
            problems.append(f"{name}={c[name]} must be at least 1")
    if c.keep_every < 0 or (c.keep_every and c.keep_every % c.checkpoint_every):
        problems.append(f"keep_every={c.keep_every} must be 0 or a multiple of checkpoint_every="
                        f"{c.checkpoint_every} (a step kept must be one saved)")
    d = c.data
    if d.window_turns < 1 or d.batch_size < 1 or d.eval_epochs < 1:
        problems.append("data.window_turns, data.batch_size and data.eval_epochs must be at least 1")
    if d.burn_in_turns is not None and not 0 <= d.burn_in_turns <= d.window_turns:
        problems.append(f"data.burn_in_turns={d.burn_in_turns} must lie in [0, data.window_turns={d.window_turns}]")
    for name in ("flat_audio_share", "own_audio_share", "level_audio_share", "babble_text_share"):
        if not 0 <= c.model[name] <= 1:
            problems.append(f"model.{name}={c.model[name]} must lie in [0, 1] (a share of the training windows)")
    if d.batch_size % processes:
        problems.append(f"data.batch_size={d.batch_size} must divide evenly over {processes} processes")
    if problems:
        raise ValueError("bad config: " + "; ".join(problems) + ".")


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in _RUNS:
        raise ValueError(f"unknown training config {arg!r}; choose one of {sorted(_RUNS)}")
    r = _RUNS[arg]
    c = ml_collections.ConfigDict()
    c.name = arg
    c.seed = 0
    c.model = _smoke_model() if arg == "smoke" else model_config.get_config("tiny" if arg == "long" else arg)
    if arg in ("tiny", "long"):
        c.model.babble_text_share = 0.5  # its own bytes heard as babble in half the windows (docs/results.md)
    if arg == "long":
        c.model.layout.pitch = True  # its stories (25 times the tiny corpus') learn their melody from it
    c.corpus = corpus_config.get_config(arg if arg in ("small", "long") else "tiny")
    c.corpus_dir = ""  # "": <workdir>/corpus, built there from `corpus` if it is not already

    c.total_steps = r["total_steps"]
    c.data = ml_collections.ConfigDict()
    c.data.window_turns = r["window"]  # micro-turns per training window (20 = 4 s)
    c.data.batch_size = r["batch"]  # global: split evenly over processes
    c.data.decision_share = 0.5  # windows placed around a floor decision (the rest start anywhere)
    # micro-turns at a window's start whose speech is not trained (it began before the window, or answers what
    # the window did not hear); None: half the window
    c.data.burn_in_turns = ml_collections.FieldReference(None, field_type=int)
    c.data.eval_epochs = 1  # held-out windows: this many random windows of every held-out conversation
    c.data.workers = 0  # grain worker processes per host (0: decode in the training process)
    c.data.prefetch = 2  # batches prepared ahead in a thread when workers == 0

    o = c.optim = ml_collections.ConfigDict()
    o.lr, o.warmup_steps, o.final_lr_fraction = r["lr"], r["warmup"], 0.1
    o.b1, o.b2, o.eps, o.weight_decay, o.grad_clip = 0.9, 0.95, 1e-8, 0.05, 1.0

    c.log_every = 1 if arg == "smoke" else 25
    c.eval_every = r["eval_every"]  # held-out losses, baselines and a sample session
    c.checkpoint_every = 2 if arg == "smoke" else 100
    c.keep_checkpoints = 3
    c.keep_every = 1_000 if arg == "long" else 0  # also keep every step that is a multiple of this (0: none)
    c.async_checkpoints = True

    c.eval = ml_collections.ConfigDict(dict(flow_steps=8))
    c.sample = ml_collections.ConfigDict()
    c.sample.conversation = 0  # index in the held-out split
    c.sample.turns = 50  # 10 s
    c.sample.flow_steps = 8
    c.sample.temperature = 0.0  # text (0: greedy); frames at model.audio_temperature from a key fixed per step
    c.sample.enabled = arg != "smoke"

    c.serve = serve_config()

    c.debug = ml_collections.ConfigDict()
    c.debug.nan_at_step = -1  # feed a NaN batch at this step (fault injection for tests)
    c.debug.signal_at_step = -1  # send this process SIGTERM after this step (fault injection for tests)
    return c
