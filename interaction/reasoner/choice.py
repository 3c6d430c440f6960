"""A reasoner named on a command line: 'learned', 'module:function', or none."""
from __future__ import annotations

import importlib

from interaction.reasoner import learned
from interaction.reasoner.base import CallableReasoner, Reasoner


def from_choice(choice: str, reasoner_dir: str, *, none: str = "corpus") -> Reasoner | None:
    """`none` (the caller's word for no live reasoner) -> None; 'learned' -> the reasoner trained under
    `reasoner_dir`; 'module:function' -> that callable fn(Request) -> answer text. ValueError, with the
    fix, when it cannot be had."""
    if choice == none:
        return None
    if choice == "learned":
        try:
            return learned.load(reasoner_dir)
        except FileNotFoundError as err:
            raise ValueError(str(err)) from None
    module, _, name = choice.partition(":")
    if not name:
        raise ValueError(f"reasoner {choice!r}: give {none!r}, 'learned' or 'module:function'.")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"reasoner {choice!r}: cannot load it ({err}).") from None
    if not callable(fn):
        raise ValueError(f"reasoner {choice!r} is not callable.")
    return CallableReasoner(fn)
