"""The sandboxed tools: exact answers, refusals with ToolError, and a registry that never raises."""
import datetime
import random
import re

import pytest

from interaction.tools import calculator, clock, knowledge, registry, units
from interaction.tools.errors import ToolError

NOW = datetime.datetime(2026, 11, 21, 15, 7, 42)  # a Saturday


@pytest.mark.parametrize("expression, expected", [
    ("2+3*4", "14"),
    ("(2+3)*4", "20"),
    ("10-4-3", "3"),  # left-associative
    ("2^3^2", "512"),  # right-associative
    ("-(3)^2", "-9"),  # unary minus binds looser than ^
    ("-3^2", "-9"),
    ("(-3)^2", "9"),
    ("2^-1", "0.5"),
    ("(1+2)/3", "1"),
    ("7%3", "1"),
    ("-7%3", "2"),  # sign of the divisor
    ("1/3", "0.333333"),
    ("2/3", "0.666667"),
    ("5/2", "2.5"),
    ("0.1+0.2", "0.3"),  # exact, not 0.30000000000000004
    ("17*23", "391"),
    ("17 x 23", "391"),
    ("17×23", "391"),
    ("+-+4", "-4"),
    ("sqrt(16)", "4"),
    ("sqrt(2)", "1.41421"),
    ("sqrt(9/4)", "1.5"),
    ("abs(-4.5)", "4.5"),
    ("round(2.5)", "3"),
    ("round(-2.5)", "-3"),
    ("round(3.14159, 2)", "3.14"),
    ("8^(1/3)", "2"),
    ("1234567.891", "1234570"),
    ("2^100", "1267650600228229401496703205376"),
    ("10^99", "1" + "0" * 99),
    ("0.1^100", "1e-100"),
    ("0.000001234567", "0.00000123457"),
    ("  ( ( 1 ) )  ", "1"),
])
def test_calculator_values(expression, expected):
    assert calculator.evaluate(expression) == expected


@pytest.mark.parametrize("expression, message", [
    ("__import__('os')", "unknown name"),
    ("2**10", "'**' is not supported"),
    ("1/0", "division by zero"),
    ("5%0", "modulo by zero"),
    ("0^-1", "division by zero"),
    ("10^100", "more than 100 digits"),
    ("0.1^101", "smaller than 1e-100"),
    ("(1/7)^1000", "smaller than 1e-100"),
    ("2^1001", "exceeds 1000"),
    ("9^9^9", "exceeds 1000"),
    ("(-8)^(1/3)", "non-integer power"),
    ("sqrt(-1)", "negative"),
    ("(" * 51 + "1" + ")" * 51, "nested deeper than 50"),
    ("1" * 201, "longer than 200"),
    ("", "empty"),
    ("2+", "ended early"),
    ("(1+2", "expected ')'"),
    ("2(3)", "unexpected '('"),
    ("1.2.3", "unexpected"),
    ("max(1, 2)", "unknown name 'max'"),
    ("round(1, 2, 3)", "takes 1 or 2"),
    ("1,000", "unexpected ','"),
    ("import os", "unknown name"),
])
def test_calculator_refusals(expression, message):
    with pytest.raises(ToolError, match=re.escape(message)):
        calculator.evaluate(expression)


def test_calculator_depth_limit_is_exact():
    assert calculator.evaluate("(" * 50 + "7" + ")" * 50) == "7"


def test_tool_error_is_value_error():
    assert issubclass(ToolError, ValueError)


@pytest.mark.parametrize("source, target, value, expected", [
    ("mile", "km", 1, 1.609344),
    ("km", "miles", 1.609344, 1),
    ("F", "C", 212, 100),
    ("°F", "degrees celsius", 32, 0),
    ("C", "K", 0, 273.15),
    ("kelvin", "fahrenheit", 0, -459.67),
    ("C", "F", -40, -40),
    ("inches", "cm", 1, 2.54),
    ("foot", "m", 1, 0.3048),
    ("yards", "feet", 1, 3),
    ("lb", "kg", 1, 0.45359237),
    ("pounds", "ounces", 1, 16),
    ("g", "mg", 1, 1000),
    ("gallon", "litres", 1, 3.785411784),
    ("gallons", "pints", 1, 8),
    ("cups", "ml", 16, 3785.411784),
    ("weeks", "hours", 1, 168),
    ("day", "min", 1, 1440),
    ("km/h", "m/s", 36, 10),
    ("mph", "km/h", 1, 1.609344),
    ("knots", "km/h", 1, 1.852),
])
def test_unit_conversions(source, target, value, expected):
    assert units.convert(value, source, target) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("query, expected", [
    ("5 miles to km", "8.04672 km"),
    ("100 F in C", "37.7778 °C"),
    ("3.5 kg -> lb", "7.71618 lb"),
    ("212 °F to degrees Celsius", "100 °C"),
    ("5 in in cm", "12.7 cm"),
    ("2 weeks in days", "14 days"),
    ("Convert 12 inches to feet?", "1 ft"),
    ("100 kilometres per hour in miles per hour", "62.1371 mph"),
])
def test_unit_queries(query, expected):
    assert units.parse_and_convert(query) == expected


