"""The checked IR: what a model means, with every name resolved and every shape known.

Made by ``frontend/check.py`` from the AST, read by ``data.py`` (validation), ``compiler/``
and the posterior. Nodes are frozen and keep their spans so later stages can blame a statement.

Shapes are tuples of dims. Checked with data (``check(program, dims)``), every dim is an int.
Checked without data, a dim is an int, the name of the int data scalar it equals (a str), or
None when it is unknown until the data is seen (a slice with data-dependent bounds, say).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from .constraints import Constraint
from .source import Source, Span

Dim = Union[int, str, None]
Shape = tuple[Dim, ...]


def _span():
    return field(default=None, compare=False, repr=False)


# ----- expressions --------------------------------------------------------------------------
# Every expression has: shape (without any draw axis), dtype ('int' or 'real'), and deps, the
# latent variables it depends on (through lets too); empty deps means data-only.

@dataclass(frozen=True)
class Const:
    value: Union[int, float]
    shape: Shape
    dtype: str
    deps: frozenset = frozenset()
    span: Span = _span()


@dataclass(frozen=True)
class Ref:
    """A use of a defined name; ``kind`` is 'data', 'latent' or 'let'."""
    name: str
    kind: str
    shape: Shape
    dtype: str
    deps: frozenset = frozenset()
    span: Span = _span()


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    shape: Shape
    dtype: str
    deps: frozenset = frozenset()
    span: Span = _span()


@dataclass(frozen=True)
class BinOp:
    """``op`` in '+', '-', '*', '/', '**' (numpy broadcasting) or '@' (numpy matmul)."""
    op: str
    left: "Expr"
    right: "Expr"
    shape: Shape
    dtype: str
    deps: frozenset = frozenset()
    span: Span = _span()


@dataclass(frozen=True)
class SliceItem:
    """``start:stop`` on one axis (None = open end); bounds are int scalar data expressions."""
    start: "Expr | None"
    stop: "Expr | None"
    span: Span = _span()


@dataclass(frozen=True)
class NewAxisItem:
    """``newaxis`` among index items: inserts an axis of length 1 (numpy's ``None``)."""
    span: Span = _span()


@dataclass(frozen=True)
class Index:
    """numpy indexing of ``base``: one item per leading axis, each an int scalar, an int
    array (gather, numpy fancy indexing) or a SliceItem, plus NewAxisItems that insert axes;
    trailing axes are kept whole. Index items never depend on continuous latents; they may
    depend on a discrete latent (``mu[z]``), which the compiler enumerates."""
    base: "Expr"
    items: tuple["Expr | SliceItem | NewAxisItem", ...]
    shape: Shape
    dtype: str
    deps: frozenset = frozenset()
    span: Span = _span()


@dataclass(frozen=True)
class Call:
    """A built-in function from ``functions.py``; ``axis`` for reductions given ``axis=``."""
    func: str
    args: tuple["Expr", ...]
    axis: "int | None"
    shape: Shape
    dtype: str
    deps: frozenset = frozenset()
    span: Span = _span()


@dataclass(frozen=True)
class Vector:
    """A vector literal: ``items`` of one shape stacked on a new leading axis."""
    items: tuple["Expr", ...]
    shape: Shape
    dtype: str
    deps: frozenset = frozenset()
    span: Span = _span()


@dataclass(frozen=True)
class Density:
    """``lpdf(DIST, x)``, ``lcdf(DIST, x)`` or ``lccdf(DIST, x)`` (``kind``): the log density,
    CDF or CCDF of ``dist`` at ``value``, elementwise over the broadcast batch shape."""
    kind: str
    dist: "Dist"
    value: "Expr"
    shape: Shape
    dtype: str = "real"
    deps: frozenset = frozenset()
    span: Span = _span()


Expr = Union[Const, Ref, Neg, BinOp, Index, Call, Vector, Density]


@dataclass(frozen=True)
class Dist:
    """A distribution with its parameters bound by name (the names of one signature).

    ``batch_shape`` is the broadcast of the parameters' batch shapes (their shapes less the
    ``param_event_dims`` trailing axes). A parameter's value is an Expr, or a Dist for a
    distribution-valued parameter (the components of a Mixture)."""
    name: str
    params: tuple[tuple[str, "Expr"], ...]
    batch_shape: Shape
    deps: frozenset = frozenset()
    span: Span = _span()

    @property
    def param_dict(self) -> dict[str, Any]:
        """Parameter name -> Expr; a distribution-valued one as ``(class, its param_dict)``,
        the form the registry's classes take (``Mixture``)."""
        return {name: (value.cls, value.param_dict) if isinstance(value, Dist) else value
                for name, value in self.params}

    @property
    def cls(self):
        from .distributions import lookup
        return lookup(self.name)


# ----- statements ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Data:
    """``data name: type``. Bounds are Exprs of earlier data, or None."""
    name: str
    dtype: str
    shape: Shape
    lower: "Expr | None"
    upper: "Expr | None"
    span: Span = _span()


@dataclass(frozen=True)
class Latent:
    """``sample name: type ~ dist``.

    ``support`` is the distribution's support narrowed by the declared bounds; its bounds are
    floats or Exprs (of data or of earlier latents). ``truncated`` when declared bounds narrow
    the distribution's own support (the normalizing constant is dropped, as in Stan)."""
    name: str
    shape: Shape
    dist: Dist
    support: Constraint
    truncated: bool
    deps: frozenset = frozenset()
    span: Span = _span()
    dtype: str = "real"

    @property
    def discrete(self) -> bool:
        """A discrete latent (finite support): summed out of the log joint by enumeration."""
        return self.dtype == "int"


@dataclass(frozen=True)
class Let:
    """``let name = value``. ``reported``: not data-only and not starting with '_'.
    A data-only let (``deps`` empty) is data: computed once, before fitting."""
    name: str
    value: "Expr"
    reported: bool
    span: Span = _span()

    @property
    def data_only(self) -> bool:
        return not self.value.deps


@dataclass(frozen=True)
class Observe:
    """``observe value ~ dist``; ``value`` is data-only (the checker enforces it)."""
    value: "Expr"
    dist: Dist
    span: Span = _span()


@dataclass(frozen=True)
class Factor:
    """``factor value``: adds sum(value) to the log joint."""
    value: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Param:
    """``param name: type [~ dist]``: a point-estimated parameter. ``dist`` (or None) adds its
    log density as a penalty; ``support`` is the declared bounds (narrowing dist's support).
    Refs to a param carry it in their ``deps``, so nothing that uses one is folded as data."""
    name: str
    shape: Shape
    dist: "Dist | None"
    support: Constraint
    span: Span = _span()
    truncated: bool = False


@dataclass(frozen=True)
class Guide:
    """``guide name ~ Normal(loc, scale)``: the latent ``name``'s user-written guide on its
    unconstrained coordinates; ``loc`` and ``scale`` use data, params and earlier latents."""
    name: str
    loc: "Expr"
    scale: "Expr"
    span: Span = _span()


Statement = Union[Data, Latent, Let, Observe, Factor, Param, Guide]


@dataclass(frozen=True)
class Model:
    """A checked model: its statements in source order, and the source they came from."""
    statements: tuple[Statement, ...]
    source: Source = field(compare=False, repr=False)

    @property
    def data(self) -> dict[str, Data]:
        return {s.name: s for s in self.statements if isinstance(s, Data)}

    @property
    def latents(self) -> dict[str, Latent]:
        return {s.name: s for s in self.statements if isinstance(s, Latent)}

    @property
    def lets(self) -> dict[str, Let]:
        return {s.name: s for s in self.statements if isinstance(s, Let)}

    @property
    def params(self) -> dict[str, Param]:
        return {s.name: s for s in self.statements if isinstance(s, Param)}

    @property
    def guides(self) -> dict[str, Guide]:
        return {s.name: s for s in self.statements if isinstance(s, Guide)}

    @property
    def factors(self) -> list[Factor]:
        return [s for s in self.statements if isinstance(s, Factor)]

    @property
    def observes(self) -> list[Observe]:
        return [s for s in self.statements if isinstance(s, Observe)]


def reads_names(expr: Any) -> bool:
    """Whether ``expr`` reads a name: an index or slice bound computed from data may not be
    negative (LANGUAGE.md v2: numpy would count it from the end), a literal like -1 may."""
    return any(isinstance(node, Ref) for node in walk(expr))


def walk(expr: Any):
    """Yield ``expr`` and every expression below it (depth first), SliceItem bounds included."""
    if expr is None:
        return
    if isinstance(expr, Dist):  # not an expression itself: its parameters are
        for _, param in expr.params:
            yield from walk(param)
        return
    yield expr
    if isinstance(expr, Neg):
        yield from walk(expr.operand)
    elif isinstance(expr, BinOp):
        yield from walk(expr.left)
        yield from walk(expr.right)
    elif isinstance(expr, Index):
        yield from walk(expr.base)
        for item in expr.items:
            if isinstance(item, SliceItem):
                yield from walk(item.start)
                yield from walk(item.stop)
            elif not isinstance(item, NewAxisItem):
                yield from walk(item)
    elif isinstance(expr, (Call, Vector)):
        for arg in expr.args if isinstance(expr, Call) else expr.items:
            yield from walk(arg)
    elif isinstance(expr, Density):
        yield from walk(expr.dist)
        yield from walk(expr.value)


def element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """Reported names of a value's elements, row-major: ``x``, ``x[0]``, ``x[0,1]`` (LANGUAGE.md)."""
    import itertools
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, index))}]"
            for index in itertools.product(*(range(d) for d in shape))]
