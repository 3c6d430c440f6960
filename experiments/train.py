r"""Trains the interaction model.

  python -m experiments.train --workdir=workdir/tiny                         # tiny config, CPU minutes
  python -m experiments.train --config=experiments/configs/train.py:small --workdir=DIR \
      --config.model.mesh.fsdp=4 --config.total_steps=50000

The workdir receives `config.json`, `corpus/` (built on first use unless `--config.corpus_dir` names
one), `checkpoints/` (the last few: params, optimizer state, step, RNG and every process's data
position), `metrics.jsonl`, `tensorboard/` (scalars, and at each evaluation an audio sample and a
timeline image of a free-running session) and `samples/` (the same as WAV and PNG). Rerunning the same
command resumes from the newest readable checkpoint; SIGTERM or Ctrl-C saves one and exits. A NaN or Inf
loss stops the run and names the step; checkpoints written before it are kept.

The file reads top to bottom: setup, data, model and optimizer, restore, steps, loop, the end.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import jax
import numpy as np
from absl import flags, logging
from jax.experimental import multihost_utils
from ml_collections import config_flags

from experiments import common
from experiments.configs import train as train_config
from interaction import SAMPLE_RATE, sharding
from interaction.data import corpus, pipeline, records, speech
from interaction.evals import floor, vad
from interaction.models.model import ModelSpec
from interaction.train import checkpoint, heldout, optimizer, processes, reporting, sample_session
from interaction.train import state as train_state
from interaction.train.step import make_eval_step, make_train_step

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/train.py:tiny", "training config")
_WORKDIR = flags.DEFINE_string("workdir", None, "where checkpoints, metrics and samples go", required=True)


class NonFiniteLoss(RuntimeError):
    pass


def mesh_shape(c_mesh) -> dict[str, int]:
    """The config's mesh sizes with one -1 resolved to all the remaining devices."""
    shape = dict(c_mesh)
    free = [a for a, n in shape.items() if n == -1]
    if len(free) > 1:
        raise ValueError(f"only one mesh axis may be -1, got {free}.")
    fixed = int(np.prod([n for n in shape.values() if n != -1]))
    if free:
        if jax.device_count() % fixed:
            raise ValueError(f"mesh {shape}: {jax.device_count()} devices do not divide by {fixed}.")
        shape[free[0]] = jax.device_count() // fixed
    return shape


def corpus_dir(c, workdir: Path) -> Path:
    """The corpus to train on: `corpus_dir` as given, or `<workdir>/corpus`, built (once) from `c.corpus`."""
    if c.corpus_dir:
        path = Path(c.corpus_dir)
        if not (path / corpus.MANIFEST).exists():
            raise FileNotFoundError(f"corpus_dir={path} holds no corpus; build one with `python -m "
                                    "experiments.make_corpus --workdir=...`, or leave corpus_dir empty to build it "
                                    "in the workdir.")
        return path
    path = workdir / "corpus"
    if jax.process_index() == 0 and not corpus.is_complete(path, c.corpus):
        speech.check_available()
        print(f"building the corpus in {path}", flush=True)
        corpus.write_in_subprocess(c.corpus, path)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("corpus ready")
    return path


