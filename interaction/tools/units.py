"""Unit conversion across length, mass, temperature, volume, time and speed.

Each unit maps to its dimension's base unit as `base = value * scale + offset` (the offset is non-zero
only for the affine temperature scales). Factors are exact fractions of the legal definitions
(1 mile = 1609.344 m, 1 lb = 0.45359237 kg, 1 US gallon = 3.785411784 L), so conversions are exact
up to the final float.
"""
from __future__ import annotations

import dataclasses
import math
import re
from fractions import Fraction

from interaction.tools.calculator import MAX_LENGTH, format_number
from interaction.tools.errors import ToolError


@dataclasses.dataclass(frozen=True)
class Unit:
    """`value` in this unit is `value * scale + offset` in its dimension's base unit."""

    symbol: str  # how results are written
    dimension: str
    scale: Fraction
    offset: Fraction = Fraction(0)
    plural: str = ""  # for word symbols ("cup" -> "cups"); empty when the symbol has no plural


def _units() -> dict[str, tuple[Unit, tuple[str, ...]]]:
    """symbol -> (unit, other names). Plurals of names longer than 3 letters are found by `find_unit`."""
    f = Fraction
    mile, pound, gallon = f("1609.344"), f("0.45359237"), f("3.785411784")
    return {
        "m": (Unit("m", "length", f(1)), ("meter", "metre")),
        "km": (Unit("km", "length", f(1000)), ("kilometer", "kilometre", "kms")),
        "cm": (Unit("cm", "length", f(1, 100)), ("centimeter", "centimetre")),
        "mm": (Unit("mm", "length", f(1, 1000)), ("millimeter", "millimetre")),
        "mi": (Unit("mi", "length", mile), ("mile",)),
        "yd": (Unit("yd", "length", f("0.9144")), ("yard", "yds")),
        "ft": (Unit("ft", "length", f("0.3048")), ("foot", "feet")),
        "in": (Unit("in", "length", f("0.0254")), ("inch",)),
        "kg": (Unit("kg", "mass", f(1)), ("kilogram", "kilogramme", "kilo", "kgs")),
        "g": (Unit("g", "mass", f(1, 1000)), ("gram", "gramme", "gr")),
        "mg": (Unit("mg", "mass", f(1, 10**6)), ("milligram", "milligramme")),
        "lb": (Unit("lb", "mass", pound), ("pound", "lbs")),
        "oz": (Unit("oz", "mass", pound / 16), ("ounce",)),
        "°C": (Unit("°C", "temperature", f(1), f("273.15")), ("celsius", "centigrade")),
        "°F": (Unit("°F", "temperature", f(5, 9), f("273.15") - f(32 * 5, 9)), ("fahrenheit",)),
        "K": (Unit("K", "temperature", f(1)), ("kelvin",)),
        "L": (Unit("L", "volume", f(1)), ("liter", "litre")),
        "mL": (Unit("mL", "volume", f(1, 1000)), ("milliliter", "millilitre")),
        "gal": (Unit("gal", "volume", gallon), ("gallon", "us gallon")),
        "cup": (Unit("cup", "volume", gallon / 16, plural="cups"), ()),
        "pt": (Unit("pt", "volume", gallon / 8), ("pint", "pts")),
        "s": (Unit("s", "time", f(1)), ("sec", "second", "secs")),
        "min": (Unit("min", "time", f(60)), ("minute", "mins")),
        "h": (Unit("h", "time", f(3600)), ("hr", "hour", "hrs")),
        "day": (Unit("day", "time", f(86400), plural="days"), ("d",)),
        "week": (Unit("week", "time", f(7 * 86400), plural="weeks"), ("wk", "wks")),
        "m/s": (Unit("m/s", "speed", f(1)), ("meters per second", "metres per second", "meter per second", "mps")),
        "km/h": (Unit("km/h", "speed", f(1000, 3600)),
                 ("kph", "kmh", "kmph", "kilometers per hour", "kilometres per hour", "kilometer per hour")),
        "mph": (Unit("mph", "speed", mile / 3600), ("miles per hour", "mile per hour", "mi/h")),
        "kn": (Unit("kn", "speed", f(1852, 3600)), ("knot", "kt", "kts")),
    }


def _key(name: str) -> str:
    key = " ".join(name.lower().replace("°", " ").replace("º", " ").split())
    return re.sub(r"^(?:degrees?|deg) ", "", key)


_UNITS = {_key(name): unit for symbol, (unit, names) in _units().items() for name in (symbol, *names)}

_QUERY = re.compile(
    r"^(?:convert\s+)?([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(.+?)"
    r"(?:\s*(?:->|→|=>)\s*|\s+(?:to|in|into|as)\s+)(.+)$",
    re.IGNORECASE,
)


def find_unit(name: str) -> Unit:
    """The unit called `name`: symbol, name or plural, any case, with or without 'degrees' or '°'."""
    key = _key(name)
    candidates = [key]
    if len(key) > 3:  # so that "ms" is not read as metres
        candidates += [key.removesuffix("s"), key.removesuffix("es")]
    for candidate in candidates:
        if candidate in _UNITS:
            return _UNITS[candidate]
    raise ToolError(f"unknown unit {name.strip()!r}")


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """`value` in `from_unit` expressed in `to_unit`; raises ToolError across dimensions."""
    source, target = find_unit(from_unit), find_unit(to_unit)
    if source.dimension != target.dimension:
        raise ToolError(
            f"cannot convert {source.dimension} ({from_unit.strip()}) to {target.dimension} ({to_unit.strip()})")
    if not math.isfinite(value):
        raise ToolError(f"not a finite number: {value}")
    base = Fraction(value) * source.scale + source.offset
    if source.dimension == "temperature" and base < 0:
        raise ToolError("temperature below absolute zero")
    return float((base - target.offset) / target.scale)


def parse_and_convert(query: str) -> str:
    """Answers '5 miles to km', '100 F in C', '3.5 kg -> lb' with e.g. '8.04672 km'."""
    query = query.strip().rstrip("?.! ")
    if len(query) > MAX_LENGTH:
        raise ToolError(f"query longer than {MAX_LENGTH} characters")
    match = _QUERY.match(query)
    if match is None:
        raise ToolError(f"expected '<number> <unit> to <unit>', got {query!r}")
    number, source, target = match.groups()
    result = convert(float(number), source, target)
    text = format_number(result)
    written = find_unit(target)
    return f"{text} {written.plural if written.plural and text != '1' else written.symbol}"
