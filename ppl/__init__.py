"""ppl: a small probabilistic programming language fitted by ADVI.

    import ppl
    model = ppl.load("models/eight_schools.ppl")
    fit = model.fit(seed=1)          # reads models/eight_schools.json beside the model
    print(fit.summary())
"""
from .startup import quiet_interrupts

with quiet_interrupts():  # the ppl command's imports take a second: a Ctrl-C there is quiet
    from .api import Model, compile, load
    from .errors import PplError
    from .options import FitOptions
    from .posterior import Fit, Summary

__version__ = "0.1.0"
__all__ = ["Fit", "FitOptions", "Model", "PplError", "Summary", "compile", "load", "__version__"]
