"""Variational families on the unconstrained space [D], one module per family.

Every family has the same protocol: ``init``, reparameterized ``draw(theta, eps)``, ``entropy``,
``log_q`` and numpy ``sample``; the engine (``ppl.infer``) never looks inside ``theta``.
"""
from .meanfield import MEAN_FIELD, MeanField

__all__ = ["MEAN_FIELD", "MeanField"]
