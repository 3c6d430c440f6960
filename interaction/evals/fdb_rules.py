"""Full-Duplex-Bench's scoring rules (v1 and v1.5), as the benchmark's evaluation scripts apply them.

Every rule reads what the model actually emitted: word timestamps from a speech recognizer run on its
output waveform, and voice-activity segments of the input and output waveforms. Times are seconds from
the start of the sample.

v1:
- take-over (`takes_over`): the output takes the turn unless it lasts under 1 s (first word start to
  last word end) and has at most 3 words; no words is no take-over.
- pause handling: the take-over rate over the whole output (lower is better).
- smooth turn-taking: take-over, and latency = first word start - end of the user's turn, clamped at 0,
  averaged over samples that take over.
- user interruption: the same on the words that start after the interruption ends.
- backchannel: per VAD segment of the output, one over 3 s, or of 1 s or more, or with more than 2 words
  takes over. Segments of at most 3 s are counted as backchannels: their frequency is per second of
  output, and their timing is compared with a reference distribution over 200 ms bins by the
  Jensen-Shannon distance (1.0 when the model never backchannels).
v1.5:
- VAD segments merged across gaps of 0.6 s (user) and 0.5 s (model); stop latency = length of each
  overlap of a user segment and a model segment; response latency = from each user segment's end to the
  first model segment starting after it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon

from interaction.data.conversation import Word

Segment = tuple[float, float]

TURN_SECONDS = 1.0  # shorter output ...
TURN_WORDS = 3  # ... with at most this many words does not take the turn
BACKCHANNEL_MAX_SECONDS = 3.0
BACKCHANNEL_SHORT_WORDS = 2  # under 1 s, more words than this is a take-over
BIN_SECONDS = 0.2
USER_MERGE_GAP = 0.6
MODEL_MERGE_GAP = 0.5


def takes_over(words: Sequence[Word]) -> bool:
    if not words:
        return False
    duration = words[-1][1] - words[0][0]
    return duration >= TURN_SECONDS or len(words) > TURN_WORDS


def turn_taking(words: Sequence[Word], user_end: float) -> tuple[bool, float | None]:
    """(take-over, latency): latency from the end of the user's turn to the first word, clamped at 0."""
    taken = takes_over(words)
    return taken, (max(0.0, words[0][0] - user_end) if taken else None)


def interruption(words: Sequence[Word], interrupt_end: float) -> tuple[bool, float | None]:
    """Take-over and latency on the words after the interruption (the benchmark crops the audio there)."""
    return turn_taking([w for w in words if w[0] >= interrupt_end], interrupt_end)


def _words_in(words: Sequence[Word], start: float, end: float) -> int:
    """Words overlapping [start, end]: inside it, or spanning either edge (the benchmark's test)."""
    return sum(1 for a, b, _ in words if (a >= start and b <= end) or a <= end < b or a <= start < b)


def backchannels(segments: Sequence[Segment], words: Sequence[Word]) -> tuple[bool, list[Segment]]:
    """(take-over, backchannel segments) of one output, by the v1 backchannel script.

    Segments are read in order until one lasts over 3 s (a take-over; reading stops there). Each segment
    read is a take-over if it lasts 1 s or more or holds more than 2 words; the sample takes over if the
    last segment read does. As in the published script, every segment read of at most 3 s counts towards
    the backchannel frequency and timing.
    """
    taken, found = False, []
    for start, end in segments:
        if end - start > BACKCHANNEL_MAX_SECONDS:
            return True, found
        taken = end - start >= TURN_SECONDS or _words_in(words, start, end) > BACKCHANNEL_SHORT_WORDS
        found.append((start, end))
    return taken, found


def timing_distribution(segments: Sequence[Segment], duration: float) -> np.ndarray:
    """Occupancy of 200 ms bins by the segments, normalised (+1e-10 so it is never all zero)."""
    bins = np.zeros(int(duration / BIN_SECONDS) + 1)
    for start, end in segments:
        bins[int(start / BIN_SECONDS): min(int(end / BIN_SECONDS), len(bins) - 1) + 1] += 1
    bins += 1e-10
    return bins / bins.sum()


def timing_distance(predicted: Sequence[Segment], reference: Sequence[Segment], duration: float) -> float:
    """Jensen-Shannon distance (natural log) between predicted and reference backchannel timing; 1.0 if none."""
    if not predicted:
        return 1.0
    return float(jensenshannon(timing_distribution(predicted, duration), timing_distribution(reference, duration)))


def merge(segments: Sequence[Segment], gap: float) -> list[Segment]:
    """Sorted segments with those separated by at most `gap` seconds joined."""
    out: list[list[float]] = []
    for start, end in sorted(segments):
        if out and start - out[-1][1] <= gap:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def overlaps(user: Sequence[Segment], model: Sequence[Segment]) -> list[Segment]:
    """Every overlap of a user segment and a model segment (after merging): the stop-latency intervals."""
    user, model = merge(user, USER_MERGE_GAP), merge(model, MODEL_MERGE_GAP)
    out, i, j = [], 0, 0
    while i < len(user) and j < len(model):
        (us, ue), (ms, me) = user[i], model[j]
        if min(ue, me) > max(us, ms):
            out.append((max(us, ms), min(ue, me)))
        if ue < me:
            i += 1
        else:
            j += 1
    return out


def response_gaps(user: Sequence[Segment], model: Sequence[Segment]) -> list[Segment]:
    """(user segment end, next model start) for each user segment that the model answers after (merged);
    of several user segments answered by the same model start, the latest (the shortest gap) is kept."""
    user, model = merge(user, USER_MERGE_GAP), merge(model, MODEL_MERGE_GAP)
    by_start: dict[float, Segment] = {}
    for _, ue in user:
        start = next((ms for ms, _ in model if ms > ue), None)
        if start is not None:
            by_start[start] = (ue, start)
    return sorted(by_start.values())
