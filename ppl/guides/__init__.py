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
scaled.py), ``prepare(eps)`` (rows computed from the draws alone, once a round there,
handed back to ``draw_with_pullback`` as ``prepared``), and ``stacked_start(source, theta)``
(the start, in the frame of ``source``'s affine part, at which the family is the fit
``source`` at ``theta``, or None: a flow warm-started from a flow with fewer layers, advi.py).
The engine (``ppl.infer``) never looks inside ``theta``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import bad_option, guide_too_large, rank_too_large
from .flow import MAX_DIM as FLOW_MAX_DIM
from .flow import MAX_LAYERS as FLOW_MAX_LAYERS
from .flow import DEFAULT_LAYERS, Flow
from .fullrank import AUTO_MAX_DIM as AUTO_FULLRANK_MAX_DIM
from .fullrank import MAX_DIM as FULLRANK_MAX_DIM
from .fullrank import FullRank
from .lowrank import LowRank, default_rank
from .meanfield import MEAN_FIELD, MeanField
from .scaled import MAX_DIM as SCALED_MAX_DIM
from .scaled import Scaled
from .student import DEFAULT_NU, MAX_NU, StudentT

__all__ = ["MEAN_FIELD", "MeanField", "FullRank", "LowRank", "Flow", "Scaled", "StudentT",
           "FAMILIES",
           "SPECS", "family", "check_spec", "WARM_FROM", "SCALED_MAX_DIM", "Family", "REGISTRY",
           "GAUSSIAN", "AUTO_FULLRANK_MAX_DIM"]

FLOW_KIND = "iaf"  # the flow's layers, chosen by measurement (docs/guides.md)


@dataclass(frozen=True)
class Family:
    """Everything the rest of ppl needs to know about one family: adding a family is its own
    module plus one record in REGISTRY (and a row in tests/unit/test_guides.py's tables)."""
    name: str
    build: Callable   # build(D, N or None, guided) -> the family for D dimensions
    # what ':N' sets, as errors name it ('rank R'; its last word is the letter --guide shows);
    # None: the family takes no ':N'. Its default when not given is in build.
    size: str | None = None
    max_size: int | None = None     # the largest ':N' taken (check_spec)
    max_dim: int | None = None      # beyond it, guide_too_large, which suggests ``beyond``
    beyond: str | None = None       # the family to use past max_dim (one with a ':N')
    # beyond it --guide auto's ladder takes the next family of its rung (infer/ladder.py's
    # RUNGS) or none; None: as far as max_dim
    auto_max_dim: int | None = None
    warm_from: str | None = None    # the family advi.py fits first and starts this one from
    gaussian: bool = False          # a Gaussian: DADVI can fit it (options.py); auto's check
    # its place from the least to the most flexible, for the verdict's 'try --guide X'
    # (verdict.py), which names only the suggested families: a fit of one not suggested is
    # pointed to the next suggested one above it
    flexibility: int = 0
    suggested: bool = True

    @property
    def auto_limit(self) -> int | None:
        """The most dimensions --guide auto tries this family on (None: any)."""
        return self.auto_max_dim if self.auto_max_dim is not None else self.max_dim

    @property
    def letter(self) -> str:
        """The letter of ':N', 'R' in 'lowrank:R'."""
        return self.size.split()[-1]

    @property
    def spec(self) -> str:
        """As the error and `ppl fit --help` spell it: 'lowrank[:R]'."""
        return f"{self.name}[:{self.letter}]" if self.size else self.name


def _low_rank(D: int, rank: int | None, guided: bool):
    if D == 0:
        # nothing for the family to draw (params alone, or a guide statement for every
        # latent): the fit warns that --guide has no effect, as for any other family; a
        # rank of 2 was an error here, 'larger than the 0 dimensions'
        return LowRank(0, default_rank(0))
    if rank is not None and rank > D:
        raise rank_too_large(rank, D, guided)
    return LowRank(D, rank or default_rank(D))


