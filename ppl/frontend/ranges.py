"""A sound range analysis of IR expressions: an interval that holds every value an expression
can take, used by the checker to tell whether a latent can reach outside a parameter's
constraint (``supports.check_param_ranges``).

Sound means the true range always lies inside the computed one; it may be wider (a product of
two real intervals is taken as the whole line). Latents take values in the open interior of
their support (their bijector never reaches an end); data take their declared bounds.
"""
from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from typing import Callable

from .. import constraints as c
from .. import ir

INF = math.inf


@dataclass(frozen=True)
class Range:
    """The interval from ``lo`` to ``hi``; an end is excluded when its ``*_open`` flag is set
    (an infinite end is always open)."""
    lo: float = -INF
    hi: float = INF
    lo_open: bool = True
    hi_open: bool = True

    def nonneg(self) -> bool:
        return self.lo >= 0

    def positive(self) -> bool:
        return self.lo > 0 or (self.lo == 0 and self.lo_open)


REAL = Range()
POSITIVE = Range(0.0, INF, True, True)
NON_NEGATIVE = Range(0.0, INF, False, True)
UNIT_OPEN = Range(0.0, 1.0, True, True)
UNIT_CLOSED = Range(0.0, 1.0, False, False)


def point(v: float) -> Range:
    v = float(v)
    if math.isnan(v):
        return REAL
    return Range(v, v, math.isinf(v), math.isinf(v))


def _clean(lo, hi, lo_open, hi_open) -> Range:
    if math.isnan(lo) or math.isnan(hi):
        return REAL
    return Range(lo, hi, lo_open or math.isinf(lo), hi_open or math.isinf(hi))


def neg(a: Range) -> Range:
    return Range(-a.hi, -a.lo, a.hi_open, a.lo_open)


def _lower_end(a: Range, b: Range, pick) -> tuple[float, bool]:
    """The lower end ``pick`` (min or max) of two ranges' lower ends, with its open flag (an
    end both reach is closed when either range includes it)."""
    lo = pick(a.lo, b.lo)
    return lo, all(r.lo_open for r in (a, b) if r.lo == lo)


def _upper_end(a: Range, b: Range, pick) -> tuple[float, bool]:
    hi = pick(a.hi, b.hi)
    return hi, all(r.hi_open for r in (a, b) if r.hi == hi)


def union(a: Range, b: Range) -> Range:
    """The smallest range holding both (``where(c, a, b)`` takes its values from either)."""
    lo, lo_open = _lower_end(a, b, min)
    hi, hi_open = _upper_end(a, b, max)
    return Range(lo, hi, lo_open, hi_open)


def elementwise_min(a: Range, b: Range) -> Range:
    """The range of minimum(x, y) for x in a, y in b (and of maximum, with ``max``)."""
    lo, lo_open = _lower_end(a, b, min)
    hi, hi_open = _upper_end(a, b, min)
    return Range(lo, hi, lo_open, hi_open)


def elementwise_max(a: Range, b: Range) -> Range:
    lo, lo_open = _lower_end(a, b, max)
    hi, hi_open = _upper_end(a, b, max)
    return Range(lo, hi, lo_open, hi_open)


def add(a: Range, b: Range) -> Range:
    return _clean(a.lo + b.lo, a.hi + b.hi, a.lo_open or b.lo_open, a.hi_open or b.hi_open)


def _mul_nonneg(a: Range, b: Range) -> Range:
    # the lower end is reached when both ends are, or when one is a reached 0
    lo_closed = ((not a.lo_open and not b.lo_open) or (a.lo == 0 and not a.lo_open)
                 or (b.lo == 0 and not b.lo_open))
    hi = a.hi * b.hi if a.hi and b.hi else 0.0  # 0 * inf: the other end is 0
    # an upper end of 0 is the lower end too: reached as that one is (0 * (0, inf) is the
    # point 0, not the empty [0, 0), which passed for inside (-1, 1) once 1 was added)
    hi_open = not lo_closed if hi == 0 else a.hi_open or b.hi_open
    return _clean(a.lo * b.lo, hi, not lo_closed, hi_open)


def mul(a: Range, b: Range) -> Range:
    """Exact ends when each factor keeps one sign; the whole line otherwise."""
    if a.nonneg() and b.nonneg():
        return _mul_nonneg(a, b)
    if a.hi <= 0 and b.hi <= 0:
        return _mul_nonneg(neg(a), neg(b))
    if a.nonneg() and b.hi <= 0:
        return neg(_mul_nonneg(a, neg(b)))
    if a.hi <= 0 and b.nonneg():
        return neg(_mul_nonneg(neg(a), b))
    if a.lo == a.hi and a.lo != 0:          # a constant factor scales the other range
        return _clean(*_scaled(b, a.lo))
    if b.lo == b.hi and b.lo != 0:
        return _clean(*_scaled(a, b.lo))
    return REAL


