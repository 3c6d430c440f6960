"""Text normalisation and word error rate, shared by every metric that compares words.

Recognised speech comes back as lower-case words with numbers spelled out ("five hundred and forty");
the model's text stream and the references are written text ("540."). Both sides go through
`normalize` before they are compared.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))


def spell_integer(n: int) -> str:
    """English words for a non-negative integer, British style ("five hundred and forty"), as espeak says it."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for scale, name in _SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            tail = "" if rest == 0 else (" and " if rest < 100 else " ") + spell_integer(rest)
            return f"{spell_integer(head)} {name}{tail}"
    raise AssertionError(n)


def _spell(match: re.Match) -> str:
    whole, _, frac = match.group(0).partition(".")
    words = spell_integer(int(whole))
    if frac:
        words += " point " + " ".join(_ONES[int(d)] for d in frac)
    return f" {words} "


def normalize(text: str) -> list[str]:
    """Lower-case words, numbers spelled out, punctuation dropped ("It's 3.5." -> it's three point five)."""
    text = re.sub(r"\d+(?:\.\d+)?", _spell, text.lower().replace(",", ""))
    return re.findall(r"[a-z\u00c0-\u024f]+(?:'[a-z]+)?", text)


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Edits over reference words, after `normalize`; an empty reference gives 0 (or 1 if anything was said)."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return float(bool(hyp))
    return edit_distance(ref, hyp) / len(ref)


def recall(reference: str, hypothesis: str) -> float:
    """Share of the reference's words (with repeats) that occur in the hypothesis."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0
    left = list(hyp)
    hits = 0
    for w in ref:
        if w in left:
            left.remove(w)
            hits += 1
    return hits / len(ref)
