"""FitOptions: every fit option, its default and its meaning, read by both the API and the CLI."""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, fields

import numpy as np

from .errors import bad_option, unknown_choice
from .guides import GAUSSIAN, check_spec

CORRECTIONS = ("psis", "none")
OPTIMIZERS = ("adam", "sgd", "stan")
PRECONDITIONERS = ("hessian", "none")
METHODS = ("advi", "dadvi")


@dataclass(frozen=True)
class FitOptions:
    """Options of one ADVI fit. Defaults are chosen to work on the example models.

    Attributes
    ----------
    guide : 'auto' (default): mean field, then richer families while k̂ says the fit cannot
        be used (infer/auto.py, docs/trust.md); or one variational family on the
        unconstrained space: 'meanfield' (diagonal Gaussian),
        'fullrank' (dense Gaussian, up to 2000 dimensions), 'lowrank' or 'lowrank:R' (diagonal
        plus rank R; R = ceil(sqrt(D)) by default), 'flow' or 'flow:K' (K inverse autoregressive
        layers, 2 by default; 12x the draws per step), 'scaled' (a full-rank Gaussian bent by
        one autoregressive layer, for funnels; up to 20 dimensions, fitted by L-BFGS-B on rounds
        of fixed draws) or 'studentt' or 'studentt:NU' (full rank's frame with multivariate
        Student-t noise of NU degrees of freedom, 10 by default: heavier tails). The richer
        families are warm-started from a mean-field fit; see docs/guides.md.
    iter : maximum number of optimization steps of each family fitted (a warm start and each
        family ``--guide auto`` tries take up to ``iter`` steps of their own; scaled's steps
        are its L-BFGS-B iterations: at most 500, and up to 100 more in auto's further
        rounds).
    lr : base step size; when not given (None), the eta search picks it, as CmdStan's
        adaptation does (a mean-field fit whitened densely, up to 30 dimensions, takes its
        first window at 0.1 and searches after the whitening).
    mc_samples : S, Monte Carlo draws per ELBO-gradient estimate.
    draws : posterior draws taken from the fitted guide for files and the API (draws.csv,
        fit.draws(), predictive draws); the summary uses at least max(``draws``, 4000),
        more when importance weights are uneven (docs/trust.md).
    seed : seed (a non-negative integer) of the one numpy Generator of the fit; same seed,
        same result.
    optimizer : 'adam' (default), 'sgd' (with momentum) or 'stan' (Stan's adaptive step-size
        sequence, Kucukelbir et al. 2017).
    precondition : 'hessian' (default): after the first window, the optimizer moves the guide's
        mean in coordinates whitened by the expected Hessian of the log density under the
        guide (precondition.py; refreshed at every step-size decay; any number of dimensions,
        above 30 from 20 Hessian-vector products), which makes correlated posteriors converge;
        'none' keeps the model's own coordinates.
    stl : use the 'sticking the landing' gradient (Roeder et al. 2017): less noise as the
        guide nears the posterior, but with mean field on a correlated posterior far more
        (posteriordb: worst mean errors up to 28x the default's; docs/guides.md).
    tol : convergence tolerance: the relative change of the windowed mean ELBO that counts
        as a plateau; it also sets how far the step size is annealed (2 decays at 1e-3, one
        more per factor 10 tighter) and the largest final jitter of the iterates (0.2 guide
        sds at 1e-3, scaling with sqrt(``tol``)). Tighter: more steps, closer to the optimum.
    window : steps per ELBO window of the convergence rule (at least 2).
    init_scale : initial sigma of the guide (mu starts at 0, the unconstrained origin).
    correct : 'psis': when k̂ is below its threshold, summaries are weighted and draws
        resampled with the Pareto-smoothed importance weights (docs/trust.md); 'none': never.
    starts : independent fits from dispersed initializations and seeds, compared for
        agreement (infer/starts.py); the best (highest ELBO) is reported. At most 1000;
        above 1, not with --method dadvi, --batch or a model with param or guide statements.
    method : 'advi' (stochastic optimization) or 'dadvi' (deterministic ADVI: fixed draws,
        L-BFGS-B from a Laplace start, linear-response sds and Monte Carlo standard errors of
        the means; docs/dadvi.md). DADVI ignores ``correct``, ``iter``, ``lr``,
        ``mc_samples``, ``optimizer``, ``precondition``, ``stl``, ``tol`` and ``window`` (a
        warning names those set away from their defaults).
    dadvi_draws : M, the fixed standard-normal draws of DADVI's objective (at least 2).
    init : starting values of ``param`` statements: name -> value (a number or nested list of
        the param's shape, inside its bounds); the CLI reads them from a JSON file (--init
        FILE.json). Params not named start at a draw of their ``~ DIST``, else at small seeded
        random values.
    batch : minibatches: DIM=B (API {DIM: B}) draws B indices of the data dimension DIM at
        each step; data, lets and latents whose first axis is DIM are taken at them and their
        terms scaled by DIM / B (docs/minibatch.md). When not given (None): the whole data.
    """

    guide: str = "auto"
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
    correct: str = "psis"
    starts: int = 1
    method: str = "advi"
    dadvi_draws: int = 30
    init: dict | None = None
    batch: dict | None = None

    def __new__(cls, *args, **kwargs):
        # the dataclass's __init__ would refuse an unknown keyword (iters=3) with Python's
        # TypeError; it is an option error, as it is from fit(iters=3)
        known = [f.name for f in fields(cls)]
        if len(args) > len(known):
            raise bad_option("FitOptions", f"takes at most {len(known)} options by position "
                             f"({', '.join(known)}); found {len(args)}")
        for key in kwargs:
            if key not in known:
                from .errors import (CLI_ONLY_OPTIONS, cli_only_option, mcmc_option,
                                     suggest_option)
                if key in CLI_ONLY_OPTIONS:
                    raise cli_only_option(key)
                instead = mcmc_option(key)
                if instead is not None:
                    raise bad_option(key, instead)
                raise bad_option(key, f"unknown option{suggest_option(key, known)}")
        return super().__new__(cls)

    def __post_init__(self):
        if self.init is not None:   # kept as plain lists: fit.json records the options
            object.__setattr__(self, "init", _plain_init(self.init))
        if self.batch is not None:
            object.__setattr__(self, "batch", _plain_batch(self.batch))
        if self.guide != "auto":
            check_spec(self.guide)
        if self.precondition not in PRECONDITIONERS:
            raise unknown_choice("precondition", "preconditioner", self.precondition,
                                 PRECONDITIONERS)
        if self.optimizer not in OPTIMIZERS:
            raise unknown_choice("optimizer", "optimizer", self.optimizer, OPTIMIZERS)
        if self.correct not in CORRECTIONS:
            raise unknown_choice("correct", "correction", self.correct, CORRECTIONS)
        if self.method not in METHODS:
            raise unknown_choice("method", "method", self.method, METHODS)
        if self.method == "dadvi" and self.guide != "auto" and \
                check_spec(self.guide)[0] not in GAUSSIAN:
            gaussian = f"{', '.join(GAUSSIAN[:-1])} and {GAUSSIAN[-1]}"
            raise bad_option("guide", f"method dadvi fits the {gaussian} guides, not "
                             f"{check_spec(self.guide)[0]}")
        # numpy ints are stored as Python ints: fit.json records the options
        object.__setattr__(self, "dadvi_draws", check_integer(
            "dadvi_draws", self.dadvi_draws, 2,
            " (the Monte Carlo standard errors need two draws)"))
        for name in ("iter", "mc_samples", "draws", "window", "starts"):
            object.__setattr__(self, name, check_count(name, getattr(self, name)))
        if self.starts > MAX_STARTS:
            # every start is a whole fit: starts=10**9 ran fits until killed, printing nothing
            raise bad_option("starts", f"must be at most {MAX_STARTS} (each start is a whole "
                             f"fit); found {self.starts}")
        if self.window < 2:
            # the rule measures the iterates' spread within a window: one step has none
            raise bad_option("window", f"must be at least 2 steps; found {self.window}")
        object.__setattr__(self, "seed", check_seed("seed", self.seed))
        object.__setattr__(self, "stl", check_flag("stl", self.stl))
        for name in ("tol", "init_scale", "lr"):
            value = getattr(self, name)
            if name == "lr" and value is None:
                continue
            # inf would pass '> 0' and make every step non-finite
            if not _real(value) or not 0 < value < float("inf"):
                raise bad_option(name, f"must be a positive finite number; found {value!r}")


