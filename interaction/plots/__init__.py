"""Every figure the project draws: conversation timelines, the benchmark's frontier and latencies, learning
curves. Each function writes a PNG and draws nothing on screen (the Agg backend)."""
