r"""What a trained run knows of its words, apart from how they sound: `python -m experiments.probe_text
--workdir=workdir/tiny`.

On the held-out split: teacher-forced, how often the likeliest byte is the reference's, by the byte's place in
its word (the first, one inside, the space after) and, inside words, by its slot in the row; free-running (as
`probe_floor` runs it), the share of the words it says that are among the training split's words and the share
that repeat the word before, with a few of its conversations' words as said. Rates come with 95% intervals over
conversations. Writes `<workdir>/text.json` (or `--out`). A few minutes on 2 CPU cores.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from flax import nnx

from experiments import common
from interaction.codecs import text
from interaction.data import records
from interaction.evals import text_probe

_WORKDIR = flags.DEFINE_string("workdir", None, "a training run's workdir", required=True)
_CORPUS_DIR = flags.DEFINE_string("corpus_dir", None, "use this corpus' splits, not the run's own")
_PER_KIND = flags.DEFINE_integer("per_kind", 4, "held-out conversations of every kind (0: all)")
_SHOWN = flags.DEFINE_integer("shown", 4, "conversations whose free-running words are printed")
_SERVE = common.define_serve_flag()
_STEP = common.define_step_flag()
_SEED = flags.DEFINE_integer("seed", 0, "the free-running draws, as `probe_floor`'s")
_OUT = flags.DEFINE_string("out", None, "where the JSON goes (default: <workdir>/text.json, or text-<step>.json)")


def teacher_forced_logits(graphdef, params, windows) -> list[np.ndarray]:
    """(M, S_out, vocab) text logits of every conversation, the reference's text and frames fed back."""
    forward = jax.jit(lambda p, batch: nnx.merge(graphdef, p)(batch)[0])
    return [np.asarray(forward(params, {k: jnp.asarray(v)[None] for k, v in win.items()}))[0, :m]
            for m, win in windows]


def main(argv):
    del argv
    common.quiet_libraries()
    workdir = Path(_WORKDIR.value)
    c, graphdef, params, step, layout, convs = common.trained_run_on_held_out(workdir, _CORPUS_DIR.value,
                                                                               _PER_KIND.value, _STEP.value)
    corpus = Path(_CORPUS_DIR.value or c.corpus_dir or workdir / "corpus")
    vocabulary = {w.lower() for conv in records.each(corpus / "train.array_record") for _, _, w in conv.model_words}
    print(f"probing the words of step {step} on {len(convs)} held-out conversations ({len(vocabulary)} word types "
          "in training)", flush=True)
    windows = common.whole_windows(convs, layout)
    rows = [text_probe.byte_counts(logits, win["text_out"][:m])
            for logits, (m, win) in zip(teacher_forced_logits(graphdef, params, windows), windows)]
    served = common.free_running(graphdef, params, convs, layout, common.serve_settings(c, _SERVE), _SEED.value)
    for row, result in zip(rows, served):
        row.update(text_probe.said_counts(result["tokens"], vocabulary))
    figures = text_probe.summarize(rows)
    print(f"{'figure':<22} {'value':>6}  95% interval")
    for name, fig in figures.items():
        ci = f"[{fig['ci'][0]:.3f}, {fig['ci'][1]:.3f}]" if fig["ci"] else "—"
        print(f"{name:<22} {fig['value']:>6.3f}  {ci:<16} n={fig['n']:.0f}")
    said = {conv.id: text.decode(r["tokens"][:, 1:].reshape(-1), markup=False) for conv, r in
            zip(convs[: _SHOWN.value], served)}
    for conv_id, words in said.items():
        print(f"{conv_id}: {' '.join(words.split()[:30])}")
    out = common.result_path(_OUT.value, workdir, "text", _STEP.value)
    out.write_text(json.dumps({"step": step, "conversations": len(convs), "figures": figures, "said": said},
                              indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    common.run(main)
