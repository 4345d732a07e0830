"""The compiler: ir.Model + data -> Compiled, the log joint on the unconstrained space and its
layout. The flow, one module per stage:

    build.py    compile_model: folds data-only work once, makes one step per statement
    steps.py    the steps: a latent's Slot in zeta [S, D] and bijector, lets, observes, factors
    density.py  a step's log density as a term (counted, fused or pending, -inf outside)
    joint.py    Compiled: log_joint(zeta [S, D]) -> [S], the sum of the steps' terms, and terms
    draws.py    Compiled's numpy outputs: constrained, predictive, pointwise, prior draws

Expressions are turned into closures by ``evaluate.compile_expr``; supports pick their bijector
through ``bijectors.biject_to``; densities and samplers come from the distribution registry.
The guide, ELBO and fit loop live elsewhere.
"""
from .build import compile_model
from .joint import Compiled
from .steps import Slot

__all__ = ["Compiled", "Slot", "compile_model"]
