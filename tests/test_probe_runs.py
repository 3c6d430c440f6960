"""The floor probe and the intelligibility measure, run as users run them on a trained run's workdir."""
import json

from programs import run_module, succeeded


def test_probe_writes_its_figures_and_compares_runs(smoke_run, tmp_path):
    out = tmp_path / "probe.json"
    log = succeeded(run_module("experiments.probe_floor", f"--workdir={smoke_run}", "--per_kind=1",
                               "--serve.sessions=4", f"--out={out}"))
    probe = json.loads(out.read_text())
    assert probe["conversations"] == 11 and "probing step 6" in log
    for name in ("talk_over", "floor_f1", "stop_tf", "start_tf", "utterance_s_reference", "interrupt_stop_tf",
                 "turn_end_auc_no_stories", "hearing_auc", "smart_turn_auc", "go_on_tf", "go_on_own_frames",
                 "own_frame_level"):
        fig = probe["figures"][name]
        assert set(fig) >= {"value", "ci", "n"}, name
    assert 0 <= probe["figures"]["talk_over"]["value"] <= 1
    png = tmp_path / "curves.png"
    table = succeeded(run_module("experiments.probe_floor", f"--compare={out}", f"--curves={png}"))
    header, _, row, *_ = table.splitlines()
    assert "| stop_tf |" in header and row.startswith(f"| {tmp_path.name} | 6 |")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = run_module("experiments.probe_floor", f"--workdir={smoke_run}", "--step=1")
    assert missing.returncode != 0 and "holds no checkpoint of step 1; it holds [4, 6]" in missing.stderr


def test_intelligibility_scores_the_model_and_the_reference(smoke_run, tmp_path):
    out = tmp_path / "wer.json"
    succeeded(run_module("experiments.intelligibility", f"--workdir={smoke_run}", "--per_kind=1",
                         "--kinds=turn_taking,interruption", f"--out={out}"))
    result = json.loads(out.read_text())
    assert result["model"]["words"] == result["reference"]["words"] > 0
    assert result["reference"]["value"] < 0.6  # the measuring chain hears the reference's own speech
    assert result["model"]["value"] > result["reference"]["value"]  # two steps of training do not speak
    assert 0 <= result["heard_as_speech"]["value"] <= 1 and result["heard_as_speech"]["n"] == 2
    gap = result["conditioning_gap"]
    assert gap["n"] == 2 and gap["patches"] > 0 and gap["ci"][0] <= gap["value"] <= gap["ci"][1]
    assert set(result["readout"]) == {"conditioning", "previous_patch"}
    assert result["readout"]["previous_patch"] > 0  # speech runs on: the last 100 ms tells of the next


def test_hearing_probe_scores_four_readers_on_the_held_out_moments(smoke_run, tmp_path):
    out = tmp_path / "hearing.json"
    log = succeeded(run_module("experiments.probe_hearing", f"--workdir={smoke_run}", "--per_kind=2",
                               f"--out={out}"))
    result = json.loads(out.read_text())
    assert "hearing at step 6" in log and result["moments"]["train"] > 0 and result["moments"]["held_out"] > 0
    assert set(result["figures"]) == {"head", "hidden", "embedded", "dmel"}
    for reader in result["figures"].values():
        assert set(reader) == {"all", "stories", "rest"} and 0 <= reader["all"]["value"] <= 1
    bad = run_module("experiments.probe_hearing", f"--workdir={smoke_run}", "--blocks=1")
    assert bad.returncode != 0 and "--blocks=1 must be at least 2" in bad.stderr


def test_a_linear_reader_learns_what_separates_the_moments():
    import numpy as np

    from interaction.evals.floor_probe import auc, fit_logistic

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 50)).astype(np.float32)
    y = x[:, 3] - 0.5 * x[:, 7] + 0.3 * rng.normal(size=400) > 0  # two of fifty features matter
    read = fit_logistic(x[:300], y[:300], l2=0.1)
    assert auc(list(zip(y[300:], read(x[300:])))) > 0.95