# The flow is warm-started from mean field (with its Hessian whitening), not full rank: as
# accurate, 30% less CPU (flow.py; under --guide auto the full-rank fit is at hand and is used
# instead).
REGISTRY = {f.name: f for f in (
    Family("meanfield", lambda D, n, guided: MEAN_FIELD, gaussian=True, flexibility=0),
    Family("fullrank", lambda D, n, guided: FullRank(D), max_dim=FULLRANK_MAX_DIM,
           beyond="lowrank", auto_max_dim=AUTO_FULLRANK_MAX_DIM, warm_from="meanfield",
           gaussian=True, flexibility=2),
    Family("lowrank", _low_rank, size="rank R", warm_from="meanfield", gaussian=True,
           flexibility=1),
    Family("flow", lambda D, n, guided: Flow(D, n or DEFAULT_LAYERS, FLOW_KIND),
           size="number of layers K", max_size=FLOW_MAX_LAYERS, max_dim=FLOW_MAX_DIM,
           beyond="lowrank", warm_from="meanfield", flexibility=5),
    # between full rank and the flow; not suggested itself (auto tries it where full rank is
    # skipped). Past its 20 dimensions, the flow's domain (300)
    Family("scaled", lambda D, n, guided: Scaled(D), max_dim=SCALED_MAX_DIM, beyond="flow",
           warm_from="meanfield", flexibility=4, suggested=False),
    # full rank's frame with heavier tails; not suggested itself (auto assesses a full-rank fit
    # under it, infer/auto.py's T_GATE), nor tried as a rung of its own
    Family("studentt", lambda D, n, guided: StudentT(D, n or DEFAULT_NU),
           size="degrees of freedom NU", max_size=MAX_NU, max_dim=FULLRANK_MAX_DIM,
           beyond="lowrank", warm_from="meanfield", flexibility=3, suggested=False))}

# The views other modules read
FAMILIES = tuple(REGISTRY)
# every value --guide takes, as the error and `ppl fit --help` spell them
SPECS = ("auto", *(f.spec for f in REGISTRY.values()))
WARM_FROM = {f.name: f.warm_from for f in REGISTRY.values() if f.warm_from}
GAUSSIAN = tuple(f.name for f in REGISTRY.values() if f.gaussian)


def check_spec(spec: str) -> tuple[str, int | None]:
    """Parse a guide spec, ``name`` or ``name:N`` (``lowrank:R``, ``flow:K``).

    Returns
    -------
    (family name, N or None).

    Raises
    ------
    PplError (bad_option 'guide') for an unknown family, or an N that is not a positive
    integer, is above the family's ``max_size`` or is given to a family without one.
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
    record = REGISTRY.get(name)
    if record is None or record.size is None:
        sized = " and ".join(f"{f.name}:{f.letter}" for f in REGISTRY.values() if f.size)
        raise bad_option("guide", f"{name!r} takes no ':N' (only {sized} do)")
    # ASCII digits only: str.isdigit also accepts '²', on which int() raises (an internal
    # error), and other scripts' digits, which the saved fit's name would not show
    if not (number.isascii() and number.isdigit()) or int(number) < 1:
        raise bad_option("guide", f"the {record.size} in {spec!r} must be a positive integer")
    if record.max_size is not None and int(number) > record.max_size:
        raise bad_option("guide", f"the {record.size} in {spec!r} is at most {record.max_size}")
    return name, int(number)


def family(spec: str, D: int, guided: bool = False):
    """The family named by ``spec`` for an unconstrained space of size D (``guided``: the
    latents without a guide statement of a model with guides or params, as errors say).

    Raises
    ------
    PplError : a bad spec (see :func:`check_spec`); ``fullrank`` beyond D = 2000, ``flow``
        beyond D = 300 or ``scaled`` beyond D = 20 (guide_too_large, suggesting lowrank, or the
        flow for scaled up to the flow's own limit); a rank above D.
    """
    name, number = check_spec(spec)
    if name not in REGISTRY:   # 'auto' chooses among the families (infer/auto.py): a saved
        # fit naming it was read as low rank, then refused for a missing entry 'factor'
        raise bad_option("guide", f"'auto' is not a family (families: {', '.join(FAMILIES)})")
    limit, beyond = REGISTRY[name].max_dim, REGISTRY[name].beyond
    if limit is not None and D > limit:
        # the family suggested may be limited too: scaled's flow is refused above D = 300,
        # where its hint had sent the user on to a second refusal
        while (REGISTRY[beyond].max_dim or D) < D:
            beyond = REGISTRY[beyond].beyond
        raise guide_too_large(name, D, limit, beyond, REGISTRY[beyond].letter, guided)
    return REGISTRY[name].build(D, number, guided)
