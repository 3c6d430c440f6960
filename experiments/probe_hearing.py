r"""What a trained run hears at a pause, against what its input holds: `python -m experiments.probe_hearing
--workdir=workdir/tiny`.

At the floor probe's moments (the micro-turn where the user stops, at a mid-turn pause or a turn's end) it scores
how well four readers tell a turn's end from a pause, as an AUC on the held-out split, overall, between a story's
sentences and elsewhere:
- `head`: the model's own turn-end head, its own channel held silent (as `hearing_auc` in the floor probe);
- `hidden`: a linear probe of its decoder output at the first text-out slot of the stop's block and the next;
- `embedded`: a linear probe of its user-audio input embeddings over the last `--blocks` micro-turns;
- `dmel`: a linear classifier on the user's dMel bins themselves (as numbers) over the same micro-turns.
The three linear readers are fitted on the moments of the run's training split, so the gap between `head` and
`hidden` is what its head leaves unread of what the model has computed, and between `embedded` and `dmel` what
its embedding of the audio loses. Writes `<workdir>/hearing.json` (or `--out`). A few minutes on 2 CPU cores.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from flax import nnx

from experiments import common
from interaction.codecs import dmel, text
from interaction.data import listening, records
from interaction.evals import floor_probe
from interaction.models.model import ModelSpec
from interaction.train import checkpoint

_WORKDIR = flags.DEFINE_string("workdir", None, "a training run's workdir")
_CORPUS_DIR = flags.DEFINE_string("corpus_dir", None, "use this corpus' splits, not the run's own")
_PER_KIND = flags.DEFINE_integer("per_kind", 20, "held-out conversations of every kind (0: all)")
_BLOCKS = flags.DEFINE_integer("blocks", 3, "micro-turns of input the input readers see: the stop's, the next, "
                               "and this many less two before")
_L2 = flags.DEFINE_float("l2", 0.1, "the linear readers' L2 penalty on standardized features")
_STEP = common.define_step_flag()
_OUT = flags.DEFINE_string("out", None, "where the JSON goes (default: <workdir>/hearing.json)")
READERS = ("head", "hidden", "embedded", "dmel")
_END = listening.NAMES.index("turn_end")


def moments_of(graphdef, params, convs, layout, blocks: int) -> list[dict]:
    """Per conversation: its moments' labels, the head's scores and the three readers' features."""
    @jax.jit
    def forward(params, batch):
        model = nnx.merge(graphdef, params)
        silent = dict(batch, text_out=jnp.full_like(batch["text_out"], text.Special.PAD),
                      model_audio=jnp.zeros_like(batch["model_audio"]))
        h, _ = model.hidden(silent)
        first = h[:, :, layout.input_len]
        return first, jax.nn.sigmoid(model.listen_logits(first)), model.heard(batch["user_audio"], batch["user_pitch"])

    def before(x: np.ndarray, k: int) -> np.ndarray:  # micro-turns k + 2 - blocks .. k + 1, zeros before the start
        rows = [x[j] if j >= 0 else np.zeros_like(x[0]) for j in range(k + 2 - blocks, k + 2)]
        return np.concatenate([r.ravel() for r in rows]).astype(np.float32)

    out = []
    for conv, (m, win) in zip(convs, common.whole_windows(convs, layout)):
        first, listen, heard = (np.asarray(a[0]) for a in forward(params, {k: jnp.asarray(v)[None]
                                                                            for k, v in win.items()}))
        levels = dmel.levels(win["user_audio"].astype(np.float32), layout.dmel)
        stops = floor_probe.moments(conv, m)
        out.append({"story": conv.kind == floor_probe.STORY_KIND, "ends": [end for end, _ in stops],
                    "head": [float(listen[k : k + 2, _END].max()) for _, k in stops],
                    "hidden": [np.concatenate([first[k], first[k + 1]]) for _, k in stops],
                    "embedded": [before(heard, k) for _, k in stops],
                    "dmel": [before(levels, k) for _, k in stops]})
    return out


def scores(train: list[dict], held_out: list[dict], l2: float) -> dict:
    """Each reader's held-out (is a turn end, score) pairs per conversation."""
    out = {"head": [list(zip(c["ends"], c["head"])) for c in held_out]}
    for reader in READERS[1:]:
        x = np.stack([f for c in train for f in c[reader]])
        y = np.array([e for c in train for e in c["ends"]])
        read = floor_probe.fit_logistic(x, y, l2)
        out[reader] = [list(zip(c["ends"], read(np.stack(c[reader])).tolist())) if c["ends"] else []
                       for c in held_out]
    return out


def main(argv):
    del argv
    if not _WORKDIR.value:
        raise app.UsageError("give --workdir, a trained run.")
    common.quiet_libraries()
    if _BLOCKS.value < 2:
        raise app.UsageError(f"--blocks={_BLOCKS.value} must be at least 2: the stop's micro-turn and the next.")
    workdir = Path(_WORKDIR.value)
    c, graphdef, params, step = checkpoint.load_trained(workdir, _STEP.value)
    layout = ModelSpec.from_config(c.model).layout
    corpus = Path(_CORPUS_DIR.value or c.corpus_dir or workdir / "corpus")
    held_out = common.held_out(corpus, (), _PER_KIND.value)
    train = records.read(corpus / "train.array_record")
    print(f"hearing at step {step}: {len(train)} training and {len(held_out)} held-out conversations", flush=True)
    fitted = moments_of(graphdef, params, train, layout, _BLOCKS.value)
    probed = moments_of(graphdef, params, held_out, layout, _BLOCKS.value)
    pairs = scores(fitted, probed, _L2.value)
    figures = {}
    for reader, rows in pairs.items():
        stories = [r if c["story"] else [] for r, c in zip(rows, probed)]
        rest = [[] if c["story"] else r for r, c in zip(rows, probed)]
        figures[reader] = {"all": floor_probe.auc_interval(rows), "stories": floor_probe.auc_interval(stories),
                           "rest": floor_probe.auc_interval(rest)}
    print(f"{'reader':<10} {'all':>20} {'stories':>20} {'rest':>20}")
    for reader, fig in figures.items():
        cells = [f"{f['value']:.2f} [{f['ci'][0]:.2f}, {f['ci'][1]:.2f}]" for f in fig.values()]
        print(f"{reader:<10} " + " ".join(f"{cell:>20}" for cell in cells))
    n = {"train": sum(len(c["ends"]) for c in fitted), "held_out": sum(len(c["ends"]) for c in probed)}
    out = common.result_path(_OUT.value, workdir, "hearing", _STEP.value)
    out.write_text(json.dumps({"step": step, "blocks": _BLOCKS.value, "l2": _L2.value, "moments": n,
                               "figures": figures}, indent=1))
    print(f"moments: {n['train']} fitted, {n['held_out']} held out; wrote {out}")


if __name__ == "__main__":
    common.run(main)
