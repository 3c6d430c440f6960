r"""How intelligible a voice that knew its words would be, with no model: `python -m experiments.voice_ceiling
--corpus_dir=workdir/ft`.

A table of the mean log-mel of each (word, frames into the word) over the training split's model channel
(`intelligibility.word_table`) voices the held-out conversations' model words (`table_voice`); the frames are
vocoded and recognized as `experiments.intelligibility` does, beside the reference's own frames. With `--noise`,
Gaussian noise of the table's residual deviation times each scale is added, to the table's frames and to the
reference's: a sampler that knows the mean but draws the rest at random. Prints word error rates with 95%
intervals over conversations and writes `<corpus_dir>/voice_ceiling.json` (or `--out`).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from absl import flags

from experiments import common
from interaction.data import layout as layout_lib
from interaction.data import records
from interaction.evals import asr, intelligibility

_CORPUS_DIR = flags.DEFINE_string("corpus_dir", None, "a corpus with train and eval splits", required=True)
_PER_KIND = flags.DEFINE_integer("per_kind", 2, "held-out conversations of every kind (0: all)")
_NOISE = flags.DEFINE_list("noise", ["0.5", "1"], "scales of the residual deviation added as noise")
_RECOGNIZER = flags.DEFINE_enum("recognizer", asr.DEFAULT, asr.NAMES, "the speech recognizer")
_OUT = flags.DEFINE_string("out", None, "where the JSON goes (default: <corpus_dir>/voice_ceiling.json)")


def main(argv):
    del argv
    common.quiet_libraries()
    corpus = Path(_CORPUS_DIR.value)
    layout = layout_lib.MicroTurnLayout()
    try:
        noises = [float(x) for x in _NOISE.value]
    except ValueError:
        sys.exit(f"--noise takes numbers, got {_NOISE.value}")
    table = intelligibility.word_table(records.each(str(corpus / "train.array_record")), layout)
    convs = [c for c in common.held_out(corpus, per_kind=_PER_KIND.value) if c.model_words]
    recognizer = asr.make(_RECOGNIZER.value)
    print(f"{len(table[0])} (word, frame) pairs; voicing {len(convs)} held-out conversations "
          f"({recognizer.description})", flush=True)
    voices = {"reference": dict(base="reference"), "table": dict()}
    voices |= {f"table + noise {s:g}": dict(noise=s) for s in noises}
    voices |= {f"reference + noise {s:g}": dict(base="reference", noise=s) for s in noises}
    rows: dict[str, list] = {name: [] for name in voices}
    try:
        for i, conv in enumerate(convs):
            for name, how in voices.items():
                mel = intelligibility.table_voice(conv, table, layout, rng=np.random.default_rng(i), **how)
                rows[name].append(intelligibility.errors(conv, intelligibility.wave_of(mel, layout), recognizer))
    except asr.WhisperMissingError as err:  # the recognizer loads on first use
        sys.exit(str(err))
    result = {name: intelligibility.summarize(r) for name, r in rows.items()}
    for name, fig in result.items():
        lo, hi = fig["ci"] or (float("nan"),) * 2
        print(f"word error rate, {name:<22} {fig['value']:.3f} [{lo:.3f}, {hi:.3f}]  ({fig['words']:.0f} words)")
    out = Path(_OUT.value) if _OUT.value else corpus / "voice_ceiling.json"
    out.write_text(json.dumps({"recognizer": recognizer.description, "pairs": len(table[0]), **result}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    common.run(main)
