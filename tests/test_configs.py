"""Model and training configs: every size builds; the published scale matches its parameter counts
(abstractly); training configs pass their checks."""
import pytest
from flax import nnx

from experiments.configs import model as model_config
from interaction.codecs import text
from interaction.data import corpus as data_corpus
from interaction.models import flops
from interaction.models import model as model_lib


def _abstract(name):
    spec = model_lib.ModelSpec.from_config(model_config.get_config(name))
    return spec, nnx.eval_shape(lambda: model_lib.InteractionModel(spec, rngs=nnx.Rngs(0)))


def test_published_scale_has_276b_total_and_12b_active_parameters():
    spec, model = _abstract("tml_small_paper")
    total, active = model_lib.parameter_counts(model)
    assert abs(total / 276e9 - 1) < 0.05, total
    assert abs(active / 12e9 - 1) < 0.05, active
    assert spec.layout.frames == 16  # 80 frames/s: 16 frames per micro-turn


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_cpu_sizes_build_with_moe_layers(name):
    spec, model = _abstract(name)
    total, active = model_lib.parameter_counts(model)
    assert 0 < active < total
    assert spec.decoder.moe is not None and any(spec.decoder.is_moe(i) for i in range(spec.decoder.layers))


def test_zero_experts_make_every_feed_forward_dense():
    c = model_config.get_config("tiny")
    c.decoder.moe.num_experts = 0
    spec = model_lib.ModelSpec.from_config(c)
    model = nnx.eval_shape(lambda: model_lib.InteractionModel(spec, rngs=nnx.Rngs(0)))
    total, active = model_lib.parameter_counts(model)
    assert spec.decoder.moe is None and total == active


def test_unknown_size_is_refused():
    with pytest.raises(ValueError, match="unknown model size"):
        model_config.get_config("huge")


def test_step_bytes_count_the_cache_once_per_pass_and_only_the_experts_used():
    spec, model = _abstract("small")
    d, lay = spec.decoder, spec.layout
    passes = lay.passes
    kv = passes * 2 * d.kv_heads * d.head_dim * 4  # one more slot's keys and values in one layer, float32

    def per_slot(context):
        return flops.step_bytes(model, context + 1, 8) - flops.step_bytes(model, context, 8)

    assert d.local_window == 25 * lay.block_len and sum(d.window(i) is None for i in range(d.layers)) == 2
    assert per_slot(d.local_window - 50) == d.layers * kv  # within the local layers' 5 s window every layer's grows
    assert per_slot(2 * d.local_window) == 2 * kv  # beyond it only the two global layers'
    total, active = model_lib.parameter_counts(model)
    decoder_total = flops.size(model.decoder) - flops.size(model.decoder.final_norm)
    text_head = d.embed * text.VOCAB_SIZE
    text_heads = sum(flops.size(m) for m in (model.text_group, model.text_depth) if m is not None) + text_head
    one = flops.micro_turn_passes(model, sessions=1, context=0, flow_evals=8, weight_bytes=4, kv_bytes=4)
    assert len(one) == passes == lay.output_len
    assert lay.text_positions > 1  # so the second pass is a text position's
    assert one[1][1] == pytest.approx(4 * (decoder_total - (total - active) + text_heads))  # one token: its top-k
    many = flops.micro_turn_passes(model, sessions=64, context=0, flow_evals=8, weight_bytes=2, kv_bytes=2)
    stems = flops.size(model.video) + flops.size(model.motion)
    first = stems + flops.size(model.user_audio_group) + text_heads  # the first text position too
    assert many[0][1] == pytest.approx(2 * (decoder_total + first), rel=1e-6)  # every expert
    # The passes' FLOPs add up to the block's.
    assert sum(f for f, _ in one) == pytest.approx(flops.block_forward(model, 0, flow_evals=8))


def _fields(c, prefix=""):
    return {name for key, value in c.items()
            for name in [prefix + key, *(_fields(value, f"{prefix}{key}.") if hasattr(value, "items") else ())]}


def test_training_configs_share_one_schema_pass_their_checks_and_bad_values_are_named():
    from experiments.configs import tml_small_paper
    from experiments.configs import train as train_config

    configs = [train_config.get_config(name) for name in ("tiny", "long", "small", "smoke")]
    configs.append(tml_small_paper.get_config())
    for c in configs:
        assert _fields(c) == _fields(configs[0]), c.name  # the same fields, serve block included
        train_config.check_config(c)
        train_config.check_serve(c.serve)
    serve = train_config.serve_config(byte_threshold=1.0)  # no byte could ever be emitted
    with pytest.raises(ValueError, match=r"byte_threshold=1.0 in \[0, 1\)"):
        train_config.check_serve(serve)
    long, tiny = train_config.get_config("long"), train_config.get_config("tiny")
    assert long.model.layout.pitch and not tiny.model.layout.pitch
    long.model.layout.pitch = False
    assert long.model == tiny.model  # the main job's recipe hearing the pitch, on more data for longer
    assert long.corpus.num_train == 10 * tiny.corpus.num_train
    train_kinds = data_corpus.kinds_of(long.corpus, "train")  # its stories three in a cycle of 13, held out as small's
    assert len(train_kinds) == 13 and train_kinds.count("model_backchannel") == 3
    assert data_corpus.kinds_of(long.corpus) == data_corpus.kinds_of(train_config.get_config("small").corpus)
    assert long.keep_every % long.checkpoint_every == 0 and long.total_steps % long.keep_every == 0
    long.keep_every = 150  # not a multiple of checkpoint_every=100: step 150 is never saved
    with pytest.raises(ValueError, match="keep_every=150 must be 0 or a multiple of checkpoint_every=100"):
        train_config.check_config(long)
    assert tiny.model.babble_text_share == 0.5
    tiny.model.babble_text_share = 1.5
    with pytest.raises(ValueError, match=r"model.babble_text_share=1.5 must lie in \[0, 1\]"):
        train_config.check_config(tiny)
    tiny = train_config.get_config("tiny")
    tiny.data.burn_in_turns = tiny.data.window_turns + 1  # more than the window
    with pytest.raises(ValueError, match=r"data.burn_in_turns=21 must lie in \[0, data.window_turns=20\]"):
        train_config.check_config(tiny)


def test_runs_saved_with_the_old_dispatch_names_still_load():
    from interaction.models.transformer import moe_spec

    assert (moe_spec(dict(num_experts=4, top_k=2, dispatch="ragged")).dispatch,
            moe_spec(dict(num_experts=4, top_k=2, dispatch="ragged")).impl) == ("dropless", "auto")
    assert moe_spec(dict(num_experts=4, top_k=2, dispatch="dense")).impl == "dense"
    assert moe_spec(dict(num_experts=4, top_k=2, dispatch="capacity")).dispatch == "capacity"
