r"""Background-reasoner configs: `--config=experiments/configs/reasoner.py:tiny` (default) | `:small`.

tiny: a few CPU minutes (600 steps; `--config.steps=1500` for the figures in docs/results.md).
small: a wider, deeper model trained longer, with search episodes, for an accelerator (over 1.2 s a step
  on 2 CPU cores).
"""
import ml_collections

_SIZES = {  # embed, layers, heads, kv_heads, steps, batch, share of search episodes
    "tiny": (64, 2, 4, 2, 600, 32, 0.0),
    "small": (128, 4, 4, 2, 3000, 64, 0.3),
}


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in _SIZES:
        raise ValueError(f"unknown reasoner config {arg!r}; choose one of {sorted(_SIZES)}")
    embed, layers, heads, kv_heads, steps, batch, search_share = _SIZES[arg]
    c = ml_collections.ConfigDict()
    c.name = arg
    c.seed = 0
    c.model = ml_collections.ConfigDict(dict(embed=embed, layers=layers, heads=heads, kv_heads=kv_heads,
                                             head_dim=embed // heads, mlp=4 * embed))
    c.steps, c.batch_size, c.lr = steps, batch, 3e-3
    # Search episodes (search, open, read) need the reasoner to copy names it never saw, which the copying
    # pointer lets even the tiny model do, in 2,000 steps (over an hour on 2 CPU cores; docs/results.md), so
    # the tiny config leaves them out to stay a few minutes (`--config.search_share=0.3` turns them on).
    c.search_share = search_share
    c.copy = True  # the copying pointer (`learned.ReasonerModel`): copies a name from the question or a passage
    c.eval_episodes = 200  # held-out questions (a different seed), scored by tool-call exact match and answer
    return c
