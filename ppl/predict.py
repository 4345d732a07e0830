"""Posterior predictions on new data: ``fit.predictive(n, data=new)`` and ``ppl predict DIR
--data new.json``.

The model is checked and compiled again against the new data, so every data-dependent shape
and every let is recomputed (a regression's new rows, a BNN's test set). The fit's posterior
draws are reused (importance-corrected when the fit is, as for ``fit.predictive(n)``): its
latents must keep their shapes and bounds, except latents with a ``guide`` statement, which are
drawn from their guide on the new data (an amortized encoder); with guide statements every
latent is drawn from the fitted guide, uncorrected (the weights are the fitted data's). Data that is only ever observed (``y`` in
``observe y ~ ...``) may be left out of the new data: it is what is predicted, and a
placeholder of zeros stands in for it. The new data is checked as a fit's is (index ranges,
data-only parameters). A model with discrete latents is refused: their draws come from
their posterior given the fitted observations, which the new data would replace.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import errors, ir, memory
from .compiler import compile_model
from .data import load_data, validate_observed
from .datafiles import read_data
from .frontend.check import check
from .guides import user
from .posterior import by_draws, large_draws


def warn_of_reweighting_factors(program: ir.Model) -> None:
    """Warn when a factor statement reads latents: it reweights their joint density, which
    ancestral draws from the prior cannot follow, so prior predictive draws would silently
    differ from the model's prior (PyMC warns of Potentials so)."""
    for factor in (s for s in program.statements if isinstance(s, ir.Factor)):
        if factor.value.deps:
            import warnings
            warnings.warn(errors.prior_ignores_factor(factor.span), stacklevel=3)
            return


# Draws at which a latent's values are compared between the fitted and the new data: a
# bijector that moved with the data moves every draw (a shifted bound shifts each value)
SUPPORT_CHECK_DRAWS = 16


def predictive_on(fit, data, n: int) -> dict[str, np.ndarray]:
    """Posterior predictive draws [n, *shape] of every observed expression of ``fit``'s model
    with ``data`` (a dict or a path) in place of the fitted data.

    Raises
    ------
    PplError : bad new data (as for a fit), a latent without a guide statement whose shape
        depends on the data and changed (predict_shape_changed), or a discrete latent: its
        draws are conditioned on the observations, which new data replaces.
    """
    from .api import Model
    text = fit.info.get("model_text")
    if text is None:
        raise errors.predict_needs_model()
    model = Model(text, fit.info.get("model_path") or "<string>")
    discrete = [s for s in model.ir.statements if isinstance(s, ir.Latent) and s.discrete]
    if discrete:
        raise errors.predict_with_discrete(discrete[0].span, [s.name for s in discrete])
    compiled = compile_given(model, data, n, "--draws")
    zeta = _zeta(fit, compiled, n)
    return by_draws(compiled.predictive, zeta, large_draws(compiled, n), fit._rng(2))


def compile_given(model, data, n: int, option: str):
    """``model`` (api.Model) checked and compiled on ``data``, where data that is only ever
    observed may be left out: a placeholder of zeros stands in for it (it is what is drawn).
    ``n`` draws are checked against memory (``option`` names the count in the error)."""
    raw = read_data(data)
    sizes = {d for decl in model.ir.data.values() for d in decl.shape}
    observed, readers = _uses(model.ir)
    left_out = observed - set(readers) - set(raw) - sizes   # a size is given or read off data
    # the given data is loaded and checked as for a fit, and the model checked against its
    # dims (sizes, memory), before a placeholder of the size they say is made
    given = replace(model.ir, statements=tuple(
        s for s in model.ir.statements if not (isinstance(s, ir.Data) and s.name in left_out)))
    try:
        values, dims = load_data(given, raw)
    except errors.PplError as error:
        # observed data that another statement reads too (a VAE's encoder reads its images):
        # 'data is missing' alone, where the docs say observed data may be left out
        name = next((name for name, decl in given.data.items()
                     if error.span == decl.span and name not in raw), None)
        if name not in observed or name not in readers:
            raise
        raise errors.data_missing(error.span, name, read_at=readers[name].span.line) from None
    for name in left_out:
        if model.ir.data[name].dtype == "int" and model.ir.data[name].shape == ():
            dims[name] = 0
    concrete = check(model.program, dims)
    memory.check_model(concrete)
    memory.check_draws(n, concrete, option)
    values = {name: values[name] if name in values else _placeholder(decl)
              for name, decl in concrete.data.items()}
    # index ranges and data-only parameters as for a fit: a group index -1 in the new data
    # had predicted for the last group (numpy wraps it), an index past the end was an
    # internal error
    validate_observed(concrete, values, dims, observed=False)
    return compile_model(concrete, values)


