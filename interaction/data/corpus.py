"""Writes a corpus of synthetic duplex conversations: ArrayRecord per split, a manifest, statistics.

Conversation i of a split depends only on (seed, split, i), so the corpus is the same bytes whatever
the number of worker processes. espeak-ng keeps waveform-generator state (e.g. its pitch-flutter
phase) from one utterance to the next inside a process, so every conversation is generated in a fresh
process forked from a server that never speaks (`generate_records`). Files are written into a
temporary folder and renamed into place at the end, so a corpus folder is either complete (it has
`manifest.json`) or absent.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from interaction.data import fdb_export, records, scenarios, speech, stats
from interaction.data.conversation import Conversation
from interaction.data.script import Script

SPLITS = ("train", "eval")
_SPLIT_IDS = {"train": 0, "eval": 1}
MANIFEST = "manifest.json"
# Bump when generation changes what a config produces, so cached corpora are rebuilt.
FORMAT_VERSION = 5


def kinds_of(cfg, split: str = "eval") -> list[str]:
    """The cycle of scenario kinds of a split: `kinds`, a comma-separated string (`--config.kinds=delegation,timer`),
    and for the training split `train_extra_kinds` after it (kinds it holds more of; "" none)."""
    extra = cfg.get("train_extra_kinds", "") if split == "train" else ""
    return [k.strip() for k in f"{cfg.kinds},{extra}".split(",") if k.strip()]


def validate(cfg) -> None:
    """Raises ValueError naming the first config value that cannot make a corpus."""
    if cfg.num_train < 0 or cfg.num_eval < 0 or cfg.num_train + cfg.num_eval == 0:
        raise ValueError(f"num_train={cfg.num_train}, num_eval={cfg.num_eval}: need counts >= 0, not both 0.")
    unknown = [k for k in kinds_of(cfg, "train") if k not in scenarios.KINDS]
    if unknown or not kinds_of(cfg):
        raise ValueError(f"unknown scenario kinds {unknown or '(none given)'}; choose from {list(scenarios.KINDS)}.")
    fps = cfg.video.fps
    if not (0 < fps <= 5 and abs(5 / fps - round(5 / fps)) < 1e-9):
        raise ValueError(f"video.fps={fps}: use 5 (one frame per micro-turn) or 5/k for a frame every k micro-turns.")
    if cfg.video.size <= 0 or cfg.video.size % 40:
        raise ValueError(f"video.size={cfg.video.size} must be a positive multiple of the 40-pixel patch.")
    t = cfg.timing
    for lo, hi in [("pause_min", "pause_max"), ("interrupt_min", "interrupt_max"),
                   ("background_db_min", "background_db_max"), ("snr_db_min", "snr_db_max"),
                   ("user_gain_db_min", "user_gain_db_max"), ("reasoner_latency_min", "reasoner_latency_max")]:
        if t[lo] > t[hi]:
            raise ValueError(f"timing.{lo}={t[lo]} is above timing.{hi}={t[hi]}.")
    for name in ("gap_median", "overlap_median", "stop_latency_median", "remark_latency_median", "pause_min"):
        if t[name] <= 0:
            raise ValueError(f"timing.{name}={t[name]} must be positive.")
    if not 0 <= t.overlap_prob <= 1:
        raise ValueError(f"timing.overlap_prob={t.overlap_prob} must lie in [0, 1].")
    if not {"es", "fr", "de"} <= {v.split("+")[0] for v in cfg.voices.foreign}:
        raise ValueError("voices.foreign needs a Spanish, a French and a German voice for translation scenarios.")
    for name in ("user", "heldout_user"):
        if len(cfg.voices[name]) < 2:
            raise ValueError(f"voices.{name} needs at least two voices (background speakers are drawn from the rest).")
    if set(cfg.voices.user) & set(cfg.voices.heldout_user):
        raise ValueError(f"voices {sorted(set(cfg.voices.user) & set(cfg.voices.heldout_user))} are in both "
                         "voices.user and voices.heldout_user: held-out voices must be unheard in training.")
    for name in ("interruption", "backchannel"):
        if not (-30 <= t[f"{name}_db"] <= 12 and -50 <= t[f"{name}_pitch"] <= 50):
            raise ValueError(f"timing.{name}_db={t[f'{name}_db']} and timing.{name}_pitch={t[f'{name}_pitch']}: "
                             "give a gain in [-30, 12] dB and a pitch step in [-50, 50] against the user's turns.")
    for name in ("hesitation_prob", "false_start_prob", "false_yield_prob", "contrast_onset_prob"):
        if not 0 <= t[name] <= 1:
            raise ValueError(f"timing.{name}={t[name]} must lie in [0, 1].")


def voice(spec: str) -> speech.Voice:
    """A voice as the corpus config names it: "language+variant" (espeak-ng's), e.g. "en-us+f3"."""
    language, _, variant = spec.partition("+")
    return speech.Voice(language, variant or "m1")


def generate(cfg, split: str, index: int) -> Conversation:
    """The conversation `index` of `split`, determined by cfg.seed alone."""
    seed_seq = np.random.SeedSequence([cfg.seed, _SPLIT_IDS[split], index])
    rng = np.random.default_rng(seed_seq)
    kinds = kinds_of(cfg, split)
    kind = kinds[index % len(kinds)]
    user_pool = [voice(v) for v in (cfg.voices.heldout_user if split == "eval" else cfg.voices.user)]
    user_voice = user_pool[int(rng.integers(len(user_pool)))]
    user_voice = speech.Voice(user_voice.language, user_voice.variant, rate=int(rng.integers(150, 190)),
                              pitch=int(rng.integers(35, 65)))
    others = [v for v in user_pool if v.name != user_voice.name] + [voice(v) for v in cfg.voices.foreign]
    script = Script(rng, cfg.timing, user_voice, voice(cfg.voices.model), others, heldout=split == "eval")
    scenarios.KINDS[kind](script)
    conv_id = f"{split}-{index:05d}-{kind}"
    return script.render(conv_id, kind, int(seed_seq.generate_state(1)[0]), cfg.video.fps, cfg.video.size)


def _generate_bytes(args) -> tuple[bytes, dict]:
    cfg, split, index = args
    conv = generate(cfg, split, index)
    return conv.to_bytes(), stats.summary(conv)


def generate_records(cfg, jobs, workers: int = 0):
    """Yields (record bytes, summary) for each (split, index) of `jobs`, in order, each made in a fresh
    process: the same job always gives the same bytes."""
    jobs = list(jobs)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    with ctx.Pool(workers, maxtasksperchild=1) as pool:
        yield from pool.imap(_generate_bytes, [(cfg, split, index) for split, index in jobs], chunksize=1)


def write_in_subprocess(cfg, workdir) -> None:
    """`write` run by a fresh Python process. For programs with heavy imports (the trainer): the worker
    processes that generate conversations re-import the main module of the process that starts them, so
    that process is `python -c` (no main module) and `write` is reached through this module's own name,
    the one the workers' server preloads."""
    program = ("import json, sys, ml_collections; from interaction.data import corpus; "
               "corpus.write(ml_collections.ConfigDict(json.loads(sys.stdin.read())), sys.argv[1])")
    subprocess.run([sys.executable, "-c", program, str(workdir)], input=cfg.to_json(), text=True, check=True)


def config_fingerprint(cfg) -> str:
    text = f"{FORMAT_VERSION}:{cfg.to_json(sort_keys=True)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_complete(workdir, cfg) -> bool:
    path = Path(workdir) / MANIFEST
    if not path.exists():
        return False
    return json.loads(path.read_text()).get("fingerprint") == config_fingerprint(cfg)


def write(cfg, workdir, progress: bool = True) -> dict:
    """Generates every split of `cfg` into `workdir` (replacing it); returns the manifest."""
    validate(cfg)
    speech.check_available()
    workdir = Path(workdir)
    workdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".corpus-", dir=workdir.parent))
    try:
        manifest = {"fingerprint": config_fingerprint(cfg), "config": json.loads(cfg.to_json()), "splits": {},
                    "conversations": []}
        sizes = {"train": cfg.num_train, "eval": cfg.num_eval}
        jobs = [(split, i) for split in SPLITS for i in range(sizes[split])]
        writers = {s: records.writer(tmp / f"{s}.array_record") for s in SPLITS if sizes[s]}
        results = generate_records(cfg, jobs, cfg.workers)
        for (split, index), (record, summary) in tqdm(
            zip(jobs, results), total=len(jobs), desc="conversations", disable=not progress, unit="conv"
        ):
            writers[split].write(record)
            manifest["conversations"].append(dict(summary, split=split, index=index))
        for w in writers.values():
            w.close()
        for split in SPLITS:
            manifest["splits"][split] = {"path": f"{split}.array_record", "count": sizes[split]}
        manifest["statistics"] = stats.aggregate(manifest["conversations"], cfg.timing)
        if cfg.export_fdb and sizes["eval"]:
            fdb_export.export(tmp / "eval.array_record", tmp / "full_duplex_bench")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if workdir.exists():
            shutil.rmtree(workdir)
        tmp.rename(workdir)
        return manifest
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)

