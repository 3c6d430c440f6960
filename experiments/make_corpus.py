r"""Writes the synthetic duplex corpus.

  python -m experiments.make_corpus --config=experiments/configs/corpus.py:tiny --workdir=/tmp/corpus

Writes `train.array_record`, `eval.array_record`, `manifest.json` (per-conversation summaries and the
statistics table below) and, for the held-out split, `full_duplex_bench/`. Use --timeline=ID to draw
one conversation as PNG.
"""
import json
import sys
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from interaction.data import corpus, records, speech, stats, timeline

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/corpus.py:tiny", "corpus config")
_WORKDIR = flags.DEFINE_string("workdir", None, "output folder (replaced)", required=True)
_TIMELINES = flags.DEFINE_integer("timelines", 3, "draw this many held-out conversations as PNG timelines")
_FORCE = flags.DEFINE_bool("force", False, "regenerate even if the workdir already holds this corpus")


def main(argv):
    del argv
    cfg = _CONFIG.value
    workdir = Path(_WORKDIR.value)
    try:
        speech.check_available()
    except speech.EspeakMissingError as err:
        sys.exit(str(err))
    if corpus.is_complete(workdir, cfg) and not _FORCE.value:
        print(f"{workdir} already holds this corpus (same config); --force regenerates it.")
        manifest = json.loads((workdir / corpus.MANIFEST).read_text())
    else:
        manifest = corpus.write(cfg, workdir)
    print(stats.format_table(manifest["statistics"]))
    if _TIMELINES.value and cfg.num_eval:
        out = workdir / "timelines"
        out.mkdir(exist_ok=True)
        n = min(_TIMELINES.value, cfg.num_eval)
        step = max(1, cfg.num_eval // n)
        for conv in records.read(workdir / "eval.array_record", range(0, cfg.num_eval, step)[:n]):
            timeline.render_timeline(conv, out / f"{conv.id}.png")
        print(f"timelines: {out}")
    print(f"corpus: {workdir} ({manifest['splits']['train']['count']} train, {manifest['splits']['eval']['count']} eval)")


if __name__ == "__main__":
    app.run(main)
