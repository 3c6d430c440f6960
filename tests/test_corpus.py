"""The synthetic corpus: determinism, coverage, labels that agree with the audio, benchmark export."""
import hashlib
import json
import os
import subprocess
import sys
import wave

import numpy as np
import pytest

from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.data import corpus, records, scenarios, speech
from interaction.data.conversation import Conversation
from interaction.tools import registry

MARGIN = 0.03  # seconds trimmed from label edges (resampling and fades blur them by a few ms)


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def _span(audio, a, b):
    return audio[int((a + MARGIN) * SAMPLE_RATE) : int((b - MARGIN) * SAMPLE_RATE)]


@pytest.fixture(scope="module")
def conversations(tiny_corpus):
    return records.read(tiny_corpus / "train.array_record") + records.read(tiny_corpus / "eval.array_record")


def test_same_seed_same_bytes_and_every_kind(tiny_corpus_config):
    n = len(scenarios.KINDS)
    jobs = [("train", i) for i in range(n)] * 2 + [("train", n), ("eval", 0)]
    out = [record for record, _ in corpus.generate_records(tiny_corpus_config, jobs, workers=2)]
    assert out[:n] == out[n : 2 * n]
    assert [Conversation.from_bytes(r).kind for r in out[:n]] == list(scenarios.KINDS)
    assert len(set(out[:n]) | {out[-2], out[-1]}) == n + 2  # other index or split, other conversation


def test_corpus_files_do_not_depend_on_worker_count(tiny_corpus, tiny_corpus_config, tmp_path):
    cfg = tiny_corpus_config.copy_and_resolve_references()
    cfg.workers = 2
    cfg.export_fdb = False
    other = tmp_path / "two_workers"
    corpus.write_in_subprocess(cfg, other)  # as the trainer builds it: in a fresh process
    assert corpus.is_complete(other, cfg)
    for split in corpus.SPLITS:
        digest = [hashlib.sha256((d / f"{split}.array_record").read_bytes()).hexdigest() for d in (tiny_corpus, other)]
        assert digest[0] == digest[1]


def test_manifest_covers_all_kinds_with_statistics(tiny_corpus):
    manifest = json.loads((tiny_corpus / "manifest.json").read_text())
    assert manifest["splits"]["train"]["count"] == 22 and manifest["splits"]["eval"]["count"] == 11
    stats = manifest["statistics"]
    assert set(stats["kinds"]) == set(scenarios.KINDS)
    assert all(k["count"] == 3 for k in stats["kinds"].values())
    gap = stats["all"]["gap"]
    assert 0.12 < gap["median"] < 0.3  # configured log-normal median 0.2 s
    pause = stats["all"]["pause"]
    assert 0.3 <= pause["min"] and pause["max"] <= 1.2
    offsets = stats["all"]["interrupt_offset"]
    assert 1.5 <= offsets["min"] and offsets["max"] <= 3.0
    levels = stats["kinds"]["background_speech"]["measures"]["background_db"]
    assert -25 <= levels["min"] and levels["max"] <= -10


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def test_every_text_is_filled_in(conversations):
    for conv in conversations:
        texts = [w[2] for w in conv.user_words + conv.model_words] + [t.text for t in conv.text_items]
        texts += list(_strings([e.data for e in conv.events]))
        assert not [t for t in texts if "{" in t or "}" in t], conv.id


def test_user_channel_is_silent_inside_labelled_pauses(conversations):
    checked = 0
    for conv in conversations:
        for p in conv.events_of("pause"):
            if conv.kind != "pause":
                continue
            noise = conv.meta["noise_rms"]
            assert _rms(_span(conv.user_audio, p.start, p.end)) < 2.0 * noise
            turn = conv.events_of("user_turn")[0]
            assert _rms(_span(conv.user_audio, turn.start, p.start)) > 10 * noise
            checked += 1
    assert checked >= 3


def test_model_is_silent_after_a_labelled_interruption_stop(conversations):
    checked = 0
    for conv in [c for c in conversations if c.kind == "interruption"]:
        stop = conv.events_of("model_stop")[0].start
        # on a micro-turn's edge: the model's last voiced micro-turn does not itself fall silent
        assert stop / MICROTURN_SECONDS == pytest.approx(round(stop / MICROTURN_SECONDS), abs=1e-6)
        reply = [e for e in conv.events_of("model_turn") if e.start > stop][0]
        assert _rms(_span(conv.model_audio, stop + 0.02, reply.start)) == 0.0
        assert _rms(_span(conv.model_audio, stop - 0.3, stop)) > 0.01  # it was talking until then
        assert all(w[0] < stop or w[0] >= reply.start for w in conv.model_words)
        checked += 1
    assert checked == 3


