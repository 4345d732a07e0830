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
    what = ("this model" if draws_per_step == 1
            else f"--mc-samples {draws_per_step} (draws per step) on this model")
    _check(model, draws_per_step, 1, 0, what, limit)


def check_step(model: ir.Model, draws_per_step: int, guide_floats: int, what: str,
               limit: int | None = None, family: str | None = None) -> None:
    """Refuse a gradient step at ``draws_per_step`` draws that would need more than ``limit``
    bytes: each value of the log joint that depends on a latent and its gradient (the backward
    pass makes one array per value), and ``guide_floats`` per draw for the family's own arrays
    (:func:`guide_floats`). ``what`` names the option in the message; ``family``, the guide
    family, is named instead of a statement when its arrays outweigh every statement's."""
    _check(model, draws_per_step, 2, guide_floats, what, limit, family)


def guide_floats(guide, D: int) -> int:
    """Floats per draw a family's step holds besides the log joint's values, a lower bound:
    the noise, the draw and its cotangent (3 D), and what the family saves for its backward
    pass (``guide.saved_floats``, a flow's layers)."""
    return 3 * D + getattr(guide, "saved_floats", 0)


def _check(model, draws_per_step, per_value, guide_floats, what, limit, family=None) -> None:
    limit = available() if limit is None else limit
    guide_bytes = guide_floats * draws_per_step * _BYTES
    total, worst, worst_bytes = guide_bytes, None, -1
    for statement in model.statements:
        own = _size(statement.shape) * draws_per_step if isinstance(statement, ir.Latent) else 0
        for expr in _statement_exprs(statement):
            for node in ir.walk(expr):
                own += _size(node.shape) * (draws_per_step * per_value if node.deps else 1)
        own *= _BYTES
        total += own
        if own > worst_bytes:
            worst, worst_bytes = statement, own
    if total > limit and family is not None and guide_bytes > worst_bytes:
        raise errors.too_much_memory(None, what, total, limit, family)
    if total > limit:
        raise errors.too_much_memory(worst.span if worst is not None else None, what, total,
                                     limit)


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


def check_summary(n_draws: int, model: ir.Model, limit: int | None = None,
                  values: dict | None = None, value_draws: int = 0) -> None:
    """Refuse, before the fit, a model whose summary needs more than ``limit`` bytes, naming
    the statement that needs the most: a let over 10^6 rows at 4000 draws is 32 GB, and a
    leading '_' keeps it out of the summary; the probabilities of a discrete latent of 100
    elements with 10^4 values, at 4000 draws, 32 GB.

    ``values``, name -> [K] (``compiled.values()``), gives each discrete latent's values;
    its conditional probabilities [value_draws, *shape, K] (at the summary's draws) are
    held whole while the summary's ``n_draws`` draws are made, and then while one row
    ``z[3]=1`` per element and value is made from them.
    """
    limit = available() if limit is None else limit
    values = values or {}
    reported = _reported(model)
    # A lower bound of the peak: the probabilities with the larger of the summary's draws of
    # every reported value (n_draws of _reported_size each) and the probabilities' rows (five
    # floats each). Not counted: draws() (the draws option's draws, cached), the rows' Python
    # objects (about 50 floats' worth each), the enumeration's temporaries (posterior.draw_chunk
    # keeps those near optim.SCORE_ELEMENTS elements each).
    own = {s.name: n_draws * _reported_size(s) for s in reported}
    probabilities = {s.name: value_draws * _size(s.shape) * len(values[s.name])
                     for s in reported if s.name in values}
    rows = sum(5 * _size(s.shape) * len(values[s.name]) for s in reported if s.name in values)
    needed = (sum(probabilities.values()) + max(sum(own.values()), rows, 1)) * _BYTES
    if needed > limit:
        worst = max(reported, key=lambda s: max(own[s.name], probabilities.get(s.name, 0)))
        if probabilities.get(worst.name, 0) > own[worst.name]:
            raise errors.probabilities_too_large(worst.span, worst.name, _size(worst.shape),
                                                 len(values[worst.name]), value_draws,
                                                 needed, limit)
        raise errors.summary_too_large(worst.span, worst.name, isinstance(worst, ir.Let),
                                       n_draws, needed, limit)


def check_probabilities(n_draws: int, model: ir.Model, values: dict,
                        limit: int | None = None) -> None:
    """Refuse ``n_draws`` draws of the discrete latents' conditional probabilities [n_draws,
    *shape, K] (``Fit.probabilities_by_draw``; ``values``: name -> [K]) when they alone exceed
    ``limit``, naming the latent with the most."""
    limit = available() if limit is None else limit
    latents = [s for s in _reported(model) if s.name in values]
    sizes = {s.name: n_draws * _size(s.shape) * len(values[s.name]) for s in latents}
    needed = sum(sizes.values()) * _BYTES
    if needed > limit:
        worst = max(latents, key=lambda s: sizes[s.name])
        raise errors.probabilities_too_large(worst.span, worst.name, _size(worst.shape),
                                             len(values[worst.name]), n_draws, needed, limit)


def affordable_draws(model: ir.Model, limit: int | None = None,
                     values: dict | None = None) -> int:
    """Draws of every reported value, and of the conditional probabilities of the discrete
    latents whose values ``values`` gives (name -> [K]), that take at most half of ``limit``
    (the machine's memory): the other half for their statistics and the draws written out."""
    limit = available() if limit is None else limit
    values = values or {}
    per_draw = sum(_reported_size(s) * (1 + len(values.get(s.name, ())))
                   for s in _reported(model))
    per_draw = max(per_draw, 1) * _BYTES
    return max(1, limit // (2 * per_draw))