@pytest.mark.parametrize("query, message", [
    ("5 km to kg", "cannot convert length"),
    ("3 litres to seconds", "cannot convert volume"),
    ("5 furlongs to m", "unknown unit 'furlongs'"),
    ("5 ms to s", "unknown unit 'ms'"),
    ("-300 C to K", "absolute zero"),
    ("how far is it", "expected '<number> <unit> to <unit>'"),
])
def test_unit_refusals(query, message):
    with pytest.raises(ToolError, match=message):
        units.parse_and_convert(query)


def test_knowledge_base_has_enough_distinct_facts():
    assert len(knowledge.FACTS) >= 80
    assert len({(fact.subject, fact.relation) for fact in knowledge.FACTS}) == len(knowledge.FACTS)


@pytest.mark.parametrize("fact", knowledge.FACTS, ids=lambda fact: f"{fact.relation}:{fact.subject}")
def test_every_question_answers_its_fact(fact):
    assert fact.question.endswith("?")
    assert knowledge.KNOWLEDGE_BASE.lookup(fact.question) == fact.value


@pytest.mark.parametrize("query, expected", [
    ("capital of Peru", "Lima"),
    ("Peru capital", "Lima"),
    ("What is the capital of Peru?", "Lima"),
    ("CAPITAL  of  peru!!", "Lima"),
    ("capital city of Japan", "Tokyo"),
    ("capital of the USA", "Washington, D.C."),
    ("chemical symbol of gold", "Au"),
    ("gold symbol", "Au"),
    ("symbol for aluminum", "Al"),
    ("who wrote 1984", "George Orwell"),
    ("author of great gatsby", "F. Scott Fitzgerald"),
    ("Les Miserables author", "Victor Hugo"),
    ("When did the Titanic sink?", "1912"),
    ("moon landing year", "1969"),
    ("when did ww2 end", "1945"),
    ("When did the First World War start?", "1914"),
    ("how many bones in the human body", "206"),
    ("speed of light", "299,792,458 m/s"),
    ("highest mountain in the world", "Mount Everest"),
    ("tallest mountain in South America", "Aconcagua"),
    ("At what temperature does water boil?", "100 °C"),
])
def test_knowledge_phrasings(query, expected):
    assert knowledge.KNOWLEDGE_BASE.lookup(query) == expected


@pytest.mark.parametrize("query, message", [
    ("population of Peru", "no entry for"),
    ("capital of Atlantis", "no entry for"),
    ("Peru", "no entry for"),
    ("when did World War II start", "no entry for"),
    ("capital of Peru and France", "ambiguous"),
])
def test_knowledge_refusals(query, message):
    with pytest.raises(ToolError, match=message):
        knowledge.KNOWLEDGE_BASE.lookup(query)


@pytest.mark.parametrize("query, expected", [
    ("time", "15:07"),
    ("What time is it?", "15:07"),
    ("date", "Saturday, 21 November 2026"),
    ("what is today's date", "Saturday, 21 November 2026"),
    ("weekday", "Saturday"),
    ("what day is it", "Saturday"),
    ("in 20 minutes", "15:27"),
    ("what time will it be in 2 hours", "17:07"),
    ("in half an hour", "15:37"),
    ("in 10 hours", "01:07 on Sunday, 22 November 2026"),
    ("days until 2026-12-25", "34 days"),
    ("days until 2026-11-22", "1 day"),
    ("days until 2026-11-21", "0 days (it is today)"),
    ("days until 2026-01-01", "2026-01-01 was 324 days ago"),
    ("days until 2028-11-21", "731 days"),  # 2028 is a leap year
])
def test_clock(query, expected):
    assert clock.answer(query, NOW) == expected


@pytest.mark.parametrize("query, message", [
    ("days until 2027-02-30", "not a date"),
    ("time in Tokyo", "cannot answer"),
    ("in 100000 hours", "ten years"),
    ("what is the meaning of life", "unknown clock query"),
])
def test_clock_refusals(query, message):
    with pytest.raises(ToolError, match=message):
        clock.answer(query, NOW)


def test_clock_does_not_read_the_system_clock():
    assert clock.answer("date", datetime.datetime(1969, 7, 20, 20, 17)) == "Sunday, 20 July 1969"


