"""A bounded arithmetic calculator: a hand-written recursive-descent parser over exact fractions.

Grammar (lowest to highest precedence):
    expr   := term (('+' | '-') term)*
    term   := unary (('*' | 'x' | '×' | '/' | '÷' | '%') unary)*
    unary  := ('+' | '-') unary | power
    power  := atom ('^' unary)?            right-associative: 2^3^2 = 2^9
    atom   := number | '(' expr ')' | name '(' expr (',' expr)* ')'

Unary minus binds looser than '^', as in written maths: -3^2 = -(3^2) = -9. '%' is the remainder
with the sign of the divisor (Python's convention): -7 % 3 = 2. '**' is refused; powers use '^'.
Values stay `Fraction`s (exact) except where sqrt or a non-integer power forces a float.
"""
from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Context
from fractions import Fraction

from interaction.tools.errors import ToolError

MAX_LENGTH = 200
MAX_DEPTH = 50
MAX_EXPONENT = 1000
MAX_DIGITS = 100

Number = Fraction | float

_LIMIT = 10**MAX_DIGITS
_EXACT_POWER_BITS = 4000  # above this a power's exact numerator/denominator is not worth computing
_TOKEN = re.compile(r"\s*(?:([0-9]+\.?[0-9]*|\.[0-9]+)|([A-Za-z_]+)|(.))", re.DOTALL)
_SYMBOLS = {"×": "*", "÷": "/", "−": "-"}
_OPERATORS = frozenset("+-*/%^(),")
_FUNCTIONS = {"sqrt": (1, 1), "abs": (1, 1), "round": (1, 2)}  # name -> (min, max) arguments
_SIX_DIGITS = Context(prec=6, rounding=ROUND_HALF_UP)


def evaluate(expression: str) -> str:
    """The value of `expression`, formatted by `format_number`; raises ToolError on any bad input."""
    if len(expression) > MAX_LENGTH:
        raise ToolError(f"expression longer than {MAX_LENGTH} characters")
    tokens = _tokenize(expression)
    if not tokens:
        raise ToolError("empty expression")
    parser = _Parser(tokens)
    value = parser.expr()
    if (token := parser.peek()) is not None:
        raise ToolError(f"unexpected {token[1]!r} at position {token[2]}")
    return format_number(value)


