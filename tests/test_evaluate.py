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
    assert {"pause_handling/takeover", "smooth_turn_taking/latency", "user_interruption/stop_latency"} <= set(results["headline"])
    assert [p["threshold"] for p in results["frontier"]] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert all(p["pause_takeover"] is not None for p in results["frontier"])
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
        wav = lambda root: (root / "samples" / row["task"] / row["id"] / "output.wav").read_bytes()
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
    assert all({"delegated", "request_exact", "reasoner_correct", "answer_correct"} <= set(r) for r in results["samples"])
    assert results["about"]["reasoner"].startswith("interaction.reasoner.rules:answer, answers 0.6 s after")
    sample = next((tmp_path / "samples" / "delegation").iterdir())
    assert "results" in json.loads((sample / "model_text.json").read_text())  # what the reasoner said, and when


def test_refuses_reasoners_it_cannot_load(run, tmp_path):
    proc = evaluate(f"--workdir={run}", f"--out={tmp_path}", "--reasoner=no_such_module:answer")
    assert proc.returncode != 0 and "cannot load it" in proc.stderr
    proc = evaluate(f"--workdir={run}", f"--out={tmp_path}", "--reasoner=learned", f"--reasoner_dir={tmp_path / 'r'}")
    assert proc.returncode != 0 and "experiments.train_reasoner" in proc.stderr
