"""Model layers: embedders, MoE fusion transformer, flow-matching head.

Layers annotate parameters with *logical* axis names (batch, time, embed, mlp, heads, kv, vocab,
expert, layers); a config's rules map them to mesh axes where a jitted function is built. Flax's eager
variable sharding expects mesh axis names at creation time, so it is switched off here: parameters are
created unsharded and laid out by the rules at the jit boundary.
"""
import flax

flax.config.update("flax_always_shard_variable", False)
