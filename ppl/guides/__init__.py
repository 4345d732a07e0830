"""Variational families on the unconstrained space [D], one module per family, and their registry.

Every family has the same protocol: ``init(D, init_scale)``, ``eps_dim(D)``, reparameterized
``draw(theta, eps)``, ``draw_and_entropy(theta, eps)``, ``log_q(theta, zeta)``, numpy
``sample(theta, rng, n)``, ``mean`` and ``log_sd`` (for reports), ``jitter_scale`` (the
convergence rule's units), ``frame``/``push_affine``/``warm_start`` (warm starts and whitened
coordinates) and ``to_dict``/``from_dict`` (fit.json). Optional: ``draw_with_pullback`` (the
ELBO's step with only the log joint traced, infer/elbo.py), ``draw_and_log_q(theta, eps)``
(log q at the draws from their noise, without an inverse or a solve: posterior.py's
importance weights) and ``fixed_draws = True`` with ``units(theta)`` (advi fits the family
by L-BFGS-B on rounds of fixed draws, infer/fixed_draws.py, instead of its step loop:
scaled.py).
The engine (``ppl.infer``) never looks inside ``theta``.
"""
from __future__ import annotations

from ..errors import bad_option, guide_too_large, rank_too_large
from .flow import MAX_DIM as FLOW_MAX_DIM
from .flow import DEFAULT_LAYERS, Flow
from .fullrank import MAX_DIM as FULLRANK_MAX_DIM
from .fullrank import FullRank
from .lowrank import LowRank, default_rank
from .meanfield import MEAN_FIELD, MeanField
from .scaled import MAX_DIM as SCALED_MAX_DIM
from .scaled import Scaled

__all__ = ["MEAN_FIELD", "MeanField", "FullRank", "LowRank", "Flow", "Scaled", "FAMILIES",
           "SPECS", "family", "check_spec", "WARM_FROM", "SCALED_MAX_DIM"]

FAMILIES = ("meanfield", "fullrank", "lowrank", "flow", "scaled")
# every value --guide takes, as the error and `ppl fit --help` spell them
SPECS = ("auto", "meanfield", "fullrank", "lowrank[:R]", "flow[:K]", "scaled")
FLOW_KIND = "iaf"  # the flow's layers, chosen by measurement (docs/guides.md)
# The family each one is warm-started from (advi.py fits that one first).
# The flow from mean field (with its Hessian whitening), not full rank: as accurate, 30% less
# CPU (flow.py; under --guide auto the full-rank fit is at hand and is used instead).
WARM_FROM = {"fullrank": "meanfield", "lowrank": "meanfield", "flow": "meanfield",
             "scaled": "meanfield"}


def check_spec(spec: str) -> tuple[str, int | None]:
    """Parse a guide spec, ``name`` or ``name:N`` (``lowrank:R``, ``flow:K``).

    Returns
    -------
    (family name, N or None).

    Raises
    ------
    PplError (bad_option 'guide') for an unknown family, or an N that is not a positive
    integer or is given to a family without one.
    """
    if not isinstance(spec, str):
        raise bad_option("guide", f"must be a family name; found {spec!r}")
    name, _, number = spec.partition(":")
    if name not in FAMILIES and name != "auto":   # plain 'auto' never reaches here (options)
        from ..errors import suggest
        raise bad_option("guide", f"unknown guide {spec!r}{suggest(name, ('auto', *FAMILIES))} "
                         f"(families: {', '.join(SPECS)})")
    if not _:
        return name, None
    if name not in ("lowrank", "flow"):
        raise bad_option("guide", f"{name!r} takes no ':N' (only lowrank:R and flow:K do)")
    # ASCII digits only: str.isdigit also accepts '²', on which int() raises (an internal
    # error), and other scripts' digits, which the saved fit's name would not show
    if not (number.isascii() and number.isdigit()) or int(number) < 1:
        what = "rank R" if name == "lowrank" else "number of layers K"
        raise bad_option("guide", f"the {what} in {spec!r} must be a positive integer")
    return name, int(number)


def family(spec: str, D: int, guided: bool = False):
    """The family named by ``spec`` for an unconstrained space of size D (``guided``: the
    latents without a guide statement of a model with guides or params, as errors say).

    Raises
    ------
    PplError : a bad spec (see :func:`check_spec`); ``fullrank`` beyond D = 2000, ``flow``
        beyond D = 300 or ``scaled`` beyond D = 20 (guide_too_large, suggesting lowrank, or the
        flow for scaled); a rank above D.
    """
    name, number = check_spec(spec)
    limit = {"fullrank": FULLRANK_MAX_DIM, "flow": FLOW_MAX_DIM, "scaled": SCALED_MAX_DIM}.get(name)
    if limit is not None and D > limit:
        raise guide_too_large(name, D, limit, guided)
    if name == "meanfield":
        return MEAN_FIELD
    if name == "fullrank":
        return FullRank(D)
    if name == "scaled":
        return Scaled(D)
    if name == "flow":
        return Flow(D, number or DEFAULT_LAYERS, FLOW_KIND)
    if number is not None and number > max(D, 1):
        raise rank_too_large(number, D, guided)
    return LowRank(D, number or default_rank(D))
