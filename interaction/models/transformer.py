"""Pre-norm transformer blocks: RMSNorm, causal attention, and a dense SwiGLU or MoE feed-forward.

Layers attend over the whole context (global) or, with `local_window`, only over the keys less than
that many positions behind the query (local: a sliding window, as Gemma's and Mistral's layers do),
with every `global_every`-th layer global. A local layer's streaming cache holds its window only, so
its memory and the traffic of every streaming pass no longer grow with the context.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from interaction.models.attention import Attention
from interaction.sharding import constrain
from interaction.models.cache import KVCache
from interaction.models.layers import RMSNorm, SwiGLU
from interaction.models.moe import MoE

ACTIVATIONS = ("activation_batch", "activation_time", "activation_embed")  # the residual stream's axes


@dataclasses.dataclass(frozen=True)
class MoESpec:
    num_experts: int
    top_k: int
    every: int = 1  # layer i is MoE when (i + 1) % every == 0; the others are dense
    shared_expert: bool = False
    capacity_factor: float = 1.25
    capacity_groups: str = "batch"  # the capacity path's groups: a whole batch, or each "row" (window, session)
    dispatch: str = "dropless"  # "dropless" or "capacity" (fixed slots per expert, drops the rest)
    impl: str = "auto"  # how "dropless" computes: "auto", "grouped", "switched" or "dense" (`moe.py`)

# Dispatch names of runs saved before `dispatch` and `impl` were separate, as (dispatch, impl).
_OLD_DISPATCH = {"ragged": ("dropless", "auto"), "dense": ("dropless", "dense")}


def moe_spec(fields: dict) -> MoESpec:
    """A MoESpec from a config's or a saved run's fields (older runs' dispatch names read as today's)."""
    fields = dict(fields)
    if fields.get("dispatch") in _OLD_DISPATCH and "impl" not in fields:
        fields["dispatch"], fields["impl"] = _OLD_DISPATCH[fields["dispatch"]]
    return MoESpec(**fields)


@dataclasses.dataclass(frozen=True)
class DecoderSpec:
    embed: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    mlp: int
    moe: MoESpec | None = None
    rope_base: float = 10_000.0
    deterministic: bool = False  # batch-invariant arithmetic (`invariant.py`); MoE layers need impl "dense"
    remat: bool = False  # training keeps only each block's input and recomputes the block in the backward pass
    scan_layers: bool = False  # one stacked block (parameters with a leading `layers` axis) run by a scan: compile
    #                           time and, with remat, activation memory independent of depth; all layers alike
    local_window: int | None = None  # local layers see keys less than this many positions behind (None: all global)
    global_every: int | None = None  # with local_window: layer i is global when (i + 1) % global_every == 0 (None:
    #                                  every layer local)

    def __post_init__(self):
        if self.local_window is not None and self.local_window < 1:
            raise ValueError(f"local_window={self.local_window} must be at least 1 (or None: every layer global).")
        if self.global_every is not None and (self.local_window is None or self.global_every < 2):
            raise ValueError(f"global_every={self.global_every} needs a local_window and a value of at least 2 "
                             "(1 would make every layer global: leave local_window unset).")
        if self.scan_layers and len({self.window(i) for i in range(self.layers)}) > 1:
            raise ValueError("scan_layers=True needs every layer alike: global_every mixes local and global layers "
                             "(unset it to make every layer local, or unset scan_layers).")
        if self.deterministic and self.moe is not None and (self.moe.dispatch, self.moe.impl) != ("dropless", "dense"):
            raise ValueError(f"deterministic=True needs moe.dispatch='dropless', moe.impl='dense' (got "
                             f"{self.moe.dispatch!r}, {self.moe.impl!r}): the other "
                             "dispatches group a token with whichever tokens share its experts.")

        if self.scan_layers and self.moe is not None and self.moe.every != 1:
            raise ValueError(f"scan_layers=True needs every layer alike: moe.every=1 or no MoE (got every="
                             f"{self.moe.every}, which alternates dense and MoE layers).")

    def is_moe(self, layer: int) -> bool:
        return self.moe is not None and (layer + 1) % self.moe.every == 0

    def window(self, layer: int) -> int | None:
        """How many positions back layer `layer` sees (its own included), or None: the whole context."""
        if self.local_window is None or (self.global_every and (layer + 1) % self.global_every == 0):
            return None
        return self.local_window


class Block(nnx.Module):
    def __init__(self, spec: DecoderSpec, layer: int, *, rngs: nnx.Rngs, dtype=jnp.float32, key_chunk: int = 1):
        det = spec.deterministic
        self.attn_norm = RMSNorm(spec.embed, rngs, dtype, deterministic=det)
        self.attn = Attention(spec.embed, spec.heads, spec.kv_heads, spec.head_dim, rope_base=spec.rope_base,
                              rngs=rngs, dtype=dtype, deterministic=det, key_chunk=key_chunk)
        self.ffn_norm = RMSNorm(spec.embed, rngs, dtype, deterministic=det)
        self.window = spec.window(layer)
        if spec.is_moe(layer):
            m = spec.moe
            self.ffn = MoE(spec.embed, spec.mlp, m.num_experts, m.top_k, shared_expert=m.shared_expert,
                           capacity_factor=m.capacity_factor, capacity_groups=m.capacity_groups, dispatch=m.dispatch,
                           impl=m.impl,
                           dtype=dtype, rngs=rngs, deterministic=det)
        else:
            self.ffn = SwiGLU(spec.embed, spec.mlp, rngs=rngs, dtype=dtype, deterministic=det)

    def feed_forward(self, x) -> tuple[jax.Array, dict]:
        out = self.ffn(self.ffn_norm(x))
        return out if isinstance(out, tuple) else (out, {})

    def attend(self, x, positions) -> jax.Array:
        """The residual stream after this block's attention."""
        return x + self.attn(self.attn_norm(x), positions, window=self.window)

    def __call__(self, x, positions) -> tuple[jax.Array, dict]:
        x = self.attend(x, positions)
        y, aux = self.feed_forward(x)
        return x + y, aux

    def step(self, x, positions, cache: KVCache, block: KVCache) -> tuple[jax.Array, KVCache]:
        """The same block over new tokens x (B, S, embed) of the current micro-turn: their keys go to
        `block` (the turn's own), and they attend over the session's `cache` (read only) and the block.
        The cache's capacity is the window (a local layer's cache holds just its `window`)."""
        h = self.attn_norm(x)
        block = block.write(*self.attn.project_kv(h, positions), positions)
        x = x + self.attn.query(h, positions, (cache, block), window=cache.capacity)
        y, _ = self.feed_forward(x)
        return x + y, block


