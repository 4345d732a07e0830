"""A generator of small random programs with data, for the fuzz tests (tests/unit/test_fuzz.py)
and the larger release run (tests/fuzz/run.py).

Unlike mutations of good models, these programs reach the compiler and the evaluator: int
arithmetic on extreme data values (class 4 of issue 9: wrapping, dtypes), sizes of 0, and
expressions nested far deeper than real models (class 6). Every run must end in a result or
a PplError.
"""
from __future__ import annotations

import random
import warnings

import numpy as np

from ppl.errors import PplError

INTS = [0, 1, -1, 2, 3, 63, 64, 2 ** 31, 2 ** 62, 2 ** 63 - 1, -2 ** 63, 3037000500]
INT_OPS = ["+", "-", "*", "**", "/"]
INT_FUNCTIONS = ["sum", "cumsum", "square", "abs", "dot", "mean", "exp", "log1p", "transpose"]


def _int_expr(rng: random.Random, depth: int) -> str:
    """An expression of int data (a, the vector; m, the scalar) and int literals."""
    if depth <= 0 or rng.random() < 0.2:
        return rng.choice(["a", "m", "n", str(rng.choice(INTS[:-2])), "a[0]" , "a[0:n]"])
    kind = rng.random()
    if kind < 0.5:
        return (f"({_int_expr(rng, depth - 1)} {rng.choice(INT_OPS)} "
                f"{_int_expr(rng, depth - 1)})")
    if kind < 0.6:
        return f"-{_int_expr(rng, depth - 1)}"
    name = rng.choice(INT_FUNCTIONS)
    if name == "dot":
        return f"dot(a, {rng.choice(['a', 'a * m', 'cumsum(a)'])})"
    if name in ("cumsum", "transpose"):
        return f"{name}({rng.choice(['a', 'a * m', '-a'])})"
    return f"{name}({_int_expr(rng, depth - 1)})"


def _nested(rng: random.Random, depth: int) -> str:
    """A chain of ``depth`` operations on the latent mu (deep: up to hundreds of levels)."""
    expr = "mu"
    for _ in range(depth):
        kind = rng.choice(["+1", "neg", "sigmoid", "paren", "*"])
        expr = {"+1": f"{expr} + 1", "neg": f"-{expr}", "sigmoid": f"sigmoid({expr})",
                "paren": f"({expr})", "*": f"({expr}) * 0.5"}[kind]
    return expr


def program(rng: random.Random) -> tuple[str, dict]:
    """A random model text and its data."""
    n = rng.choice([0, 1, 2, 3])
    size = rng.choice(["n", "0", "1", "2"])
    data = {"n": n, "m": rng.choice(INTS), "a": [rng.choice(INTS) for _ in range(n)],
            "y": [rng.uniform(-2, 2) for _ in range(n)]}
    lines = ["data n: int", "data m: int", "data a: int[n]", "data y: real[n]",
             f"sample mu ~ Normal(0, {rng.choice(['1', '10', '1e300', '1e-300'])})",
             f"sample z: real[{size}] ~ Normal(mu, 1)",
             f"let k = {_int_expr(rng, rng.randint(0, 4))}",
             f"let t = mu + sum(z) + sum(k * 1.0)",
             f"let d = {_nested(rng, rng.choice([1, 5, 50, 150, 250, 600]))}"]
    if rng.random() < 0.5:
        lines.append("observe y ~ Normal(mu + k * 0.0, 1)" if rng.random() < 0.5
                     else "observe y ~ Normal(mu, 1)")
    return "\n".join(lines) + "\n", data


def run_one(text: str, data: dict, seed: int = 0) -> str:
    """Compile the program against its data and evaluate its log joint, draws and predictive
    draws; returns 'ok' or 'error'. Any exception other than PplError propagates (a bug)."""
    import ppl
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ppl.compile(text, "fuzz.ppl")
            _, _, compiled = model.prepare(data)
            zeta = np.random.default_rng(seed).normal(size=(3, compiled.dim))
            with np.errstate(all="ignore"):
                compiled.log_joint(zeta)
                compiled.constrained(zeta)
                compiled.predictive(zeta, np.random.default_rng(seed))
    except PplError:
        return "error"
    return "ok"