def _scaled(a: Range, k: float):
    if k > 0:
        return a.lo * k, a.hi * k, a.lo_open, a.hi_open
    return a.hi * k, a.lo * k, a.hi_open, a.lo_open


def reciprocal(a: Range) -> Range:
    if a.positive():
        lo = 0.0 if math.isinf(a.hi) else 1.0 / a.hi
        if math.isinf(lo):                  # 1 / (a subnormal) overflows: the real value is
            lo = sys.float_info.max         # finite, so the sound float bound is the largest
        hi = INF if a.lo == 0 else 1.0 / a.lo
        return _clean(lo, hi, a.hi_open, a.lo_open)
    if neg(a).positive():
        return neg(reciprocal(neg(a)))
    return REAL


def power(a: Range, b: Range) -> Range:
    if a.positive():
        return POSITIVE
    if b.lo == b.hi and float(b.lo).is_integer() and b.lo % 2 == 0 and b.lo > 0:
        return NON_NEGATIVE                 # an even integer power
    if a.nonneg() and b.nonneg():
        return NON_NEGATIVE
    return REAL


def monotone(f: Callable[[float], float], a: Range) -> Range:
    """The image of ``a`` under an increasing function (ends keep their open flags)."""
    return _clean(f(a.lo), f(a.hi), a.lo_open, a.hi_open)


def _safe(f: Callable[[float], float]) -> Callable[[float], float]:
    def g(x: float) -> float:
        try:
            return f(x)
        except OverflowError:
            return INF
        except ValueError:                  # outside the function's domain: no information
            return math.nan
    return g


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0


def _softplus(x: float) -> float:
    return x if x > 30 else math.log1p(math.exp(x))


def _square(a: Range) -> Range:
    if a.nonneg():
        return _mul_nonneg(a, a)
    if a.hi <= 0:
        return _mul_nonneg(neg(a), neg(a))
    return Range(0.0, max(a.lo * a.lo, a.hi * a.hi), False, a.lo_open and a.hi_open)


def _abs(a: Range) -> Range:
    if a.nonneg():
        return a
    if a.hi <= 0:
        return neg(a)
    return Range(0.0, max(-a.lo, a.hi), False, a.lo_open and a.hi_open)


def _total(a: Range) -> Range:
    """A sum of any number of elements of ``a``: only its sign is known."""
    if a.positive():
        return POSITIVE
    if a.nonneg():
        return NON_NEGATIVE
    if neg(a).positive():
        return neg(POSITIVE)
    return REAL


_MONOTONE = {"inv_logit": _sigmoid, "Phi": lambda x: 0.5 * math.erfc(-x / math.sqrt(2)),
             "erf": math.erf, "exp": math.exp, "log": math.log, "log1p": math.log1p, "expm1": math.expm1,
             "sqrt": math.sqrt, "sigmoid": _sigmoid, "tanh": math.tanh, "softplus": _softplus,
             # logit(1) is inf in the limit: p / (1 - p) raised ZeroDivisionError there, and the
             # checker crashed on logit(p) of every latent in (0, 1) (a Beta, a sigmoid)
             "logit": lambda p: INF if p == 1 else math.log(p / (1 - p))}
_DOMAIN = {"log": POSITIVE, "sqrt": NON_NEGATIVE, "log1p": Range(-1.0, INF, True, True),
           "logit": UNIT_OPEN}


def _call(e: ir.Call, arg: Callable[[int], Range]) -> Range:
    name = e.func
    if name in _MONOTONE:
        a = arg(0)
        domain = _DOMAIN.get(name)
        if domain is not None and not contains(domain, a):
            return REAL
        return monotone(_safe(_MONOTONE[name]), a)
    if name == "square":
        return _square(arg(0))
    if name == "abs":
        return _abs(arg(0))
    if name in ("sin", "cos"):
        return Range(-1.0, 1.0, False, False)
    if name in ("mean", "transpose"):
        return arg(0)
    if name in ("sum", "cumsum"):
        return _total(arg(0))
    if name == "dot":
        return _total(mul(arg(0), arg(1)))
    if name == "softmax":
        return UNIT_OPEN
    if name == "log_softmax":
        return Range(-INF, 0.0, True, True)
    if name == "where":
        return union(arg(1), arg(2))
    if name == "minimum":
        return elementwise_min(arg(0), arg(1))
    if name == "maximum":
        return elementwise_max(arg(0), arg(1))
    return REAL


