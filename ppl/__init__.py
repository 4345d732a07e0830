"""ppl: a small probabilistic programming language fitted by ADVI."""
__version__ = "0.1.0"
