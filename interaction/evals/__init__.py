"""The duplex benchmark: Full-Duplex-Bench's rules and ours, scored on the model's output waveform."""
