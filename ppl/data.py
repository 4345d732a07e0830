"""Load and validate a model's data: JSON, CSV, .npz (read by ``datafiles.py``) or a dict.

``load_data`` reads and checks the data against the symbolically checked model (names, numbers,
int-ness, finiteness, shapes, declared bounds) and finds the dims; ``validate_observed`` checks,
against the concretely checked model, what needs concrete shapes: data declared with a let
dimension, index ranges, distribution parameters computed from data alone, then the support
of every observed value, and that a latent's (or param's) bounds and support from data are
not empty at any element. Expressions are evaluated by ``evaluate.py``.
"""
from __future__ import annotations

import os
import sys
import warnings
from dataclasses import fields, is_dataclass, replace
from typing import get_args

import numpy as np

from . import constraints as c
from . import errors, ir
from .datafiles import describe as _describe
from .datafiles import read_data
from .enumeration import Values
from .evaluate import compile_expr, data_let, evaluate_data

_INT64_LIMIT = 2.0 ** 63
_EXACT_LIMIT = 2.0 ** 53  # float64 holds every int up to here
_EXPR_TYPES = get_args(ir.Expr)
_NUMBERS = (int, float, np.integer, np.floating)


def load_data(model: ir.Model, data, no_data: str | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Read ``data`` and check it against the model's ``data`` declarations.

    Parameters
    ----------
    model : the symbolically checked model (``check(program)``; shapes may hold dim names).
    data : a dict of name -> number / nested list / numpy array, a path (str or Path) to a
        ``.json``, ``.csv`` or ``.npz`` file, or None for no data.
    no_data : when no data was given, why (the hint of a missing name's error).

    Returns
    -------
    values : every declared data name -> array (int64 for ``int``, float64 for ``real``), in
        declaration order. An int scalar used as a dimension may be left out of the data: it
        is read off the shape of the arrays that use it.
    dims : every int data scalar's value.

    Raises
    ------
    PplError : missing name, non-number, NaN or infinity, float where int is declared, wrong
        shape, value out of its declared bounds, or an unreadable file.
    Extra names in the data are reported with ``warnings.warn``.
    """
    raw = read_data(data)
    declared = model.data
    others = {**model.latents, **model.params, **model.lets}
    extra = [name for name in raw if name not in declared and name not in others]
    if extra:
        warnings.warn(errors.undeclared_data(extra), stacklevel=2)
    for name in raw:
        if name in others:  # a PyMC user's way to fix a variable; here it would be ignored
            kind = {ir.Latent: "latent", ir.Param: "param"}.get(type(others[name]), "let")
            warnings.warn(errors.data_for_non_data(others[name].span, name, kind), stacklevel=2)
    inferable = _inferable_dims(declared, raw)
    values: dict[str, np.ndarray] = {}
    dims: dict[str, int] = {}
    origin: dict[str, str] = {}  # a dim read off an array's shape -> that array's name
    for decl in declared.values():
        if decl.name in raw:
            values[decl.name] = _empty_as_declared(decl, _to_array(decl, raw[decl.name]),
                                                   raw[decl.name], dims)
            _check_shape(decl, values[decl.name], dims, origin)
            if decl.dtype == "int" and decl.shape == ():
                dims[decl.name] = int(values[decl.name])
        elif decl.name not in inferable:
            csv = (isinstance(data, (str, os.PathLike)) and decl.shape == ()
                   and os.fspath(data).lower().endswith(".csv"))
            # a wrapper object holding the data one level down ({"data": {"y": ...}})
            inside = next((key for key, value in raw.items()
                           if isinstance(value, dict) and decl.name in value), None)
            raise errors.data_missing(decl.span, decl.name, csv=csv, unnamed="arr_0" in raw,
                                      inside=inside, no_data=no_data)
    for name in origin:
        values[name] = np.array(dims[name], dtype=np.int64)
    values = {name: values[name] for name in declared}
    _check_bounds(model, values, dims)
    dims = {name: dims[name] for name, decl in declared.items()
            if decl.dtype == "int" and decl.shape == ()}
    return values, dims


def validate_observed(model: ir.Model, values: dict[str, np.ndarray], dims: dict[str, int],
                      observed: bool = True) -> None:
    """Check what needs concrete shapes: let dimensions, index ranges, data-only distribution
    parameters, the support of observed values and of latents (see the module docstring).

    Parameters
    ----------
    model : the concretely checked model (``check(program, dims)``).
    values, dims : as returned by ``load_data``.
    observed : False for predictions on new data, whose observed values are what is predicted
        (zeros stand in for the left out): everything else is checked as for a fit.

    Raises
    ------
    PplError : a data array whose shape is not its declared one (a dim that is a ``let``),
        an int index outside the axis it indexes (``index_out_of_range``), a data-only
        parameter outside its constraint, an observed value outside its distribution's
        support (``data_outside_support``), a latent's declared bounds outside its
        distribution's support or a support from data that is empty (``empty_support``).
    """
    for decl in model.data.values():  # a dim that is a let (real[Kc]) is known only here
        if np.shape(values[decl.name]) != decl.shape:
            raise errors.data_wrong_shape(decl.span, decl.name, decl.shape,
                                          np.shape(values[decl.name]))
    env = dict(values)
    # discrete latents and the lets of one of them: their values in every block of the
    # enumeration [K, *shape] (enumeration.Values), for the indices computed from them
    enumerated = _Enumerated()
    for statement in model.statements:
        for expr in _expressions(statement):
            check_indices(expr, env, dims, enumerated)
        if isinstance(statement, ir.Let) and statement.data_only:
            env[statement.name] = data_let(statement, env, warn=False)
            continue
        if isinstance(statement, ir.Let):
            enumerated.let(statement, env)
        if isinstance(getattr(statement, "dist", None), ir.Dist):
            _check_data_parameters(statement.dist, env)
        if isinstance(statement, ir.Observe) and observed:  # its support needs valid parameters
            _check_support(statement, env)
        if isinstance(statement, (ir.Latent, ir.Param)):
            _check_declared_bounds(statement, env)
            _check_support_not_empty(statement, env)
            _check_event_not_empty(statement)
            if isinstance(statement, ir.Latent) and statement.discrete:
                enumerated.latent(statement, env)


def _check_data_parameters(dist: ir.Dist, env) -> None:
    """Each parameter computed from data alone (``sigma`` given as data, a ``0 / 0``) against
    its constraint, as the checker checks literals: a latent's AR1 with data phi = 2 or a
    negative sigma had fitted and said 'reliable' (its innovations' density stays finite)."""
    from .frontend.supports import check_parameter_value
    for name, expr in dist.params:
        if isinstance(expr, ir.Dist):          # a Mixture's components
            _check_data_parameters(expr, env)
        elif not expr.deps:
            with np.errstate(all="ignore"):
                value = evaluate_data(expr, env)
            check_parameter_value(dist.cls, name, value, expr.span)


def _check_event_not_empty(statement) -> None:
    """A simplex or a correlation Cholesky factor with a last axis of size 0 (K = 0 from data)
    has no value: a simplex sums to 1, a correlation matrix has ones on its diagonal. A
    Dirichlet of K = 0 was an internal error, and an LKJCholesky of K = 0 fitted as 1 x 1 (its
    bijector cannot tell K = 0 from K = 1) and was reported as 0 x 0."""
    dist = statement.dist
    support = None if dist is None else dist.cls.support_of(dist.param_dict)
    if isinstance(support, (c.Simplex, c.CorrCholesky)) and statement.shape and \
            statement.shape[-1] == 0:
        raise errors.empty_event(statement.span, statement.name, statement.shape,
                                 dist.cls.name)


def _check_support_not_empty(statement, env) -> None:
    """A latent's (or param's) support from data-only parameters not empty at any element, as
    the checker checks literal ones: ``int[2] ~ DiscreteUniform(L, 2)`` with L[1] = 3 left
    z[1] no value, and the fit stopped on a log density that was nan everywhere."""
    dist = statement.dist
    support = None if dist is None else dist.cls.support_of(dist.param_dict)
    if not isinstance(support, (c.Interval, c.IntegerInterval)):
        return
    ends = (support.lower, support.upper)
    if any(e is None or isinstance(e, _EXPR_TYPES) and e.deps for e in ends):
        return
    with np.errstate(all="ignore"):
        lo, hi = (np.asarray(evaluate_data(e, env) if isinstance(e, _EXPR_TYPES) else e, float)
                  for e in ends)
        empty = hi < lo if support.discrete else ~(lo < hi)
    if not np.any(empty):
        return
    from .frontend.supports import describe
    shape = np.broadcast_shapes(np.shape(empty), tuple(statement.shape))
    at = np.unravel_index(int(np.argmax(np.broadcast_to(empty, shape))), shape) if shape else ()
    ends_at = {"lower": ir.Const(float(np.broadcast_to(lo, shape)[at]), (), "real"),
               "upper": ir.Const(float(np.broadcast_to(hi, shape)[at]), (), "real")}
    raise errors.empty_support(dist.span, dist.cls.name, describe(replace(support, **ends_at))
                               + _at(statement.name, at))


def _declared_ends(statement) -> tuple[list, tuple]:
    """[(side, declared bound Expr)] of a real latent's or param's data-only declared
    bounds, and (lower, upper) of its distribution's own support."""
    dist = statement.dist
    own = c.real if dist is None else dist.cls.support_of(dist.param_dict)
    ends = {c.Boolean: (0.0, 1.0), c.NonNegativeInteger: (0.0, None)}.get(
        type(own), (getattr(own, "lower", None), getattr(own, "upper", None)))
    declared = []
    for side, end in zip(("lower", "upper"), ends):
        bound = getattr(statement.support, side, None)
        # narrow() keeps the support's own end object where no bound narrows it
        if isinstance(bound, _EXPR_TYPES) and bound is not end and not bound.deps:
            declared.append((side, bound))
    return declared, ends


def _check_declared_bounds(statement, env) -> None:
    """A latent's (or param's; an int latent's, with closed ends) declared bounds computed from
    data against its distribution's support and each other, as the checker checks literal bounds
    (``supports.narrow``): ``real<lower=a> ~ HalfNormal(1)`` with a = -1 drew the latent below
    0 and evaluated HalfNormal's formula there, a silent wrong answer; ``real<lower=a,
    upper=b>`` with a >= b gave a NaN log joint. A bound must be finite."""
    from .frontend.supports import bound_outside, describe
    declared, ends = _declared_ends(statement)
    if not declared:
        return
    with np.errstate(all="ignore"):
        values = {side: evaluate_data(bound, env) for side, bound in declared}
        own = [None if e is None or (isinstance(e, _EXPR_TYPES) and e.deps) else
               np.asarray(evaluate_data(e, env) if isinstance(e, _EXPR_TYPES) else e, float)
               for e in ends]
    lo, hi = own
    for side, bound in declared:
        v = values[side]
        if not np.all(np.isfinite(v)):
            # exp(a) at a = 1000, log(0), a literal 1e400: the bijector's values and
            # log-Jacobian are inf or NaN at every draw, which read "the log density of this
            # statement is -inf at every starting point tried"
            where, found = _first(source_text(bound), ~np.isfinite(v), v)
            raise errors.bad_bounds(bound.span, f"{side} bound {source_text(bound)} is not "
                                    f"finite (= {found}{_at_name(where, bound)})")
        closed = getattr(statement, "dtype", "real") == "int"     # {lo..hi}
        bad = bound_outside(v, side, lo, hi, closed)
        bad = np.broadcast_to(bad, np.broadcast_shapes(np.shape(bad), np.shape(v)))
        if bad.any():
            # one bound against a support that varies by element: name the latent's element
            name = statement.name if bad.ndim and not np.ndim(v) else source_text(bound)
            where, found = _first(name, bad, np.broadcast_to(v, bad.shape))
            shown = f"{side}={source_text(bound)} (= {found}{_at_name(where, bound)})"
            support = c.real if statement.dist is None else \
                statement.dist.cls.support_of(statement.dist.param_dict)
            raise errors.bounds_outside_support(bound.span, statement.name, shown,
                                                describe(support))
    if len(declared) == 2:
        (_, lower), (_, upper) = declared
        crossed = np.greater if getattr(statement, "dtype", "real") == "int" else np.greater_equal
        bad = np.asarray(crossed(values["lower"], values["upper"]))
        if bad.any():
            at = np.unravel_index(int(np.argmax(bad)), bad.shape) if bad.ndim else ()
            shown = [f"{source_text(e)} (= {_number(np.broadcast_to(values[k], bad.shape)[at])}"
                     f"{_at(source_text(e), at) if np.ndim(values[k]) else ''})"
                     for k, e in (("lower", lower), ("upper", upper))]
            raise errors.bad_bounds(lower.span.to(upper.span), f"lower bound {shown[0]} is not "
                                    f"less than upper bound {shown[1]}")


def _at_name(where: str, bound) -> str:
    """' at a[2]' when ``where`` names an element of the bound, else ''."""
    return "" if where == source_text(bound) else f" at {where}"


# ----- converting and checking one declared name --------------------------------------------

def _to_array(decl: ir.Data, raw) -> np.ndarray:
    """``raw`` as an int64 or float64 array; raises on non-numbers, NaN/inf, non-ints."""
    _scan(decl, raw, ())
    if isinstance(raw, np.memmap):
        return _mapped(decl, raw)
    value = np.asarray(raw)
    if (decl.dtype == "int" and value.dtype.kind == "f" and not isinstance(raw, np.ndarray)
            and np.any(np.abs(value) >= _EXACT_LIMIT)):
        # numpy rounded ints beyond 2**53 to floats ([1.0, 2**53 + 1]): keep their digits
        value = np.asarray(raw, dtype=object)
    _check_range(decl, value)
    exact = value if value.dtype == object and decl.dtype == "int" else None
    if value.dtype == object:  # Python ints beyond int64 (1e20 is a real): see _check_range
        value = value.astype(np.float64)  # checked as floats, converted from ``exact``
    if value.dtype.kind not in "iuf":
        raise errors.data_not_number(decl.span, decl.name, f"an array of {value.dtype}")
    if value.dtype.kind == "f":
        if value.dtype.itemsize < 8:  # exact; float16 would overflow comparing with 2**63
            value = value.astype(np.float64)
        bad = ~np.isfinite(value)
        if bad.any():
            where, found = _first(decl.name, bad, value)
            raise errors.data_not_finite(decl.span, decl.name, where, found)
        if decl.dtype == "int":
            bad = (np.floor(value) != value) | (np.abs(value) >= _INT64_LIMIT)
            if bad.any():
                where, found = _first(decl.name, bad, value)
                raise errors.data_not_int(decl.span, decl.name,
                                          found + (f" at {where}" if value.ndim else ""))
    if exact is not None:
        return exact.astype(np.int64)
    return value.astype(np.int64 if decl.dtype == "int" else np.float64)


_CHUNK_ROWS = 1 << 16


def _mapped(decl: ir.Data, raw: np.memmap) -> np.ndarray:
    """A memory-mapped array (a .npy file) checked chunk by chunk and kept mapped: without a
    copy when it already holds int64 / float64 (as declared), else converted whole."""
    target = np.int64 if decl.dtype == "int" else np.float64
    if raw.ndim == 0 or raw.dtype != target:
        return _to_array(decl, np.array(raw))
    for start in range(0, max(raw.shape[0], 1), _CHUNK_ROWS):
        chunk = np.array(raw[start:start + _CHUNK_ROWS])
        bad = ~np.isfinite(chunk) if target is np.float64 else np.zeros(chunk.shape, bool)
        if bad.any():
            at = np.unravel_index(int(np.argmax(bad)), bad.shape)
            where = _element(decl.name, (at[0] + start,) + tuple(at[1:]))
            raise errors.data_not_finite(decl.span, decl.name, where, _number(chunk[at]))
    return raw


def _check_range(decl: ir.Data, value: np.ndarray) -> None:
    """Values that int64 or float64 cannot hold: uint64 beyond int64 (which would wrap to
    negative indices), longdouble beyond float64 (which would become inf), and Python ints
    beyond int64, which numpy keeps as objects: refused for an int, read as the nearest
    float64 for a real (as its float literal would be) unless beyond float64 too."""
    if value.dtype.kind == "u" and decl.dtype == "int":
        bad = value > np.iinfo(np.int64).max
    elif value.dtype.kind == "f" and value.dtype.itemsize > 8:
        bad = np.isfinite(value) & (np.abs(value) > np.finfo(np.float64).max)
    elif value.dtype == object:  # only big Python ints make one: _scan let numbers alone by
        limit = ((lambda x: -2 ** 63 <= x < 2 ** 63) if decl.dtype == "int"
                 else (lambda x: abs(x) <= sys.float_info.max))
        beyond = np.frompyfunc(lambda x: isinstance(x, int) and not limit(x), 1, 1)
        bad = np.asarray(beyond(value), dtype=bool)
    else:
        return
    if bad.any():
        where, found = _first(decl.name, bad, value)
        if value.dtype.kind == "f":  # float() would show inf
            found = np.format_float_scientific(value[np.unravel_index(np.argmax(bad),
                                                                      bad.shape)], 6)
        kind = "a 64-bit int" if decl.dtype == "int" else "float64"
        raise errors.data_not_number(decl.span, decl.name,
                                     f"{found} at {where}, beyond the range of {kind}")


def _scan(decl: ir.Data, raw, index: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of a nested list of numbers; raises on a non-number or a ragged list."""
    # numpy.ma only if already imported: np.ma's first use imports it (about 10 ms of a
    # small fit's compile), and no masked array exists before it is. Checked here, at every
    # level: a list of masked rows ([row, row]) was read with its masked values, silently
    masked = sys.modules.get("numpy.ma")
    if masked is not None and isinstance(raw, masked.MaskedArray):
        raise errors.data_masked(decl.span, decl.name, _at(decl.name, index))
    if isinstance(raw, np.ndarray) and (raw.dtype == object or raw.dtype.kind == "U"):
        # a pandas column of strings (or of Python numbers, which are numbers), scanned as a
        # list: 'an array of object' and 'an array of <U1' said neither where nor what
        return _scan(decl, raw.tolist(), index)
    if isinstance(raw, np.ndarray):
        if raw.dtype.kind not in "iuf":
            kind = "booleans" if raw.dtype.kind == "b" else str(raw.dtype)
            raise errors.data_not_number(decl.span, decl.name,
                                         f"an array of {kind}{_at(decl.name, index)}")
        return raw.shape
    if isinstance(raw, (list, tuple)):
        if all(type(item) in (int, float) for item in raw):  # the common flat list, quickly
            return (len(raw),)
        shapes = [_scan(decl, item, index + (i,)) for i, item in enumerate(raw)]
        for i, shape in enumerate(shapes[1:], start=1):
            if shape != shapes[0]:
                first, other = (_element(decl.name, index + (j,)) for j in (0, i))
                raise errors.data_not_number(decl.span, decl.name, (
                    f"a ragged nested list ({first} is {errors.format_shape(shapes[0])} "
                    f"but {other} is {errors.format_shape(shape)})"))
        return (len(raw),) + (shapes[0] if shapes else ())
    if isinstance(raw, (bool, np.bool_)) or not isinstance(raw, _NUMBERS):
        raise errors.data_not_number(decl.span, decl.name, _describe(raw) + _at(decl.name, index))
    return ()


def _empty_as_declared(decl: ir.Data, value: np.ndarray, raw, dims: dict) -> np.ndarray:
    """An empty list ``[]`` for an array of rank 2 or more whose other sizes are known: JSON
    has no other way to write [0, K] (``np.zeros((0, 3)).tolist()`` is ``[]``; Stan reads it
    so), and its leading size can only be 0."""
    if isinstance(raw, np.ndarray) or value.shape != (0,) or len(decl.shape) < 2:
        return value
    lead, *rest = (dims.get(d, 0 if i == 0 else None) if isinstance(d, str) else d
                   for i, d in enumerate(decl.shape))   # an unknown leading size is 0
    if lead != 0 or any(size is None or size < 0 for size in rest):
        return value
    return value.reshape((0, *rest))


def _check_shape(decl: ir.Data, value: np.ndarray, dims: dict, origin: dict) -> None:
    """Compare with the declared shape; a dim name not yet known is read off this array."""
    found = value.shape
    for dim in decl.shape:
        if isinstance(dim, str) and dims.get(dim, 0) < 0:
            # the size is the mistake, not the array: 'must have shape [N=-1]' hid it
            raise errors.data_negative_size(decl.span, decl.name, _shown(decl.shape, dims), dim,
                                            dims[dim])
    if len(found) != len(decl.shape):
        raise errors.data_wrong_shape(decl.span, decl.name, _shown(decl.shape, dims), found,
                                      one_as_scalar=found == () and len(decl.shape) == 1 and
                                      dims.get(decl.shape[0], decl.shape[0]) == 1)
    for dim, size in zip(decl.shape, found):
        if isinstance(dim, str) and dim not in dims:
            dims[dim] = size
            origin[dim] = decl.name
        expected = dims.get(dim, dim) if isinstance(dim, str) else dim
        if expected is not None and expected != size:
            shown = _shown(decl.shape, dims)
            if dim in origin and origin[dim] != decl.name:
                raise errors.data_inferred_dim_mismatch(decl.span, decl.name, shown, found, dim,
                                                        dims[dim], origin[dim])
            raise errors.data_wrong_shape(decl.span, decl.name, shown, found)


def _shown(shape, dims) -> tuple:
    """The declared shape with each known dim name's value: ``[N=5, 3]``."""
    return tuple(f"{d}={dims[d]}" if isinstance(d, str) and d in dims else d for d in shape)


def _inferable_dims(declared: dict[str, ir.Data], raw: dict) -> set[str]:
    """Int scalars missing from the data but used as a dim of a present array."""
    return {dim for decl in declared.values() if decl.name in raw
            for dim in decl.shape if isinstance(dim, str) and dim not in raw}


def _check_bounds(model: ir.Model, values: dict[str, np.ndarray], dims: dict) -> None:
    """Each data value against its declared bounds (inclusive, as Stan checks data)."""
    env = dict(values)
    for statement in model.statements:
        if (isinstance(statement, ir.Let) and statement.data_only
                and _used_by_bounds(model, statement)):
            check_indices(statement.value, env, dims)
            env[statement.name] = data_let(statement, env, warn=False)
        if not isinstance(statement, ir.Data):
            continue
        for bound, above in ((statement.lower, True), (statement.upper, False)):
            if bound is not None:
                check_indices(bound, env, dims)
                _check_bound(statement, values[statement.name], bound, above, env)


def _used_by_bounds(model: ir.Model, let: ir.Let) -> bool:
    return any(isinstance(node, ir.Ref) and node.name == let.name
               for statement in model.statements if isinstance(statement, ir.Data)
               for bound in (statement.lower, statement.upper) for node in ir.walk(bound))


def _check_bound(decl: ir.Data, value: np.ndarray, bound: ir.Expr, above: bool, env) -> None:
    limit = evaluate_data(bound, env)
    try:
        shape = np.broadcast_shapes(value.shape, limit.shape)
    except ValueError:
        shape = None
    if shape != value.shape:
        raise errors.shape_mismatch(decl.span, value.shape, limit.shape,
                                    f"shapes of data '{decl.name}' and its bound")
    ok = value >= limit if above else value <= limit
    if ok.all():
        return
    where, found = _first(decl.name, ~ok, value)
    text = source_text(bound)
    if not isinstance(bound, ir.Const):
        at = np.unravel_index(int(np.argmin(ok)), ok.shape) if ok.ndim else ()
        text += f" (= {_number(np.broadcast_to(limit, value.shape)[at])})"
    raise errors.data_out_of_bounds(decl.span, decl.name, where,
                                    f"{'>=' if above else '<='} {text}", found)


# ----- index ranges and supports ------------------------------------------------------------

class _Enumerated:
    """The values of the discrete latents, and of the lets computed from one of them alone, in
    every block of their enumeration: name -> [K, *shape] (block k holds the latent's k-th
    value, ``enumeration.Values.tiled``)."""

    def __init__(self):
        self.env: dict[str, np.ndarray] = {}
        self.values: dict[str, np.ndarray] = {}

    def latent(self, latent: ir.Latent, data_env) -> None:
        values = Values(latent, data_env)
        self.env[latent.name] = values.tiled(1)
        self.values[latent.name] = values.values

    def let(self, let: ir.Let, data_env) -> None:
        deps = let.value.deps
        if len(deps) == 1 and set(deps) <= set(self.values):
            self.env[let.name] = compile_expr(let.value, data_env)(self.env)

    def of(self, item: ir.Expr, data_env):
        """(latent, its values [K], the item in every block [K, *shape]), or None when the
        item is not computed from one discrete latent alone."""
        if len(item.deps) != 1 or not set(item.deps) <= set(self.values):
            return None
        latent = next(iter(item.deps))
        index = np.asarray(compile_expr(item, data_env)(self.env))
        return latent, self.values[latent], np.broadcast_to(
            index, (len(self.values[latent]),) + tuple(item.shape))


def check_indices(expr: "ir.Expr | None", env: dict, dims: dict,
                  enumerated: "_Enumerated | None" = None) -> None:
    """Raise ``index_out_of_range`` for an int index outside the axis it indexes.

    Inner index expressions are checked before the outer ones that evaluate them. A data-only
    base's axis sizes come from its value; otherwise from its shape, with ``dims`` for names.
    Negative literal indices count from the end, as in numpy; one computed from data or from
    a discrete latent (at each of its values, ``enumerated``) may not be negative.
    """
    _check_subtree(expr, env, dims, set(), enumerated or _Enumerated())


def _check_subtree(expr, env: dict, dims: dict, seen: set, enumerated) -> None:
    for node in ir.walk(expr):
        if isinstance(node, ir.Index) and id(node) not in seen:
            seen.add(id(node))
            for part in (node.base,) + node.items:
                for sub in ((part.start, part.stop) if isinstance(part, ir.SliceItem) else (part,)):
                    _check_subtree(sub, env, dims, seen, enumerated)
            _check_index(node, env, dims, enumerated)


def _check_index(node: ir.Index, env: dict, dims: dict, enumerated) -> None:
    if node.base.deps:
        shape = tuple(dims.get(d) if isinstance(d, str) else d for d in node.base.shape)
    else:
        shape = np.shape(evaluate_data(node.base, env))
    items = [item for item in node.items if not isinstance(item, ir.NewAxisItem)]
    for axis, item in enumerate(items):
        if isinstance(item, ir.SliceItem):
            _check_slice(item, env)
            continue
        if axis >= len(shape):
            continue
        size = shape[axis]
        if not isinstance(size, (int, np.integer)):
            continue
        if item.deps:
            _check_enumerated_index(item, size, env, enumerated)
            continue
        index = evaluate_data(item, env)
        name = source_text(item)
        # An index computed from data must not be negative (LANGUAGE.md v2: numpy would wrap
        # it silently); a literal like x[-1] still counts from the end, as in version 1.
        from_data = ir.reads_names(item)
        if from_data and np.any(index < 0):
            where, found = _first(name, index < 0, index)
            raise errors.negative_index(item.span, name, where, found)
        bad = (index < -size) | (index >= size)
        if np.any(bad):
            where, found = _first(name, bad, index)
            raise errors.index_out_of_range(item.span, name, where, found, size,
                                            from_end=not from_data)


def _check_slice(item: ir.SliceItem, env: dict) -> None:
    """A slice bound computed from data may not be negative, as an index may not: numpy would
    count it from the end (``y[:T - 4]`` at T = 3 is ``y[:-1]``); a literal ``y[:-1]`` does."""
    for bound in (item.start, item.stop):
        if bound is None or not ir.reads_names(bound):
            continue
        value = evaluate_data(bound, env)
        if value < 0:
            raise errors.negative_slice_bound(bound.span, source_text(bound), _number(value))


def _check_enumerated_index(item: ir.Expr, size: int, env: dict, enumerated) -> None:
    """An index computed from a discrete latent, at every value of it: numpy would count a
    negative one from the end (mu[z - 1] at z = 0 is mu's last element) and fail on one past
    the end (mu[z] with z ~ Categorical of more values than mu has) in the middle of a fit."""
    found = enumerated.of(item, env)
    if found is None:
        return
    latent, values, index = found
    bad = (index < 0) | (index >= size)
    if not np.any(bad):
        return
    k = int(np.argmax(bad.reshape(len(values), -1).any(axis=1)))
    name = source_text(item)
    element, value = _first(name, bad[k], index[k])
    where = f" at {element}" if item.shape else ""
    raise errors.discrete_index_out_of_range(item.span, name, where, value, size, latent,
                                             int(values[k]))


def _check_support(observe: ir.Observe, env: dict) -> None:
    value = evaluate_data(observe.value, env)
    params = _support_params(observe.dist, env)
    support = observe.dist.cls.support_of(params)
    bounds = [getattr(support, f.name) for f in fields(support)] if is_dataclass(support) else []
    if not all(isinstance(b, (bool, int, float, np.ndarray, np.number)) for b in bounds):
        return  # a bound that depends on latents (or is unknown) cannot be checked on data
    ok = np.asarray(support.check(value))
    if ok.all():
        return
    name = source_text(observe.value)
    full = np.broadcast_to(value, ok.shape)
    at = np.unravel_index(int(np.argmin(ok)), ok.shape) if ok.ndim else ()
    if observe.dist.cls.event_dim == 1 and ok.ndim:
        # a vector's support (Multinomial's counts summing to n) is of the whole row: its
        # first element named alone looked in the support ('observed value 1 at y[1,0]')
        where, found = _element(name, at[:-1]), _row(full[at[:-1]])
    else:
        where, found = _first(name, ~ok, full)
    raise errors.data_outside_support(observe.value.span, name, where,
                                      _describe_at(support, at, ok.shape), found)


def _row(values: np.ndarray, shown: int = 6) -> str:
    """``[1, 1, 1]``: a vector's values as data gives them, the first ``shown`` of a longer
    one followed by '...'."""
    items = [_number(v) for v in values[:shown]] + (["..."] if len(values) > shown else [])
    return f"[{', '.join(items)}]"


def _support_params(dist: ir.Dist, env: dict) -> dict:
    """Parameters for ``support_of``: data-only ones evaluated, a distribution-valued one
    (Mixture's components) as ``(class, its parameters)``."""
    return {name: (expr.cls, _support_params(expr, env)) if isinstance(expr, ir.Dist)
            else expr if expr.deps else evaluate_data(expr, env)
            for name, expr in dist.params}


def _describe_at(support, at: tuple, shape: tuple) -> str:
    """The support's description with array bounds taken at element ``at`` (``{0..n[i]}``)."""
    if not is_dataclass(support):
        return support.describe()
    changes = {}
    for f in fields(support):
        bound = getattr(support, f.name)
        if isinstance(bound, np.ndarray):
            element = np.broadcast_to(bound, shape)[at] if bound.ndim <= len(shape) else bound
            changes[f.name] = element.item() if np.ndim(element) == 0 else element
    return replace(support, **changes).describe()


def _expressions(statement) -> list:
    """Every expression of a statement: bounds, values, distribution parameters."""
    if isinstance(statement, ir.Data):
        return [statement.lower, statement.upper]
    if isinstance(statement, (ir.Let, ir.Factor)):
        return [statement.value]
    if isinstance(statement, ir.Guide):
        return [statement.loc, statement.scale]
    exprs = [] if statement.dist is None else [expr for _, expr in statement.dist.params]
    if isinstance(statement, ir.Observe):
        return [statement.value] + exprs
    support = statement.support
    if is_dataclass(support):
        exprs += [getattr(support, f.name) for f in fields(support)
                  if isinstance(getattr(support, f.name), _EXPR_TYPES)]
    return exprs


# ----- formatting ---------------------------------------------------------------------------

def source_text(expr) -> str:
    """The text the user wrote for ``expr``, from its span (a Ref's name without one)."""
    span = getattr(expr, "span", None)
    if span is None:
        return expr.name if isinstance(expr, ir.Ref) else _number(np.asarray(expr.value))
    return span.text


def _element(name: str, index: tuple) -> str:
    """``y[3]``, ``X[0,1]``; a scalar is its name; an expression is parenthesised."""
    if not index:
        return name
    base = name if name.isidentifier() else f"({name})"
    return f"{base}[{','.join(str(int(i)) for i in index)}]"


def _at(name: str, index: tuple) -> str:
    return f" at {_element(name, index)}" if index else ""


def _first(name: str, bad: np.ndarray, value: np.ndarray) -> tuple[str, str]:
    """(element name, formatted value) of the first True of ``bad``, row-major."""
    bad = np.asarray(bad)
    at = np.unravel_index(int(np.argmax(bad)), bad.shape) if bad.ndim else ()
    return _element(name, at), _number(np.asarray(value)[at])


def _number(x) -> str:
    x = np.asarray(x)
    if x.dtype.kind in "iu":
        return str(int(x))
    if x.dtype == object:  # a Python int beyond int64: its digits, when they fit on a line
        return str(x.item()) if abs(x.item()) < 10 ** 30 else "an int of more than 30 digits"
    text = repr(float(x))
    # an integral float prints as written in a data file: -2, not -2.0
    return text[:-2] if text.endswith(".0") else text