class _Stack(nnx.Module):
    """What both decoders share: the final norm, the streaming caches' interface, auxiliaries averaged over
    the MoE layers. A decoder owns its caches: `init_cache` makes them, `step` reads them, `write_cache`
    writes a micro-turn's keys into them."""

    def _setup(self, spec: DecoderSpec, rngs: nnx.Rngs, dtype):
        self.final_norm = RMSNorm(spec.embed, rngs, dtype, deterministic=spec.deterministic)
        self.spec, self.remat, self.layers = spec, spec.remat, spec.layers

    def _cache(self, layer: int, batch: int, capacity: int, dtype, windowed: bool) -> KVCache:
        window = self.spec.window(layer) if windowed else None
        return KVCache.create(batch, capacity if window is None else min(capacity, window), self.spec.kv_heads,
                              self.spec.head_dim, dtype)


class Decoder(_Stack):
    """The block stack as a loop over its layers: one cache per layer, each sized by the layer's window."""

    def __init__(self, spec: DecoderSpec, *, rngs: nnx.Rngs, dtype=jnp.float32, key_chunk: int = 1):
        """key_chunk: keys per split of the deterministic attention (`attend_invariant`): the model's
        micro-turn length, so that splits align with absolute positions in caches and windows alike."""
        self.blocks = nnx.List([Block(spec, i, rngs=rngs, dtype=dtype, key_chunk=key_chunk)
                                for i in range(spec.layers)])
        self._setup(spec, rngs, dtype)

    def counted_blocks(self) -> list[tuple[Block, int]]:
        """(block, layers it stands for): every block once. For counting parameters and FLOPs."""
        return [(b, 1) for b in self.blocks]

    def init_cache(self, batch: int, capacity: int, dtype=jnp.float32, *, windowed: bool = False) -> tuple:
        """Empty caches of `capacity` slots, one per layer; `windowed`: a local layer's holds only its window
        (a session's caches, not a micro-turn's block of keys)."""
        return tuple(self._cache(layer, batch, capacity, dtype, windowed) for layer in range(self.layers))

    def write_cache(self, caches: tuple, blocks: tuple) -> tuple:
        """Each layer's cache with its micro-turn block of keys written in."""
        return tuple(c.write(b.k, b.v, b.pos) for c, b in zip(caches, blocks))

    def step(self, x, positions, caches: tuple[KVCache, ...], blocks: tuple[KVCache, ...]
             ) -> tuple[jax.Array, tuple[KVCache, ...]]:
        """Streaming pass over new tokens: per layer, the session's cache (read only) and the micro-turn's
        block of keys (returned with the new tokens' keys added)."""
        new = []
        for layer, cache, block in zip(self.blocks, caches, blocks):
            x, block = layer.step(x, positions, cache, block)
            new.append(block)
        return self.final_norm(x), tuple(new)

    def __call__(self, x, positions) -> tuple[jax.Array, dict]:
        def run(block, x):
            return block(constrain(x, ACTIVATIONS), positions)

        if self.remat:
            run = nnx.remat(run)
        auxes = []
        for block in self.blocks:
            x, aux = run(block, x)
            if aux:
                auxes.append(aux)
        merged = jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs), axis=0), *auxes) if auxes else {}
        return self.final_norm(x), merged