def test_model_speaks_only_inside_its_labelled_spans(conversations):
    spoken_kinds = {"model_turn", "model_backchannel", "model_remark", "translation", "false_start"}
    for conv in conversations:
        spans = sorted((e.start, e.end) for e in conv.events if e.kind in spoken_kinds)
        mask = np.zeros(len(conv.model_audio), bool)
        for a, b in spans:
            mask[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE) + 1] = True
        assert np.abs(conv.model_audio[~mask]).max(initial=0) == 0.0, conv.id
        for a, b, _ in conv.model_words:
            assert any(s - 1e-3 <= a and b <= e + 1e-3 for s, e in spans), (conv.id, a, b)


def test_timers_translations_and_delegations_keep_their_times(conversations):
    kinds = {c.kind for c in conversations}
    assert {"timer", "translation", "delegation", "visual_cue"} <= kinds
    for conv in conversations:
        if conv.kind == "timer":
            req, due = conv.events_of("timer_request")[0], conv.events_of("timer_due")[0]
            assert due.start == pytest.approx(req.end + req.data["seconds"], abs=1e-3)
            announce = [e for e in conv.events_of("model_turn") if e.data.get("timer")][0]
            ack = [e for e in conv.events_of("model_turn") if e.start > req.end][0]
            # Handed to the reasoner with the acknowledgement, the count comes back when it is up, then is said.
            handed, = [t for t in conv.text_items if t.channel == "delegate"]
            result, = [t for t in conv.text_items if t.channel == "result"]
            assert handed.time == pytest.approx(ack.start) and handed.text == req.data["text"]
            assert result.time == pytest.approx(round(result.time / 0.2) * 0.2, abs=1e-6)
            assert handed.time + req.data["seconds"] <= result.time + 1e-6 < handed.time + req.data["seconds"] + 0.2
            assert result.text == announce.data["text"] and result.time < announce.start < result.time + 0.6
            assert _rms(_span(conv.model_audio, ack.end, announce.start)) == 0.0  # quiet while counting
        if conv.kind == "translation":
            for e in conv.events_of("translation"):
                assert e.start > e.data["source_end"]
                assert any(w[2] == e.data["target"].split()[0] for w in conv.model_words)
        if conv.kind == "delegation":
            d = conv.events_of("delegation")[0]
            result = [t for t in conv.text_items if t.channel == "result"][0]
            assert result.time == pytest.approx(round(result.time / 0.2) * 0.2, abs=1e-6)
            answer = [e for e in conv.events_of("model_turn") if e.data.get("delegated")][0]
            assert result.text == d.data["answer"] == answer.data["text"]  # the reasoner's answer, then said
            assert scenarios.spoken_result(d.data["result"]) in answer.data["text"]
            assert answer.start > result.time
            if d.data["tool"] != "clock":  # the clock answers for the conversation's own wall time
                assert registry.run_tool(d.data["tool"], d.data["argument"]).text == d.data["result"]


def test_video_changes_exactly_at_visual_cues(conversations):
    from interaction.data import scene

    palette = np.array(list(scene.COLOURS.values()), np.int16)
    for conv in [c for c in conversations if c.kind == "visual_cue"]:
        # Pixels of each shape colour per frame: drifting keeps them, a cue (appear, vanish, recolour) does not.
        near = np.abs(conv.video[:, :, :, None, :].astype(np.int16) - palette).max(axis=-1) <= 12
        counts = near.sum(axis=(1, 2))
        step = np.abs(np.diff(counts, axis=0)).sum(axis=1)
        # The first frame showing a change is the first one at or after the cue time.
        cue_steps = {int(np.ceil(e.start * conv.video_fps - 1e-9)) - 1 for e in conv.events_of("visual_cue")}
        quiet = [c for i, c in enumerate(step) if i not in cue_steps]
        for i in cue_steps:
            assert step[i] > 50 > max(quiet), (conv.id, i, step[i], max(quiet))


