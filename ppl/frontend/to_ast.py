"""lark parse tree -> syntax.Program: one method per grammar rule, every node given its Span.

It builds and never judges: names, types and shapes are ``check.py``'s business.
"""
from __future__ import annotations

from lark import Token, Transformer_NonRecursive, Tree, v_args

from .. import errors
from ..source import Source, Span
from . import syntax

# Python refuses int("...") beyond this many digits (CVE-2020-10735); report it as our error.
_MAX_INT_DIGITS = 4300


def to_ast(tree: Tree, source: Source) -> syntax.Program:
    """Turn the parse tree of ``source`` into a syntax.Program.

    Parameters
    ----------
    tree : lark's tree for the ``program`` rule (parsed with ``propagate_positions=True``).
    source : the Source the tree was parsed from; every Span points into it.

    Raises
    ------
    PplError : for a number literal too long to convert (lark wraps it in a VisitError).
    """
    # Non-recursive: a deeply nested expression must not hit Python's recursion limit.
    return _ToAst(source).transform(tree)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    def __init__(self, source: Source):
        super().__init__()
        self.source = source

    def _span(self, meta) -> Span:
        return Span(self.source, meta.line, meta.column, meta.end_line, meta.end_column)

    def _token_span(self, token: Token) -> Span:
        return Span(self.source, token.line, token.column, token.end_line, token.end_column)

    # ----- program and statements -----------------------------------------------------------

    def program(self, meta, statements):
        end = self.source.end_span()
        span = Span(self.source, 1, 1, end.line, end.col)
        return syntax.Program(tuple(statements), span)

    def data_stmt(self, meta, children):
        name, type_ = children
        return syntax.Data(str(name), type_, self._span(meta), self._token_span(name))

    def sample_stmt(self, meta, children):
        name, type_, dist = children
        return syntax.Sample(str(name), type_, dist, self._span(meta), self._token_span(name))

    def let_stmt(self, meta, children):
        name, value = children
        return syntax.Let(str(name), value, self._span(meta), self._token_span(name))

    def observe_stmt(self, meta, children):
        value, dist = children
        return syntax.Observe(value, dist, self._span(meta))

    def factor_stmt(self, meta, children):
        return syntax.Factor(children[0], self._span(meta))

    def param_stmt(self, meta, children):
        name, type_, dist = children
        return syntax.Param(str(name), type_, dist, self._span(meta), self._token_span(name))

    def guide_stmt(self, meta, children):
        name, dist = children
        return syntax.Guide(str(name), dist, self._span(meta), self._token_span(name))

    # ----- types ----------------------------------------------------------------------------

    def type(self, meta, children):
        elem, bounds, dims = children
        lower, upper = bounds if bounds is not None else (None, None)
        return syntax.Type(str(elem), lower, upper, tuple(dims or ()), self._span(meta))

    def bounds(self, meta, children):
        # Each child is ('lower', expr) or ('upper', expr); missing ones stay None.
        found = dict(children)
        return found.get("lower"), found.get("upper")

    def lower(self, meta, children):
        return "lower", children[-1]  # children: the LOWER token, the expression

    def upper(self, meta, children):
        return "upper", children[-1]

    def shape(self, meta, dims):
        return dims

    # ----- expressions ----------------------------------------------------------------------

    def number(self, meta, children):
        text = str(children[0])
        span = self._span(meta)
        is_int = not any(c in text for c in ".eE")
        if is_int and len(text) > _MAX_INT_DIGITS:
            raise errors.bad_number(span, text, "too many digits")
        try:
            value = int(text) if is_int else float(text)
        except ValueError:  # fewer digits allowed by PYTHONINTMAXSTRDIGITS
            raise errors.bad_number(span, text, "too many digits") from None
        return syntax.Number(value, is_int, text, span)

    def name(self, meta, children):
        return syntax.Name(str(children[0]), self._span(meta))

    def paren(self, meta, children):
        # The parentheses are only grouping: the inner node keeps its own span.
        return children[0]

    def neg(self, meta, children):
        _, operand = children
        return syntax.Unary("-", operand, self._span(meta))

    def binary(self, meta, children):
        left, op, right = children
        return syntax.Binary(str(op), left, right, self._span(meta))

    def chained(self, meta, children):
        # The grammar accepts `a < b < c` only so that the error can say what is wrong.
        second = children[3]
        raise errors.chained_comparison(self._token_span(second))

    def vector(self, meta, children):
        return syntax.Vector(tuple(children), self._span(meta))

    def newaxis(self, meta, children):
        return syntax.NewAxis(self._span(meta))

    def index(self, meta, children):
        base, *items = children
        return syntax.Index(base, tuple(items), self._span(meta))

    def slice(self, meta, children):
        start, stop = children
        return syntax.Slice(start, stop, self._span(meta))

    def call(self, meta, children):
        func, *rest = children
        args, kwargs = [], []
        for arg in rest:
            if arg is None:  # `f()`: the optional argument list is absent
                continue
            (kwargs if isinstance(arg, syntax.Keyword) else args).append(arg)
        return syntax.Call(str(func), tuple(args), tuple(kwargs), self._span(meta),
                           self._token_span(func))

    def keyword(self, meta, children):
        name, value = children
        return syntax.Keyword(str(name), value, self._span(meta))