# --starts' upper bound: far beyond what a check of agreement needs (docs/trust.md uses 4), and
# low enough that a typed-in 10**9 is refused at once instead of running fits until killed
MAX_STARTS = 1000

_DEFAULTS = {f.name: f.default for f in fields(FitOptions)}

# help() and inspect show the fields as the constructor's keywords, not __new__'s (*args, **kwargs)
_init = inspect.signature(FitOptions.__init__)
FitOptions.__signature__ = _init.replace(parameters=list(_init.parameters.values())[1:])


# Options that steer ADVI's stochastic steps alone: DADVI's and a params-only fit's L-BFGS-B
# take none of them
STEPS = ("lr", "mc_samples", "optimizer", "precondition", "stl", "tol", "window")


def unused(options: FitOptions, kind: str) -> list[tuple[list[str], str]]:
    """The options set away from their defaults that a fit of ``kind`` does not use, grouped
    by why (each group its own reason, so no option is given another's): kind 'dadvi',
    'point' (params and nothing to draw: L-BFGS-B on the log joint), 'user' (ADVI with param
    or guide statements), 'batch' (minibatch ADVI), 'batch point' (minibatch steps on the log
    joint of a model of params alone), 'advi', or 'guided' (the options a fit whose every
    continuous latent has a guide statement does not use, besides its kind's)."""
    fixed_draws = (("dadvi_draws",), "only method dadvi draws fixed draws")
    groups = {
        "dadvi": [(STEPS + ("iter",), "method dadvi fits by L-BFGS-B on fixed draws, not by "
                   "ADVI's steps"),
                  # Fit.corrected: a DADVI summary keeps its linear-response sds
                  (("correct",), "a DADVI summary is never importance-corrected")],
        "point": [(STEPS + ("guide", "init_scale", "dadvi_draws", "correct"), "a model whose "
                   "only unknowns are params is fitted by L-BFGS-B on its log joint: nothing "
                   "is drawn, no guide is fitted")],
        "user": [(("precondition",), "a model with param or guide statements is fitted by "
                  "ADVI without whitening"), fixed_draws],
        "batch": [(("precondition",), "a minibatch fit takes ADVI's steps without whitening"),
                  fixed_draws],
        "batch point": [(("precondition",), "a minibatch fit takes ADVI's steps without "
                         "whitening"),
                        (("mc_samples", "stl", "guide", "init_scale", "dadvi_draws", "correct"),
                         "a model whose only unknowns are params is fitted on minibatches by "
                         "steps on its log joint: nothing is drawn, no guide is fitted")],
        "advi": [fixed_draws],
        "guided": [(("guide", "init_scale"), "every latent has a guide statement, so the "
                    "guide family draws none of them")],
    }[kind]
    found = [([n for n in names if getattr(options, n) != _DEFAULTS[n]], why)
             for names, why in groups]
    return [(names, why) for names, why in found if names]


