"""Held-out evaluation against trivial baselines.

`sums` gives additive statistics of one batch; `summarize` turns their total into losses, accuracies
and the baselines they are judged against:

- text: the best *constant* predictor, the label distribution of the held-out windows themselves (its
  cross-entropy is that distribution's entropy), and the accuracy of always predicting PAD; and its words
  alone (`byte_loss`, `byte_accuracy`): which byte, where the reference says one.
- listening heads: the best constant predictor, each head's mean held-out target.
- audio (voiced frames only; a silent micro-turn plays exact silence): the mean frame. For the flow loss
  the baseline is the exact optimal velocity when frames are drawn from a per-channel Gaussian around the
  held-out mean frame (the best a predictor that knows only the mean frame and the spread can do, in
  closed form). In frame space it is the squared error of the mean frame itself, against the model's
  deterministic (temperature 0) sample.
Both baselines are fit on the held-out data, which favours them.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from interaction.codecs import text
from interaction.models.flow_head import flow_loss
from interaction.models.flow_head import sample as flow_sample
from interaction.models.model import InteractionModel, byte_loss, listen_loss


def sums(model: InteractionModel, batch: dict, rng: jax.Array, *, flow_steps: int) -> dict:
    spec = model.spec
    logits, cond, listen, _ = model(batch)
    labels = batch["text_out"]
    trained = batch["trained"].astype(jnp.float32)
    valid = batch["valid"].astype(jnp.float32)
    token_w = jnp.broadcast_to(trained[..., None], labels.shape)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
    nonpad_w = token_w * (labels != text.Special.PAD)
    said = jnp.where(token_w > 0, labels, text.Special.PAD)  # the trained slots' labels
    byte_ce, bytes_n = byte_loss(logits, said)
    byte_correct = (jnp.argmax(logits[..., text.NUM_SPECIAL :], -1) == said - text.NUM_SPECIAL) & (
        said >= text.NUM_SPECIAL)

    target = (batch["model_mel"] - spec.mel_center) / spec.mel_scale
    voiced = trained * (labels[..., 0] == text.Special.VOICED)
    frame_w = jnp.broadcast_to(voiced[..., None], target.shape[:-1])
    loss_rng, sample_rng = jax.random.split(rng)
    frames = frame_w.sum()
    lay = spec.layout
    predicted = lay.audio_frames(flow_sample(model.flow, cond, sample_rng, steps=flow_steps, temperature=0.0))
    return {
        "text_ce": jnp.sum(ce * token_w), "text_tokens": token_w.sum(), "text_correct": jnp.sum(correct * token_w),
        "nonpad_tokens": nonpad_w.sum(), "nonpad_correct": jnp.sum(correct * nonpad_w),
        "byte_ce": byte_ce, "bytes": bytes_n, "byte_correct": byte_correct.sum().astype(jnp.float32),
        "label_counts": jnp.zeros(text.VOCAB_SIZE).at[labels.reshape(-1)].add(token_w.reshape(-1)),
        "flow": flow_loss(model.flow, lay.audio_patches(target), cond, loss_rng,
                          mask=jnp.broadcast_to(voiced[..., None], cond.shape[:-1])) * frames, "frames": frames,
        "frame_se": jnp.sum(jnp.square(predicted - target).mean(-1) * frame_w),
        "mel_sum": jnp.einsum("...c,...->c", target, frame_w),
        "mel_sqsum": jnp.einsum("...c,...->c", jnp.square(target), frame_w),
        "listen_bce": listen_loss(listen, batch["listen"], valid) * valid.sum(), "blocks": valid.sum(),
        "listen_sum": jnp.einsum("...k,...->k", batch["listen"], valid),
    }


def gaussian_flow_loss(variance: np.ndarray, quadrature: int = 4096) -> float:
    """Flow-matching loss of the optimal velocity for x1 ~ N(mu, variance) per channel, x0 ~ N(0, 1).

    With x_t = (1-t) x0 + t x1 and target u = x1 - x0, the best prediction is E[u | x_t], whose error is
    Var(u) - Cov(u, x_t)^2 / Var(x_t), averaged over t ~ U(0, 1) (midpoint rule) and channels.
    """
    var = np.asarray(variance, np.float64)[:, None]
    t = (np.arange(quadrature) + 0.5) / quadrature
    cov = t * var - (1 - t)
    residual = (var + 1) - cov**2 / ((1 - t) ** 2 + t**2 * var)
    return float(residual.mean())


def summarize(total: dict) -> dict:
    """Losses, accuracies, baselines and model/baseline ratios from summed `sums`."""
    t = {k: np.asarray(v, np.float64) for k, v in total.items()}
    if t["text_tokens"] <= 0 or t["frames"] <= 0:
        raise ValueError("the held-out batches hold no valid micro-turns.")
    p = t["label_counts"] / t["text_tokens"]
    mean = t["mel_sum"] / t["frames"]
    variance = np.maximum(t["mel_sqsum"] / t["frames"] - mean**2, 0.0)
    y = np.clip(t["listen_sum"] / max(float(t["blocks"]), 1.0), 1e-7, 1 - 1e-7)
    out = {
        "listen_loss": t["listen_bce"] / max(float(t["blocks"]), 1.0),
        "listen_loss_baseline": float(np.mean(-(y * np.log(y) + (1 - y) * np.log(1 - y)))),
        "text_loss": t["text_ce"] / t["text_tokens"],
        "text_loss_baseline": float(-np.sum(p[p > 0] * np.log(p[p > 0]))),
        "text_accuracy": t["text_correct"] / t["text_tokens"],
        "text_accuracy_always_pad": float(p[text.Special.PAD]),
        "text_accuracy_non_pad": t["nonpad_correct"] / max(float(t["nonpad_tokens"]), 1.0),
        # its words: a byte's cross-entropy and accuracy among the bytes, where the reference says one
        "byte_loss": t["byte_ce"] / max(float(t["bytes"]), 1.0),
        "byte_accuracy": t["byte_correct"] / max(float(t["bytes"]), 1.0),
        "flow_loss": t["flow"] / t["frames"],
        "flow_loss_baseline": gaussian_flow_loss(variance),
        "frame_mse": t["frame_se"] / t["frames"],
        "frame_mse_baseline": float(variance.mean()),
    }
    for name in ("text_loss", "flow_loss", "frame_mse", "listen_loss"):
        out[f"{name}_ratio"] = out[name] / max(out[f"{name}_baseline"], 1e-12)
    return {k: float(v) for k, v in out.items()}
