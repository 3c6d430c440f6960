r"""The published-scale model as it would be trained and served: `python -m experiments.plan
--config=experiments/configs/tml_small_paper.py`.

The model is `model.py:tml_small_paper` (276.9B parameters, 12.4B active) with what training at that
scale needs: bfloat16 activations, the 44 layers as one stacked block under a scan (compile time and
activation memory independent of depth), rematerialised blocks, and expert-parallel capacity dispatch
in groups of one training window (a batch row). Parameters and the AdamW state stay float32.

The mesh (overridable with `--mesh=fsdp=4,expert=32`): experts split 32 ways (5 per device), every
other weight split over all devices (`embed` over fsdp and expert), a window per device.
"""
import ml_collections

from experiments.configs import model as model_config
from experiments.configs import train as train_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    del arg
    c = train_config.get_config("small")  # every training field, the small recipe's where not set here
    c.name = "tml_small_paper"
    m = c.model = model_config.get_config("tml_small_paper")
    m.dtype = "bfloat16"
    m.decoder.update(scan_layers=True, remat=True)
    c.data.update(batch_size=64, window_turns=25)  # 64 windows of 5 s: 83,200 tokens
    m.decoder.moe.update(dispatch="capacity", capacity_factor=1.25, capacity_groups="row")  # a group per window
    m.mesh = ml_collections.ConfigDict(dict(data=1, fsdp=2, expert=32, tensor=1))
    m.rules = ml_collections.ConfigDict(dict(m.rules.to_dict(), embed=("fsdp", "expert")))
    # Serving: sessions as slots of one batched step, 30 s of context, weights and cache in bfloat16.
    c.serve = train_config.serve_config(sessions=64, context_s=30.0)
    return c
