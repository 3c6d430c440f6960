r"""How intelligible a trained run's speech is, apart from its turn-taking: `python -m
experiments.intelligibility --workdir=workdir/tiny`.

The model voices the reference text of held-out conversations (`interaction/evals/intelligibility.py`);
its frames are vocoded and recognized (Whisper tiny.en by default) and scored against the words it was
given, beside the same chain on the reference's own log-mel (the ceiling) and, for a model with
`voice_prior`, on the patch means its flow starts from, played alone (`--data_onsets` dates its words by the
data's onsets, not its onset head's); Silero VAD says in what share of the
reference's speech it hears the model's voicing as speech at all. The conditioning gap says how much of
what its flow head draws comes from what the model tells it (the words, the voice heard back), teacher-forced on
the same conversations (`intelligibility.conditioning_gap`), and the readout how much of a patch a linear map
reads off that conditioning, beside what it reads off the patch before (`intelligibility.linear_readout`).
Prints the figures with 95% intervals over conversations and writes `<workdir>/intelligibility.json` (or `--out`).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from absl import flags
from flax import nnx

from experiments import common
from interaction.evals import asr, intelligibility, vad
from interaction.models.model import ModelSpec

_WORKDIR = flags.DEFINE_string("workdir", None, "a training run's workdir", required=True)
_PER_KIND = flags.DEFINE_integer("per_kind", 2, "held-out conversations of every kind (0: all)")
_RECOGNIZER = flags.DEFINE_enum("recognizer", asr.DEFAULT, asr.NAMES, "the speech recognizer")
_STEP = common.define_step_flag()
_KINDS = common.define_kinds_flag()
_CORPUS_DIR = flags.DEFINE_string("corpus_dir", None, "this corpus' held-out split, not the run's own")
_OUT = flags.DEFINE_string("out", None, "where the JSON goes (default: <workdir>/intelligibility.json, or "
                           "intelligibility-<step>.json with --step)")
_DATA_ONSETS = flags.DEFINE_bool("data_onsets", False, "date its words by the data's onsets, not its onset head's")
_SERVE = common.define_serve_flag()  # its audio_temperature: the flow's temperature (None: the model's)


def _band(fig: dict, digits: int = 3) -> str:
    ci = fig["ci"]
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "—"


def main(argv):
    del argv
    common.quiet_libraries()
    workdir = Path(_WORKDIR.value)
    c, graphdef, params, step_count, layout, convs = common.trained_run_on_held_out(workdir, _CORPUS_DIR.value,
                                                                                     _PER_KIND.value, _STEP.value,
                                                                                     kinds=_KINDS.value)
    serve = common.serve_settings(c, _SERVE)
    recognizer = asr.make(_RECOGNIZER.value)
    print(f"voicing the reference text of {len(convs)} held-out conversations at step {step_count} "
          f"({recognizer.description})", flush=True)
    try:
        result = intelligibility.measure(graphdef, params, convs, layout, recognizer, vad=vad.SileroVad(),
                                         audio_temperature=serve.audio_temperature, flow_steps=serve.flow_steps,
                                         prior_alone=ModelSpec.from_config(c.model).voice_prior,
                                         data_onsets=_DATA_ONSETS.value)
    except asr.WhisperMissingError as err:  # the recognizer loads on first use
        sys.exit(str(err))
    for name in [n for n in ("model", "prior", "reference") if n in result]:
        fig = result[name]
        print(f"word error rate, {name:<9} {fig['value']:.3f} {_band(fig)}  ({fig['words']:.0f} words, "
              f"{fig['n']:.0f} conversations)")
    if "onset_exact" in result:
        exact, near = result["onset_exact"], result["onset_near"]
        print(f"words its onset head dates to the data's frame: {exact['value']:.3f} {_band(exact)}, to within one "
              f"frame: {near['value']:.3f} {_band(near)} ({exact['words']:.0f} words)")
    fig = result["heard_as_speech"]
    print(f"heard as speech where the reference is: {fig['value']:.3f} {_band(fig)} (Silero VAD)")
    targets, conds, groups, previous = intelligibility.voiced_patches(graphdef, params, convs, layout)
    flow = nnx.merge(graphdef, params).flow
    fig = result["conditioning_gap"] = intelligibility.conditioning_gap(flow, targets, conds, groups)
    print(f"conditioning gap: {fig['value']:.4f} {_band(fig, 4)} (flow loss {fig['own']:.4f} with its own "
          f"conditioning, {fig['other']:.4f} with another patch's; {fig['patches']:.0f} patches)")
    temperature = ModelSpec.from_config(c.model).audio_temperature if serve.audio_temperature is None \
        else serve.audio_temperature
    fig = result["spread"] = intelligibility.draw_spread(flow, targets, conds, temperature=temperature,
                                                         flow_steps=serve.flow_steps)
    print(f"its draws at temperature {temperature:g} lie {fig['draws']:.4f} from its draw at 0, the data "
          f"{fig['data']:.4f} (mean squared, normalised frames); the draws from the data {fig['error']:.4f}")
    result["readout"] = {name: intelligibility.linear_readout(x, targets, groups)
                         for name, x in (("conditioning", conds), ("previous_patch", previous))}
    print("share of a patch's variance read linearly off its conditioning: {conditioning:.3f}; off the patch "
          "before it: {previous_patch:.3f}".format(**result["readout"]))
    out = common.result_path(_OUT.value, workdir, "intelligibility", _STEP.value)
    out.write_text(json.dumps({"step": step_count, "recognizer": recognizer.description,
                               "audio_temperature": temperature, **result}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    common.run(main)
