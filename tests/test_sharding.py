"""Logical-to-mesh rules, and a sharded forward and loss that match one device."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from interaction import sharding
from interaction.data import layout as layout_lib
from interaction.data import pipeline
from interaction.models import model as model_lib
from interaction.models.transformer import DecoderSpec, MoESpec

LAYOUT = layout_lib.MicroTurnLayout()
SPEC = model_lib.ModelSpec(
    decoder=DecoderSpec(embed=32, layers=2, heads=4, kv_heads=2, head_dim=8, mlp=64,
                        moe=MoESpec(num_experts=4, top_k=2, every=2)),
    layout=LAYOUT, flow_hidden=32, flow_depth=1,
)


def test_rules_map_logical_axes_to_mesh_axes():
    mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    rules = sharding.DEFAULT_RULES
    assert sharding.mesh_spec(("embed", "mlp"), (32, 64), mesh, rules) == P("fsdp", "tensor")
    assert sharding.mesh_spec(("expert", "embed", "mlp"), (4, 32, 64), mesh, rules) == P(None, "fsdp", "tensor")
    assert sharding.mesh_spec(("embed", "mlp"), (33, 64), mesh, rules) == P(None, "tensor")  # 33 is not divisible
    assert sharding.mesh_spec(("batch",), (8,), mesh, rules) == P(("data", "fsdp"))
    assert sharding.mesh_spec(("batch",), (2,), mesh, rules) == P("data")  # the longest run that divides
    assert sharding.mesh_spec(("mlp", "vocab"), (64, 64), mesh, rules) == P("tensor", None)  # one use per array
    with pytest.raises(ValueError, match="needs 16 devices"):
        sharding.make_mesh({"data": 16})
    with pytest.raises(ValueError, match="unknown mesh axes"):
        sharding.make_mesh({"model": 8})


def test_data_and_expert_sharded_forward_and_loss_match_one_device(tiny_corpus):
    assert jax.device_count() == 8
    ds = pipeline.make_dataset(str(tiny_corpus / "train.array_record"), LAYOUT, window_turns=4, batch_size=2, seed=0)
    batch = {k: jnp.asarray(v) for k, v in next(iter(ds)).items()}
    graphdef, params = nnx.split(model_lib.InteractionModel(SPEC, rngs=nnx.Rngs(0)))

    def forward(params, batch):
        model = nnx.merge(graphdef, params)
        logits, cond, _, _ = model(batch)
        loss, metrics = model_lib.losses(model, batch, jax.random.key(0))
        return logits, cond, loss, metrics["text_loss"], metrics["flow_loss"]

    expected = jax.jit(forward)(params, batch)
    mesh = sharding.make_mesh({"data": 2, "expert": 4})
    placed_params = jax.device_put(params, sharding.param_shardings(params, mesh))
    placed_batch = jax.device_put(batch, sharding.batch_shardings(batch, mesh))
    assert placed_params["decoder"]["blocks"][1]["ffn"]["gate"][...].sharding.spec == P("expert", None, None)
    assert placed_batch["user_audio"].sharding.spec == P("data", None, None, None)
    with sharding.use_rules(mesh):  # activations get their logical-axis constraints too
        sharded = jax.jit(forward)
        assert "sharding_constraint" in sharded.lower(placed_params, placed_batch).as_text()
        got = sharded(placed_params, placed_batch)
    assert "sharding_constraint" not in jax.jit(forward).lower(params, batch).as_text()
    for a, b in zip(got, expected):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
