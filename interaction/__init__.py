"""A full-duplex multimodal interaction model: listens, watches and speaks in 200 ms micro-turns."""

MICROTURN_SECONDS = 0.2
SAMPLE_RATE = 16000