def test_held_out_split_exported_in_benchmark_layout(tiny_corpus):
    root = tiny_corpus / "full_duplex_bench"
    samples = sorted(p.parent for p in root.glob("*/*/input.wav"))
    assert len(samples) == 11
    expected = {"pause_handling": "pause.json", "smooth_turn_taking": "turn_taking.json",
                "user_interruption": "interrupt.json", "talking_to_other": "metadata.json",
                "background_speech": "metadata.json", "user_backchannel": "metadata.json"}
    for sample in samples:
        with wave.open(str(sample / "input.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
            duration = w.getnframes() / 16000
        task = sample.parent.name
        if task in expected:
            content = json.loads((sample / expected[task]).read_text())
            stamps = content[0]["timestamp"] if isinstance(content, list) else content["timestamps"]
            assert 0 <= stamps[0] <= stamps[1] <= duration + 1e-3
        if task == "user_interruption":
            assert set(content[0]) == {"context", "interrupt", "timestamp"}
        if task == "pause_handling":  # ends with the user's turn: the benchmark scores the whole output
            turn = next(e for e in json.loads((sample / "events.json").read_text()) if e["kind"] == "user_turn")
            assert duration == pytest.approx(turn["timestamp"][1], abs=1e-3)
        words = json.loads((sample / "transcription.json").read_text())
        assert all(0 <= w["timestamp"][0] < w["timestamp"][1] <= duration + 1e-3 for w in words)


def test_missing_espeak_is_one_line_naming_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("ESPEAK_NG_LIBRARY", str(tmp_path / "no-such-libespeak.so"))
    speech._engine.cache_clear()
    try:
        with pytest.raises(speech.EspeakMissingError, match="apt-get install espeak-ng"):
            speech.check_available()
    finally:
        speech._engine.cache_clear()
    env = dict(os.environ, ESPEAK_NG_LIBRARY=str(tmp_path / "no-such-libespeak.so"))
    proc = subprocess.run([sys.executable, "-m", "experiments.make_corpus", f"--workdir={tmp_path / 'c'}"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [speech.INSTALL_HINT]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("kinds", "turn_taking,smalltalk", "unknown scenario kinds"),
        ("train_extra_kinds", "smalltalk", "unknown scenario kinds"),
        ("num_train", -1, "need counts"),
        ("video.fps", 3.0, "video.fps"),
        ("video.size", 100, "multiple of the 40-pixel patch"),
        ("timing.pause_min", 2.0, "pause_min=2.0 is above timing.pause_max"),
        ("timing.overlap_prob", 1.5, "overlap_prob"),
        ("timing.false_start_prob", -0.1, "false_start_prob=-0.1 must lie in"),
        ("timing.false_yield_prob", 1.5, "false_yield_prob=1.5 must lie in"),
    ],
)
def test_bad_config_values_are_named(tiny_corpus_config, tmp_path, field, value, message):
    cfg = tiny_corpus_config.copy_and_resolve_references()
    node, _, leaf = field.rpartition(".")
    setattr(cfg[node] if node else cfg, leaf, value)
    with pytest.raises(ValueError, match=message):
        corpus.write(cfg, tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()


def test_extra_training_kinds_leave_the_held_out_split_as_it_was(tiny_corpus_config):
    """`train_extra_kinds` lengthens the training split's cycle of kinds only: the held-out conversations are
    the same bytes with or without it."""
    cfg = tiny_corpus_config.copy_and_resolve_references()
    cfg.kinds = "turn_taking,timer"
    more = cfg.copy_and_resolve_references()
    more.train_extra_kinds = "timer"
    assert [corpus.generate(more, "train", i).kind for i in range(3)] == ["turn_taking", "timer", "timer"]
    assert [corpus.generate(more, "eval", i).kind for i in range(3)] == ["turn_taking", "timer", "turn_taking"]
    held_out = [[record for record, _ in corpus.generate_records(c, [("eval", 1)], workers=1)] for c in (cfg, more)]
    assert held_out[0] == held_out[1]  # each made in a fresh process, as the corpus is (espeak keeps state)


def test_only_a_complete_corpus_of_the_same_config_is_reused(tiny_corpus, tiny_corpus_config):
    assert corpus.is_complete(tiny_corpus, tiny_corpus_config)
    other = tiny_corpus_config.copy_and_resolve_references()
    other.seed = 1
    assert not corpus.is_complete(tiny_corpus, other)
    assert not corpus.is_complete(tiny_corpus / "missing", tiny_corpus_config)


def test_a_held_out_only_corpus_of_chosen_kinds(tmp_path):
    """What `experiments.evaluate --corpus_dir` takes: no training split, one kind (drawn as a timeline)."""
    proc = subprocess.run([sys.executable, "-m", "experiments.make_corpus", f"--workdir={tmp_path}",
                           "--config.kinds=delegation,timer", "--config.num_train=0", "--config.num_eval=2",
                           "--config.workers=1", "--timelines=1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [c.kind for c in records.read(tmp_path / "eval.array_record")] == ["delegation", "timer"]
    assert not (tmp_path / "train.array_record").exists() and len(list((tmp_path / "timelines").glob("*.png"))) == 1
