r"""Writes the synthetic duplex corpus.

  python -m experiments.make_corpus --config=experiments/configs/corpus.py:tiny --workdir=/tmp/corpus

Writes `train.array_record`, `eval.array_record`, `manifest.json` (per-conversation summaries and the
statistics table below), `full_duplex_bench/` (the held-out split in that benchmark's layout) and
`timelines/` (PNG pictures of the first --timelines held-out conversations and of any named by --draw).
"""
import json
import sys
from pathlib import Path

from absl import flags
from ml_collections import config_flags

from experiments import common
from interaction.data import corpus, records, speech, stats
from interaction.plots import timeline

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/corpus.py:tiny", "corpus config")
_WORKDIR = flags.DEFINE_string("workdir", None, "output folder (replaced)", required=True)
_TIMELINES = flags.DEFINE_integer("timelines", 3, "draw this many held-out conversations as PNG timelines")
_DRAW = flags.DEFINE_list("draw", [], "conversation ids to draw as PNG timelines, e.g. train-00003-interruption")
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
        corpus.validate(cfg)  # a bad value is said here, in one line
        # Each conversation is made in a fresh worker process, which re-imports the main module of the
        # process that starts it: this one imports JAX, so the workers are started from a bare one.
        corpus.write_in_subprocess(cfg, workdir)
        manifest = json.loads((workdir / corpus.MANIFEST).read_text())
    print(stats.format_table(manifest["statistics"]))
    by_id = {c["id"]: (c["split"], c["index"]) for c in manifest["conversations"]}
    unknown = [i for i in _DRAW.value if i not in by_id]
    if unknown:
        sys.exit(f"--draw names conversations not in this corpus: {unknown} (ids are listed in manifest.json)")
    wanted = [(s, i) for s, i in by_id.values() if s == "eval"][: _TIMELINES.value] + [by_id[i] for i in _DRAW.value]
    if wanted:
        out = workdir / "timelines"
        out.mkdir(exist_ok=True)
        for split in corpus.SPLITS:
            indices = sorted({i for s, i in wanted if s == split})
            for conv in records.read(workdir / f"{split}.array_record", indices) if indices else ():
                timeline.render_timeline(conv, out / f"{conv.id}.png")
        print(f"timelines: {out}")
    print(f"corpus: {workdir} ({manifest['splits']['train']['count']} train, "
          f"{manifest['splits']['eval']['count']} eval)")


if __name__ == "__main__":
    common.run(main)
