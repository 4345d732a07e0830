"""The inference engine: the objective (elbo.py), the optimizers and step-size search (optim.py),
the preconditioner (precondition.py) and the fit loop (advi.py). The variational families it
fits live in ``ppl.guides``; the log joint it fits them to comes from ``ppl.compiler``.
"""
