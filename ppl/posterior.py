"""Fit: the result of one ADVI run, in the user's terms (element names, constrained values).

Draws come from the fitted guide pushed through the model's bijectors; summaries, predictive
draws and ArviZ export are computed from them. Nothing here changes the fitted guide.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import memory
from .errors import PplError, no_log_likelihood_group
from .options import check_count, check_flag, check_seconds
from .infer.early import log_weights
from .infer.optim import SCORE_ELEMENTS, draw_elements, score_chunk
from .infer.psis import Psis, psis, psis_draws
from .infer.verdict import Verdict, disagreement, judge, tails_disagreement
from .ir import Let, element_names
from .summary import COLUMNS, Summary, _moments, _points, _probability_rows

# After a --batch fit the guide's draws and densities are evaluated BATCH_CHUNK_ROWS draw-rows
# (draws x rows of the largest data array) at a time: bounded memory at any N
# (docs/minibatch.md). How many draws k̂ takes is psis.psis_draws's.
BATCH_CHUNK_ROWS = 2 ** 16
# The summary's effective sample size, at least (docs/trust.md, "How many draws the summary
# uses"): its Monte Carlo error is then at most 1 / sqrt(4000) = 0.016 posterior sd on a mean
# and about 1.1% on a near-Gaussian sd, for weights of finite variance. Corrected weights
# near k̂ 0.5 have heavy tails, whose ESS overstates the precision: at 2000, two fits of 160
# under auto on posteriordb missed issue 11's targets (0.1 sd, 15%) by the correction's
# Monte Carlo error alone, and 4000 met them with every family unchanged ("The summary's ESS
# doubled", docs/history/trust-log.md). Stan and ArviZ ask for an ESS of 400 (Vehtari et al. 2021):
# enough to estimate the error, at 0.05 sd; not enough to make it small. Unweighted, the PSIS
# draws (4000, iid) reach it; weighted, the guide is drawn again, up to PSIS_GROWTH times as
# many (k̂ and the verdict stay those of the first draws: near the threshold more draws move
# k̂ across it, which turned the correction off on a posteriordb posterior, docs/trust.md).
# PSIS_GROWTH 8, not 4: gp_pois_regr's scaled fits correct from weights with an ESS of 15-25%
# of their draws; seed 0's summary was 0.108 sd off from 16,000 draws, 0.094 from 22,000 and
# 0.017 from 64,000 (docs/history/trust-log.md, "Twelfth attempt"): the number of draws, not the
# weights.
SUMMARY_ESS = 4000
PSIS_GROWTH = 8
# The same bound element by element: the weights' ESS promises 1 / sqrt(SUMMARY_ESS) sd on a
# mean only for an element whose values do not grow with the weights. Where they do (the scale
# of a funnel, whose large values the Gaussian-like guide reaches rarely and weights heavily)
# the weighted mean's own standard error (the delta method, tails.weighted_moments) is larger:
# centered eight schools' tau under auto, seed 15, 0.037 sd at an ESS of 3,289 (0.017), its
# summary 0.111 sd off the reference. Corrected draws then grow until every reported mean's
# standard error is at most MEAN_MCSE of its sd, within the same PSIS_GROWTH cap.
MEAN_MCSE = 1 / np.sqrt(SUMMARY_ESS)


# Elements of the model's largest per-draw value (optim.draw_elements) times draws above which
# predictive draws and pointwise log-likelihoods are computed a score chunk of draws at a time:
# 2^27 is 1 GB a value. Below, one call, so those draws stay what they were (chunks take the
# random stream in another order); above, a model's lets at 1000 draws of 10^6 rows took
# several times the 8 GB of the draws themselves.
LARGE_DRAW_ELEMENTS = 2 ** 27


def unconverged(reason: str) -> str:
    """The verdict's words after "the optimizer did not converge", for the fit's ``reason``:
    "raise --iter" only where the iteration cap stopped it."""
    from .infer import advi, fixed_draws
    return {advi.INTERRUPTED: "it was interrupted",
            advi.FELL: "its ELBO fell (it diverged): try a smaller --lr",
            advi.NOT_AT_OPTIMUM: "it stopped away from the optimum (see the warning)",
            fixed_draws.STILL_RISING: "its ELBO was still rising after the last round of "
                                      "fixed draws"}.get(reason, "raise --iter")


def convergence_text(converged: bool, reason: str, steps: int, seconds: float, final: str,
                     unmoved_final_elbo: float | None = None, family: str = "") -> str:
    """The line under a fit's summary (``ppl fit``, and ``ppl summary`` from fit.json): whether
    and by which rule its steps converged, then ``final`` (its final ELBO and k̂, or log
    joint). A fit ``--guide auto`` changed after its steps (:func:`moved_how`, by the
    ``family`` reported) says so and the final ELBO the steps ended at
    (``unmoved_final_elbo``): the trace, steps and rule are theirs, ``final`` the moved fit's."""
    state = "converged" if converged else "did NOT converge"
    rule = reason.removeprefix("converged: ")
    if unmoved_final_elbo is None or np.isnan(unmoved_final_elbo):
        return f"{state} after {steps} steps in {seconds:.2f} s ({rule}); {final}"
    return (f"{state} after {steps} steps in {seconds:.2f} s ({rule}; the steps' final ELBO "
            f"{unmoved_final_elbo:.6g}), then {moved_how(family)}; {final}")


def moved_how(family: str) -> str:
    """How ``--guide auto`` changed a fit after its steps (AdviResult.moved), by the family
    the fit reports: a full-rank fit given Student-t noise in its frame (auto.heavier_tailed),
    else moved to its importance-weighted moments (auto.moment_matched)."""
    if family.partition(":")[0] == "studentt":
        return "given Student-t noise in the same frame"
    return "moved to its importance-weighted moments"


def by_draws(fn, zeta: np.ndarray, step, *args) -> dict[str, np.ndarray]:
    """fn(zeta, *args): name -> [n, ...], called ``step`` draws at a time (one call when step
    is at least n) and filled into its arrays in place: a list of chunks, then their
    concatenation, would hold the values twice."""
    if len(zeta) <= step:
        return {k: np.asarray(v) for k, v in fn(zeta, *args).items()}
    out = {}
    for i in range(0, len(zeta), step):
        for k, v in fn(zeta[i:i + step], *args).items():
            if k not in out:
                out[k] = np.empty((len(zeta), *np.shape(v)[1:]), np.result_type(v))
            out[k][i:i + step] = v
    return out


