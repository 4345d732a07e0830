"""The nesting limit: an expression nested deeper than ``MAX_DEPTH`` is a located error.

The checker, compiler, evaluator and printer walk expressions recursively, and Python's stack
holds about a thousand frames; this check, made once on the AST without recursion before the
checker runs, keeps them all far from that limit. Real models nest a dozen levels or so;
parentheses do not count (the AST has none).
"""
from __future__ import annotations

import dataclasses

from .. import errors
from . import syntax

MAX_DEPTH = 200


def _children(node):
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        for item in value if isinstance(value, tuple) else (value,):
            if dataclasses.is_dataclass(item) and hasattr(item, "span"):
                yield item


def check_depth(program: syntax.Program) -> None:
    """Raise ``too_deeply_nested`` at the first expression deeper than ``MAX_DEPTH`` levels
    (a statement is level 0)."""
    stack = [(statement, 0) for statement in program.statements]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise errors.too_deeply_nested(node.span, MAX_DEPTH)
        stack.extend((child, depth + 1) for child in _children(node))
