"""FitOptions: every fit option, its default and its meaning, read by both the API and the CLI."""
from __future__ import annotations

from dataclasses import dataclass, fields

from .errors import bad_option
from .guides import check_spec

GUIDES = ("meanfield", "fullrank", "lowrank", "flow")  # with 'lowrank:R' and 'flow:K'
OPTIMIZERS = ("adam", "sgd", "stan")
PRECONDITIONERS = ("hessian", "none")


@dataclass(frozen=True)
class FitOptions:
    """Options of one ADVI fit. Defaults are chosen to work on the example models.

    Attributes
    ----------
    guide : variational family on the unconstrained space: 'meanfield' (diagonal Gaussian),
        'fullrank' (dense Gaussian, up to 2000 dimensions), 'lowrank' or 'lowrank:R' (diagonal
        plus rank R; R = ceil(sqrt(D)) by default) or 'flow' or 'flow:K' (K affine coupling
        layers, 4 by default). The richer families are warm-started from a mean-field fit
        (the flow from a full-rank one); see docs/guides.md.
    iter : maximum number of optimization steps.
    lr : base step size; None picks it by the eta search (as CmdStan's adaptation does).
    mc_samples : S, Monte Carlo draws per ELBO-gradient estimate.
    draws : posterior draws taken from the fitted guide for summaries and files.
    seed : seed of the one numpy Generator of the fit; same seed, same result.
    optimizer : 'adam' (default), 'sgd' (with momentum) or 'stan' (Stan's adaptive step-size
        sequence, Kucukelbir et al. 2017).
    precondition : 'hessian' (default): from the first plateau on, the optimizer moves the guide's
        mean in coordinates whitened by the expected Hessian of the log density under the
        guide (precondition.py), which makes correlated posteriors converge; 'none' keeps the
        model's own coordinates. Only used up to 300 unconstrained dimensions.
    stl : use the 'sticking the landing' gradient (Roeder et al. 2017).
    tol : convergence tolerance on the relative change of the windowed mean ELBO.
    window : steps per ELBO window of the convergence rule.
    init_scale : initial sigma of the guide (mu starts at 0, the unconstrained origin).
    """

    guide: str = "meanfield"
    iter: int = 10_000
    lr: float | None = None
    mc_samples: int = 5
    draws: int = 1000
    seed: int = 0
    optimizer: str = "adam"
    precondition: str = "hessian"
    stl: bool = False
    tol: float = 1e-3
    window: int = 100
    init_scale: float = 0.1

    def __post_init__(self):
        check_spec(self.guide)
        if self.precondition not in PRECONDITIONERS:
            raise bad_option("precondition", f"unknown preconditioner {self.precondition!r}; "
                             f"choose one of {PRECONDITIONERS}")
        if self.optimizer not in OPTIMIZERS:
            raise bad_option("optimizer",
                             f"unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}")
        for name in ("iter", "mc_samples", "draws", "window"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad_option(name, f"must be a positive integer; found {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise bad_option("seed", f"must be a non-negative integer; found {self.seed!r}")
        for name in ("tol", "init_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise bad_option(name, f"must be a positive number; found {value!r}")
        if self.lr is not None and (not isinstance(self.lr, (int, float)) or not self.lr > 0):
            raise bad_option("lr", f"must be a positive number; found {self.lr!r}")

    @classmethod
    def from_kwargs(cls, **kwargs) -> "FitOptions":
        """Build from keyword arguments, refusing unknown names with a clear error."""
        known = {f.name for f in fields(cls)}
        for key in kwargs:
            if key not in known:
                from .errors import suggest
                raise bad_option(key, f"unknown option{suggest(key, known)}")
        return cls(**kwargs)