def large_draws(compiled, n: int) -> int | float:
    """Draws a call of ``compiled``'s outputs may take for ``n`` draws: all of them unless the
    largest per-draw value at n draws (at each value of a discrete latent) exceeds
    LARGE_DRAW_ELEMENTS, then the score chunk (:func:`draw_chunk`)."""
    model = getattr(compiled, "model", None)
    if model is None or n * draw_elements(model) * _most_values(compiled) <= LARGE_DRAW_ELEMENTS:
        return np.inf
    return draw_chunk(compiled)


def _most_values(compiled) -> int:
    """The most values of one of ``compiled``'s discrete latents; 1 without any."""
    values = compiled.values() if hasattr(compiled, "values") else {}
    return max((len(v) for v in values.values()), default=1)


def draw_chunk(compiled) -> int:
    """Draws a function over the whole data takes at a time: the score chunk
    (optim.score_chunk) without discrete latents; with them, SCORE_ELEMENTS over the largest
    per-draw value times the most values of a discrete latent, at least one draw: every
    statement a latent of K values reaches is evaluated at K rows per draw, with its densities'
    temporaries (enumeration.py). In one call, the summary's 4000 draws of 20 elements of 9001
    values each took 23 GB."""
    model = compiled.model
    k = _most_values(compiled)
    if k == 1:
        return score_chunk(model)
    return max(1, SCORE_ELEMENTS // (draw_elements(model) * k))


def _probabilities(compiled, zeta: np.ndarray, step) -> dict[str, np.ndarray]:
    """``compiled.probabilities(zeta)``, ``step`` draws at a time, laid out as one call lays
    them out ([n, *shape, K] views of [K, n, *shape] arrays, enumeration.conditional): their
    means over the draws (``Fit.probabilities``) are then those of one call, to the last bit.
    numpy's overflow at a far draw (a collapsed scale) is not warned of: a probability that
    is not finite is named by the summary, as a let's draws are."""
    with np.errstate(all="ignore"):
        if len(zeta) <= step:
            return compiled.probabilities(zeta)
        out = {}
        for i in range(0, len(zeta), step):
            for name, p in compiled.probabilities(zeta[i:i + step]).items():
                if name not in out:
                    out[name] = np.empty((p.shape[-1], len(zeta), *p.shape[1:-1]))
                out[name][:, i:i + step] = np.moveaxis(p, -1, 0)
    return {name: np.moveaxis(p, 0, -1) for name, p in out.items()}


def _per_chain(by_label: dict, observed: dict) -> dict[str, np.ndarray]:
    """An observed expression's values [n, ...] as ArviZ's one chain [1, n, ...]. A scalar
    observation gets an axis of length 1 too: ArviZ's from_dict makes its observed_data one
    (numpy's atleast_1d), and with the two dims apart az.loo_pit refused the observation
    ('y_hat must have 1 more dimension than y')."""
    return {label: values[None, ..., None] if np.ndim(observed[label]) == 0 else values[None]
            for label, values in by_label.items()}


def psis_draws_for(ess: float, n: int) -> int:
    """Guide draws for weights whose effective sample size was ``ess`` of ``n`` draws: the
    ESS grows in proportion to the draws, so n * SUMMARY_ESS / ess reaches SUMMARY_ESS; at
    most PSIS_GROWTH * n, and never fewer than n."""
    if not ess >= SUMMARY_ESS:     # also nan
        wanted = n * SUMMARY_ESS / ess if ess > 0 else np.inf
        return int(min(np.ceil(wanted), PSIS_GROWTH * n))
    return n


def psis_draws_for_means(worst_mcse: float, n: int) -> int:
    """Draws for a corrected summary whose largest standard error of a mean was ``worst_mcse``
    sds from ``n`` draws: the error falls as 1 / sqrt(draws), so n (worst_mcse / MEAN_MCSE)^2
    reaches MEAN_MCSE; never fewer than n (also for nan: no finite element to judge)."""
    if worst_mcse > MEAN_MCSE:
        return int(np.ceil(n * (worst_mcse / MEAN_MCSE) ** 2))
    return n


def dadvi_note(sds: str, draws: int | None = None, mcse: bool = True,
               discrete: bool = False) -> str:
    """The line under a DADVI summary saying which sds are shown and what 'mcse' is, or, for a
    fit restored from a folder saved before fit.json kept the sandwich directions (``mcse``
    False), that the column is not known. ``discrete``: the model has discrete latents, whose
    rows have no mcse (blank, nan in summary.csv, which said nothing of why)."""
    fixed = (f"DADVI's {draws} fixed draws and their mirrors" if draws
             else "DADVI's fixed draws")
    shown = ("linear-response (LRVB) sds" if sds == "linear response"
             else "the guide's own sds (linear response not computed: too many parameters)")
    if not mcse:
        return (f"sd: {shown}; no mcse column: this saved fit predates fit.json's "
                "dadvi.mcse_directions (its summary.csv has the column; fit again to compute it)")
    return (f"sd: {shown}; mcse: Monte Carlo standard error of the mean due to {fixed}"
            + ("; none for a discrete latent's values (summed out, not fitted)" if discrete
               else ""))


@dataclass
class Fit:
    """The fitted approximation of a model's posterior.

    Attributes
    ----------
    model : the concretely checked ``ir.Model``.
    compiled : its ``compiler.Compiled`` (log joint, layout, bijectors).
    result : the ``advi.AdviResult`` (guide parameters, ELBO trace, convergence).
    options : the ``FitOptions`` used.
    info : provenance (model and data paths, model hash) for saved fits.
    starts : the multi-start comparison (``starts.StartsReport``) when fitted with starts > 1.
    auto : the families tried (``auto.AutoReport``) when fitted with guide 'auto'.
    auto_alone : why guide 'auto' fitted mean field alone without climbing (one of auto.py's
        ALONE_ reasons), else None.
    climbing : whether this is a rung of auto's climb being assessed (api._assess; false
        again on the fit the climb returns): auto asks each rung's verdict, and the summary's
        draws and values for its Monte Carlo check would cost every rung what only the
        returned fit's summary needs.
    batch_meanfield : a --batch fit with a batched latent without a guide statement, which
        only mean field fits (infer/minibatch.py): the verdict's hint says so.
    """

    model: Any
    compiled: Any
    result: Any
    options: Any
    info: dict = field(default_factory=dict)
    starts: Any = None
    auto: Any = None
    auto_alone: str | None = None
    climbing: bool = False
    batch_meanfield: bool = False
    _cache: dict = field(default_factory=dict, repr=False)

    def __getattr__(self, name: str):
        # only for names the class does not have: NumPyro's mcmc.get_samples(), PyMC's and
        # ArviZ's .posterior say where ppl keeps them
        from .errors import other_tools_attribute
        raise other_tools_attribute(type(self).__name__, name)

    def __reduce_ex__(self, protocol):
        # pickle and joblib: the compiled model is Python closures, and pickle's error named
        # '_node.<locals>.<lambda>'; copy and deepcopy are below, as they were
        from .errors import fit_not_picklable
        raise fit_not_picklable()

    def __copy__(self) -> Fit:
        clone = object.__new__(Fit)
        clone.__dict__.update(self.__dict__)
        return clone

    def __deepcopy__(self, memo) -> Fit:
        import copy
        clone = object.__new__(Fit)
        memo[id(self)] = clone
        clone.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return clone

    # ----- convergence ------------------------------------------------------------------------

    @property
    def elbo(self) -> np.ndarray:
        """The ELBO estimate at every optimization step, [steps] (a copy: elbo.csv and
        ``ppl plot`` read the fit's own)."""
        return np.array(self.result.elbo, dtype=float)

    @property
    def converged(self) -> bool:
        """Whether the convergence rule stopped the optimization (see ``advi.fit``)."""
        return bool(self.result.converged)

    # ----- draws --------------------------------------------------------------------------------

    def _count(self, n, default: int) -> int:
        """The draws a method was asked for: ``default`` when ``n`` is None, else ``n`` checked
        as a count that the machine's memory holds (the CLI's --draws rule)."""
        if n is None:
            return default
        n = check_count("n", n)
        if self.model is not None:      # None: a test's stand-in model
            memory.check_draws(n, self.model, "n =")
        return n

    def _rng(self, purpose: int) -> np.random.Generator:
        # A child stream per purpose, derived from the fit's seed: draws and predictive draws
        # are reproducible and independent of each other and of the optimization's stream.
        return np.random.default_rng([self.options.seed, purpose])

    def _eps(self, n: int) -> np.ndarray:
        """The guide's standard-normal noise [n, eps_dim] behind ``draws(n)``."""
        guide = self.result.guide
        return self._rng(1).standard_normal((n, guide.eps_dim(len(self.result.names))))

    def _zeta(self, n: int) -> np.ndarray:
        guide, theta = self.result.guide, self.result.theta
        covariance = getattr(self.result, "lr_covariance", None)
        if covariance is not None and len(covariance):
            # DADVI: draws from the Gaussian with the linear-response covariance (docs/dadvi.md)
            eps = self._rng(1).standard_normal((n, len(self.result.names)))
            return guide.mean(theta) + eps @ np.linalg.cholesky(covariance).T
        return self._chunked(lambda eps: guide.draw(theta, eps), self._eps(n))

    def draws(self, n: int | None = None) -> dict[str, np.ndarray]:
        """Posterior draws of every latent and reported ``let``: name -> array [n, *shape].

        ``n`` defaults to the ``draws`` option; given, it is a positive int (numpy ints too),
        as for the other methods taking ``n``. The same fit gives the same draws, and the
        arrays are the caller's own: changing them in place changes nothing in the fit.
        """
        # a copy: the summary, to_arviz() and a saved fit read the cached draws, which a
        # caller's in-place `tau.sort()` or `theta -= theta.mean(0)` had silently changed
        return {name: values.copy() for name, values in self._draws(n).items()}

    def _draws(self, n: int | None = None) -> dict[str, np.ndarray]:
        """``draws(n)``, computed once per n: the fit's own arrays, read by ppl only."""
        n = self._count(n, self.options.draws)
        if n not in self._cache:
            # Discrete latents are drawn from their conditional posterior (child stream 3).
            self._cache[n] = self._constrained(self._posterior_zeta(n), self._rng(3))
        return self._cache[n]

    def probabilities(self, n: int | None = None) -> dict[str, np.ndarray]:
        """Posterior probabilities of each discrete latent's values, averaged over ``n`` draws
        of the continuous latents: name -> [*shape, K], K its number of values (listed by
        ``values()``). Without ``n``, the summary's: over its draws, with its weights when
        corrected (its mean column, and fit.json's)."""
        if n is None and self.values():
            self.summary()
            return {name: p.copy() for name, p in self._cache["probabilities"].items()}
        return {name: p.mean(axis=0) for name, p in self.probabilities_by_draw(n).items()}

    def probabilities_by_draw(self, n: int | None = None) -> dict[str, np.ndarray]:
        """Each discrete latent's conditional posterior given each of ``n`` posterior draws
        of the continuous latents: name -> [n, *shape, K]."""
        n = self._count(n, self.options.draws)
        if self.model is not None:      # None: a test's stand-in model
            memory.check_probabilities(n, self.model, self.values())
        return _probabilities(self.compiled, self._posterior_zeta(n),
                              self._draws_per_call(whole_data=True))

    def values(self) -> dict[str, np.ndarray]:
        """The values each discrete latent takes: name -> [K] ints (the caller's own copy)."""
        return {name: v.copy() for name, v in self.compiled.values().items()}

    def params(self) -> dict[str, np.ndarray]:
        """Each ``param``'s fitted value: name -> array of its shape (empty without params),
        the caller's own: an unbounded param's value was a view of the fitted parameters,
        so ``w /= w.sum()`` on it changed the fit's draws, summary and predictions."""
        if not getattr(self.compiled, "params", ()):
            return {}
        return {name: np.array(value) for name, value in
                self.result.guide.param_values(self.result.theta).items()}

    def summary(self) -> Summary:
        """Mean, sd and 5/50/95% quantiles of every reported element, from ``draws()``.

        When importance-corrected (see ``corrected``), weighted statistics of the guide's
        draws with the smoothed weights instead, and a note above the table says so. For a
        DADVI fit also the Monte Carlo standard error of each mean, and a note on the sds.
        A discrete latent's element ``z[3]`` gets one row per value, ``z[3]=1``: its posterior
        probability in the mean column; sd and quantiles are those of its conditional
        probability across the draws of the continuous latents.
        """
        if "summary" not in self._cache:
            self._cache["summary"] = _points(self._summary(), self._point_values())
        # a copy of its rows, as draws() and params() copy theirs: an edit of the table
        # returned (rows["a"] = ...) changed every later summary of the fit, and its saved files
        cached = self._cache["summary"]
        return replace(cached, rows=dict(cached.rows))

    def _point_values(self) -> dict[str, np.ndarray]:
        """The params, and the reported lets computed from params alone (``let v = 2 * w``):
        one value each, reported without an sd as the params are (LANGUAGE.md, param)."""
        params = self.params()
        if not params:
            return params
        draws = self._draws()
        lets = {s.name: draws[s.name][0] for s in self.compiled.model.statements
                if isinstance(s, Let) and s.reported and s.value.deps <= params.keys()
                and not s.data_only and s.name in draws}
        return {**params, **lets}

    def _summary(self) -> Summary:
        draws = self._draws()
        discrete = self.values()
        continuous = {k: v for k, v in draws.items() if k not in discrete}
        weights = None
        if hasattr(self.result, "mcse_directions"):      # DADVI
            from .infer.dadvi import mean_mcse
            # None: restored from a fit saved before fit.json kept the sandwich directions
            known = self.result.mcse_directions is not None
            mcse = (mean_mcse(self.compiled, self.result, self._eps(self.options.draws))
                    if known else None)
            zeta, pool = self._mirrored_pool(discrete)
            base = Summary.from_draws(pool, note=dadvi_note(
                self.result.sds, self.result.draws_used, known, bool(discrete)), mcse=mcse)
        elif not self.corrected:
            zeta, pool = self._summary_pool(discrete, continuous)
            base = Summary.from_draws(pool)
        else:
            p = self._summary_weights()
            zeta, weights = self._zeta(p.log_weights.size), np.exp(p.log_weights)
            pool = self._constrained(zeta, self._rng(3))
            worst = self._summary_mcse(pool)
            note = (f"importance-corrected (PSIS, k̂ {self.khat:.2f}, effective sample size "
                    f"{p.ess:.0f} of {p.log_weights.size} draws"
                    + (f"; Monte Carlo standard error of a mean at most {worst[1]:.3f} sd)"
                       if worst is not None else ")"))
            base = Summary.from_draws({k: v for k, v in pool.items() if k not in discrete},
                                      weights, note)
        if not discrete:
            return base
        # the probabilities at the continuous rows' own draws, with their weights: they were
        # those of the draws option's 1000 (resampled when corrected), a quarter of the
        # plain summary's draws, with twice its Monte Carlo error
        if self.model is not None:      # None: a test's stand-in model
            memory.check_probabilities(len(zeta), self.model, discrete)
        probabilities = _probabilities(self.compiled, zeta,
                                       self._draws_per_call(whole_data=True))
        self._cache["probabilities"] = {
            name: p.mean(axis=0) if weights is None else   # weight-0 draws take no part
            np.tensordot(weights[weights > 0], p[weights > 0], axes=1)
            for name, p in probabilities.items()}
        rows = {}   # in the order of draws(): each discrete latent's rows in its place
        # a DADVI summary's mcse column: none for a probability (blank, NaN), as for a param
        blank = (float("nan"),) * (len(base.columns) - len(COLUMNS))
        for name, values in draws.items():
            if name in discrete:
                rows.update((e, row + blank) for e, row in _probability_rows(
                    name, probabilities[name], discrete[name], weights).items())
            else:
                rows.update((e, base.rows[e]) for e in element_names(name, values.shape[1:]))
        return Summary(rows, base.columns, base.note)

    def _summary_pool(self, discrete: dict, continuous: dict):
        """(zeta [n, D], values at them) of the unweighted summary: the PSIS draws (max(draws,
        PSIS_DRAWS), iid, so their ESS reaches SUMMARY_ESS), not only the ``draws`` written
        out. Their values take no more memory than the log joint at them did. A point-only
        fit keeps its draws."""
        from .guides import user
        n = self._psis_draws()
        if n == self.options.draws or user.point_only(self.compiled):
            return self._zeta(self.options.draws), continuous
        zeta = self._zeta(n)
        pool = self._constrained(zeta, self._rng(3))
        return zeta, {k: np.asarray(v) for k, v in pool.items() if k not in discrete}

    def _mirrored_pool(self, discrete: dict):
        """(zeta, values at them) of a DADVI summary: max(draws, PSIS_DRAWS) of the Gaussian,
        the second half the first's mirror images about its mean. The unconstrained means are
        then the fit's own, and other means lose the odd orders of their Monte Carlo error:
        the summary's 1000 plain draws (the draws option) put 0.02-0.03 sds of noise of their
        own into the means of a linear regression, beside an mcse column of 1e-12 to 0.02 sds."""
        mean = np.asarray(self.result.guide.mean(self.result.theta), dtype=float)
        zeta = self._zeta((self._psis_draws() + 1) // 2)
        zeta = np.concatenate([zeta, mean - (zeta - mean)])
        pool = self._constrained(zeta, self._rng(3))
        return zeta, {k: np.asarray(v) for k, v in pool.items() if k not in discrete}

    def predictive(self, n: int | None = None, data=None) -> dict[str, np.ndarray]:
        """Posterior predictive draws of every observed expression: label -> [n, *shape].

        ``data`` (a dict or a path), if given, replaces the fitted data: the model is
        compiled again on it, so shapes and lets follow the new rows, and data that is only
        observed may be left out (ppl/predict.py)."""
        if data is not None:
            n = self.options.draws if n is None else check_count("n", n)
            from .predict import predictive_on  # checks n's memory on the new data
            return predictive_on(self, data, n)
        zeta = self._posterior_zeta(self._count(n, self.options.draws))
        return by_draws(self.compiled.predictive, zeta, large_draws(self.compiled, len(zeta)),
                        self._rng(2))

    def prior_predictive(self, n: int | None = None) -> dict[str, np.ndarray]:
        """Draws from the prior of the latents with every ``param`` at its fitted value, and
        every observed expression given them: name or label -> [n, *shape] (``n`` defaults
        to the ``draws`` option). A VAE's are new images: z from its prior through the
        fitted decoder. ``Model.prior_predictive`` draws the params too (from their
        distributions; without one, at their default start). Reproducible from the fit's
        seed, a stream of its own."""
        from .predict import warn_of_reweighting_factors
        n = self._count(n, self.options.draws)
        warn_of_reweighting_factors(self.model)
        return self.compiled.sample_prior(self._rng(6), n, self.params())   # 5: minibatches

    # ----- importance weights (PSIS) and the verdict ------------------------------------------

    def log_weights(self, n: int | None = None) -> np.ndarray:
        """log p(zeta) - log q(zeta) [n] at draws zeta [n, D] from the guide.

        log p is the compiled log joint on the unconstrained space (Jacobians included), so the
        weights are the importance ratios of posterior to guide up to a constant. ``n``
        defaults to max(draws option, PSIS_DRAWS); the draws are those of ``draws()`` before
        any correction. Entries are -inf, inf or NaN where the log density is not finite.
        """
        n = self._count(n, self._psis_draws())
        cached = self._cache.get("log_weights")
        if cached is not None and cached.size == n:
            # k̂'s own (``psis``), the same draws: auto's ELBO on them (auto.elbo_on_khat_draws)
            # had evaluated the log joint at all of them again
            return cached.copy()
        return self._log_weights_of(n, 0)

    def _log_weights_of(self, n: int, first: int) -> np.ndarray:
        """log p - log q [n - first] at the draws first..n-1 of ``_zeta(n)``."""
        guide, theta = self.result.guide, self.result.theta
        forward = getattr(guide, "draw_and_log_q", None)
        covariance = getattr(self.result, "lr_covariance", None)
        if forward is None or (covariance is not None and len(covariance)):
            return self._log_weights_at(self._zeta(n)[first:])
        # log q at the draws' own noise: no inverse (a flow: D passes a layer) or triangular
        # solve (full rank: scipy.linalg's import); equal to log_q(zeta) to rounding, and where
        # a collapsed scale rounds every draw to the guide's centre it still varies as the
        # guide's density does (a VAE fitted with --batch N=64 --lr 2: log q recomputed at
        # such draws tied every weight, k̂ -inf, 'usable with care'). The same weights as the
        # early stop's checks (infer/early.py), a score chunk at a time.
        eps = self._eps(n)[first:]
        step = int(min(self._draws_per_call(whole_data=True), max(len(eps), 1)))
        if self.options.batch is None:
            return log_weights(self.compiled.log_joint, guide, theta, eps, step)
        # after --batch the guide's draws go a chunk at a time too, as _zeta takes them: an
        # encoder over the data (a VAE's) has [draws, rows, hidden] temporaries
        return np.concatenate([log_weights(self.compiled.log_joint, guide, theta,
                                           eps[i:i + step], step)
                               for i in range(0, max(len(eps), 1), step)])

    def _log_weights_at(self, zeta: np.ndarray) -> np.ndarray:
        """log p - log q [n] at unconstrained draws zeta [n, D]."""
        with np.errstate(all="ignore"):   # overflow at a far draw is reported, not warned
            log_p = self._chunked(self.compiled.log_joint, zeta, whole_data=True)
            return log_p - self._chunked(self._log_q, zeta)

    def _chunked(self, f, x: np.ndarray, whole_data: bool = False) -> np.ndarray:
        """f(x) [n] for draws x [n, ...], in chunks of draws (``_draws_per_call``)."""
        step = self._draws_per_call(whole_data)
        if len(x) <= step:
            return np.asarray(f(x), dtype=float)
        return np.concatenate([np.asarray(f(x[i:i + step]), dtype=float)
                               for i in range(0, len(x), step)])

    def _constrained(self, zeta: np.ndarray, rng) -> dict[str, np.ndarray]:
        """``compiled.constrained`` at the draws zeta [n, D], as ``_chunked`` takes the log
        joint: a reported let over the data then costs its own values only, not its
        temporaries at 4000 draws at once (a let of 2 * 10^4 elements: 1.4 GB). The discrete
        latents' uniforms are drawn from ``rng`` first, for all the draws, as one call took
        them: the same draws whatever the chunks. Without numpy's warnings: a let that
        overflows at a far draw is inf there, and the summary names it (non_finite_summary)."""
        step = self._draws_per_call(whole_data=True)
        with np.errstate(all="ignore"):
            if not self.values():
                return by_draws(self.compiled.constrained, zeta, step, rng)
            uniforms = self.compiled.uniforms(rng, len(zeta))
            return by_draws(lambda rows: self.compiled.constrained(
                zeta[rows], uniforms={d: u[rows] for d, u in uniforms.items()}),
                np.arange(len(zeta)), step)

    def _draws_per_call(self, whole_data: bool) -> int | float:
        """Draws a function of the draws takes at a time, so memory does not grow with the
        data: after a --batch fit, BATCH_CHUNK_ROWS draw-rows (draws x rows of the largest data
        array); else, for a function over the whole data (``whole_data``: the log joint, the
        reported values), the step-size score's chunk (optim.score_chunk: about 10^6 elements
        of the model's largest per-draw value, at least 10 draws; :func:`draw_chunk` with
        discrete latents); else all. Without it k̂'s 4000 draws of a 10^5-row regression took
        3.1 GB at once (10^6 rows: 31 GB)."""
        if self.options.batch is None:
            model = getattr(self.compiled, "model", None)
            return np.inf if not whole_data or model is None else draw_chunk(self.compiled)
        rows = max([int(d.shape[0]) for d in self.model.data.values() if d.shape] or [1])
        return max(1, BATCH_CHUNK_ROWS // max(rows, 1))

    def _log_q(self, zeta: np.ndarray) -> np.ndarray:
        """log density [n] of the distribution ``_zeta`` draws from: the guide's or, for a
        DADVI fit with linear-response sds, the Gaussian with that covariance."""
        guide, theta = self.result.guide, self.result.theta
        covariance = getattr(self.result, "lr_covariance", None)
        if covariance is None or not len(covariance):
            return np.asarray(guide.log_q(theta, zeta), dtype=float)
        L = np.linalg.cholesky(covariance)
        z = np.linalg.solve(L, (zeta - guide.mean(theta)).T)
        return (-0.5 * np.sum(z * z, axis=0) - np.sum(np.log(np.diag(L)))
                - 0.5 * zeta.shape[1] * np.log(2 * np.pi))

    @property
    def psis(self) -> Psis:
        """Pareto-smoothed importance sampling on ``log_weights()`` (k̂, smoothed weights).

        k̂, its threshold and the verdict always come from these draws (max(draws,
        PSIS_DRAWS)); the corrected summary may weight more (:meth:`_summary_weights`).
        Its ``log_weights`` are the caller's own, as ``draws()`` are.
        """
        if "psis" not in self._cache:
            self._cache["log_weights"] = self.log_weights()
            self._cache["psis"] = psis(self._cache["log_weights"])
        # a copy: the verdict, weights_ess and a saved fit read the cached weights, which a
        # caller's in-place change (lw -= lw.max()) had silently changed
        p = self._cache["psis"]
        return replace(p, log_weights=p.log_weights.copy())

    def _summary_weights(self) -> Psis:
        """PSIS of the draws a corrected summary and its resampled draws are weighted from:
        those of :meth:`_ess_weights`, continued (the same stream) while a reported mean's
        standard error is above MEAN_MCSE of its sd (:func:`psis_draws_for_means`)."""
        if "summary_weights" not in self._cache:
            raw, p, most = self._ess_weights_raw()
            if most > raw.size and hasattr(self.compiled, "values"):
                values = self._constrained(self._zeta(raw.size), self._rng(3))
                _, worst = self._mean_mcse(self._column_blocks(values, raw.size)[1],
                                           p.log_weights)
                del values
                n = min(most, psis_draws_for_means(worst, raw.size))
                if n > raw.size:
                    p = psis(self._continued(raw, n))
            self._cache["summary_weights"] = p
        return self._cache["summary_weights"]

    def _ess_weights(self) -> Psis:
        """PSIS of the draws of ``psis``, continued (the same stream: the first ones are the
        same) while the weights' effective sample size is below SUMMARY_ESS
        (:func:`psis_draws_for`). The verdict reads their ESS, and auto asks every rung's
        verdict, not its summary: the means' further draws (:meth:`_summary_weights`) cost
        only the fit whose summary is shown. They would hardly move the verdict: its bound,
        MIN_SUMMARY_ESS, is a tenth of SUMMARY_ESS, so under it these draws are at their cap."""
        return self._ess_weights_raw()[1]

    def _ess_weights_raw(self) -> tuple[np.ndarray, Psis, int]:
        """(raw log weights, their PSIS, the most draws a summary may take) of
        :meth:`_ess_weights`: at most PSIS_GROWTH times k̂'s draws, within half the memory;
        not more after a --batch fit, where every draw costs a pass over the whole data."""
        if "ess_weights" not in self._cache:
            p = self.psis
            raw = self._cache["log_weights"]
            most = raw.size if self.options.batch is not None else PSIS_GROWTH * raw.size
            if self.model is not None:    # draws of a large let: half the memory at most
                # (auto's warm-start stand-ins for the compiled model have no values())
                values = self.values() if hasattr(self.compiled, "values") else None
                most = min(most, max(raw.size, memory.affordable_draws(self.model, values=values)))
            n = min(most, psis_draws_for(p.ess, raw.size))
            if n > raw.size:
                raw = self._continued(raw, n)
                p = psis(raw)
            self._cache["ess_weights"] = (raw, p, most)
        return self._cache["ess_weights"]

    def _continued(self, raw: np.ndarray, n: int) -> np.ndarray:
        """The log weights ``raw`` of the first draws continued to ``n`` draws (when more)."""
        if n <= raw.size:
            return raw
        return np.concatenate([raw, self._log_weights_of(n, raw.size)])

    @staticmethod
    def _mean_mcse(blocks: list[np.ndarray], log_weights: np.ndarray) -> tuple[int, float]:
        """(column, standard error in its weighted sd) of the weighted mean of ``blocks``'
        columns ([n, k] each: the reported continuous elements; columns counted across the
        blocks) whose error is the largest (tails.weighted_moments); (-1, nan) without a
        finite one."""
        return Fit._largest_errors(blocks, log_weights)[0]

    @staticmethod
    def _largest_errors(blocks: list[np.ndarray], log_weights: np.ndarray):
        """((column, error), (column, error)) of the weighted mean and of the weighted sd of
        ``blocks``' columns (as :meth:`_mean_mcse`) whose Monte Carlo standard error is the
        largest: the mean's in its sd, the sd's relative to it (that of log sd,
        tails.weighted_moments); (-1, nan) for one without a finite error."""
        from .infer.tails import weighted_moments
        weights, offset = np.exp(log_weights), 0
        worst = [(-1, -np.inf), (-1, -np.inf)]
        for values in blocks:
            with np.errstate(all="ignore"):
                _, sd, se_mean, se_log_sd = weighted_moments(values, weights)
                errors = (se_mean / sd, se_log_sd)
            for i, ratios in enumerate(errors):
                ratios[~np.isfinite(ratios)] = -np.inf
                if ratios.size and ratios.max() > worst[i][1]:
                    worst[i] = (offset + int(np.argmax(ratios)), float(ratios.max()))
            offset += values.shape[1]
        return tuple((column, error if column >= 0 else float("nan"))
                     for column, error in worst)

    def _summary_mcse(self, pool: dict | None = None) -> tuple[str, float] | None:
        """(element, its Monte Carlo standard error in its sd) of the corrected summary's mean
        whose error is the largest, at the draws the summary weights (:meth:`_summary_weights`;
        their values ``pool`` when the summary has them), or None without one: the first of
        :meth:`_summary_errors`. The note above the table and the verdict give it."""
        return self._summary_errors(pool)[0]

    def _summary_errors(self, pool: dict | None = None) -> tuple:
        """(the mean's, the sd's) of the corrected summary's elements whose Monte Carlo
        standard errors are the largest, each (element, error) or None: the mean's in its sd
        (:meth:`_summary_mcse`), the sd's relative to it (Fit._largest_errors). Computed once;
        (None, None) for a stand-in with a log joint only."""
        if not hasattr(self.compiled, "values"):
            return None, None
        if "summary_errors" not in self._cache:
            p = self._summary_weights()
            n = p.log_weights.size
            if pool is None:
                pool = self._constrained(self._zeta(n), self._rng(3))
            names, blocks = self._column_blocks(pool, n)
            self._cache["summary_errors"] = tuple(
                (names[column], error) if column >= 0 else None
                for column, error in self._largest_errors(blocks, p.log_weights))
        return self._cache["summary_errors"]

    @property
    def khat(self) -> float:
        """Pareto k̂ of the importance weights (see ``verdict``); may be -inf or inf."""
        return self.psis.khat

    @property
    def weights_ess(self) -> float:
        """The effective sample size of ``psis``'s smoothed weights, as a fraction of their
        draws (the verdict's nearly equal weights, verdict.matches_bulk)."""
        p = self.psis
        return p.ess / max(p.log_weights.size, 1)

    @property
    def corrected(self) -> bool:
        """Whether summaries and draws are importance-corrected: the ``correct`` option is
        'psis', the method ADVI (a DADVI summary keeps its linear-response sds and standard
        errors), the model has continuous latents (without them every weight is p(data))
        and k̂ is below its threshold (above it the weights cannot be trusted)."""
        if self.options.correct != "psis" or self.options.method != "advi":
            return False
        from .guides import user
        if user.point_only(self.compiled):   # nothing drawn: no weights to correct with
            return False
        if not len(self.result.names):
            # nothing to correct; the note had read 'importance-corrected (..., effective
            # sample size 4001 of 4001 draws)'
            return False
        p = self.psis
        return p.khat < p.threshold

    def verdict(self) -> Verdict:
        """What this fit can be trusted for, in one line (infer/verdict.py).

        Computed once for the fit's climb and starts reports (``auto``, ``starts``: they are
        set after the fit, and its hint names only the families auto did not try) and for
        ``climbing`` (cleared on the fit the climb returns): auto asks for a rung's verdict up
        to four times, a saved fit twice."""
        cached = self._cache.get("verdict")
        if cached is None or cached[0] is not self.auto or cached[1] is not self.starts \
                or cached[2] != self.climbing:
            cached = self._cache["verdict"] = (self.auto, self.starts, self.climbing,
                                               self._verdict_now())
        return cached[3]

    def _verdict_now(self) -> Verdict:
        from .guides import user
        from .infer.ladder import ladder
        from .infer.verdict import CARE, MIN_WEIGHTS_ESS, RELIABLE
        from .infer import advi
        if user.point_only(self.compiled):
            # nothing drawn: k̂ says nothing; the values are an optimum, not a posterior
            return Verdict(RELIABLE if self.converged else CARE,
                           "point estimates (maximum likelihood, or MAP for params with a "
                           "distribution): values only, no posterior sds"
                           + ("" if self.converged else "; the optimizer did NOT converge")
                           + (" (it was interrupted)"
                              if self.result.reason == advi.INTERRUPTED else ""))
        p = self.psis
        disagree = self.starts.disagree if self.starts is not None else ()
        available = ladder(len(self.result.names))
        if user.applies(self.compiled):
            # --guide draws only the latents without a guide statement (none: it changes
            # nothing, and the hint names the guide statements instead)
            D = user.auto_dim(self.compiled)
            available = ladder(D) if D else ()
        if self.auto is not None:     # suggest only the families auto did not try
            tried = {t.family for t in self.auto.tried}
            available = tuple(f for f in available if f not in tried)
        corrected = self.corrected
        family = self.result.guide.name.partition(":")[0]
        # the corrected summary's largest Monte Carlo errors: not on auto's rungs, whose
        # summaries are never shown (Fit.climbing)
        errors = self._summary_errors() if corrected and not self.climbing else (None, None)
        if not getattr(self.compiled, "guides", {}):   # params only: no guide to revise
            family = family.removeprefix(user.PREFIX)
        return judge(p.khat, p.threshold, p.log_weights.size, self.converged, p.n_nonfinite,
                     family, available, disagree,
                     corrected, self._ess_weights().ess if corrected else np.inf,
                     self.weights_ess,
                     0.0 if self.options.batch is not None else MIN_WEIGHTS_ESS,
                     self._noisy_dadvi_mean(), self.options.method,
                     unconverged(self.result.reason), self.result.reason == advi.FELL,
                     None if corrected or not p.khat < p.threshold else self._weights_disagree(),
                     off_optimum=self.result.reason == advi.NOT_AT_OPTIMUM,
                     tails_disagree=self._tails_disagree() if corrected else None,
                     noisy_correction=errors[0], batch_meanfield=self.batch_meanfield,
                     noisy_sd=errors[1],
                     summary_khat=self._summary_khat() if corrected and not self.climbing
                     else None)

    def _summary_khat(self) -> tuple[float, float, int] | None:
        """(k̂, threshold, draws) of the weights the corrected summary takes
        (:meth:`_summary_weights`) where it took more draws than k̂'s own, else None (the
        same weights). Their values are the summary's noisy-mean check's, so this costs
        nothing more."""
        p = self._summary_weights()
        if p.log_weights.size <= self.psis.log_weights.size:
            return None
        return p.khat, p.threshold, p.log_weights.size

    def _weights_disagree(self) -> tuple[str, float, float, bool] | None:
        """For a summary that is not importance-corrected (DADVI's, --correct none) while k̂
        trusts the weights: where the weighted mean and sd of a reported continuous element
        disagree with the plain ones, on k̂'s own draws (verdict.disagreement). k̂ alone is
        small for any guide wider than the posterior (bounded weights): DADVI's linear-response
        sds on eight_schools_noncentered were 84-93% too large at k̂ 0.41-0.45, `reliable`.
        Computed once: the verdict is computed again when auto's report is set on the fit."""
        if "weights_disagree" not in self._cache:
            self._cache["weights_disagree"] = self._weights_disagree_now()
        return self._cache["weights_disagree"]

    def _weights_disagree_now(self) -> tuple[str, float, float, bool] | None:
        if not len(self.result.names):
            return None
        p = self.psis
        names, flat = self._reported_columns(self._zeta(p.log_weights.size))
        # an element the same in every draw (a param, a let of params and data) has no spread
        # to compare: its weighted and plain means differ by rounding, which its sd of about
        # 1e-17 made '198.98 posterior sds off' (param a ~ Normal(0, 1), --correct none)
        varies = np.ptp(flat, axis=0) > 0 if len(flat) else np.zeros(len(names), dtype=bool)
        names, flat = [n for n, v in zip(names, varies) if v], flat[:, varies]
        with np.errstate(all="ignore"):
            return disagreement(names, _moments(flat, None), _moments(flat, np.exp(p.log_weights)),
                                p.ess, len(flat))

    def _tails_disagree(self) -> tuple[str, float, float, bool] | None:
        """For an importance-corrected Gaussian fit (infer/tails.py): where its corrected mean
        and sd of a reported continuous element are off those of the same frame under
        Student-t noise, each weighted from its own k̂ draws (verdict.tails_disagreement), or
        None. Computed once, as :meth:`_weights_disagree`."""
        if "tails_disagree" not in self._cache:
            self._cache["tails_disagree"] = self._tails_disagree_now()
        return self._cache["tails_disagree"]

    def _tails_disagree_now(self) -> tuple[str, float, float, bool] | None:
        from .infer import tails
        # (stand-ins for a compiled model that give a log joint only have no values to compare)
        if not tails.applies(self.result, self.options) or not hasattr(self.compiled, "values"):
            return None
        p = self.psis
        if self.model is not None and \
                memory.affordable_draws(self.model, values=self.values()) < p.log_weights.size:
            return None     # the summary's own draws do not fit: its error says so
        heavier = Fit(self.model, self.compiled, tails.under_student_t(self.result),
                      self.options, {})
        if not tails.trusted(heavier_p := heavier.psis):
            return None
        moments = []
        with np.errstate(all="ignore"):
            for fit, q in ((self, p), (heavier, heavier_p)):
                # one set of values at a time: the summary's own peak, not twice it
                names, values = fit._reported_columns(fit._zeta(q.log_weights.size))
                moments.append(tails.weighted_moments(values, np.exp(q.log_weights)))
                del values
            return tails_disagreement(names, *moments)

    def _reported_columns(self, zeta: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(element names, values [n, K]) of every reported continuous element at draws
        ``zeta`` [n, D]."""
        return self._columns(self._constrained(zeta, self._rng(3)), len(zeta))

    def _columns(self, values: dict, n: int) -> tuple[list[str], np.ndarray]:
        """(element names, values [n, K]) of the continuous ones of reported ``values``; K
        is 0 for a model that reports none (every latent hidden, '_m')."""
        names, blocks = self._column_blocks(values, n)
        return names, np.concatenate([np.empty((n, 0))] + blocks, axis=1)

    def _column_blocks(self, values: dict, n: int) -> tuple[list[str], list[np.ndarray]]:
        """As :meth:`_columns`, each value's [n, k] apart (views: no copy of them all)."""
        discrete = self.values()
        names, blocks = [], []
        for name, v in values.items():
            if name not in discrete:
                names += element_names(name, np.shape(v)[1:])
                blocks.append(np.asarray(v, dtype=float).reshape(n, -1))
        return names, blocks

    def _noisy_dadvi_mean(self) -> tuple[str, float] | None:
        """(element, mcse / sd) of the DADVI mean whose Monte Carlo standard error is the
        largest against its sd (the verdict judges it: verdict.MCSE_WARN and
        NOISY_CORRECTION); None for a fit with no mcse column."""
        if getattr(self.result, "mcse_directions", None) is None:
            return None
        summary = self.summary()
        if "mcse" not in summary.columns:
            return None
        mcse, sd = summary.columns.index("mcse"), summary.columns.index("sd")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = {name: row[mcse] / row[sd] for name, row in summary.rows.items()
                      if not np.isnan(row[mcse] / row[sd])}
        worst = max(ratios, key=ratios.get, default=None)
        return (worst, float(ratios[worst])) if worst else None

    def _psis_draws(self) -> int:
        return psis_draws(self.options)

    def _posterior_zeta(self, n: int) -> np.ndarray:
        """n draws [n, D]: the guide's, or, when corrected, resampled from the weighted
        PSIS draws by systematic resampling (lower variance than multinomial; Douc, Cappe,
        Moulines 2005), in a random order."""
        if not self.corrected:
            return self._zeta(n)
        weights = np.exp(self._summary_weights().log_weights)
        rng = self._rng(4)
        picks = (rng.random() + np.arange(n)) / n
        index = np.minimum(np.searchsorted(np.cumsum(weights), picks), weights.size - 1)
        return self._zeta(weights.size)[rng.permutation(index)]

    def to_arviz(self, predictive: bool = True):
        """An ArviZ InferenceData of the fit, one chain of ``draws`` draws.

        Groups: ``posterior`` (reported latents and lets; a param's value in every draw),
        ``log_likelihood`` (the log density of every observed element at each posterior draw,
        for ``az.loo``/``az.waic``/``az.compare``; ``factor`` terms, such as a censored
        likelihood, belong to no observed element and are not in it, as PyMC's Potential;
        left out, with a warning, for a model with discrete latents or without an
        ``observe``), ``observed_data`` and, unless ``predictive=False``,
        ``posterior_predictive`` (for ``az.plot_ppc``). Observed variables are named by their
        expression's text (``y``, ``y[1:]``) in all three, with the same dims: a scalar one
        (``y[0]``) has one of length 1, as ArviZ gives its observed_data. Needs
        ``pip install 'ppl[arviz]'``. An importance-corrected fit's draws are resampled and
        repeat some guide draws, which ``az.loo`` takes for independent ones: see docs/trust.md
        (Importance-corrected summaries) for when its k̂ and elpd still hold.
        """
        predictive = check_flag("predictive", predictive)   # 'no' would be true
        try:
            import arviz
        except ImportError:
            from .errors import missing_extra
            raise missing_extra("fit.to_arviz()", "ArviZ", "arviz") from None
        zeta = self._posterior_zeta(self.options.draws)  # the draws of draws() and predictive()
        groups = {
            "posterior": {name: values[None] for name, values in self.draws().items()},
            "observed_data": self.compiled.observed(),
        }
        if self.values() or not groups["observed_data"]:
            # with discrete latents summed out, no term belongs to one observed element;
            # without an observe, none is one (ArviZ's az.loo only says it found none)
            warnings.warn(no_log_likelihood_group(sorted(self.values())), stacklevel=2)
        else:
            pointwise = by_draws(self.compiled.pointwise_log_likelihood, zeta,
                                 large_draws(self.compiled, len(zeta)))
            groups["log_likelihood"] = _per_chain(pointwise, groups["observed_data"])
        if predictive:
            groups["posterior_predictive"] = _per_chain(self.predictive(),
                                                        groups["observed_data"])
        return arviz.from_dict(**groups)

    def convergence_line(self, seconds: float | None = None) -> str:
        """One line: converged or not, by which rule, steps, seconds, the final ELBO and k̂
        (a params-only fit: its final log joint, and no k̂, as nothing is drawn)."""
        from .guides import user
        r = self.result
        seconds = r.seconds if seconds is None else check_seconds("seconds", seconds)
        final = (f"final log joint {r.final_elbo:.6g}" if user.point_only(self.compiled)
                 else f"final ELBO {r.final_elbo:.6g}; k̂ {self.khat:.2f}")
        return convergence_text(r.converged, r.reason, r.steps, seconds, final,
                                r.unmoved_final_elbo, r.guide.name)

    def __repr__(self) -> str:
        from .guides import user
        from .infer import advi
        r = self.result
        # a notebook shows the repr of a fit Ctrl-C ended: 'did not converge' read as if it
        # had run out of steps
        state = ("converged" if r.converged else "interrupted" if r.reason == advi.INTERRUPTED
                 else "did not converge")
        # a params-only fit maximizes the log joint (convergence_line's words), not an ELBO
        final = "log joint" if user.point_only(self.compiled) else "ELBO"
        moved = f", then {moved_how(r.guide.name)}" if r.moved else ""   # by auto
        text = f"<Fit: {state} after {r.steps} steps{moved}, {final} {r.final_elbo:.4g}"
        # the verdict's level and k̂, as `ppl fit` prints them: a fit k̂ calls unreliable
        # read '<Fit: converged after 1300 steps, ELBO -116>' (found by the audit12 helper).
        # --guide auto has computed k̂ already; else it costs what the CLI's verdict does,
        # but after --batch, where each of k̂'s draws is a pass over the whole data, only
        # once computed
        if final == "ELBO" and (self.options.batch is None or "psis" in self._cache):
            try:
                text += f"; {self.verdict().line.partition(':')[0]}"
            except (PplError, MemoryError, ArithmeticError, ValueError):
                pass
        return text + ">"
