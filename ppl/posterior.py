"""Fit: the result of one ADVI run, in the user's terms (element names, constrained values).

Draws come from the fitted guide pushed through the model's bijectors; summaries, predictive
draws and ArviZ export are computed from them. Nothing here changes the fitted guide.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .ir import element_names

QUANTILES = (0.05, 0.5, 0.95)
COLUMNS = ("mean", "sd", "5%", "50%", "95%")


@dataclass(frozen=True)
class Summary:
    """A printable posterior summary table: one row per reported element.

    ``rows`` maps an element name (``x[0]``) to its mean, sd, 5%, 50% and 95% quantiles.
    """

    rows: dict[str, tuple[float, ...]]

    @classmethod
    def from_draws(cls, draws: dict[str, np.ndarray]) -> "Summary":
        """Summarize draws given as name -> array [n, *shape] (sd with the n - 1 denominator)."""
        rows = {}
        for name, values in draws.items():
            flat = np.asarray(values, dtype=float).reshape(len(values), -1)
            mean = flat.mean(axis=0)
            sd = flat.std(axis=0, ddof=1) if len(flat) > 1 else np.zeros_like(mean)
            quantiles = np.quantile(flat, QUANTILES, axis=0)  # linear interpolation (type 7)
            for i, element in enumerate(element_names(name, values.shape[1:])):
                rows[element] = (mean[i], sd[i], *quantiles[:, i])
        return cls(rows)

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{element: {'mean': .., 'sd': .., '5%': .., '50%': .., '95%': ..}}``."""
        return {name: dict(zip(COLUMNS, map(float, row))) for name, row in self.rows.items()}

    def __str__(self) -> str:
        width = max([len("name")] + [len(name) for name in self.rows])
        lines = [f"{'':<{width}}" + "".join(f"{c:>11}" for c in COLUMNS)]
        for name, row in self.rows.items():
            lines.append(f"{name:<{width}}" + "".join(f"{v:>11.4g}" for v in row))
        return "\n".join(lines)

    __repr__ = __str__


def _probability_rows(name: str, p: np.ndarray, values: np.ndarray) -> dict:
    """Rows ``z[3]=1`` for conditional probabilities p [S, *shape, K]."""
    flat = p.reshape(len(p), -1, p.shape[-1])
    rows = {}
    for i, element in enumerate(element_names(name, p.shape[1:-1])):
        for k, value in enumerate(values):
            column = flat[:, i, k]
            sd = column.std(ddof=1) if len(column) > 1 else 0.0
            rows[f"{element}={value}"] = (column.mean(), sd,
                                          *np.quantile(column, QUANTILES))
    return rows


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
    """

    model: Any
    compiled: Any
    result: Any
    options: Any
    info: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    # ----- convergence ------------------------------------------------------------------------

    @property
    def elbo(self) -> np.ndarray:
        """The ELBO estimate at every optimization step, [steps]."""
        return np.asarray(self.result.elbo)

    @property
    def converged(self) -> bool:
        """Whether the convergence rule stopped the optimization (see ``advi.fit``)."""
        return bool(self.result.converged)

    @property
    def guide_parameters(self) -> dict[str, tuple[float, float]]:
        """Unconstrained element name -> (mu, log_sigma) of the mean-field guide."""
        return {name: (float(m), float(s)) for name, m, s in
                zip(self.result.names, self.result.mu, self.result.log_sigma)}

    # ----- draws --------------------------------------------------------------------------------

    def _rng(self, purpose: int) -> np.random.Generator:
        # A child stream per purpose, derived from the fit's seed: draws and predictive draws
        # are reproducible and independent of each other and of the optimization's stream.
        return np.random.default_rng([self.options.seed, purpose])

    def _zeta(self, n: int) -> np.ndarray:
        eps = self._rng(1).standard_normal((n, len(self.result.mu)))
        return self.result.mu + np.exp(self.result.log_sigma) * eps

    def draws(self, n: int | None = None) -> dict[str, np.ndarray]:
        """Posterior draws of every latent and reported ``let``: name -> array [n, *shape].

        ``n`` defaults to the ``draws`` option. The same fit gives the same draws.
        """
        n = self.options.draws if n is None else int(n)
        if n not in self._cache:
            # Discrete latents are drawn from their conditional posterior (child stream 3).
            self._cache[n] = {k: np.asarray(v) for k, v in self.compiled.constrained(
                self._zeta(n), self._rng(3)).items()}
        return self._cache[n]

    def probabilities(self, n: int | None = None) -> dict[str, np.ndarray]:
        """Posterior probabilities of each discrete latent's values, averaged over ``n`` draws
        of the continuous latents: name -> [*shape, K], K its number of values (listed by
        ``values()``)."""
        n = self.options.draws if n is None else int(n)
        return {name: p.mean(axis=0)
                for name, p in self.compiled.probabilities(self._zeta(n)).items()}

    def values(self) -> dict[str, np.ndarray]:
        """The values each discrete latent takes: name -> [K] ints."""
        return self.compiled.values()

    def summary(self) -> Summary:
        """Mean, sd and 5/50/95% quantiles of every reported element, from ``draws()``.

        A discrete latent's element ``z[3]`` gets one row per value, ``z[3]=1``: its posterior
        probability in the mean column; sd and quantiles are those of its conditional
        probability across the draws of the continuous latents."""
        draws = self.draws()
        discrete = self.compiled.probabilities(self._zeta(len(next(iter(draws.values())))))
        rows = {}
        for name, values in draws.items():
            if name in discrete:
                rows.update(_probability_rows(name, discrete[name], self.values()[name]))
            else:
                rows.update(Summary.from_draws({name: values}).rows)
        return Summary(rows)

    def predictive(self, n: int | None = None) -> dict[str, np.ndarray]:
        """Posterior predictive draws of every observed expression: label -> [n, *shape]."""
        n = self.options.draws if n is None else int(n)
        return {k: np.asarray(v) for k, v in
                self.compiled.predictive(self._zeta(n), self._rng(2)).items()}

    def to_arviz(self, predictive: bool = False):
        """An ArviZ InferenceData with the posterior (one chain) and, if asked, the
        posterior predictive. Needs the ``arviz`` extra: ``pip install ppl[arviz]``."""
        try:
            import arviz
        except ImportError as error:
            from .errors import PplError
            raise PplError("to_arviz needs ArviZ: pip install 'ppl[arviz]'") from error
        posterior = {name: values[None] for name, values in self.draws().items()}
        groups = {"posterior": posterior}
        if predictive:
            groups["posterior_predictive"] = {
                name: values[None] for name, values in self.predictive().items()}
        return arviz.from_dict(**groups)

    def convergence_line(self, seconds: float | None = None) -> str:
        """One line: converged or not, by which rule, steps, seconds and the final ELBO."""
        r = self.result
        seconds = r.seconds if seconds is None else seconds
        state = "converged" if r.converged else "did NOT converge"
        rule = r.reason.removeprefix("converged: ")
        return (f"{state} after {r.steps} steps in {seconds:.2f} s ({rule}); "
                f"final ELBO {r.final_elbo:.6g}")

    def __repr__(self) -> str:
        r = self.result
        state = "converged" if r.converged else "did not converge"
        return f"<Fit: {state} after {r.steps} steps, ELBO {r.final_elbo:.4g}>"
