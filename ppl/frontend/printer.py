"""AST -> canonical source text, parenthesized by precedence so that parse(to_source(p)) == p.

Used by the round-trip tests, by error messages that quote an expression, and by the docs.
"""
from __future__ import annotations

from . import syntax

# Binding strength, loosest first, mirroring grammar/ppl.lark.
_COMPARE, _SUM, _PRODUCT, _UNARY, _POWER, _POSTFIX, _ATOM = range(0, 7)
_BINARY_LEVEL = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "@": _PRODUCT, "**": _POWER,
                 **dict.fromkeys(("<", "<=", ">", ">=", "==", "!="), _COMPARE)}


def to_source(program: syntax.Program) -> str:
    """Print a program as canonical text: one statement per line, ending with a newline.

    Parameters
    ----------
    program : the AST to print.

    Returns
    -------
    str : text that parses back to an AST equal to ``program``.
    """
    return "".join(_statement(s) + "\n" for s in program.statements)


def expr_to_source(expr: syntax.Expr | syntax.Slice) -> str:
    """Print one expression (or slice) as it would be written, with only the parentheses needed.

    Parameters
    ----------
    expr : an expression node, or a Slice from an Index's items.

    Returns
    -------
    str : e.g. ``mu + tau * eta``, ``(-2) ** 2``, ``X[:, 0]``.
    """
    if isinstance(expr, syntax.NewAxis):
        return "newaxis"
    if isinstance(expr, syntax.Vector):
        return "[" + ", ".join(expr_to_source(item) for item in expr.items) + "]"
    if isinstance(expr, syntax.Slice):
        start = "" if expr.start is None else expr_to_source(expr.start)
        stop = "" if expr.stop is None else expr_to_source(expr.stop)
        return f"{start}:{stop}"
    if isinstance(expr, syntax.Number):
        return _number(expr)
    if isinstance(expr, syntax.Name):
        return expr.id
    if isinstance(expr, syntax.Unary):
        return expr.op + _operand(expr.operand, _UNARY)
    if isinstance(expr, syntax.Binary):
        level = _BINARY_LEVEL[expr.op]
        if expr.op == "**":
            # Right associative; the base is a postfix expression, the exponent may be unary.
            left, right = _operand(expr.left, _POSTFIX), _operand(expr.right, _UNARY)
        elif level == _COMPARE:
            # Comparisons do not chain: both operands bind strictly tighter.
            left, right = _operand(expr.left, level + 1), _operand(expr.right, level + 1)
        else:
            # Left associative: the right operand must bind strictly tighter.
            left, right = _operand(expr.left, level), _operand(expr.right, level + 1)
        return f"{left} {expr.op} {right}"
    if isinstance(expr, syntax.Index):
        items = ", ".join(expr_to_source(item) for item in expr.items)
        return f"{_operand(expr.base, _POSTFIX)}[{items}]"
    if isinstance(expr, syntax.Call):
        return _call(expr)
    raise TypeError(f"not an expression node: {expr!r}")


def _number(number: syntax.Number) -> str:
    if number.text:
        return number.text
    # A node built in code has no text: print the shortest form that reads back the same way.
    return str(number.value) if number.is_int else repr(float(number.value))


def _level(expr: syntax.Expr) -> int:
    if isinstance(expr, syntax.Binary):
        return _BINARY_LEVEL[expr.op]
    if isinstance(expr, syntax.Unary):
        return _UNARY
    if isinstance(expr, syntax.Index):
        return _POSTFIX
    return _ATOM


def _operand(expr: syntax.Expr, least: int) -> str:
    """Print ``expr`` where the grammar wants something binding at least as tight as ``least``."""
    text = expr_to_source(expr)
    return text if _level(expr) >= least else f"({text})"


def _call(call: syntax.Call) -> str:
    args = [expr_to_source(a) for a in call.args]
    args += [f"{k.name}={expr_to_source(k.value)}" for k in call.kwargs]
    return f"{call.func}({', '.join(args)})"


def _type(type_: syntax.Type) -> str:
    bounds = []
    # A bound is a `sum` in the grammar: a comparison there needs parentheses.
    if type_.lower is not None:
        bounds.append(f"lower={_operand(type_.lower, _SUM)}")
    if type_.upper is not None:
        bounds.append(f"upper={_operand(type_.upper, _SUM)}")
    text = type_.elem + (f"<{', '.join(bounds)}>" if bounds else "")
    if type_.dims:
        text += "[" + ", ".join(expr_to_source(d) for d in type_.dims) + "]"
    return text


def _statement(statement: syntax.Statement) -> str:
    if isinstance(statement, syntax.Data):
        return f"data {statement.name}: {_type(statement.type)}"
    if isinstance(statement, syntax.Sample):
        declared = "" if statement.type is None else f": {_type(statement.type)}"
        return f"sample {statement.name}{declared} ~ {_call(statement.dist)}"
    if isinstance(statement, syntax.Let):
        return f"let {statement.name} = {expr_to_source(statement.value)}"
    if isinstance(statement, syntax.Observe):
        return f"observe {expr_to_source(statement.value)} ~ {_call(statement.dist)}"
    if isinstance(statement, syntax.Factor):
        return f"factor {expr_to_source(statement.value)}"
    if isinstance(statement, syntax.Param):
        prior = "" if statement.dist is None else f" ~ {_call(statement.dist)}"
        return f"param {statement.name}: {_type(statement.type)}{prior}"
    if isinstance(statement, syntax.Guide):
        return f"guide {statement.name} ~ {_call(statement.dist)}"
    raise TypeError(f"not a statement node: {statement!r}")
