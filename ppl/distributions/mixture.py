"""Mixture(w, component): a finite mixture whose components are one distribution call with a
component axis last on its parameters."""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval
from ..special import logsumexp

from .. import constraints as c
from . import Distribution, register
from .discrete import Categorical


@register
class Mixture(Distribution):
    """Mixture(w, component): with probability w[k], a draw from component k.

    ``component`` is a distribution, not a value: in Python the pair ``(cls, params)`` of a
    registered class with event_dim 0 and its parameters, each parameter's last axis indexing
    the K components (lined up like a parameter with one event axis)::

        Mixture.log_density(y, w=w, component=(Normal, {"mu": mu, "sigma": sigma}))

    with ``w`` [..., K] on the simplex and ``mu``, ``sigma`` [..., K]. The log density is
    ``log_sum_exp_k(log w_k + log f_k(y))``; the support is the component's (``support_of``
    asks the component class).
    """
    name = "Mixture"
    signatures = (("w", "component"),)
    constraints = {"w": c.probabilities}
    param_event_dims = {"w": 1}
    dist_params = frozenset({"component"})

    @classmethod
    def support_of(cls, params):
        comp_cls, comp_params = params["component"]
        return comp_cls.support_of(comp_params)

    @classmethod
    def log_density(cls, x, w, component):
        comp_cls, comp_params = component
        # each value against every component: a component axis last, [..., K]
        log_f = comp_cls.log_density(anp.expand_dims(x, -1), **comp_params)
        # log_sum_exp keeps the sum stable when every component density underflows
        total = logsumexp(anp.log(w) + log_f, axis=-1)
        # A component's formula outside its parameters' constraints gives a number, not a
        # density (Poisson's at rate -0.5 and y = 0 is +0.5): -inf there, as the log joint
        # gives any other distribution (compiler/density._outside), element by element.
        ok = np.ones(np.shape(log_f), dtype=bool)
        for name, value in comp_params.items():
            constraint = comp_cls.constraints.get(name)
            if constraint is not None and not isinstance(constraint, c.Real):
                value = np.asarray(getval(value))
                ok = ok & (np.asarray(constraint.check(value)) & ~np.isnan(value))
        ok = np.all(ok, axis=-1)
        return total if ok.all() else anp.where(ok, total, -np.inf)

    @classmethod
    def sample(cls, rng, size, w, component):
        comp_cls, comp_params = component
        k = np.shape(w)[-1]
        draws = comp_cls.sample(rng, tuple(np.atleast_1d(size)) + (k,), **comp_params)
        which = Categorical.sample(rng, size, p=np.asarray(w, float))
        return np.take_along_axis(draws, which[..., None], axis=-1)[..., 0]