# ----- an exact oracle for int lets: Python ints never wrap ---------------------------------

_EXACT_OPS = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}


def _on_objects(f):
    # numpy casts a bare Python int that fits int64 to np.int64, whose abs(-2**63) and sums
    # wrap: the oracle then called ppl's correct int overflow error wrong
    return lambda x: f(np.asarray(x, dtype=object))


_EXACT_FUNCTIONS = {"sum": _on_objects(np.sum), "cumsum": _on_objects(np.cumsum),
                    "square": lambda x: x * x, "abs": _on_objects(np.abs),
                    "transpose": lambda x: x}


class Overflow(Exception):
    """An intermediate value of an exact int evaluation left int64's [-2^63, 2^63)."""


def _in_range(value):
    if value is not None and any(not -2 ** 63 <= int(v) < 2 ** 63
                                 for v in np.asarray(value).ravel()):
        raise Overflow
    return value


def exact_int(expr, env: dict):
    """The value of an int expression (syntax AST) in Python ints, as an object array; None
    when it uses anything but + - *, unary minus, int literals, names, indexing and the
    int-keeping functions (then the expression is real and has no exact oracle here).
    Raises Overflow when the result of an operation leaves int64's [-2^63, 2^63)."""
    from ppl.frontend import syntax
    value = _exact(expr, env)
    return value if isinstance(expr, (syntax.Name, syntax.Number, syntax.Index)) else \
        _in_range(value)


def _exact(expr, env: dict):
    from ppl.frontend import syntax
    if isinstance(expr, syntax.Number):
        return np.array(expr.value, dtype=object) if expr.is_int else None
    if isinstance(expr, syntax.Name):
        return env[expr.id]
    if isinstance(expr, syntax.Unary):
        inner = exact_int(expr.operand, env)
        return None if inner is None else -inner
    if isinstance(expr, syntax.Binary) and expr.op in _EXACT_OPS:
        left, right = exact_int(expr.left, env), exact_int(expr.right, env)
        return None if left is None or right is None else _EXACT_OPS[expr.op](left, right)
    if isinstance(expr, syntax.Call) and expr.func in _EXACT_FUNCTIONS and len(expr.args) == 1:
        inner = exact_int(expr.args[0], env)
        return None if inner is None else np.asarray(_EXACT_FUNCTIONS[expr.func](inner),
                                                     dtype=object)
    if isinstance(expr, syntax.Index) and len(expr.items) == 1:
        base, item = exact_int(expr.base, env), expr.items[0]
        if base is None:
            return None
        if isinstance(item, syntax.Slice):
            bounds = [None if b is None else int(exact_int(b, env)) for b in (item.start,
                                                                               item.stop)]
            return base[slice(*bounds)]
        index = exact_int(item, env)
        return None if index is None else base[int(index)]
    return None


def check_int_let(text: str, data: dict) -> None:
    """The let ``k``: when it is int, ppl's value must equal the exact one, or ppl must have
    refused it as an int overflow when an exact intermediate value leaves int64."""
    import ppl
    from ppl.evaluate import data_lets
    from ppl.frontend.parse import parse
    try:
        program_ast, model = parse(text), ppl.compile(text, "fuzz.ppl")
    except PplError:
        return
    let = next(s for s in program_ast.statements if getattr(s, "name", None) == "k")
    if model.ir.lets["k"].value.dtype != "int":
        return
    env = {name: np.array(value, dtype=object) for name, value in data.items()
           if name in ("n", "m", "a")}
    try:
        exact, fits = exact_int(let.value, env), True
    except Overflow:
        exact, fits = None, False
    except IndexError:
        return
    if fits and exact is None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            concrete, values, _ = model.prepare(data)
        found = data_lets(concrete, values)["k"]
    except PplError as error:
        assert not fits and error.message.startswith("int overflow"), (text, error.message)
        return
    assert fits, f"int64 wrapped silently:\n{text}"
    assert [int(v) for v in np.asarray(found).ravel()] == \
        [int(v) for v in np.asarray(exact).ravel()], text
