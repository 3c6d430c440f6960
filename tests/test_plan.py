"""The scale-out plan: the published-scale programs compile on 64 fake devices, and the per-device memory
planned from the shardings is what XLA's analysis of the compiled programs says."""
import json

import pytest
from programs import run_module, succeeded

from experiments.plan import parse_mesh


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan") / "plan.json"
    log = succeeded(run_module("experiments.plan", "--layers=4", f"--out={out}"))
    return json.loads(out.read_text()), log


def test_published_scale_compiles_and_memory_agrees_with_xla(plan):
    results, log = plan
    assert results["devices"] == 64 and results["layers"] == 4
    train, stream = results["train"], results["stream"]
    planned = train["planned"]
    arguments = planned["parameters"] + planned["optimizer"] + planned["batch"]
    assert train["step"]["arguments"] == pytest.approx(arguments, rel=1e-3)
    assert train["gradient_program"]["outputs"] == pytest.approx(planned["gradients"], rel=1e-3)
    assert planned["optimizer"] == pytest.approx(2 * planned["parameters"], rel=1e-6)  # AdamW: two moments each
    assert 0 < planned["saved_activations"] < train["gradient_program"]["temp"]  # the floor under XLA's figure
    assert stream["step"]["arguments"] == pytest.approx(sum(stream["planned"].values()), rel=1e-3)
    assert train["step"]["aliased"] > 0.99 * planned["parameters"]  # the state is donated: updated in place
    for needle in ("= arguments", "micro-turn ms", "H100 SXM", "H200", "TPU v5p"):
        assert needle in log


def test_latency_rows_cover_each_accelerator_and_batch(plan):
    rows = plan[0]["latency"]
    assert {(r["accelerator"], r["sessions"]) for r in rows} == {(a, s) for a in ("H100 SXM", "H200", "TPU v5p")
                                                                 for s in (1, 64)}
    for r in rows:
        # Each pass is bound by the slower of compute and traffic, so the turn lies between the two totals.
        slack = 1e-9 * r["micro_turn_s"]  # summation order
        assert (max(r["compute_s"], r["traffic_s"]) - slack <= r["micro_turn_s"]
                <= r["compute_s"] + r["traffic_s"] + slack)
    by = {(r["accelerator"], r["sessions"]): r["micro_turn_s"] for r in rows}
    assert by["H200", 64] < by["H100 SXM", 64]  # same peak, more bandwidth: the step is bound by bytes


def test_bad_mesh_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="write axis=size"):
        parse_mesh("fsdp=2,experts=32")
    assert parse_mesh("fsdp=2,expert=32") == {"fsdp": 2, "expert": 32}
