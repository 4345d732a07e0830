"""The nesting limit: an expression nested deeper than ``MAX_DEPTH`` is a located error.

Every later stage (checker, compiler, evaluator, printer) walks expressions recursively, and
Python's stack holds about a thousand frames; this check, made once on the parse tree without
recursion, keeps them all far from that limit. Real models nest a dozen levels or so.
"""
from __future__ import annotations

from lark import Tree

from .. import errors
from ..source import Source, Span

MAX_DEPTH = 200


def check_depth(tree: Tree, source: Source) -> None:
    """Raise ``too_deeply_nested`` at the first subtree deeper than ``MAX_DEPTH`` levels."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            meta = node.meta
            span = (Span(source, meta.line, meta.column, meta.end_line, meta.end_column)
                    if not meta.empty else source.end_span())
            raise errors.too_deeply_nested(span, MAX_DEPTH)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
