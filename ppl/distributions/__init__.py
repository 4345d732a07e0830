"""The distribution registry: each distribution is one class, registered under its language name.

The checker reads ``signatures``, ``constraints``, ``param_event_dims``, ``event_dim`` and
``support``; the compiler calls ``log_density``; predictive draws call ``sample``. Docs and tests
iterate ``DISTRIBUTIONS``. Adding a distribution touches only its class and one test row.
"""
from __future__ import annotations

from typing import Any, ClassVar

from ..constraints import Constraint

DISTRIBUTIONS: dict[str, type["Distribution"]] = {}


def register(cls: type["Distribution"]) -> type["Distribution"]:
    """Class decorator: add ``cls`` to the registry under ``cls.name``."""
    DISTRIBUTIONS[cls.name] = cls
    return cls


def lookup(name: str) -> "type[Distribution] | None":
    """The distribution class called ``name`` in the language, or None."""
    return DISTRIBUTIONS.get(name)


class Distribution:
    """Base class. Subclasses set the class attributes and the two methods below.

    Attributes
    ----------
    name : the language name, e.g. 'Normal'.
    signatures : accepted parameter-name tuples; the first is the positional form. A call
        matches a signature when its positional arguments fill the first names and its
        keywords fill the rest exactly (``Binomial(n, logit=x)`` matches ('n', 'logit')).
    constraints : parameter name -> Constraint that valid parameter values satisfy.
    int_params : names of parameters that must be int (``n`` of Binomial).
    param_event_dims : parameter name -> number of trailing axes that belong to one event
        (1 for Dirichlet's ``alpha``, Categorical's ``p``); others are 0.
    event_dim : trailing axes of the value that form one event (1 for Dirichlet).
    support : a Constraint, or use ``support_of`` when it depends on the parameters.
    support_params : parameter -> the declared bound ('lower' or 'upper') that a latent given
        as this parameter needs under ``observe``, for parameters that move the support
        (Uniform: its ``upper`` needs the latent declared ``lower=max(y)``). The checker
        refuses any other latent dependence there: the data bound such a latent, and gradient
        steps on an unconstrained space cannot respect a bound they are not told about.
    dist_params : names of parameters that take a distribution, not a value (Mixture's
        ``component``); the checker builds them from a distribution call.
    log_cdf, log_ccdf : None, or classmethods ``(x, **params)`` like ``log_density`` giving
        log P(X <= x) and log P(X > x) (``lcdf``/``lccdf`` in the language).
    """

    name: ClassVar[str]
    signatures: ClassVar[tuple[tuple[str, ...], ...]]
    constraints: ClassVar[dict[str, Constraint]] = {}
    int_params: ClassVar[frozenset[str]] = frozenset()
    param_event_dims: ClassVar[dict[str, int]] = {}
    event_dim: ClassVar[int] = 0
    support: ClassVar[Constraint]
    support_params: ClassVar[dict[str, str]] = {}
    dist_params: ClassVar[frozenset[str]] = frozenset()
    log_cdf: ClassVar[Any] = None
    log_ccdf: ClassVar[Any] = None

    @classmethod
    def support_of(cls, params: dict[str, Any]) -> Constraint:
        """The support given the parameters (IR expressions at check time, arrays at run time).

        Override when the support depends on the parameters (Uniform, Binomial, Categorical).
        """
        return cls.support

    @classmethod
    def log_density(cls, x, **params):
        """Elementwise log density in ``autograd.numpy``, broadcasting ``x`` against the params.

        Every array may carry a leading draw axis (size S or 1) and the caller lines the axes
        up; the result has the broadcast shape minus the ``event_dim`` trailing axes. Called
        with exactly the parameter names of one signature.
        """
        raise NotImplementedError

    @classmethod
    def sample(cls, rng, size, **params):
        """Draw values of shape ``size`` (the broadcast batch shape + event shape) in numpy."""
        raise NotImplementedError


# Importing the modules registers their classes.
from . import continuous, discrete, mixture, multivariate  # noqa: E402,F401
