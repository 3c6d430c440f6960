"""Training: optimizer, sharded train state and steps, held-out evaluation, checkpoints, reporting."""
