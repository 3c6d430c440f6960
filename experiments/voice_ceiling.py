r"""How intelligible a voice that knew its words would be, with no model: `python -m experiments.voice_ceiling
--corpus_dir=workdir/ft`.

A table of the mean log-mel of each (word, frames into the word) over the training split's model channel
(`intelligibility.word_table`) voices the held-out conversations' model words (`table_voice`); the frames are
vocoded and recognized as `experiments.intelligibility` does, beside the reference's own frames. With `--noise`,
Gaussian noise of the table's residual deviation times each scale is added, to the table's frames and to the
reference's: a sampler that knows the mean but draws the rest at random. With `--fit_steps`, the model's own
patch-mean MLP (`--config.model.voice_prior`, at the tiny config's width) is fitted alone on the training split for
each number of steps (`intelligibility.fit_prior`) and voices the held-out text streams with its means
(`prior_voice`), with its share of the held-out patches' variance explained: what the words alone teach the
prior, in minutes rather than a training run. Prints word error rates with 95% intervals over conversations and
writes `<corpus_dir>/voice_ceiling.json` (or `--out`).
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from absl import flags

from experiments import common
from experiments.configs import model as model_config
from interaction.data import layout as layout_lib
from interaction.data import records
from interaction.evals import asr, intelligibility
from interaction.models.model import ModelSpec

_CORPUS_DIR = flags.DEFINE_string("corpus_dir", None, "a corpus with train and eval splits", required=True)
_PER_KIND = flags.DEFINE_integer("per_kind", 2, "held-out conversations of every kind (0: all)")
_NOISE = flags.DEFINE_list("noise", ["0.5", "1"], "scales of the residual deviation added as noise")
_RECOGNIZER = flags.DEFINE_enum("recognizer", asr.DEFAULT, asr.NAMES, "the speech recognizer")
_FIT_STEPS = flags.DEFINE_list("fit_steps", [], "fit the model's patch-mean MLP alone for each of these numbers of "
                               "steps (batches of 128 patches) and voice with it")
_OUT = flags.DEFINE_string("out", None, "where the JSON goes (default: <corpus_dir>/voice_ceiling.json)")


def main(argv):
    del argv
    common.quiet_libraries()
    corpus = Path(_CORPUS_DIR.value)
    layout = layout_lib.MicroTurnLayout()
    try:
        noises = [float(x) for x in _NOISE.value]
        fits = [int(x) for x in _FIT_STEPS.value]
    except ValueError:
        sys.exit(f"--noise takes numbers and --fit_steps whole numbers, got {_NOISE.value} and {_FIT_STEPS.value}")
    if any(n < 1 for n in fits):
        sys.exit(f"--fit_steps must be at least 1, got {fits}")
    table = intelligibility.word_table(records.each(str(corpus / "train.array_record")), layout)
    convs = [c for c in common.held_out(corpus, per_kind=_PER_KIND.value) if c.model_words]
    spec = dataclasses.replace(ModelSpec.from_config(model_config.get_config("tiny")), voice_reads_words=True,
                               voice_prior=True)
    priors, explained = {}, {}
    if fits:
        train = intelligibility.known_patches(records.each(str(corpus / "train.array_record")), spec)
        held_out = intelligibility.known_patches(convs, spec)
    for steps in fits:
        print(f"fitting the patch-mean MLP alone for {steps} steps on {len(train[2])} patches", flush=True)
        name = f"prior fitted {steps} steps"
        priors[name] = intelligibility.fit_prior(train, spec, steps=steps)
        explained[name] = intelligibility.prior_explains(priors[name], held_out)
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
            for name, prior in priors.items():
                mel = intelligibility.prior_voice(conv, prior, spec)
                rows.setdefault(name, []).append(
                    intelligibility.errors(conv, intelligibility.wave_of(mel, layout), recognizer))
    except asr.WhisperMissingError as err:  # the recognizer loads on first use
        sys.exit(str(err))
    result = {name: intelligibility.summarize(r) for name, r in rows.items()}
    for name, fig in result.items():
        lo, hi = fig["ci"] or (float("nan"),) * 2
        extra = f"; explains {explained[name]:.3f} of the held-out patches' variance" if name in explained else ""
        print(f"word error rate, {name:<26} {fig['value']:.3f} [{lo:.3f}, {hi:.3f}]  ({fig['words']:.0f} words{extra})")
        if name in explained:
            fig["explained"] = explained[name]
    out = Path(_OUT.value) if _OUT.value else corpus / "voice_ceiling.json"
    out.write_text(json.dumps({"recognizer": recognizer.description, "pairs": len(table[0]), **result}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    common.run(main)