class ScannedDecoder(_Stack):
    """The block stack as one `Block` whose parameters carry a leading `layers` axis, run by a `lax.scan`
    (one layer's program, whatever the depth); its streaming cache is one KV cache with a leading layers
    axis. Every layer must be alike (`DecoderSpec` checks it)."""

    def __init__(self, spec: DecoderSpec, *, rngs: nnx.Rngs, dtype=jnp.float32, key_chunk: int = 1):
        @nnx.split_rngs(splits=spec.layers)
        @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
        def stacked(rngs):
            return Block(spec, 0, rngs=rngs, dtype=dtype, key_chunk=key_chunk)

        self.stack = stacked(rngs)
        self._setup(spec, rngs, dtype)

    def counted_blocks(self) -> list[tuple[Block, int]]:
        """The stacked block (whose parameters hold every layer) standing for all of them."""
        return [(self.stack, self.layers)]

    def init_cache(self, batch: int, capacity: int, dtype=jnp.float32, *, windowed: bool = False) -> tuple:
        """One cache stacked over the layers (a 1-tuple, as `Decoder.init_cache` is a tuple per layer)."""
        one = self._cache(0, batch, capacity, dtype, windowed)
        return (jax.tree.map(lambda a: jnp.broadcast_to(a, (self.layers, *a.shape)), one),)

    def write_cache(self, caches: tuple, blocks: tuple) -> tuple:
        return (jax.vmap(lambda c, b: c.write(b.k, b.v, b.pos))(caches[0], blocks[0]),)

    def step(self, x, positions, caches: tuple[KVCache], blocks: tuple[KVCache]) -> tuple[jax.Array, tuple[KVCache]]:
        x, block = self._scan(lambda layer, x, cache, block: layer.step(x, positions, cache, block),
                              x, caches[0], blocks[0])
        return self.final_norm(x), (block,)

    def _scan(self, body, x, *per_layer, remat: bool = False):
        """body(layer, x, *its slices of per_layer) -> (x, out) over the stacked layers, as a plain `lax.scan`
        (so the step may itself run inside other JAX loops) -> (x, outs stacked over layers)."""
        graphdef, state = nnx.split(self.stack)

        def one(x, xs):
            return body(nnx.merge(graphdef, xs[0]), x, *xs[1:])

        return jax.lax.scan(jax.checkpoint(one) if remat else one, x, (state, *per_layer))

    def __call__(self, x, positions) -> tuple[jax.Array, dict]:
        def run(block, x):
            return block(constrain(x, ACTIVATIONS), positions)

        x, auxes = self._scan(run, x, remat=self.remat)
        return self.final_norm(x), jax.tree.map(lambda a: a.mean(axis=0), auxes)


def make_decoder(spec: DecoderSpec, *, rngs: nnx.Rngs, dtype=jnp.float32, key_chunk: int = 1
                 ) -> Decoder | ScannedDecoder:
    """The decoder `spec.scan_layers` asks for; both have the same interface."""
    cls = ScannedDecoder if spec.scan_layers else Decoder
    return cls(spec, rngs=rngs, dtype=dtype, key_chunk=key_chunk)
