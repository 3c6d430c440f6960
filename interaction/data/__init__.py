"""Synthetic duplex conversations: speech, video, scenarios, storage and the grain pipeline."""
