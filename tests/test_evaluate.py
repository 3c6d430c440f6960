"""The benchmark as users run it: `experiments.evaluate` on a (smoke) training run, in subprocesses."""
import json

import pytest
from programs import run_module, succeeded


def evaluate(*args):
    return run_module("experiments.evaluate", *args)


@pytest.fixture(scope="module")
def run(smoke_run):
    succeeded(evaluate(f"--workdir={smoke_run}"))
    return smoke_run


def test_report_covers_every_task_against_the_baseline(run, tiny_corpus):
    out = run / "benchmark"
    results = json.loads((out / "results.json").read_text())
    eval_tasks = {p.parent.parent.name for p in (tiny_corpus / "full_duplex_bench").rglob("input.wav")}
    assert set(results["model"]) == eval_tasks  # one sample of every kind
    assert {"pause_handling/takeover", "smooth_turn_taking/latency",
            "user_interruption/stop_latency"} <= set(results["headline"])
    assert [p["threshold"] for p in results["frontier"]] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert all(p["pause_takeover"] is not None for p in results["frontier"])
    assert "baseline_verdict" in results  # where the model lies against that frontier (None without its point)
    for name in ("report.md", "frontier.png", "latencies.png"):
        assert (out / name).stat().st_size > 1000, name
    assert list(out.glob("timeline_*.png"))
    sample = next((out / "samples" / "smooth_turn_taking").iterdir())
    for name in ("input.wav", "output.wav", "turn_taking.json", "output.json", "model_text.json"):
        assert (sample / name).exists(), name
    assert "step_ms_p50" in results["about"]


def test_same_workdir_and_seed_give_the_same_numbers(run, tmp_path):
    succeeded(evaluate(f"--workdir={run}", f"--out={tmp_path}", "--conversations=3"))
    first = {(r["task"], r["id"]): r for r in json.loads((run / "benchmark" / "results.json").read_text())["samples"]}
    again = json.loads((tmp_path / "results.json").read_text())["samples"]
    assert len(again) == 3
    for row in again:
        assert row == first[(row["task"], row["id"])]
        wav = lambda root: (root / "samples" / row["task"] / row["id"] / "output.wav").read_bytes()  # noqa: B023
        assert wav(tmp_path) == wav(run / "benchmark")


def test_scores_a_directory_as_it_is(run, tmp_path):
    """A Full-Duplex-Bench layout without our labels: the benchmark's own metrics only, no baseline."""
    src = run / "benchmark" / "samples" / "pause_handling"
    sample = next(src.iterdir())
    dst = tmp_path / "candor_pause" / "0"
    dst.mkdir(parents=True)
    for name in ("input.wav", "output.wav", "pause.json"):
        (dst / name).write_bytes((sample / name).read_bytes())
    succeeded(evaluate(f"--score_dir={tmp_path}"))
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert set(results["model"]) == {"pause_handling"} and results["baseline"] == {}


def test_refuses_bad_arguments(tmp_path):
    proc = evaluate(f"--score_dir={tmp_path}")
    assert proc.returncode != 0 and "no sample folders" in proc.stderr
    proc = evaluate(f"--workdir={tmp_path}")
    assert proc.returncode != 0 and "config.json" in proc.stderr


def test_a_live_reasoner_answers_the_models_own_requests(run, tmp_path):
    succeeded(evaluate(f"--workdir={run}", f"--out={tmp_path}", "--kinds=delegation",
                       "--reasoner=interaction.reasoner.rules:answer", "--reasoner_latency_s=0.5"))
    results = json.loads((tmp_path / "results.json").read_text())
    assert {r["task"] for r in results["samples"]} == {"delegation"}
    assert all({"delegated", "request_exact", "reasoner_correct", "answer_correct"} <= set(r)
               for r in results["samples"])
    assert results["about"]["reasoner"].startswith("interaction.reasoner.rules:answer, answers 0.6 s after")
    sample = next((tmp_path / "samples" / "delegation").iterdir())
    assert "results" in json.loads((sample / "model_text.json").read_text())  # what the reasoner said, and when


def test_refuses_reasoners_it_cannot_load(run, tmp_path):
    proc = evaluate(f"--workdir={run}", f"--out={tmp_path}", "--reasoner=no_such_module:answer")
    assert proc.returncode != 0 and "cannot load it" in proc.stderr
    proc = evaluate(f"--workdir={run}", f"--out={tmp_path}", "--reasoner=learned", f"--reasoner_dir={tmp_path / 'r'}")
    assert proc.returncode != 0 and "experiments.train_reasoner" in proc.stderr