def test_run_tool_dispatches():
    assert registry.run_tool("calculator", "17*23") == registry.ToolResult(True, "391")
    assert registry.run_tool("units", "5 miles to km") == registry.ToolResult(True, "8.04672 km")
    assert registry.run_tool("knowledge", "capital of Peru") == registry.ToolResult(True, "Lima")
    assert registry.run_tool("clock", "time", now=NOW) == registry.ToolResult(True, "15:07")


@pytest.mark.parametrize("name, argument, now, message", [
    ("calculator", "1/0", None, "error: division by zero"),
    ("browse", "cats", None, "error: unknown tool 'browse'"),
    ("clock", "time", None, "error: the clock needs the current time"),
    ("calculator", "1+" * 101, None, "error: argument longer than 200"),
    ("units", 5, None, "error: argument must be text"),
    ("clock", "in 1 day", datetime.datetime(9999, 12, 31, 12), "error: that time is past"),
])
def test_run_tool_errors(name, argument, now, message):
    result = registry.run_tool(name, argument, now=now)
    assert not result.ok
    assert result.text.startswith(message)


_ALPHABET = "0123456789+-*/^%().,x× abcdefghijklmnopqrstuvwxyzKCF°?-_'\"\\\n\t→é中"
_PIECES = ["sqrt(", "round(", "abs(", "^", "99", "9^9", "to", " in ", "km", "days until ", "in ",
           "capital of ", "2026-", "hours", "__import__", "(((", ")))"]
_SEEDS = {
    "calculator": ["2+3*4", "sqrt(2)^2", "round(1/3, 4)", "-(7%3)^2", "10^99/7"],
    "units": ["5 miles to km", "100 F in C", "3.5 kg -> lb", "0 K in F", "60 mph to knots"],
    "knowledge": ["capital of Peru", "Who wrote Hamlet?", "symbol for gold", "when did ww2 end"],
    "clock": ["time", "date", "in 20 minutes", "days until 2026-12-25", "in 3 days"],
    "search": ["capital of Peru", "Kogin Bridge designer", "lighthouse first lit", "river kilometres long"],
    "open": ["kb-peru", "kb-france", "g-kogin-bridge", "kb-gold"],
}


def _garbage(rng: random.Random, name: str) -> str:
    """Either random text or a valid call's argument with a few characters inserted, dropped or changed."""
    if rng.random() < 0.5:
        length = rng.randint(0, 60)
        return "".join(rng.choice(_PIECES) if rng.random() < 0.3 else rng.choice(_ALPHABET) for _ in range(length))
    text = list(rng.choice(_SEEDS[name]))
    for _ in range(rng.randint(0, 4)):
        where = rng.randint(0, len(text))
        action = rng.choice(("insert", "drop", "change"))
        if action == "insert" or where == len(text):
            text.insert(where, rng.choice(_ALPHABET))
        elif action == "drop":
            del text[where]
        else:
            text[where] = rng.choice(_ALPHABET)
    return "".join(text)


@pytest.mark.parametrize("name", registry.TOOL_NAMES)
def test_run_tool_never_raises(name):
    rng = random.Random(sum(map(ord, name)))
    outcomes = set()
    for _ in range(200):
        result = registry.run_tool(name, _garbage(rng, name), now=NOW)
        assert isinstance(result, registry.ToolResult)
        assert isinstance(result.text, str) and result.text
        assert result.ok or result.text.startswith("error: ")
        outcomes.add(result.ok)
    assert outcomes == {True, False}  # the fuzz reaches both answers and refusals


@pytest.mark.parametrize("name, argument", [
    ("calculator", "sqrt(16) + (2*3)"),
    ("units", "5 miles to km"),
    ("knowledge", "What is the capital of Peru?"),
    ("clock", ""),
    ("clock", " padded )( "),
])
def test_call_round_trip(name, argument):
    text = registry.format_call(name, argument)
    assert text == f"{name}({argument})"
    assert registry.parse_call(text) == (name, argument)


def test_call_round_trip_random():
    rng = random.Random(0)
    for _ in range(200):
        name = rng.choice(registry.TOOL_NAMES)
        argument = _garbage(rng, name)
        assert registry.parse_call(registry.format_call(name, argument)) == (name, argument)


@pytest.mark.parametrize("text", ["calculator", "calculator(1+1", "(1+1)", "2calc(1)", "calc (1)", ""])
def test_parse_call_refuses_malformed(text):
    with pytest.raises(ToolError):
        registry.parse_call(text)


def test_format_call_refuses_bad_names():
    with pytest.raises(ToolError):
        registry.format_call("not a name", "1")
