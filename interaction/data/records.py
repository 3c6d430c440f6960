"""ArrayRecord storage of serialised conversations (random access by index)."""
from __future__ import annotations

from array_record.python import array_record_module

from interaction.data.conversation import Conversation

# One record per chunk keeps reads random-access; zstd squeezes the flat synthetic video.
WRITER_OPTIONS = "group_size:1,zstd:3"


def writer(path) -> array_record_module.ArrayRecordWriter:
    return array_record_module.ArrayRecordWriter(str(path), WRITER_OPTIONS)


def read(path, indices=None) -> list[Conversation]:
    """Conversations from one ArrayRecord file (all, or those at `indices`)."""
    return list(each(path, indices))


def each(path, indices=None):
    """The conversations of one ArrayRecord file one at a time (a split too large to hold at once), all or
    those at `indices`."""
    reader = array_record_module.ArrayRecordReader(str(path))
    try:
        for i in range(reader.num_records()) if indices is None else indices:
            yield Conversation.from_bytes(reader.read([i])[0])
    finally:
        reader.close()


def first_of_each_kind(convs, per_kind: int) -> list[Conversation]:
    """The first `per_kind` conversations of every kind, in their order (per_kind <= 0: all of them)."""
    if per_kind <= 0:
        return list(convs)
    seen: dict[str, int] = {}
    out = []
    for conv in convs:
        if seen.get(conv.kind, 0) < per_kind:
            seen[conv.kind] = seen.get(conv.kind, 0) + 1
            out.append(conv)
    return out
