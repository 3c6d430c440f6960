"""The speed benchmark as users run it (`experiments.benchmark`), at a few micro-turns: its rows, variants,
floors and session samples are all written, and a bad variant is refused before anything is timed."""
import json

from programs import run_module, succeeded


def test_step_rows_variants_and_a_short_session(tmp_path):
    out = tmp_path / "bench.json"
    log = succeeded(run_module("experiments.benchmark", "--sections=step,session", "--sizes=tiny", "--turns=4",
                               "--variant=local:decoder.local_window_turns=2",
                               "--session_turns=20", "--session_window=10", f"--out={out}"))
    results = json.loads(out.read_text())
    base, local = results["step"]["tiny"], results["step"]["tiny/local"]
    for row in (base, local):
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["bytes_floor_ms"] > 0 and row["floor_ms"] > 0
    assert local["overrides"] == {"decoder.local_window_turns": 2}
    assert local["step_bytes"] < base["step_bytes"]  # every layer reads 2 micro-turns of cache, not 20
    assert local["p50_over_default"] == local["p50_ms"] / base["p50_ms"]
    session = results["session"]
    assert session["compiles"] == 1 and [w["turn"] for w in session["windows"]] == [10, 20]
    assert "tiny/local" in log


def test_a_bad_variant_is_refused_with_its_reason(tmp_path):
    proc = run_module("experiments.benchmark", "--sections=step", "--sizes=tiny", "--variant=x:decoder.heads_=3",
                      f"--out={tmp_path / 'b.json'}")
    assert proc.returncode != 0 and "no field 'decoder.heads_'" in proc.stderr + proc.stdout
    proc = run_module("experiments.benchmark", "--sections=step", "--sizes=tiny", "--variant=nocolon",
                      f"--out={tmp_path / 'b.json'}")
    assert proc.returncode != 0 and "expected NAME:FIELD=VALUE" in proc.stderr + proc.stdout
    assert not (tmp_path / "b.json").exists()
