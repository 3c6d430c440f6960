"""The speed benchmarks as users run them (`experiments.benchmark_step`, `benchmark_session`), at a few
micro-turns: their rows, variants, floors, the step's timed parts and session samples are all written, and a
bad variant is refused before anything is timed."""
import json

from absl import flags
from ml_collections import config_flags
from programs import REPO, run_module, succeeded

from experiments import benchmark_common  # noqa: F401 - registers the int-or-None override parser


def test_step_rows_variants_and_a_short_session(tmp_path):
    out = tmp_path / "step.json"
    log = succeeded(run_module("experiments.benchmark_step", "--sizes=tiny", "--turns=4",
                               "--variant=experiments/configs/model.py:tiny",
                               "--variant.decoder.local_window_turns=2", "--variant_name=local", "--pieces",
                               f"--out={out}"))
    results = json.loads(out.read_text())
    base, local = results["step"]["tiny"], results["step"]["tiny/local"]
    for row in (base, local):
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["bytes_floor_ms"] > 0 and row["floor_ms"] > 0
    assert local["overrides"] == {"decoder.local_window_turns": 2}
    assert local["step_bytes"] < base["step_bytes"]  # every layer reads 2 micro-turns of cache, not 20
    assert local["p50_over_default"] == local["p50_ms"] / base["p50_ms"]
    assert "tiny/local" in log
    for row in (base, local):
        assert set(row["pieces"]) == {"call", "input_pass", "one_pass", "step_flow1"}
        assert all(0 < p["p50_ms"] <= p["p99_ms"] for p in row["pieces"].values())
    assert "step_flow1 ms" in log

    out = tmp_path / "session.json"
    succeeded(run_module("experiments.benchmark_session", "--session_turns=20", "--session_window=10",
                         f"--out={out}"))
    session = json.loads(out.read_text())["session"]
    assert session["compiles"] == 1 and [w["turn"] for w in session["windows"]] == [10, 20]


def test_a_bad_variant_is_refused_with_its_reason(tmp_path):
    variant = ("--variant=experiments/configs/model.py:tiny", f"--out={tmp_path / 'b.json'}")
    proc = run_module("experiments.benchmark_step", "--sizes=tiny", *variant, "--variant.decoder.heads_=3")
    assert proc.returncode != 0 and "heads_" in proc.stderr + proc.stdout
    proc = run_module("experiments.benchmark_train", "--sizes=tiny", *variant, "--variant.decoder.global_every=1")
    assert proc.returncode != 0 and "global_every=1 needs a local_window" in proc.stderr + proc.stdout
    assert not (tmp_path / "b.json").exists()


def test_an_int_field_can_be_unset_from_the_command_line():
    """ml_collections' int parser refuses None; the benchmarks' accepts it (here: every layer global)."""
    argv = ["prog", f"--variant={REPO}/experiments/configs/model.py:small", "--variant.decoder.global_every=None",
            "--variant.decoder.local_window_turns=None", "--variant.decoder.kv_heads=4"]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("variant", None, "", flag_values=values, sys_argv=argv)
    values(argv)
    d = values.variant.decoder
    assert (d.global_every, d.local_window_turns, d.kv_heads) == (None, None, 4)
