"""ppl: a small probabilistic programming language fitted by ADVI.

    import ppl
    model = ppl.load("models/eight_schools.ppl")
    fit = model.fit(seed=1)          # reads models/eight_schools.json beside the model
    print(fit.summary())
"""
# The public names load on first use (PEP 562): `import ppl.startup`, the command's entry
# point, must import no numpy, so that it can catch a Ctrl-C before the slow imports start.
__version__ = "0.1.0"
__all__ = ["Fit", "FitOptions", "Model", "PplError", "Summary", "compile", "load", "__version__"]


def __getattr__(name: str):
    if name not in __all__:  # a submodule not imported yet, or a typo
        raise AttributeError(f"module 'ppl' has no attribute {name!r}")
    from .api import Model, compile, load
    from .errors import PplError
    from .options import FitOptions
    from .posterior import Fit
    from .summary import Summary
    globals().update(Model=Model, compile=compile, load=load, PplError=PplError,
                     FitOptions=FitOptions, Fit=Fit, Summary=Summary)
    return globals()[name]


def __dir__():
    return sorted(set(globals()) | set(__all__))