def main(argv):
    del argv
    # ---------------------------------------------------------------- setup
    common.quiet_libraries()
    processes.initialize_from_environment()
    c = _CONFIG.value
    train_config.check_config(c, processes=jax.process_count())
    workdir = Path(_WORKDIR.value)
    workdir.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(c.to_json_best_effort(indent=2, sort_keys=True))
    try:
        data_dir = corpus_dir(c, workdir)
    except (FileNotFoundError, speech.EspeakMissingError) as err:
        sys.exit(str(err))

    # ---------------------------------------------------------------- data
    spec = ModelSpec.from_config(c.model)
    layout = spec.layout
    local_batch = c.data.batch_size // jax.process_count()
    host = dict(shard_index=jax.process_index(), shard_count=jax.process_count())
    train_iter = iter(pipeline.make_dataset(data_dir / "train.array_record", layout, window_turns=c.data.window_turns,
                                            batch_size=local_batch, seed=c.seed, workers=c.data.workers,
                                            prefetch=c.data.prefetch, decision_share=c.data.decision_share,
                                            burn_in=c.data.burn_in_turns,
                                            **host))

    def eval_batches():
        return pipeline.make_dataset(data_dir / "eval.array_record", layout, window_turns=c.data.window_turns,
                                     batch_size=local_batch, seed=c.seed + 1, num_epochs=c.data.eval_epochs,
                                     shuffle=False, burn_in=c.data.burn_in_turns, **host)

    # ---------------------------------------------------------------- model and optimizer
    mesh = sharding.make_mesh(mesh_shape(c.model.mesh))
    rules = {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in c.model.rules.items()}
    tx = optimizer.make_optimizer(c.optim, c.total_steps)
    graphdef, state, state_shardings = train_state.create(spec, tx, mesh, rules, c.seed)

    # ---------------------------------------------------------------- restore
    ckpts = checkpoint.Checkpoints(workdir / "checkpoints", keep=c.keep_checkpoints, keep_every=c.keep_every,
                                   async_save=c.async_checkpoints)
    restored = ckpts.restore(train_state.abstract_like(state))
    if restored is not None:
        state, data_state = restored
        train_iter.set_state(data_state)
    step = start_step = int(state.step)
    saved_step = step if restored is not None else None
    report = reporting.Reporter(workdir, total_steps=c.total_steps, start_step=step)
    report.print(f"{'resuming at' if restored else 'starting from'} step {step} of {c.total_steps}; mesh "
                 f"{dict(mesh.shape)} over {jax.device_count()} devices in {jax.process_count()} process(es)")

    # ---------------------------------------------------------------- steps
    try:
        first = sharding.global_batch(next(iter(eval_batches())), mesh, rules)
    except StopIteration:
        sys.exit(f"the held-out split gives no batch of {local_batch} windows per process; lower data.batch_size.")
    batch_shardings = jax.tree.map(lambda x: x.sharding, first)
    train_step = make_train_step(graphdef, tx, optimizer.schedule(c.optim, c.total_steps), state_shardings,
                                 batch_shardings, mesh, rules)
    eval_step = make_eval_step(graphdef, state_shardings.params, batch_shardings, mesh, rules, c.eval.flow_steps)
    detector = vad.SileroVad()
    sampler = sample_session.make_sampler(graphdef, capacity_turns=c.sample.turns, flow_steps=c.sample.flow_steps,
                                          temperature=c.sample.temperature) if c.sample.enabled else None

    def evaluate(params, at_step: int) -> dict:
        totals = None
        for i, local in enumerate(eval_batches()):
            sums = eval_step(params, sharding.global_batch(local, mesh, rules),
                             jax.random.fold_in(jax.random.key(c.seed + 2), i))
            sums = jax.device_get(sums)
            totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
        summary = heldout.summarize(totals)
        report.write(at_step, "eval", summary)
        report.print(f"eval at step {at_step}: text loss {summary['text_loss']:.3f} (constant predictor "
                     f"{summary['text_loss_baseline']:.3f}, ratio {summary['text_loss_ratio']:.3f}; byte accuracy "
                     f"{summary['byte_accuracy']:.3f}), flow loss "
                     f"{summary['flow_loss']:.3f} (mean frame {summary['flow_loss_baseline']:.3f}, ratio "
                     f"{summary['flow_loss_ratio']:.3f}), frame MSE ratio {summary['frame_mse_ratio']:.3f}")
        if sampler is None:
            return summary
        host_params = multihost_utils.process_allgather(params, tiled=True)  # a collective: every process
        if jax.process_index() == 0:
            conv = records.read(data_dir / "eval.array_record", [c.sample.conversation])[0]
            inputs, real = sample_session.session_inputs(conv, layout, c.sample.turns)
            outputs = jax.device_get(sampler(host_params, inputs, at_step))
            out = sample_session.write(conv, outputs, real, layout, workdir / "samples", f"step_{at_step:06d}")
            report.audio("sample/said", out["said"], at_step, SAMPLE_RATE)
            report.audio("sample/heard", out["heard"], at_step, SAMPLE_RATE)
            report.image("sample/timeline", out["image"], at_step)
            gain = f" (model audio scaled by {out['gain_db']:.1f} dB to fit)" if out["gain_db"] < 0 else ""
            report.print(f"sample session: {out['wav']}, {out['png']}{gain}")
            spans = [(e.start, e.end) for e in conv.events_of("interruption")]
            held = floor.summarize([floor.of_waves(out["said"], out["heard"], conv.model_audio, detector, spans)])
            held = {k: v for k, v in held.items() if k in floor.METRICS and v is not None}
            report.write(at_step, "sample", {f"floor_{k}": v for k, v in held.items()})
            report.print("sample session floor: " + ", ".join(f"{k} {v:.3f}" for k, v in held.items()))
        return summary

    def save(at_step: int) -> None:
        nonlocal saved_step
        ckpts.save(at_step, state, train_iter.get_state())
        saved_step = at_step

    # ---------------------------------------------------------------- loop
    stop = processes.StopRequest()
    interval: list[dict] = []  # host copies of this log interval's metrics
    pending = None  # (step, device metrics): read one step late, so the host never waits on the device

    def collect(item) -> None:
        at_step, metrics = item
        flat = reporting.flatten(jax.device_get(metrics))
        if not flat.pop("finite"):
            raise NonFiniteLoss(f"the loss is {flat['loss']} (gradient norm {flat['grad_norm']}) at step {at_step}; "
                                f"the run stops without applying it. Checkpoints written before it are kept (newest: "
                                f"step {saved_step}).")
        interval.append(flat)

    try:
        while step < c.total_steps:
            local = next(train_iter)
            if step + 1 == c.debug.nan_at_step:
                local = dict(local, model_mel=np.full_like(local["model_mel"], np.nan))
            state, metrics = train_step(state, sharding.global_batch(local, mesh, rules))
            step += 1
            if step == start_step + 1:  # the first step compiles: the step rate is measured from its end
                jax.block_until_ready(metrics)
                report.restart_clock(step)
            if pending is not None:
                collect(pending)
            pending = (step, metrics)
            if step == c.debug.signal_at_step:
                os.kill(os.getpid(), signal.SIGTERM)
            stopping = stop.agreed()
            if stopping or step % c.log_every == 0 or step % c.checkpoint_every == 0 or step == c.total_steps:
                collect(pending)
                pending = None
            if interval and (step % c.log_every == 0 or step == c.total_steps):
                mean = {k: float(np.mean([m[k] for m in interval])) for k in interval[-1]}
                report.progress(step, report.write(step, "train", mean))
                interval.clear()
            if stopping:
                save(step)
                ckpts.close()
                report.close()
                report.print(f"stopped by {stop.received} at step {step}; checkpoint saved in {ckpts.directory}. "
                             "Run the same command to resume.")
                return
            if step % c.checkpoint_every == 0 or step == c.total_steps:
                save(step)
            if step % c.eval_every == 0 or step == c.total_steps:
                evaluate(state.params, step)
    except NonFiniteLoss as err:
        ckpts.close()
        report.close()
        logging.error("%s", err)
        sys.exit(f"stopped: {err}")
    finally:
        stop.release()

    # ---------------------------------------------------------------- the end
    if saved_step != step:
        save(step)
    ckpts.close()
    report.close()
    if jax.process_index() == 0:
        final = [r for r in reporting.read_metrics(workdir, "eval") if r["step"] == step]
        if final:
            (workdir / "final_eval.json").write_text(json.dumps(final[-1], indent=2))
    report.print(f"done: {step} steps; checkpoints in {ckpts.directory}, metrics in {workdir / reporting.METRICS_FILE}")


if __name__ == "__main__":
    common.run(main)
