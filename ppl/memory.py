"""Memory estimates, made before anything is allocated: a model or an option that would need
more memory than the machine has is refused with the figure, not a MemoryError later.

The figures are lower bounds of the peak: every expression's value is kept for the gradient
(autograd records each intermediate), so the log joint needs at least the sum of its
expressions' sizes, times the draws per step for those that depend on latents.
"""
from __future__ import annotations

import math
import os

from . import errors, ir

_BYTES = 8  # float64 and int64


def available() -> int:
    """Physical memory in bytes (a large figure when the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2 ** 50


def _size(shape) -> int:
    # Python ints: exact for any declared size (np.prod would wrap at 2^63)
    return math.prod(d for d in shape if isinstance(d, int))


def _statement_exprs(statement):
    if isinstance(statement, ir.Latent):
        return [p for _, p in statement.dist.params]
    if isinstance(statement, ir.Let):
        return [statement.value]
    if isinstance(statement, ir.Observe):
        return [statement.value] + [p for _, p in statement.dist.params]
    return []


def check_model(model: ir.Model, draws_per_step: int = 1, limit: int | None = None) -> None:
    """Refuse a concretely checked model whose log joint would need more than ``limit`` bytes
    (the machine's memory by default) at ``draws_per_step`` draws, naming the statement that
    needs the most."""
    limit = available() if limit is None else limit
    total, worst, worst_bytes = 0, None, -1
    for statement in model.statements:
        own = _size(statement.shape) * draws_per_step if isinstance(statement, ir.Latent) else 0
        for expr in _statement_exprs(statement):
            for node in ir.walk(expr):
                own += _size(node.shape) * (draws_per_step if node.deps else 1)
        own *= _BYTES
        total += own
        if own > worst_bytes:
            worst, worst_bytes = statement, own
    if total > limit:
        what = ("this model" if draws_per_step == 1
                else f"--mc-samples {draws_per_step} (draws per step) on this model")
        raise errors.too_much_memory(worst.span, what, total, limit)


def check_draws(n_draws: int, model: ir.Model, option: str,
                limit: int | None = None) -> None:
    """Refuse ``n_draws`` draws of every reported value and observed expression (posterior
    and predictive draws) when they exceed ``limit``."""
    limit = available() if limit is None else limit
    per_draw = sum(_size(s.shape) for s in model.statements if isinstance(s, ir.Latent))
    per_draw += sum(_size(s.value.shape) for s in model.statements
                    if isinstance(s, ir.Let) and s.reported or isinstance(s, ir.Observe))
    needed = n_draws * max(per_draw, 1) * _BYTES
    if needed > limit:
        raise errors.too_much_memory(None, f"{option} {n_draws}", needed, limit)


def _reported(model: ir.Model) -> list:
    """The statements whose values every draw reports: latents and reported lets."""
    return [s for s in model.statements if isinstance(s, ir.Latent)
            or isinstance(s, ir.Let) and s.reported]


def _reported_size(statement) -> int:
    return _size(statement.shape if isinstance(statement, ir.Latent) else statement.value.shape)


def check_summary(n_draws: int, model: ir.Model, limit: int | None = None) -> None:
    """Refuse, before the fit, a model whose reported values at the summary's ``n_draws``
    draws exceed ``limit``, naming the largest reported let: a let over 10^6 rows at 4000
    draws is 32 GB, and a leading '_' keeps it out of the summary."""
    limit = available() if limit is None else limit
    reported = _reported(model)
    needed = n_draws * max(sum(_reported_size(s) for s in reported), 1) * _BYTES
    if needed > limit:
        worst = max(reported, key=_reported_size)
        raise errors.summary_too_large(worst.span, worst.name, isinstance(worst, ir.Let),
                                       n_draws, needed, limit)


def affordable_draws(model: ir.Model, limit: int | None = None) -> int:
    """Draws of every reported value that take at most half of ``limit`` (the machine's
    memory): the other half for their statistics and the draws written out."""
    limit = available() if limit is None else limit
    per_draw = max(sum(_reported_size(s) for s in _reported(model)), 1) * _BYTES
    return max(1, limit // (2 * per_draw))
