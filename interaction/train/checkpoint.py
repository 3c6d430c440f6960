"""Orbax checkpoints of the train state and the data iterator's position, with a safe way back.

A checkpoint at step n holds two items: `state` (the TrainState pytree, written asynchronously by each
process for the shards it owns) and `data` (every process's grain iterator state, one JSON file per
process, snapshotted when the save is asked for). Orbax writes a step into a temporary folder and renames
it when complete, so an interrupted save never looks like a checkpoint. A checkpoint that exists but
cannot be read (a truncated or deleted file) is moved aside to `corrupt-<step>` with a warning, and the
one before it is used.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging

from interaction import sharding
from interaction.models.model import ModelSpec
from interaction.train import optimizer
from interaction.train import state as train_state
from interaction.train.state import TrainState


class DataStateHandler(ocp.CheckpointHandler):
    """One JSON file per process: that process's data iterator state."""

    @staticmethod
    def _file(directory) -> Path:
        return Path(directory) / f"process_{jax.process_index()}-of-{jax.process_count()}.json"

    def save(self, directory, args: "DataStateSave"):
        self._file(directory).write_text(json.dumps(args.state))

    def restore(self, directory, args: "DataStateRestore | None" = None) -> dict:
        path = self._file(directory)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing (was the checkpoint written by {jax.process_count()} "
                                    "processes?)")
        return json.loads(path.read_text())

    def metadata(self, directory):
        return None

    def finalize(self, directory):
        pass

    def close(self):
        pass


@ocp.args.register_with_handler(DataStateHandler, for_save=True)
@dataclasses.dataclass
class DataStateSave(ocp.args.CheckpointArgs):
    state: dict


@ocp.args.register_with_handler(DataStateHandler, for_restore=True)
@dataclasses.dataclass
class DataStateRestore(ocp.args.CheckpointArgs):
    pass


class Checkpoints:
    """Saves every call it is given (the loop decides when), keeps the last `keep` and every step that is a
    multiple of `keep_every` (0: none; the points of a learning curve), restores the newest good one."""

    def __init__(self, directory, *, keep: int, keep_every: int = 0, async_save: bool = True):
        if keep < 1:
            raise ValueError(f"keep={keep}: at least one checkpoint must be kept.")
        if keep_every < 0:
            raise ValueError(f"keep_every={keep_every}: give a step interval, or 0 to keep only the last {keep}.")
        self.directory = Path(directory).absolute()
        self._options = ocp.CheckpointManagerOptions(max_to_keep=keep, keep_period=keep_every or None,
                                                     enable_async_checkpointing=async_save,
                                                     create=True, cleanup_tmp_directories=True)
        self._manager = self._open()

    def _open(self) -> ocp.CheckpointManager:
        return ocp.CheckpointManager(self.directory, options=self._options, item_names=("state", "data"))

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state: TrainState, data_state: dict) -> None:
        """Starts writing step `step`; returns once the arrays are copied off the devices."""
        self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                         data=DataStateSave(data_state)), force=True)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def restore(self, abstract: TrainState, step: int | None = None) -> tuple[TrainState, dict] | None:
        """The newest readable checkpoint (or step `step`'s) as (state, data iterator state), or None when
        there is none."""
        if step is not None and step not in self.steps():
            raise FileNotFoundError(f"{self.directory} holds no checkpoint of step {step}; it holds {self.steps()}.")
        steps = [step] if step is not None else reversed(self.steps())
        for step in steps:
            try:
                out = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                                          data=DataStateRestore()))
            except Exception as err:  # noqa: BLE001 - any failure to read means this checkpoint is unusable
                self._set_aside(step, err)
                continue
            if int(out.state.step) != step:
                self._set_aside(step, ValueError(f"it holds the state of step {int(out.state.step)}"))
                continue
            return out.state, out.data
        return None

    def _set_aside(self, step: int, err: Exception) -> None:
        target = self.directory / f"corrupt-{step}"
        logging.warning("checkpoint %s/%d cannot be used (%s: %s); it is moved to %s and the one before it is "
                        "tried.", self.directory, step, type(err).__name__, str(err).splitlines()[0][:300], target)
        if jax.process_index() == 0:
            shutil.rmtree(target, ignore_errors=True)
            (self.directory / str(step)).rename(target)
        if jax.process_count() > 1:
            ocp.multihost.sync_global_processes(f"set_aside_{step}")
        self._manager.close()
        self._manager = self._open()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def load_trained(workdir, step: int | None = None):
    """(config, graphdef, params, step) of a training run's newest readable checkpoint (or step `step`'s),
    on one device.

    For evaluation and serving: the run's `config.json` rebuilds the model, and the checkpoint's state is
    restored into it (the optimizer state is read too, then dropped; nothing is initialised first).
    """
    workdir = Path(workdir)
    if not (workdir / "config.json").exists():
        raise FileNotFoundError(f"{workdir} holds no config.json; is it the workdir of `python -m experiments.train`?")
    c = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
    rules = {k: (tuple(v) if isinstance(v, list) else v) for k, v in c.model.rules.items()}
    mesh = sharding.make_mesh({}, jax.devices()[:1])
    tx = optimizer.make_optimizer(c.optim, c.total_steps)
    graphdef, target, _ = train_state.abstract(ModelSpec.from_config(c.model), tx, mesh, rules, c.seed)
    restored = Checkpoints(workdir / "checkpoints", keep=c.keep_checkpoints, async_save=False).restore(target, step)
    if restored is None:
        raise FileNotFoundError(f"{workdir / 'checkpoints'} holds no readable checkpoint; train first.")
    state, _ = restored
    return c, graphdef, jax.device_get(state.params), int(state.step)
