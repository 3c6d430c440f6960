"""Video frames <-> 40x40 patches (the hMLP stem that embeds a patch is a model layer)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

PATCH = 40


def patchify(frames, patch: int = PATCH):
    """(..., H, W, C) -> (..., (H/p)*(W/p), p, p, C), row-major over the patch grid."""
    *lead, h, w, c = frames.shape
    if h % patch or w % patch:
        raise ValueError(f"frame size {h}x{w} is not a multiple of the {patch}-pixel patch; crop or resize it.")
    xp = jnp if isinstance(frames, jax.Array) else np
    x = frames.reshape(*lead, h // patch, patch, w // patch, patch, c)
    x = xp.moveaxis(x, -4, -3)  # (..., gh, gw, p, p, c)
    return x.reshape(*lead, (h // patch) * (w // patch), patch, patch, c)


def unpatchify(patches, height: int, width: int):
    """Inverse of `patchify` for a frame of `height` x `width` pixels."""
    *lead, n, p, _, c = patches.shape
    gh, gw = height // p, width // p
    if gh * gw != n:
        raise ValueError(f"{n} patches of {p} px do not tile a {height}x{width} frame.")
    xp = jnp if isinstance(patches, jax.Array) else np
    x = xp.moveaxis(patches.reshape(*lead, gh, gw, p, p, c), -3, -4)
    return x.reshape(*lead, height, width, c)