def _plain_init(init) -> dict:
    """``init`` as name -> float or nested lists of floats; a clear error otherwise."""
    import numpy as np
    if not isinstance(init, dict):
        raise bad_option("init", f"must map param names to values; found {type(init).__name__}")
    plain = {}
    for name, value in init.items():
        try:
            # a boolean (JSON's true) or a string ("1.5") is not a number, as in data files:
            # float() took them, and true started the param at 1.0 (an int beyond int64 is
            # an object array, and is read as the nearest float, as for real data); None
            # (JSON's null) is no number either: float() made it NaN, called 'not finite'
            given = np.asarray(value)
            if given.dtype.kind in "bUS" or (given.dtype.kind == "O"
                                             and any(v is None for v in given.ravel())):
                raise ValueError
            array = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise bad_option("init", f"the value of '{name}' is not a number or an array of "
                             "numbers") from None
        plain[str(name)] = array.tolist()
    return plain


def _plain_batch(batch) -> dict:
    """``batch`` as {dim name: positive int B}: one dimension; 'N=128' is accepted too."""
    if isinstance(batch, str):
        name, sep, size = batch.partition("=")
        if not sep or not name.strip() or not size.strip().isdigit():
            raise bad_option("batch", f"must be DIM=B with B a positive integer; found {batch!r}")
        batch = {name.strip(): int(size)}
    if not isinstance(batch, dict) or len(batch) != 1:
        raise bad_option("batch", "must name one dimension and its batch size, e.g. "
                         f"{{'N': 128}}; found {batch!r}")
    (name, size), = batch.items()
    return {str(name): check_count(f"batch (the batch size of '{name}')", size)}


def check_integer(name: str, value, least: int, why: str = "") -> int:
    """``value`` as a Python int when it is an integer (a Python or numpy int, not a bool) of
    at least ``least``; else an option error naming ``name``, ``why`` said after the rule."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= least:
        return int(value)
    rule = {0: "a non-negative integer", 1: "a positive integer"}.get(
        least, f"an integer of at least {least}")
    raise bad_option(name, f"must be {rule}{why}; found {_shown(value)}")


def check_flag(name: str, value) -> bool:
    """``value`` as a bool when it is a Python or numpy bool; else an option error naming
    ``name`` (the string 'false' would be true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise bad_option(name, f"must be True or False; found {_shown(value)}")
    return bool(value)


def check_count(name: str, value) -> int:
    """A count of draws, steps or starts: a positive integer (:func:`check_integer`)."""
    return check_integer(name, value, 1)


def check_seed(name: str, value) -> int:
    """A seed of numpy's Generator: a non-negative integer (:func:`check_integer`)."""
    return check_integer(name, value, 0)


def _real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and \
        not isinstance(value, bool)


def check_seconds(name: str, value) -> float:
    """A duration: a finite number of at least 0."""
    if not _real(value) or not 0 <= value < math.inf:
        raise bad_option(name, f"must be a finite number of at least 0; found {_shown(value)}")
    return value


def check_progress(progress) -> None:
    """Refuse a ``progress`` that is not None or a callable taking (step, elbo, lr)."""
    if progress is None:
        return
    if not callable(progress):
        raise bad_option("progress", "must be None or a function called as progress(step, "
                         f"elbo, lr); found {_shown(progress)}")
    try:
        inspect.signature(progress).bind(0, 0.0, 0.0)
    except ValueError:      # no signature to inspect (some builtins): trust it
        return
    except TypeError:
        raise bad_option("progress", "must accept three arguments, progress(step, elbo, lr); "
                         f"found {_shown(progress)}") from None


def _shown(value) -> str:
    """repr(value), cut when long: a found value echoed in a message stays one line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
