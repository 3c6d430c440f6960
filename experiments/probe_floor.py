r"""Probe a trained run's floor decisions on the held-out split: `python -m experiments.probe_floor
--workdir=workdir/tiny`; `--compare=RUN,RUN,...` prints the probes of several runs as one markdown table
(an ablation table, a row per run).

Teacher-forced, it reads the chance of speaking and the listening heads at every block; free-running
(slots of the streaming step, as `experiments.evaluate` runs them) it reads what the model decided to do;
and streamed with the reference's text forced but its own frames fed back, its chance of going on speaking.
It prints one table of rates with 95% intervals over conversations and writes `<workdir>/probe.json`
(or `--out`). Minutes on 2 CPU cores; it needs no recognizer.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from flax import nnx

from experiments import common
from interaction.codecs import text
from interaction.evals import floor_probe, smart_turn
from interaction.models import streaming
from interaction.models.model import ModelSpec
from interaction.plots import curves

_WORKDIR = flags.DEFINE_string("workdir", None, "a training run's workdir")
_COMPARE = flags.DEFINE_list("compare", [], "workdirs (their probe.json) or probe JSON files to print as one table "
                             "(runs nothing)")
_CURVES = flags.DEFINE_string("curves", None, "with --compare: also plot every figure against the training step "
                              "(learning curves) into this PNG")
_CONVERSATIONS = flags.DEFINE_integer("per_kind", 20, "held-out conversations of every kind (0: all)")
_SERVE = common.define_serve_flag()  # free-running sessions as the run is served (sessions, context, sampling)
_STEP = common.define_step_flag()
_KINDS = common.define_kinds_flag()
_CORPUS_DIR = flags.DEFINE_string("corpus_dir", None, "probe on this corpus' held-out split, not the run's own")
_SMART_TURN = flags.DEFINE_bool("smart_turn", True, "also score the pauses and turn ends with Pipecat's Smart Turn "
                                "(smart_turn_auc: how much of the cue the audio holds for a model of real speech)")
_SEED = flags.DEFINE_integer("seed", 0, "the free-running draws (text and frames): each conversation's come from "
                             "its id and this, so a conversation is drawn alike whichever others are probed with it")
_OUT = flags.DEFINE_string("out", None, "where the JSON goes (default: <workdir>/probe.json, or "
                           "probe-<step>.json with --step)")


def teacher_forced(graphdef, params, windows) -> list[tuple[np.ndarray, np.ndarray]]:
    """Of every conversation's blocks: (M,) chance of speaking, the reference model channel fed back, and
    (M, K) listening probabilities with its own channel held silent (no word, silent frames): its heads
    hearing the user alone. Free-running, a model that starts a backchannel in a pause hears itself speak
    and projects more of its own speech, whatever it heard of the user."""
    @jax.jit
    def forward(params, batch):
        model = nnx.merge(graphdef, params)
        first = model(batch)[0][:, :, 0]
        silent = dict(batch, text_out=jnp.full_like(batch["text_out"], text.Special.PAD),
                      model_audio=jnp.zeros_like(batch["model_audio"]))
        return (jax.nn.sigmoid(first[..., text.Special.VOICED] - first[..., text.Special.PAD]),
                jax.nn.sigmoid(model(silent)[2]))

    out = []
    for m, win in windows:
        speak, listen = jax.device_get(forward(params, {k: jnp.asarray(v)[None] for k, v in win.items()}))
        out.append((speak[0, :m], listen[0, :m]))
    return out


def own_frames(graphdef, params, windows, serve, batch: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """(M,) chance of speaking and (M,) mean dMel bin of the frames it made, of every conversation's blocks,
    streamed with the reference's text and speaking state forced and its own frames fed back (drawn as the
    run is served)."""
    sampling = common.sampling(serve)

    @jax.jit
    def run(params, inputs, teacher):
        model = nnx.merge(graphdef, params)
        state = streaming.init_state(model, batch, inputs["user_audio"].shape[1])
        out = streaming.run_session(model, state, inputs, jax.random.key(0), teacher=teacher, **sampling)[1]
        return out["speak"], out["audio_tokens"].mean(axis=(-2, -1))

    by_length = {}
    for i, (_, win) in enumerate(windows):
        by_length.setdefault(len(win["valid"]), []).append(i)
    out = [None] * len(windows)
    for group in by_length.values():  # one compile per length bucket; a last short batch repeats its head
        for at in range(0, len(group), batch):
            picked = group[at : at + batch]
            rows = [windows[i][1] for i in picked] + [windows[picked[0]][1]] * (batch - len(picked))
            inputs = {k: jnp.asarray(np.stack([w[k] for w in rows])) for k in streaming.INPUTS}
            forced = {"text_out": jnp.asarray(np.stack([w["text_out"] for w in rows]))}
            speak, level = jax.device_get(run(params, inputs, forced))
            for j, i in enumerate(picked):
                out[i] = speak[j, : windows[i][0]], level[j, : windows[i][0]]
    return out


def _show(name: str, fig: dict) -> str:
    ci = fig.get("ci")
    band = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "—"
    return f"{name:<26} {fig['value']:>8.3f}  {band:<18} n={fig['n']:.0f}"


_COLUMNS = ("talk_over", "talk_over_uncalled", "speak_while_user", "speak_block0", "start_tf", "stop_tf", "go_on_tf",
            "go_on_own_frames", "own_frame_level", "floor_f1", "turn_end_auc", "turn_end_auc_no_stories", "hearing_auc",
            "hearing_auc_no_stories", "smart_turn_auc", "smart_turn_auc_no_stories", "end_head_auc", "pause_takeover",
            "reply_latency_s", "reply_miss", "utterance_s", "last_turn_run_on", "interrupt_stop", "interrupt_stop_tf",
            "onset_auc", "false_response", "floor_kept", "timer_said", "remark_said")
_CURVE_FIGURES = ("talk_over", "floor_f1", "turn_end_auc", "hearing_auc", "end_head_auc", "stop_tf", "pause_takeover",
                  "interrupt_stop", "false_response")


def probes_of(workdirs) -> list[tuple[str, str, dict]]:
    """(run, row name, probe) of every probe named: a JSON file, or a workdir's probes, one per step
    (`probe-<step>.json` of its kept checkpoints and `probe.json`), in step order."""
    out = []
    for w in workdirs:
        path = Path(w)
        if w.endswith(".json"):
            name = path.parent.name if path.name == "probe.json" else f"{path.parent.name}/{path.stem}"
            out.append((path.parent.name, name, json.loads(path.read_text())))
            continue
        by_step = {}
        for f in [*path.glob("probe-*.json"), path / "probe.json"]:
            if f.exists():
                probe = json.loads(f.read_text())
                by_step.setdefault(probe["step"], (f, probe))
        if not by_step:
            raise app.UsageError(f"{path} holds no probe.json or probe-<step>.json; probe it first.")
        for step in sorted(by_step):
            f, probe = by_step[step]
            out.append((path.name, path.name if f.name == "probe.json" else f"{path.name}/{f.stem}", probe))
    return out


def compare(workdirs) -> str:
    """A markdown table of the runs' probes: a row per probe, each figure with its interval."""
    lines = ["| run | step | " + " | ".join(_COLUMNS) + " |", "|---" * (len(_COLUMNS) + 2) + "|"]
    for _, name, probe in probes_of(workdirs):
        cells = []
        for column in _COLUMNS:
            fig = probe["figures"].get(column)
            if fig is None:  # a probe from before the figure existed
                cells.append("—")
                continue
            ci = fig.get("ci")
            cells.append(f"{fig['value']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
        lines.append(f"| {name} | {probe['step']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    del argv
    if _COMPARE.value:
        print(compare(_COMPARE.value))
        if _CURVES.value:
            runs = {}
            for run, _, probe in probes_of(_COMPARE.value):
                runs.setdefault(run, []).append(probe)
            curves.plot_learning_curves(runs, _CURVE_FIGURES, Path(_CURVES.value))
            print(f"wrote {_CURVES.value}")
        return
    if not _WORKDIR.value:
        raise app.UsageError("give --workdir (a run to probe) or --compare (runs already probed).")
    common.quiet_libraries()
    workdir = Path(_WORKDIR.value)
    c, graphdef, params, step_count, layout, convs = common.trained_run_on_held_out(workdir, _CORPUS_DIR.value,
                                                                                     _CONVERSATIONS.value, _STEP.value,
                                                                                     kinds=_KINDS.value)
    spec = ModelSpec.from_config(c.model)
    serve = common.serve_settings(c, _SERVE)
    speak, keep = streaming.floor_thresholds(spec, serve.speak_threshold, serve.keep_threshold)
    print(f"probing step {step_count} on {len(convs)} held-out conversations (speak above {speak:.3f}, keep above "
          f"{keep:.3f})", flush=True)
    windows = common.whole_windows(convs, layout)
    tf = teacher_forced(graphdef, params, windows)
    fr = common.free_running(graphdef, params, convs, layout, serve, _SEED.value)
    own = own_frames(graphdef, params, windows, serve)
    rows = [floor_probe.counts(conv, chance, r["tokens"][:, 0] == text.Special.VOICED, r["listen"], speak_own,
                               level_own, win["model_audio"][:m].mean(axis=(-2, -1)), listen_silent,
                               (r["tokens"][:, 1:] >= text.NUM_SPECIAL).any(-1))
            for conv, (chance, listen_silent), r, (speak_own, level_own), (m, win)
            in zip(convs, tf, fr, own, windows)]
    if _SMART_TURN.value:  # the same moments heard by an end-of-turn model trained on real speech
        scorer = smart_turn.SmartTurn()
        for row, conv, r in zip(rows, convs, fr):
            row["smart_turn_scores"] = floor_probe.smart_turn_scores(conv, len(r["listen"]), scorer)
    figures = floor_probe.summarize(rows)
    by_kind = {}
    for kind in sorted({conv.kind for conv in convs}):
        picked = [r for r, conv in zip(rows, convs) if conv.kind == kind]
        by_kind[kind] = {k: v["value"] for k, v in floor_probe.summarize(picked).items()}
    print(f"{'figure':<26} {'value':>8}  {'95% interval':<18}")
    for name, fig in figures.items():
        print(_show(name, fig))
    out = common.result_path(_OUT.value, workdir, "probe", _STEP.value)
    byte = streaming.BYTE_THRESHOLD if serve.byte_threshold is None else serve.byte_threshold
    audio = spec.audio_temperature if serve.audio_temperature is None else serve.audio_temperature
    out.write_text(json.dumps({"step": step_count, "speak_threshold": speak, "keep_threshold": keep,
                               "byte_threshold": byte, "temperature": serve.temperature, "audio_temperature": audio,
                               "conversations": len(convs), "figures": figures, "by_kind": by_kind}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    common.run(main)