def format_number(value: Number) -> str:
    """Integers as plain digits; anything else rounded to 6 significant digits, trailing zeros dropped."""
    if isinstance(value, Fraction) and value.denominator == 1:
        return str(value.numerator)
    if isinstance(value, Fraction):
        rounded = _SIX_DIGITS.divide(value.numerator, value.denominator)
    else:
        rounded = _SIX_DIGITS.create_decimal_from_float(value)
    if rounded.is_zero():
        return "0"
    rounded = rounded.normalize(_SIX_DIGITS)
    if -7 < rounded.adjusted() < 15:
        return format(rounded, "f")
    return format(rounded, "e")


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, position) triples; kind is 'num', 'name' or 'op'."""
    tokens = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        number, name, symbol = match.groups()
        start = match.start(match.lastindex)
        position = match.end()
        if number is not None:
            tokens.append(("num", number, start))
        elif name == "x":
            tokens.append(("op", "*", start))
        elif name is not None:
            if name not in _FUNCTIONS:
                raise ToolError(f"unknown name {name!r} at position {start}")
            tokens.append(("name", name, start))
        else:
            symbol = _SYMBOLS.get(symbol, symbol)
            if symbol not in _OPERATORS:
                raise ToolError(f"unexpected character {symbol!r} at position {start}")
            tokens.append(("op", symbol, start))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]]):
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def accept(self, *operators: str) -> str | None:
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in operators:
            self.index += 1
            return token[1]
        return None

    def expect(self, operator: str) -> None:
        if self.accept(operator) is None:
            token = self.peek()
            found = "end of expression" if token is None else f"{token[1]!r} at position {token[2]}"
            raise ToolError(f"expected {operator!r} but found {found}")

    def expr(self) -> Number:
        value = self.term()
        while operator := self.accept("+", "-"):
            right = self.term()
            value = _checked(value + right if operator == "+" else value - right)
        return value

    def term(self) -> Number:
        value = self.unary()
        while operator := self.accept("*", "/", "%"):
            if operator == "*" and self.accept("*"):
                raise ToolError("'**' is not supported; use '^' for powers")
            right = self.unary()
            if operator == "*":
                value = _checked(value * right)
            elif right == 0:
                raise ToolError("division by zero" if operator == "/" else "modulo by zero")
            else:
                value = _checked(value / right if operator == "/" else value % right)
        return value

    def unary(self) -> Number:
        if operator := self.accept("+", "-"):
            self._enter()
            value = self.unary()
            self.depth -= 1
            return -value if operator == "-" else value
        return self.power()

    def power(self) -> Number:
        base = self.atom()
        if self.accept("^"):
            self._enter()
            exponent = self.unary()
            self.depth -= 1
            return _power(base, exponent)
        return base

    def atom(self) -> Number:
        token = self.peek()
        if token is None:
            raise ToolError("expression ended early")
        kind, text, position = token
        self.index += 1
        if kind == "num":
            return _checked(Fraction(text))
        if kind == "name":
            return self._call(text)
        if text == "(":
            self._enter()
            value = self.expr()
            self.expect(")")
            self.depth -= 1
            return value
        raise ToolError(f"unexpected {text!r} at position {position}")

    def _call(self, name: str) -> Number:
        self.expect("(")
        self._enter()
        arguments = [self.expr()]
        while self.accept(","):
            arguments.append(self.expr())
        self.expect(")")
        self.depth -= 1
        low, high = _FUNCTIONS[name]
        if not low <= len(arguments) <= high:
            raise ToolError(f"{name}() takes {low if low == high else f'{low} or {high}'} argument(s)")
        if name == "sqrt":
            return _sqrt(arguments[0])
        if name == "abs":
            return abs(arguments[0])
        return _round(*arguments)

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ToolError(f"expression nested deeper than {MAX_DEPTH} levels")


def _checked(value: Number) -> Number:
    """Refuses values too large or too small (non-zero) to write in MAX_DIGITS digits; demotes
    fractions too fine to keep exactly to floats."""
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= _LIMIT:
            raise ToolError(f"result has more than {MAX_DIGITS} digits")
        if value and abs(value) * _LIMIT < 1:
            raise ToolError(f"result is smaller than 1e-{MAX_DIGITS}")
        return value
    if abs(value.numerator) >= _LIMIT * value.denominator:
        raise ToolError(f"result has more than {MAX_DIGITS} digits")
    if value and abs(value.numerator) * _LIMIT < value.denominator:
        raise ToolError(f"result is smaller than 1e-{MAX_DIGITS}")
    if value.denominator > _LIMIT:
        return float(value)
    return value


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"exponent {format_number(exponent)} exceeds {MAX_EXPONENT} in magnitude")
    if base == 0:
        if exponent < 0:
            raise ToolError("division by zero (zero to a negative power)")
        return Fraction(1) if exponent == 0 else Fraction(0)
    integral = float(exponent).is_integer()
    if base < 0 and not integral:
        raise ToolError("negative number to a non-integer power")
    if isinstance(base, Fraction):
        magnitude = math.log10(abs(base.numerator)) - math.log10(base.denominator)
    else:
        magnitude = math.log10(abs(base))
    if float(exponent) * magnitude >= MAX_DIGITS:
        raise ToolError(f"result has more than {MAX_DIGITS} digits")
    if float(exponent) * magnitude < -MAX_DIGITS:  # checked here as the float power would underflow to 0
        raise ToolError(f"result is smaller than 1e-{MAX_DIGITS}")
    if integral and isinstance(base, Fraction):
        bits = abs(int(exponent)) * max(base.numerator.bit_length(), base.denominator.bit_length())
        if bits <= _EXACT_POWER_BITS:
            return _checked(base ** int(exponent))
    try:
        return _checked(float(base) ** float(exponent))
    except OverflowError:
        raise ToolError(f"result has more than {MAX_DIGITS} digits") from None


def _sqrt(value: Number) -> Number:
    if value < 0:
        raise ToolError("square root of a negative number")
    if isinstance(value, Fraction):
        top, bottom = math.isqrt(value.numerator), math.isqrt(value.denominator)
        if top * top == value.numerator and bottom * bottom == value.denominator:
            return Fraction(top, bottom)
    return math.sqrt(value)


def _round(value: Number, digits: Number = Fraction(0)) -> Fraction:
    """Rounds half away from zero (round(2.5) = 3), to `digits` decimal places (0 to 20)."""
    if not float(digits).is_integer() or not 0 <= digits <= 20:
        raise ToolError("round() digits must be a whole number from 0 to 20")
    scale = Fraction(10) ** int(digits)
    magnitude = math.floor(abs(Fraction(value)) * scale + Fraction(1, 2))
    return Fraction(magnitude if value >= 0 else -magnitude) / scale