def _fdb_download(root):
    """Hand-made Full-Duplex-Bench samples: espeak speech at 24 and 44.1 kHz, lengths no whole number of
    hops or micro-turns, a v1.5 sample with its clean input, and broken inputs among them."""
    import numpy as np
    import soundfile
    from scipy.signal import resample_poly

    from interaction.data import speech

    voice = speech.Voice("en-us", "m3")
    made = {}
    for task, name, text, rate, pad_s in [("candor_pause_handling", "1", "so I was thinking", 24000, 1.317),
                                         ("candor_turn_taking", "7", "what time is it now?", 44100, 0.9031),
                                         ("synthetic_user_interruption", "3", "wait, stop please", 24000, 0.6543)]:
        said = speech.synthesize(text, voice).audio
        wave = np.concatenate([np.zeros(3000, np.float32), said, np.zeros(int(pad_s * 16000), np.float32)])
        wave = resample_poly(wave, rate, 16000).astype(np.float32)
        folder = root / task / name
        folder.mkdir(parents=True)
        soundfile.write(folder / "input.wav", wave, rate, subtype="PCM_16")
        made[f"{task}/{name}/input.wav"] = (len(wave), rate)
        end = (3000 + len(said)) / 16000
        if task == "candor_pause_handling":
            (folder / "pause.json").write_text(json.dumps([{"text": "[PAUSE]", "timestamp": [end, end + 1.0]}]))
        if task == "candor_turn_taking":
            (folder / "turn_taking.json").write_text(json.dumps([{"text": "[TURN-TAKING]", "timestamp": [end, end]}]))
        if task == "synthetic_user_interruption":  # v1.5: the overlap-free input beside it
            soundfile.write(folder / "clean_input.wav", wave[: len(wave) * 2 // 3], rate, subtype="FLOAT")
            made[f"{task}/{name}/clean_input.wav"] = (len(wave) * 2 // 3, rate)
            (folder / "interrupt.json").write_text(json.dumps([{"context": "", "interrupt": text,
                                                                "timestamp": [0.2, 1.0]}]))
    bad = root / "broken"
    zeros = np.zeros(8000, np.float32)
    for name, write in [("not_a_wav", lambda p: p.write_bytes(b"RIFF\x00\x00not really a wav")),
                        ("stereo", lambda p: soundfile.write(p, np.zeros((8000, 2), np.float32), 16000)),
                        ("eight_bit", lambda p: soundfile.write(p, zeros, 16000, subtype="PCM_U8")),
                        ("empty", lambda p: soundfile.write(p, zeros[:0], 16000)),
                        ("too_short", lambda p: soundfile.write(p, zeros[:1000], 16000)),
                        ("nan", lambda p: soundfile.write(p, zeros + np.nan, 24000, subtype="FLOAT"))]:
        (bad / name).mkdir(parents=True)
        write(bad / name / "input.wav")
    return made


def test_runs_the_model_on_any_full_duplex_bench_input(smoke_run, tmp_path):
    import soundfile

    made = _fdb_download(tmp_path / "download")
    proc = evaluate(f"--workdir={smoke_run}", f"--fdb_dir={tmp_path / 'download'}", f"--out={tmp_path / 'out'}",
                    "--serve.sessions=2")
    out = succeeded(proc)
    samples = tmp_path / "out" / "samples"
    for rel, (frames, rate) in made.items():
        output = samples / rel.replace("input.wav", "output.wav")
        info = soundfile.info(str(output))
        assert (info.frames, info.samplerate) == (frames, rate), rel  # the input's exact length and rate
        assert (samples / rel).exists()  # beside a copy of the sample
    errors = json.loads((samples / "errors.json").read_text())
    reasons = {"not_a_wav": "cannot read", "stereo": "2 channels", "eight_bit": "8-bit", "empty": "no samples",
               "too_short": "shorter than one", "nan": "NaN"}
    assert set(errors) == {f"broken/{name}/input.wav" for name in reasons}
    for name, reason in reasons.items():
        assert reason in errors[f"broken/{name}/input.wav"] and f"broken/{name}/input.wav" in out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["model"]) == {"pause_handling", "smooth_turn_taking", "user_interruption"}
    assert results["about"]["inputs that could not be run"] == 6