def _zeta(fit, compiled, n: int) -> np.ndarray:
    """Posterior draws [n, D] in the new model's layout: the fit's own when no latent has a
    ``guide`` statement, else the fitted guide's on the new data (not corrected: the weights
    are those of the fitted data's guided draws)."""
    old = fit.compiled
    guided = set(getattr(old, "guides", {}))
    before = {s.name: s.shape for s in old.slots}
    for slot in compiled.slots:
        if slot.name not in guided and before.get(slot.name) != slot.shape:
            declared = next(s for s in compiled.model.statements
                            if getattr(s, "name", None) == slot.name)
            raise errors.predict_shape_changed(slot.name, before.get(slot.name), slot.shape,
                                               declared.span, isinstance(declared, ir.Param))
    if not guided:
        # every slot (params too) kept its shape, so the layout is the fit's and so are its
        # draws, importance-corrected when the fit is, as fit.predictive(n) takes them
        zeta = fit._posterior_zeta(n)
        _refuse_moved_latents(old, compiled, zeta[:SUPPORT_CHECK_DRAWS])
        return zeta
    guide = user.family_for(compiled, fit.result.guide.name)
    eps = fit._rng(1).standard_normal((n, guide.eps_dim(0)))
    zeta = np.asarray(guide.draw(np.asarray(fit.result.theta, dtype=float), eps))
    # the same check on the new draws, each slot of an unchanged shape read at the same
    # unconstrained values under the fitted data (a guided latent of another size keeps
    # the fit's draws there, and is not compared): skipped here, a guided fit's u of
    # real<lower=b> moved with b as silently (predictive mean 8.9 at b = 7.5, 1.4 at 0)
    first = zeta[:SUPPORT_CHECK_DRAWS]
    _refuse_moved_latents(old, compiled, first, _in_layout(old, compiled, first, fit))
    return zeta


def _in_layout(old, new, zeta: np.ndarray, fit) -> np.ndarray:
    """Draws zeta [n, D] of ``new``'s layout in ``old``'s: each slot of an unchanged shape
    copied, the others the fit's own first n draws."""
    mine = {slot.name: slot for slot in new.slots}
    if [(s.name, s.shape) for s in old.slots] == [(s.name, s.shape) for s in new.slots]:
        return zeta
    out = fit._zeta(len(zeta))
    for slot in old.slots:
        same = mine.get(slot.name)
        if same is not None and same.shape == slot.shape:
            out[:, slot.offset:slot.offset + slot.size] = \
                zeta[:, same.offset:same.offset + same.size]
    return out


def _refuse_moved_latents(old, new, zeta: np.ndarray, old_zeta: np.ndarray | None = None) -> None:
    """A located error when a latent's value at the unconstrained draws zeta differs between
    the fitted model ``old`` and the model on the new data ``new``: its bijector depends on
    data that changed (``real<lower=b>`` with another b), so the same draws are no longer the
    fitted posterior's (b = 7.5 in the fit, 0 in the new data: u's posterior mean 9.4 became
    1.9, and the predictions followed without a word). ``old_zeta``: the same draws in
    ``old``'s layout where it differs (:func:`_in_layout`); slots whose shape changed are
    not compared."""
    with np.errstate(all="ignore"):
        before = old.slot_values(zeta if old_zeta is None else old_zeta)
        after = new.slot_values(zeta)
    for name, value in before.items():
        if np.shape(value) != np.shape(after[name]):
            continue
        if not np.allclose(value, after[name], rtol=1e-12, atol=0, equal_nan=True):
            declared = next(s for s in new.model.statements if getattr(s, "name", None) == name)
            raise errors.predict_support_changed(declared.span, name)


def _placeholder(decl: ir.Data) -> np.ndarray:
    """Zeros standing in for data that is only observed and was left out."""
    return np.zeros(decl.shape, dtype=np.int64 if decl.dtype == "int" else float)


def _uses(model: ir.Model) -> tuple[set, dict]:
    """(the data names observed, data name -> the first statement that reads it otherwise):
    data observed and read by no other statement is what a prediction draws."""
    observed, readers = set(), {}
    for s in model.statements:
        used = set()
        if isinstance(s, ir.Observe):
            observed |= _data_refs(s.value)
            used = _data_refs(s.dist)
        elif isinstance(s, (ir.Let, ir.Factor)):
            used = _data_refs(s.value)
        elif isinstance(s, ir.Guide):
            used = _data_refs(s.loc) | _data_refs(s.scale)
        elif isinstance(s, (ir.Latent, ir.Param)) and s.dist is not None:
            used = _data_refs(s.dist)
        for name in used:
            readers.setdefault(name, s)
    return observed, readers


def _data_refs(expr) -> set:
    return {e.name for e in ir.walk(expr) if isinstance(e, ir.Ref) and e.kind == "data"}
