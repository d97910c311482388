"""A calculator that parses the expression with ``ast`` and evaluates the tree itself (never ``eval``).

Integers and decimals become exact ``Fraction``s, so ``0.1 + 0.2 == 3/10`` and ``1/3 * 3 == 1``;
irrational operations (sqrt, log, fractional powers) fall back to float. Sizes are bounded so that
``9**9**9`` is refused instead of hanging the agent.
"""

from __future__ import annotations

import ast
import math
import operator
from fractions import Fraction

Number = Fraction | float

_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_FUNCS = {
    "sqrt": math.sqrt,
    "exp": math.exp,
    "ln": math.log,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTS = {"pi": math.pi, "e": math.e}
MAX_EXPONENT = 10_000
MAX_DIGITS = 5_000
MAX_LENGTH = 1_000


class CalculatorError(ValueError):
    """An expression the calculator cannot or will not evaluate; the message says why."""


def _check_size(x: Number) -> Number:
    if isinstance(x, Fraction) and max(abs(x.numerator), x.denominator).bit_length() > MAX_DIGITS * 3.33:
        raise CalculatorError(f"result has more than {MAX_DIGITS} digits")
    if isinstance(x, float) and not math.isfinite(x):
        raise CalculatorError("result is not finite")
    return x


def _pow(a: Number, b: Number) -> Number:
    if isinstance(b, Fraction) and b.denominator == 1:
        if abs(b) > MAX_EXPONENT:
            raise CalculatorError(f"exponent {b} is larger than {MAX_EXPONENT}")
        if isinstance(a, Fraction) and a == 0 and b < 0:
            raise CalculatorError("division by zero")
        if isinstance(a, Fraction) and abs(a.numerator).bit_length() * abs(int(b)) > MAX_DIGITS * 3.33 * 2:
            raise CalculatorError(f"result would have more than {MAX_DIGITS} digits")
        return a ** int(b)
    try:
        return float(a) ** float(b)
    except (OverflowError, ZeroDivisionError) as e:
        raise CalculatorError(str(e)) from e


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Fraction(repr(node.value)) if isinstance(node.value, float) else Fraction(node.value)
    if isinstance(node, ast.Name):
        if node.id in _CONSTS:
            return _CONSTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}; constants: {', '.join(_CONSTS)}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        v = _eval(node.operand)
        return v if isinstance(node.op, ast.UAdd) else -v
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _check_size(_pow(a, b))
        if type(node.op) not in _BIN:
            raise CalculatorError(f"operator {type(node.op).__name__} is not supported")
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and b == 0:
            raise CalculatorError("division by zero")
        if isinstance(a, float) or isinstance(b, float):
            a, b = float(a), float(b)
        return _check_size(_BIN[type(node.op)](a, b))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        name, args = node.func.id, [_eval(a) for a in node.args]
        if name in ("abs", "min", "max") and args:
            return (
                {"abs": abs, "min": min, "max": max}[name](*args)
                if name != "abs" or len(args) == 1
                else _fail("abs takes one argument")
            )
        if name == "round" and 1 <= len(args) <= 2:
            digits = int(args[1]) if len(args) == 2 else 0
            return Fraction(round(Fraction(args[0]), digits))
        if name in _FUNCS and len(args) == 1:
            try:
                return _check_size(float(_FUNCS[name](float(args[0]))))
            except (ValueError, OverflowError) as e:
                raise CalculatorError(f"{name}({float(args[0])}): {e}") from e
        raise CalculatorError(f"unknown function {name!r}; functions: abs, min, max, round, {', '.join(_FUNCS)}")
    raise CalculatorError(f"unsupported syntax: {ast.dump(node)[:60]}")


def _fail(msg: str):
    raise CalculatorError(msg)


def evaluate(expression: str) -> Number:
    """The value of ``expression``: a ``Fraction`` when exact, a ``float`` otherwise."""
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as e:
        raise CalculatorError(f"not an arithmetic expression: {e.msg}") from e
    return _eval(tree)


def format_number(x: Number) -> str:
    """``7``, ``1/3 (≈ 0.333333333333)`` or ``0.149...`` (a float carries no exactness claim)."""
    if isinstance(x, Fraction):
        if x.denominator == 1:
            return str(x.numerator)
        return f"{x.numerator}/{x.denominator} (≈ {float(x):.12g})"
    return f"{x:.12g}"
