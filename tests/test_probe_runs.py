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
