"""The AST: frozen dataclasses, one per syntactic form; every node carries its source span.

Spans are excluded from equality (``compare=False``) so that a program printed and parsed
again compares equal to the original. The AST records what was written; judging it is
``check.py``'s job.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..source import Span


def _span():
    return field(compare=False, repr=False)


# ----- expressions --------------------------------------------------------------------------

@dataclass(frozen=True)
class Number:
    """A numeric literal. ``is_int`` for literals written without '.', 'e' or 'E'."""
    value: Union[int, float]
    is_int: bool
    text: str = field(compare=False)
    span: Span = _span()


@dataclass(frozen=True)
class Name:
    id: str
    span: Span = _span()


@dataclass(frozen=True)
class Unary:
    """Unary minus (``op`` is always '-')."""
    op: str
    operand: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Binary:
    """``op`` is one of '+', '-', '*', '/', '@', '**', or a comparison '<', '<=', '>', '>=',
    '==', '!='."""
    op: str
    left: "Expr"
    right: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Slice:
    """``start:stop`` inside brackets; either bound may be None."""
    start: "Expr | None"
    stop: "Expr | None"
    span: Span = _span()


@dataclass(frozen=True)
class NewAxis:
    """``newaxis`` among index items: a new axis of length 1 (numpy's ``None``)."""
    span: Span = _span()


@dataclass(frozen=True)
class Index:
    """``base[i, j:k, idx, newaxis]``: one item per axis, each an Expr or a Slice, and
    NewAxis items that insert axes."""
    base: "Expr"
    items: tuple["Expr | Slice | NewAxis", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Vector:
    """A vector literal ``[a, b, c]``; nested literals make matrices."""
    items: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Keyword:
    name: str
    value: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Call:
    """``func(args..., name=value...)``: a function call, or a distribution after '~'."""
    func: str
    args: tuple["Expr", ...]
    kwargs: tuple[Keyword, ...]
    span: Span = _span()
    func_span: Span = _span()


Expr = Union[Number, Name, Unary, Binary, Index, Call, Vector]


# ----- types and statements -----------------------------------------------------------------

@dataclass(frozen=True)
class Type:
    """``ELEM<lower=.., upper=..>[dims]``; ``elem`` is 'int', 'real', 'ordered' or
    'positive_ordered'."""
    elem: str
    lower: "Expr | None"
    upper: "Expr | None"
    dims: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Data:
    name: str
    type: Type
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Sample:
    """``sample name ~ dist`` (type None) or ``sample name: type ~ dist``."""
    name: str
    type: "Type | None"
    dist: Call
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Let:
    name: str
    value: "Expr"
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Observe:
    value: "Expr"
    dist: Call
    span: Span = _span()


@dataclass(frozen=True)
class Factor:
    """``factor value``: adds sum(value) to the log joint."""
    value: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Param:
    """``param name: type`` (dist None) or ``param name: type ~ dist``."""
    name: str
    type: Type
    dist: "Call | None"
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Guide:
    """``guide name ~ dist``: the user's variational distribution of the latent ``name``."""
    name: str
    dist: Call
    span: Span = _span()
    name_span: Span = _span()


Statement = Union[Data, Sample, Let, Observe, Factor, Param, Guide]


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
    span: Span = _span()
