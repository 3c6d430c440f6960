"""What the speed benchmarks (`benchmark_step`, `benchmark_train`, `benchmark_session`) share: the machine's
measured peak and bandwidth at the head of their results, the configs they time (`--sizes`, the
deterministic mode and a `--variant` model config), random inputs drawn from the input schema
(`MicroTurnLayout.batch_spec` / `step_spec`), one streaming session through `streaming.make_step`, and
their tables.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags
from flax import nnx
from ml_collections import config_flags

from experiments.common import matmul_peak, memory_bandwidth
from interaction.codecs import pitch, text
from interaction.data.layout import MicroTurnLayout
from interaction.models import model as model_lib
from interaction.models import streaming

FLOW_STEPS = 8  # Euler steps of the flow head per audio frame, as the live loop runs it
DETERMINISTIC = {"decoder.deterministic": True, "decoder.moe.impl": "dense"}  # MoE must be dense there
UNGROUPED = {"layout.user_audio_group": 1, "layout.audio_group": 1, "layout.text_group": 1}  # a position per frame


# ---------------------------------------------------------------- the machine


def measure_machine() -> dict:
    """The results' head: the device, how many, and their measured matmul peak and read bandwidth (every
    floor and MFU is taken against these, measured in the same run); printed."""
    peak, bandwidth = matmul_peak(), memory_bandwidth()
    results = {"device": str(jax.devices()[0]), "devices": jax.device_count(), "matmul_peak_flops": peak,
               "memory_bandwidth_bytes_per_s": bandwidth}
    print(f"device {results['device']} x{results['devices']}, measured matmul peak {peak / 1e9:.1f} GFLOP/s, "
          f"read bandwidth {bandwidth / 1e9:.1f} GB/s per device")
    return results


# ---------------------------------------------------------------- the configs timed


class _IntOrNone(flags.IntegerParser):
    """An int field's override that may also be `None`: ml_collections parses an override by its field's type,
    and its int parser refuses `None`, which unsets `decoder.local_window_turns` and `decoder.global_every`."""

    def parse(self, argument):
        return None if argument is None or argument == "None" else super().parse(argument)


config_flags.register_flag_parser_for_type(int, _IntOrNone())  # for --variant (the only config flag here)


def define_config_flags() -> tuple:
    """Defines --sizes, --deterministic, --ungrouped, --variant (a model config file, its fields overridable)
    and --variant_name, the configs a benchmark times, and returns them in that order."""
    sizes = flags.DEFINE_list("sizes", ["tiny", "small"], "model configs to time")
    det = flags.DEFINE_bool("deterministic", False, "also time the deterministic mode (`invariant.py`) of every "
                            "size, beside the default, in the same run, as <size>/det rows")
    ungrouped = flags.DEFINE_bool("ungrouped", False, "also time every size with a decoder position per audio frame "
                                  "and text slot (`MicroTurnLayout` groups of 1), beside the default, in the same "
                                  "run, as <size>/ungrouped rows")
    variant = config_flags.DEFINE_config_file(
        "variant", None, "also time this model config, e.g. --variant=experiments/configs/model.py:small with any "
        "field overridden (--variant.decoder.kv_heads=4), beside the --sizes in the same run, as the row "
        "<its name>/<--variant_name>, with its cost as a ratio to its name's row when that size is timed too. "
        "Stock ml_collections cannot set an int field to None from a flag; these benchmarks accept None for "
        "any int field, e.g. --variant.decoder.local_window_turns=None --variant.decoder.global_every=None: "
        "every layer global")
    name = flags.DEFINE_string("variant_name", "variant", "the --variant's row label, after its config's name")
    return sizes, det, ungrouped, variant, name


@dataclasses.dataclass(frozen=True)
class Row:
    """One config to time: its `name` in the table, the `size` it varies, its model config and the fields it
    sets (none on a size's own row)."""
    name: str
    size: str
    model: ml_collections.ConfigDict
    overrides: dict

    @property
    def varied(self) -> bool:
        return self.name != self.size


def overridden(model_cfg: ml_collections.ConfigDict, fields: dict) -> ml_collections.ConfigDict:
    """A copy of the model config with `fields` (flattened names) set, e.g. `DETERMINISTIC`."""
    model_cfg = model_cfg.copy_and_resolve_references()
    model_cfg.update_from_flattened_dict(fields)
    return model_cfg


def abstract_model(model_cfg: ml_collections.ConfigDict) -> model_lib.InteractionModel:
    """The model of a config, built abstractly (`nnx.eval_shape`): its shapes, no arrays."""
    return nnx.eval_shape(lambda: model_lib.InteractionModel(model_lib.ModelSpec.from_config(model_cfg),
                                                             rngs=nnx.Rngs(0)))


def config_rows(sizes: list[str], model_of: Callable[[str], ml_collections.ConfigDict], with_deterministic: bool,
                with_ungrouped: bool, variant: flags.FlagHolder, variant_name: str) -> list[Row]:
    """Every size's row (its model config `model_of(size)`), then, with `with_deterministic`, its
    deterministic one and, with `with_ungrouped`, its ungrouped one; then the `variant` flag's, if given. A
    config the model cannot be built from is refused now, not after the first rows have been timed."""
    rows = []
    for size in sizes:
        rows.append(Row(size, size, model_of(size), {}))
        for on, mode, fields in ((with_deterministic, "det", DETERMINISTIC), (with_ungrouped, "ungrouped", UNGROUPED)):
            if on:
                rows.append(Row(f"{size}/{mode}", size, overridden(model_of(size), fields), dict(fields)))
    if variant.value is not None:
        model, overrides = variant.value, config_flags.get_override_values(flags.FLAGS[variant.name])
        rows.append(Row(f"{model.name}/{variant_name}", model.name, model, dict(overrides)))
    for row in rows:
        try:
            abstract_model(row.model)
        except (TypeError, ValueError) as err:
            raise app.UsageError(f"{row.name}: {err}") from None
    return rows


def against_default(table: dict, row: Row, ratios: dict[str, str]) -> None:
    """On a varied row of `table`: the fields it sets, and `ratios` (name: field) of its field over its size's
    own row's, when that was timed in the same run."""
    if not row.varied:
        return
    r = table[row.name]
    r["overrides"] = row.overrides
    if row.size in table:
        r.update({name: r[field] / table[row.size][field] for name, field in ratios.items()})


# ---------------------------------------------------------------- inputs and a session


TEXT_FIELDS = ("text_in", "text_out", "user_text", "text_alone")  # byte tokens and specials: below text.VOCAB_SIZE
DMEL_FIELDS = ("user_audio", "model_audio")  # dMel tokens: below the layout's dmel.n_bins
REAL_FIELDS = ("valid", "trained")  # all set: every micro-turn real and trained, the step's whole work


def random_inputs(layout: MicroTurnLayout, spec: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random host arrays for the fields of `spec` (name: (shape, dtype), from `layout.batch_spec` or
    `layout.step_spec`), chosen by field and dtype: tokens below their stream's vocabulary, bytes 0-255,
    coin flips (`REAL_FIELDS` all set), the log-mel target uniform over the dMel range, listening targets
    in [0, 1], pitch numbers within their ranges, words' onsets among the frames and the micro-turns' own indices."""
    dm, out = layout.dmel, {}
    for name, (shape, dtype) in spec.items():
        if name == "time_index":
            value = np.broadcast_to(np.arange(shape[-1]), shape)
        elif dtype == np.bool_:
            value = np.ones(shape, bool) if name in REAL_FIELDS else rng.uniform(size=shape) < 0.5
        elif name in TEXT_FIELDS or name in DMEL_FIELDS:
            value = rng.integers(0, text.VOCAB_SIZE if name in TEXT_FIELDS else dm.n_bins, shape)
        elif dtype == np.uint8:
            value = rng.integers(0, np.iinfo(dtype).max + 1, shape)
        elif name == "model_mel":
            value = rng.uniform(dm.log_min, dm.log_max, shape)
        elif name == "listen":
            value = rng.uniform(size=shape)
        elif name == "word_onset":  # a frame of the micro-turn, or -1 (no word begins at the slot)
            value = rng.integers(-1, layout.frames, shape)
        elif name == "user_pitch":  # voiced, octaves, change: each within its range
            lo = np.array([0.0, np.log2(pitch.FMIN / pitch.REFERENCE), -pitch.CHANGE_CLIP])
            hi = np.array([1.0, np.log2(pitch.FMAX / pitch.REFERENCE), pitch.CHANGE_CLIP])
            value = rng.uniform(lo, hi, shape)
        else:
            raise ValueError(f"no random values for the input field {name!r} ({np.dtype(dtype).name})")
        out[name] = np.asarray(value, dtype)
    return out


@dataclasses.dataclass
class Session:
    """One session of a model config through `streaming.make_step`'s step, called as the evaluation runner
    calls it (the session's seed and micro-turn, fresh: no), on fixed random inputs (`layout.step_spec(1)`)."""
    model: model_lib.InteractionModel
    step: Callable  # jitted (params, state, inputs, seeds, microturns, fresh) -> (state, outputs); state donated
    params: nnx.State
    inputs: dict
    context_turns: int

    def fresh_state(self) -> streaming.StreamState:
        return streaming.init_state(self.model, 1, self.context_turns)

    def args(self, state: streaming.StreamState, microturn: int) -> tuple:
        return (self.params, state, self.inputs, np.zeros(1, np.uint32), np.full(1, microturn, np.int32),
                np.zeros(1, bool))

    def __call__(self, state: streaming.StreamState, microturn: int) -> tuple[streaming.StreamState, dict]:
        """Micro-turn `microturn`: the new state (`state` is donated: use only the one returned) and outputs."""
        return self.step(*self.args(state, microturn))


def make_session(model_cfg: ml_collections.ConfigDict, context_turns: int) -> Session:
    """A session of the model config (seeded parameters) with `context_turns` micro-turns of KV cache."""
    spec = model_lib.ModelSpec.from_config(model_cfg)
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    inputs = random_inputs(spec.layout, spec.layout.step_spec(1), np.random.default_rng(0))
    return Session(model, streaming.make_step(graphdef, flow_steps=FLOW_STEPS), params,
                   {name: jnp.asarray(value) for name, value in inputs.items()}, context_turns)


# ---------------------------------------------------------------- tables


def column(title: str, width: int, field: str, spec: str = "", per: float | None = None, unit: str = "") -> tuple:
    """A table column: `field` of a row (over `per`), formatted by `spec`, then `unit`, right-aligned in `width`."""
    return title, width, lambda r: f"{r[field] if per is None else r[field] / per:{spec}}{unit}"


def config_column(names: Iterable[str], least: int) -> tuple:
    """The first column of a table of configs: their names (a row's "config")."""
    return column("config", max([least, *map(len, names)]), "config")


def print_table(columns: list[tuple], rows: Iterable[dict]) -> None:
    """Prints the column titles, then a line a row, every cell right-aligned in its column's width."""
    print(" ".join(f"{title:>{width}}" for title, width, _ in columns))
    for r in rows:
        print(" ".join(f"{cell(r):>{width}}" for _, width, cell in columns))


def print_configs(columns: list[tuple], configs: dict, least: int) -> None:
    """A table of configs (name: results), a row each, after a config column at least `least` wide."""
    print_table([config_column(configs, least), *columns], ({"config": name, **r} for name, r in configs.items()))
