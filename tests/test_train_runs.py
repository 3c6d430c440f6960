"""The trainer as users run it: subprocesses of `experiments.train` (smoke config) under timeouts.

Covers resume after SIGTERM (bitwise equal to an uninterrupted run), fallback past a corrupted latest
checkpoint, a NaN batch stopping the run, and two processes started by `launch/local.py`.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
import pytest

from interaction.train import reporting
from programs import REPO, TIMEOUT_S, cpu_env, succeeded, train


def checkpoint_contents(workdir, step: int) -> tuple[dict, dict]:
    """(state arrays by path, data iterator state) of one checkpoint, read without a target."""
    path = Path(workdir) / "checkpoints" / str(step)
    state = ocp.StandardCheckpointer().restore(path / "state")
    flat = {"/".join(map(str, k)): np.asarray(v) for k, v in _flatten(state)}
    data = json.loads(next((path / "data").glob("process_*.json")).read_text())
    return flat, data


def _flatten(tree, prefix=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flatten(v, prefix + (k,))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _flatten(v, prefix + (i,))
    else:
        yield prefix, tree


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if a[k].dtype != b[k].dtype or a[k].tobytes() != b[k].tobytes()]
    assert not different, different[:5]


def test_run_writes_metrics_events_and_checkpoints(smoke_run):
    rows = reporting.read_metrics(smoke_run, "train")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "text_loss", "flow_loss", "balance_loss", "router_z_loss", "grad_norm", "lr",
            "expert_load/0"} <= rows[0].keys()
    evals = reporting.read_metrics(smoke_run, "eval")
    assert [r["step"] for r in evals] == [6]
    for name in ("text_loss", "flow_loss", "frame_mse"):
        assert evals[0][f"{name}_ratio"] == pytest.approx(evals[0][name] / evals[0][f"{name}_baseline"])
    assert json.loads((smoke_run / "final_eval.json").read_text())["step"] == 6
    events = list((smoke_run / "tensorboard").glob("events.out.tfevents.*"))
    assert events and b"train/text_loss" in events[0].read_bytes() and b"eval/flow_loss_ratio" in events[0].read_bytes()
    assert sorted(int(p.name) for p in (smoke_run / "checkpoints").iterdir() if p.name.isdigit()) == [4, 6]
    assert json.loads((smoke_run / "config.json").read_text())["name"] == "smoke"


def test_sigterm_then_resume_is_bitwise_equal(tmp_path, tiny_corpus, smoke_run):
    out = succeeded(train(tmp_path, tiny_corpus, "--config.debug.signal_at_step=3"))
    assert "stopped by SIGTERM at step 3" in out
    assert (tmp_path / "checkpoints" / "3").is_dir() and not (tmp_path / "checkpoints" / "4").exists()
    out = succeeded(train(tmp_path, tiny_corpus))
    assert "resuming at step 3" in out and "done: 6 steps" in out
    ref_state, ref_data = checkpoint_contents(smoke_run, 6)
    state, data = checkpoint_contents(tmp_path, 6)
    assert_bitwise_equal(ref_state, state)  # params, optimizer state, step, RNG
    assert data == ref_data  # data position
    losses = lambda w: [(r["step"], r["loss"]) for r in reporting.read_metrics(w, "train")]
    assert losses(tmp_path) == losses(smoke_run)


def test_corrupt_latest_checkpoint_falls_back_and_recovers(tmp_path, tiny_corpus, smoke_run):
    # Not the benchmark report another worker may be writing into the shared run.
    shutil.copytree(smoke_run, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("benchmark"))
    for f in (tmp_path / "checkpoints" / "6" / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(f.read_bytes()[:7])  # truncated array data
    out = succeeded(train(tmp_path, tiny_corpus, "--config.keep_checkpoints=1", "--config.keep_every=4"))
    assert re.search(r"checkpoint \S+/6 cannot be used", out) and "resuming at step 4" in out
    assert (tmp_path / "checkpoints" / "corrupt-6").is_dir()
    original, original_data = checkpoint_contents(smoke_run, 6)
    recovered, data = checkpoint_contents(tmp_path, 6)  # steps 5 and 6 trained again from step 4
    assert_bitwise_equal(original, recovered)
    assert data == original_data


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_corpus):
    proc = train(tmp_path, tiny_corpus, "--config.debug.nan_at_step=3")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(r"the loss is nan .* at step 3", out), out[-3000:]
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [2]
    assert [r["step"] for r in reporting.read_metrics(tmp_path, "train")] == [1, 2]


def test_two_processes_agree_on_the_loss(tmp_path, tiny_corpus):
    cmd = [sys.executable, "launch/local.py", "--num_processes=2", "--timeout=400", "--",
           sys.executable, "-m", "experiments.train", "--config=experiments/configs/train.py:smoke",
           f"--workdir={tmp_path}", f"--config.corpus_dir={tiny_corpus}", "--config.total_steps=3"]
    proc = subprocess.run(cmd, cwd=REPO, env=cpu_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    out = succeeded(proc)
    assert "2 process(es)" in out
    losses = {}
    for line in out.splitlines():
        m = re.match(r"\[(\d)\] \[process (\d)\] step (\d+)/3 .*\| loss (\S+)", line)
        if m:
            losses.setdefault(int(m.group(3)), {})[int(m.group(2))] = m.group(4)
    assert sorted(losses) == [1, 2, 3], out[-3000:]
    assert all(len(v) == 2 and v[0] == v[1] for v in losses.values()), losses
    rows = reporting.read_metrics(tmp_path, "train")
    assert [f"{r['loss']:.4f}" for r in rows] == [losses[s][0] for s in (1, 2, 3)]