def contains(outer: Range, inner: Range) -> bool:
    """Whether every value of ``inner`` lies in ``outer``."""
    lo_ok = inner.lo > outer.lo or (inner.lo == outer.lo and (inner.lo_open or not outer.lo_open))
    hi_ok = inner.hi < outer.hi or (inner.hi == outer.hi and (inner.hi_open or not outer.hi_open))
    return lo_ok and hi_ok


def disjoint(a: Range, b: Range) -> bool:
    """Whether no value lies in both."""
    return (a.hi < b.lo or b.hi < a.lo or (a.hi == b.lo and (a.hi_open or b.lo_open))
            or (b.hi == a.lo and (b.hi_open or a.lo_open)))


def of_constraint(constraint: c.Constraint, bound: Callable[[object], Range]) -> Range | None:
    """The values a constraint allows, as a Range (None for one that is not an interval).
    ``bound`` gives the range of a bound that is an expression."""
    inclusive = getattr(constraint, "inclusive", False)
    if isinstance(constraint, c.Real):
        return REAL
    lo = hi = None
    if isinstance(constraint, (c.GreaterThan, c.Interval)):
        lo = bound(constraint.lower).lo
    if isinstance(constraint, (c.LessThan, c.Interval)):
        hi = bound(constraint.upper).hi
    if lo is None and hi is None:
        return None
    return _clean(-INF if lo is None else lo, INF if hi is None else hi,
                  not inclusive, not inclusive)


class Analysis:
    """Ranges of the expressions of one program, given its statements so far by name."""

    def __init__(self, statements: dict[str, object]):
        self.statements = statements
        self.memo: dict[str, Range] = {}

    def of(self, e) -> Range:
        """The range of an IR expression (or a number: a bound already evaluated)."""
        if isinstance(e, (int, float)):
            return point(e)
        if isinstance(e, ir.Const):
            return point(e.value)
        if isinstance(e, ir.Ref):
            return self._name(e.name)
        if isinstance(e, ir.Neg):
            return neg(self.of(e.operand))
        if isinstance(e, ir.Index):
            return self.of(e.base)
        if isinstance(e, ir.BinOp):
            return self._binary(e.op, self.of(e.left), self.of(e.right))
        if isinstance(e, ir.Call):
            return _call(e, lambda i: self.of(e.args[i]))
        if isinstance(e, ir.Vector):          # every element is one of the items' values
            return functools.reduce(union, (self.of(item) for item in e.items))
        return REAL

    @staticmethod
    def _binary(op: str, a: Range, b: Range) -> Range:
        if op == "+":
            return add(a, b)
        if op == "-":
            return add(a, neg(b))
        if op == "*":
            return mul(a, b)
        if op == "/":
            return mul(a, reciprocal(b))
        if op == "**":
            return power(a, b)
        if op == "@":
            return _total(mul(a, b))
        if op in ("<", "<=", ">", ">=", "==", "!="):
            return UNIT_CLOSED        # a comparison is 0 or 1
        return REAL

    def _name(self, name: str) -> Range:
        if name not in self.memo:
            self.memo[name] = REAL            # guards against a cycle (none in a checked program)
            self.memo[name] = self._statement(self.statements.get(name))
        return self.memo[name]

    def _statement(self, s) -> Range:
        if isinstance(s, ir.Let):
            return self.of(s.value)
        if isinstance(s, ir.Data):
            lo = -INF if s.lower is None else self.of(s.lower).lo
            hi = INF if s.upper is None else self.of(s.upper).hi
            return _clean(lo, hi, False, False)
        if isinstance(s, ir.Latent) and isinstance(s.support, (c.IntegerInterval, c.Boolean)):
            # an enumerated discrete latent takes its values on the closed {lower..upper}
            lower, upper = getattr(s.support, "lower", 0), getattr(s.support, "upper", 1)
            return _clean(-INF if lower is None else self.of(lower).lo,
                          INF if upper is None else self.of(upper).hi, False, False)
        if isinstance(s, (ir.Latent, ir.Param)):
            allowed = of_constraint(s.support, self.of)
            if allowed is None:   # not an interval, but its elements lie in one
                if isinstance(s.support, c.Simplex):
                    return UNIT_OPEN
                return POSITIVE if isinstance(s.support, c.PositiveOrdered) else REAL
            # a bijector keeps a latent inside the open interior of its support
            return Range(allowed.lo, allowed.hi, True, True)
        return REAL
