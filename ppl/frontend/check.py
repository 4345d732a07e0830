"""The checker: names, types, shapes and supports of a parsed program -> ir.Model.

Raises every semantic error of LANGUAGE.md as a located PplError, stopping at the first one.
Shape rules live in ``shapes.py``, functions in ``functions.py``, distributions in their registry.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass


from .. import constraints as c
from .. import distributions, errors, functions, ir
from ..source import Source, Span
from . import (calls, densities, depth, enumeration, latent_types, ranges, shapes, supports,
               syntax, user_statements)
from .shapes import Shape, ShapeError

KEYWORDS = frozenset({"data", "sample", "observe", "let", "int", "real", "lower", "upper",
                      "factor", "ordered", "positive_ordered", "newaxis", "param", "guide"})
COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})

_NOT_STATIC = object()  # _static_value: not an int expression of literals and int data scalars


@dataclass(frozen=True)
class _Entry:
    """What the checker knows about a defined name."""
    kind: str  # 'data', 'latent', 'let' or 'param'
    shape: Shape
    dtype: str
    deps: frozenset
    span: Span


def check(program: syntax.Program, dims: dict[str, int] | None = None) -> ir.Model:
    """Check a program and build its IR.

    Parameters
    ----------
    program : the AST from ``parse``.
    dims : None to check without data (a dim declared by an int data scalar stays symbolic, its
        name), or the value of every int data scalar, making every shape a tuple of ints.

    Returns
    -------
    ir.Model, its statements in source order.

    Raises
    ------
    PplError : the first semantic error, located at the offending span.
    """
    depth.check_depth(program)  # before any recursion over expressions
    return _Checker(program, dims).run()


class _Checker:
    not_static = _NOT_STATIC

    def __init__(self, program: syntax.Program, dims: dict[str, int] | None):
        self.program = program
        self.dims = dims
        self.scope: dict[str, _Entry] = {}
        # int scalars that are data or data-only lets of + - * on them: value (None if symbolic)
        self.static: dict[str, int | None] = {}
        self.latent_order: dict[str, int] = {}
        # Every name the program defines, to tell "used before defined" from "unknown".
        self.defined: dict[str, Span] = {}
        for s in program.statements:
            if not isinstance(s, (syntax.Observe, syntax.Factor, syntax.Guide)):
                self.defined.setdefault(s.name, s.name_span)
        # IR statements so far by name, for the range analysis; declared bounds of latents
        self.statements: dict[str, object] = {}
        self.ranges = ranges.Analysis(self.statements)
        self.declared: dict[str, tuple] = {}
        # int data declared <lower=0, upper=1>: used as an index, probably meant as a mask
        self.binary_data: set[str] = set()

    def run(self) -> ir.Model:
        handlers = {syntax.Data: self._data, syntax.Sample: self._sample,
                    syntax.Let: self._let, syntax.Observe: self._observe,
                    syntax.Factor: self._factor, syntax.Param: self._param,
                    syntax.Guide: self._guide}
        tracker = enumeration.Tracker()
        statements = []
        for s in self.program.statements:
            statements.append(handlers[type(s)](s))
            if not isinstance(s, (syntax.Observe, syntax.Factor, syntax.Guide)):
                self.statements[s.name] = statements[-1]
            # Discrete latents must reach every term element by element (raises if not).
            enumeration.locate(tracker, statements[-1])
        statements = tuple(statements)
        _warn_params_no_term_reads(statements)
        _warn_observed_twice(statements)
        source = getattr(self.program.span, "source", None) or Source("<string>", "")
        return ir.Model(statements, source)

    # ----- statements -----------------------------------------------------------------------

    def _data(self, s: syntax.Data) -> ir.Data:
        self._check_new_name(s.name, s.name_span, data=True)
        if s.type.elem not in ("int", "real"):
            raise errors.ordered_data(s.type.span, s.name, s.type.elem)
        shape = self._shape(s.type)
        lower, upper = self._bounds(s.type, shape)
        if s.type.elem == "int" and (supports.literal_value(lower), supports.literal_value(upper)) \
                == (0.0, 1.0):
            self.binary_data.add(s.name)
        for bound in (lower, upper):
            if bound is not None and bound.deps:
                raise errors.data_bound_depends_on_latent(bound.span, s.name,
                                                          self._dependency(bound.deps))
        if s.type.elem == "int" and not shape:  # may be used as a dimension
            if self.dims is not None and s.name not in self.dims:
                raise ValueError(f"check: dims has no value for the int data scalar '{s.name}'")
            self.static[s.name] = None if self.dims is None else int(self.dims[s.name])
        self.scope[s.name] = _Entry("data", shape, s.type.elem, frozenset(), s.name_span)
        return ir.Data(s.name, s.type.elem, shape, lower, upper, span=s.span)

    def _sample(self, s: syntax.Sample) -> ir.Latent:
        self._check_new_name(s.name, s.name_span, sample=True)
        shape, lower, upper = (), None, None
        elem = "real" if s.type is None else s.type.elem
        if s.type is not None:
            shape = self._shape(s.type)
            lower, upper = self._bounds(s.type, shape)
        dist = self._dist(s.dist)
        support = dist.cls.support_of(dist.param_dict)
        # Refused here, before any bijector lookup: a discrete support has no bijector.
        if support.discrete and elem != "int":
            raise errors.discrete_latent(s.dist.span, s.name, dist.name)
        latent_types.check_square(s, support, shape)
        if len(shape) < dist.cls.event_dim:     # 'sample w ~ Dirichlet(...)': hint its shape
            raise errors.latent_below_event(s.dist.span, s.name, elem, dist.name,
                                            dist.cls.event_dim, shape, self._value_shape(dist))
        self._fit(dist, shape, s.dist.span, "declared")
        supports.check_param_ranges(dist, self.ranges, self._dependency)
        if elem == "int":
            support, truncated = latent_types.finite_support(s, dist, support, lower, upper)
        elif elem != "real":
            support, truncated = latent_types.ordered_support(s, dist, shape, support), False
        else:
            support, truncated = supports.narrow(s.name, s.type, support, lower, upper)
            if truncated:
                supports.warn_truncation_moved_by_param(s.name, dist, lower, upper,
                                                        lambda n: self.scope[n].kind)
        self.declared[s.name] = (lower, upper)
        deps = dist.deps.union(*(b.deps for b in (lower, upper) if b is not None))
        for b in (lower, upper):
            discrete = sorted(d for d in (b.deps if b is not None else ()) if
                              self.scope[d].dtype == "int")
            if discrete and elem != "int":
                raise errors.bound_depends_on_discrete(b.span, s.name, discrete[0])
        self.latent_order[s.name] = len(self.latent_order)
        dtype = "int" if elem == "int" else "real"
        self.scope[s.name] = _Entry("latent", shape, dtype, frozenset({s.name}), s.name_span)
        return ir.Latent(s.name, shape, dist, support, truncated, deps, span=s.span, dtype=dtype)

    def _let(self, s: syntax.Let) -> ir.Let:
        self._check_new_name(s.name, s.name_span)
        value = self._expr(s.value)
        known = self._static_value(value)
        if known is not _NOT_STATIC:  # an int scalar of data: may be used as a dimension
            self.static[s.name] = known
        self.scope[s.name] = _Entry("let", value.shape, value.dtype, value.deps, s.name_span)
        reported = bool(value.deps) and not s.name.startswith("_")
        return ir.Let(s.name, value, reported, span=s.span)

    def _observe(self, s: syntax.Observe) -> ir.Observe:
        value = self._expr(s.value)
        if value.deps:
            first = self._first(value.deps)
            raise errors.observe_depends_on_latent(value.span, first,
                                                   self.scope[first].kind == "param")
        dist = self._dist(s.dist)
        self._fit(dist, value.shape, s.dist.span, "observed")
        supports.refuse_moving_support(dist, value, self.declared, self._first)
        supports.check_param_ranges(dist, self.ranges, self._dependency)
        return ir.Observe(value, dist, span=s.span)

    def _factor(self, s: syntax.Factor) -> ir.Factor:
        value = self._expr(s.value)
        return ir.Factor(value, span=s.span)

    def _param(self, s: syntax.Param) -> ir.Param:
        return user_statements.check_param(self, s)

    def _guide(self, s: syntax.Guide) -> ir.Guide:
        return user_statements.check_guide(self, s)

    # ----- names ----------------------------------------------------------------------------

    def _check_new_name(self, name: str, span: Span, data: bool = False,
                        sample: bool = False) -> None:
        kind = ("a keyword" if name in KEYWORDS else
                "a distribution" if name in distributions.DISTRIBUTIONS else
                "a built-in function" if name in functions.FUNCTIONS else
                "a density function" if name in densities.DENSITY_FUNCTIONS else None)
        if kind is not None:
            raise errors.reserved_name(span, name, kind, data)
        if name in self.scope:
            # `sample y ~ ...` of a data name: NumPyro's sample("y", ..., obs=y)
            raise errors.defined_twice(span, name, self.scope[name].span,
                                       sampled_data=sample and self.scope[name].kind == "data")

    def _lookup(self, name: str, span: Span) -> _Entry:
        if name in self.scope:
            return self.scope[name]
        if name in self.defined:
            raise errors.used_before_definition(span, name, self.defined[name])
        raise errors.unknown_name(span, name, self.scope)

    def _first(self, deps: frozenset) -> str:
        """The earliest-defined latent among ``deps`` (a param if there is none), to name in a
        message."""
        return min(deps, key=lambda name: (name not in self.latent_order,
                                           self.latent_order.get(name, 0), name))

    def _dependency(self, deps: frozenset) -> str:
        """``_first(deps)`` as a message names it: a latent variable or a param."""
        name = self._first(deps)
        return errors.dependency(name, self.scope[name].kind)

    # ----- types ----------------------------------------------------------------------------

    def _shape(self, t: syntax.Type) -> Shape:
        if len(t.dims) > shapes.MAX_RANK:
            raise errors.too_many_dimensions(t.span, len(t.dims), shapes.MAX_RANK)
        return tuple(self._dim(d) for d in t.dims)

    def _dim(self, d: syntax.Expr) -> shapes.Dim:
        if isinstance(d, syntax.Number):
            if not d.is_int:
                raise errors.bad_dimension(d.span, f"{d.text} is not an int")
            return self._expr(d).value     # the 64-bit range of every int literal
        if not isinstance(d, syntax.Name):
            raise errors.bad_dimension(d.span, "an expression is not allowed here")
        entry = self._lookup(d.id, d.span)
        if d.id not in self.static:
            what = {"data": f"{entry.dtype} data", "latent": "a latent variable",
                    "let": "a let", "param": "a param"}[entry.kind]
            shape = f" of shape {errors.format_shape(entry.shape)}" if entry.shape else ""
            if entry.kind == "let" and not entry.deps:     # a let of data may be a dimension
                raise errors.bad_dimension(d.span, f"'{d.id}' is a let{shape} that is not built "
                                                   "from int literals and int data scalars "
                                                   "with + - *")
            raise errors.bad_dimension(d.span, f"'{d.id}' is {what}{shape}, "
                                               "not an int data scalar")
        value = self.static[d.id]
        if value is None:  # symbolic: a data scalar is its own name; a let is unknown
            return d.id if entry.kind == "data" else None
        if value < 0:
            raise errors.bad_dimension(d.span, f"'{d.id}' is {value}, a negative size")
        return value

    def _bounds(self, t: syntax.Type, shape: Shape) -> tuple[ir.Expr | None, ir.Expr | None]:
        bounds = []
        for b in (t.lower, t.upper):
            bound = None if b is None else self._expr(b)
            if bound is not None and not shapes.fits(bound.shape, shape):
                raise errors.shape_mismatch(bound.span, bound.shape, shape,
                                            "bound and declared shapes")
            bounds.append(bound)
        lower, upper = bounds
        if lower is not None and upper is not None:
            lo, hi = supports.literal_value(lower), supports.literal_value(upper)
            if lo is not None and hi is not None and not lo < hi:
                raise errors.bad_bounds(lower.span.to(upper.span),
                                        f"lower bound {lo:g} is not less than upper bound {hi:g}")
        return lower, upper

    # ----- distributions --------------------------------------------------------------------

    def _dist(self, call: syntax.Call) -> ir.Dist:
        cls = distributions.lookup(call.func)
        if cls is None:
            if call.func in functions.FUNCTIONS:
                raise errors.not_a_distribution(call.func_span, call.func)
            raise errors.unknown_distribution(call.func_span, call.func,
                                              distributions.DISTRIBUTIONS)
        signature = self._signature(call, cls)
        written = dict(zip(signature, call.args))
        written.update((kw.name, kw.value) for kw in call.kwargs)
        takes_dist = densities.dist_params(cls)
        params = {name: (densities.component(self, e, cls) if name in takes_dist
                         else self._expr(e)) for name, e in written.items()}
        for name, value in params.items():
            if name not in takes_dist:
                self._check_param(cls, name, value)
        try:
            batch = densities.batch_shape(cls, params)
        except ShapeError as e:
            raise e.at(call.span) from None
        for name, value in params.items():  # values once their shapes are known to be right
            if name not in takes_dist:
                supports.check_constant(cls, name, value)
        deps = frozenset().union(*(p.deps for p in params.values()))
        dist = ir.Dist(cls.name, tuple((n, params[n]) for n in signature), batch, deps,
                       span=call.span)
        support = cls.support_of(dist.param_dict)
        if isinstance(support, (c.Interval, c.IntegerInterval)):
            lo, hi = supports.number(support.lower), supports.number(support.upper)
            # {5..5} holds one value; (5, 5) none
            if lo is not None and hi is not None and (hi < lo if support.discrete else
                                                      not lo < hi):
                raise errors.empty_support(call.span, cls.name, supports.describe(support))
        return dist

    def _signature(self, call: syntax.Call, cls) -> tuple[str, ...]:
        """The signature of ``cls`` the call matches: positional arguments fill its first
        names, keywords exactly the rest; the first signature that fits wins."""
        names = [n for sig in cls.signatures for n in sig]
        given: set[str] = set()
        for kw in call.kwargs:
            if kw.name in given:
                raise errors.duplicate_keyword(kw.span, kw.name)
            if kw.name not in names:
                raise errors.unknown_keyword(kw.span, cls.name, kw.name, names, distribution=True)
            given.add(kw.name)
        for sig in cls.signatures:
            if len(call.args) <= len(sig) and set(sig[len(call.args):]) == given:
                return sig
        raise errors.wrong_arguments(call.span, cls.name, _forms(cls.signatures),
                                     tuple(arg.span.text for arg in call.args))

    def _check_param(self, cls, name: str, value: ir.Expr) -> None:
        what = f"parameter '{name}' of {cls.name}"
        if name in cls.int_params and value.dtype != "int":
            raise errors.wrong_type(value.span, what, "int", value.dtype)
        event_dims = cls.param_event_dims.get(name, 0)
        if len(value.shape) < event_dims:
            raise errors.too_few_dimensions(value.span, what, event_dims, value.shape)

    def _fit(self, dist: ir.Dist, shape: Shape, span: Span, what: str) -> None:
        """The distribution's batch shape must broadcast into the value's batch shape without
        enlarging it, and event shapes must agree."""
        cls = dist.cls
        event = cls.event_dim
        if len(shape) < event:
            raise errors.too_few_dimensions(span, f"a value of {cls.name}", event, shape)
        batch = shape[:len(shape) - event]
        if not shapes.fits(dist.batch_shape, batch):
            if event:
                raise errors.event_batch_mismatch(span, cls.name, event, dist.batch_shape, batch,
                                                  f"distribution and {what} shapes")
            raise errors.shape_mismatch(span, dist.batch_shape, batch,
                                        f"distribution and {what} shapes",
                                        hint=_elementwise_product_hint(dist))
        self._check_event(dist, shape, span)

    @staticmethod
    def _value_shape(dist: ir.Dist) -> Shape | None:
        """The shape of the distribution's values as its parameters give it (Dirichlet's
        alpha [3]: [3]); None where only the value's declaration does (RandomWalk's length)."""
        event = dist.cls.event_dim
        for name, value in dist.params:
            if isinstance(value, ir.Expr) and dist.cls.param_event_dims.get(name, 0) >= event:
                return tuple(dist.batch_shape) + tuple(value.shape[len(value.shape) - event:])
        return None

    def _check_event(self, dist: ir.Dist, shape: Shape, span: Span) -> None:
        """The event axes of a value of ``shape`` (at least the event's rank) are those of
        the distribution's parameters: never broadcast (Dirichlet's alpha [3] at a value [1])."""
        cls = dist.cls
        event = cls.event_dim
        for name, value in dist.params:
            if event and cls.param_event_dims.get(name, 0) == event:
                if not shapes.same(value.shape[-event:], shape[-event:]):
                    raise errors.shape_mismatch(span, value.shape[-event:], shape[-event:],
                                                "event shapes")

    # ----- expressions ----------------------------------------------------------------------

    def _expr(self, e: syntax.Expr) -> ir.Expr:
        if isinstance(e, syntax.Number):
            if e.is_int and not -2 ** 63 <= e.value < 2 ** 63:
                raise errors.int_literal_too_large(e.span)
            return ir.Const(e.value, (), "int" if e.is_int else "real", span=e.span)
        if isinstance(e, syntax.Name):
            entry = self._lookup(e.id, e.span)
            return ir.Ref(e.id, entry.kind, entry.shape, entry.dtype, entry.deps, span=e.span)
        if isinstance(e, syntax.Unary):
            operand = self._expr(e.operand)
            return ir.Neg(operand, operand.shape, operand.dtype, operand.deps, span=e.span)
        if isinstance(e, syntax.Binary):
            return self._binary(e)
        if isinstance(e, syntax.Index):
            return self._index(e)
        if isinstance(e, syntax.Call):
            if e.func in densities.DENSITY_FUNCTIONS:
                return densities.density(self, e)
            return self._call(e)
        if isinstance(e, syntax.Vector):
            return self._vector(e)
        raise TypeError(f"check: not an expression: {e!r}")

    def _binary(self, e: syntax.Binary) -> ir.BinOp:
        left, right = self._expr(e.left), self._expr(e.right)
        try:
            if e.op == "@":
                shape = shapes.matmul(left.shape, right.shape)
            else:
                shape = shapes.broadcast(left.shape, right.shape, f"shapes of '{e.op}'")
        except ShapeError as err:
            raise err.at(e.span) from None
        both_int = left.dtype == right.dtype == "int"
        dtype = "int" if (both_int and e.op in "+-*@") or e.op in COMPARISONS else "real"
        return ir.BinOp(e.op, left, right, shape, dtype, left.deps | right.deps, span=e.span)

    def _index(self, e: syntax.Index) -> ir.Index:
        base = self._expr(e.base)
        items, described = [], []
        dims = iter(base.shape + (None,) * len(e.items))
        for item in e.items:
            if isinstance(item, syntax.NewAxis):
                items.append(ir.NewAxisItem(span=item.span))
                described.append(shapes.NEW_AXIS)
                continue
            dim = next(dims)
            if isinstance(item, syntax.Slice):
                (start, a), (stop, b) = self._slice_bound(item.start), self._slice_bound(item.stop)
                for bound, known in ((start, a), (stop, b)):
                    self._check_slice_bound(bound, known, dim)
                self._check_slice_order(item.span, (start, a), (stop, b), dim)
                items.append(ir.SliceItem(start, stop, span=item.span))
                described.append(shapes.Slice(a, b))
            else:
                items.append(self._index_item(item, dim))
                described.append(items[-1].shape)
        try:
            shape = shapes.index(base.shape, tuple(described))
        except ShapeError as err:
            raise err.at(e.span) from None
        deps = base.deps.union(*(i.deps for i in items if not isinstance(
            i, (ir.SliceItem, ir.NewAxisItem))))
        return self._within_rank(ir.Index(base, tuple(items), shape, base.dtype, deps,
                                          span=e.span))

    def _index_item(self, item: syntax.Expr, dim: shapes.Dim) -> ir.Expr:
        value = self._expr(item)
        continuous = [d for d in value.deps if self.scope[d].dtype != "int"]
        if continuous:
            raise errors.bad_index(value.span, "an index cannot depend on "
                                   + self._dependency(frozenset(continuous)))
        if value.dtype != "int":
            raise errors.bad_index(value.span, "an index must be int; found real")
        if isinstance(value, ir.Ref) and value.name in self.binary_data and \
                isinstance(dim, int) and dim > 2:
            warnings.warn(errors.binary_index_warning(value.span, value.name, dim), stacklevel=2)
        known = self._static_value(value)
        if isinstance(known, int) and isinstance(dim, int) and not -dim <= known < dim:
            raise errors.constant_index_out_of_range(value.span, known, dim,
                                                     from_end=not ir.reads_names(value))
        return value

    def _slice_bound(self, e: syntax.Expr | None):
        """The IR of a slice bound and its value for ``shapes.Slice``."""
        if e is None:
            return None, None
        bound = self._index_item(e, None)
        if bound.deps:
            raise errors.bad_index(bound.span, "a slice bound cannot depend on "
                                   + self._dependency(bound.deps))
        if bound.shape:
            raise errors.bad_index(bound.span, "a slice bound must be an int scalar; found "
                                               f"shape {errors.format_shape(bound.shape)}")
        known = self._static_value(bound)
        if known is _NOT_STATIC:
            raise errors.bad_index(bound.span, "a slice bound must be computed from int "
                                               "literals and int data scalars with + - *")
        return bound, shapes.UNKNOWN if known is None else known

    @staticmethod
    def _check_slice_bound(bound: ir.Expr | None, known, dim: shapes.Dim) -> None:
        """A slice bound past the end of a known axis is an error, as an index there is: numpy
        would clip it and the slice would silently hold fewer elements (``y[K:]`` at K > N is
        empty). A bound computed from the data that is negative is refused by ``data.py``."""
        if not isinstance(known, int) or not isinstance(dim, int):
            return
        from_data = ir.reads_names(bound)
        if known > dim or (known < -dim and not from_data):
            raise errors.slice_bound_out_of_range(bound.span, known, dim, from_end=not from_data)

    @staticmethod
    def _check_slice_order(span, start: tuple, stop: tuple, dim: shapes.Dim) -> None:
        """A slice whose known start comes after its known stop is an error: numpy would give
        no elements, and an observe of ``y[2:1]`` (or ``y[K:2]`` at K = 3) would silently hold
        none. ``y[n:n]``, the empty slice, stays allowed. A negative bound from the data is
        refused by ``data.py``; a negative literal counts from the end (needs a known dim
        when the other bound does not)."""
        (first, a), (last, b) = start, stop
        if not isinstance(a, int) or not isinstance(b, int):
            return
        if (a < 0 and ir.reads_names(first)) or (b < 0 and ir.reads_names(last)):
            return
        if (a < 0) != (b < 0):
            if not isinstance(dim, int):
                return
            a, b = (a + dim if a < 0 else a), (b + dim if b < 0 else b)
        if a > b:
            raise errors.reversed_slice(span, start[1], stop[1])

    def _call(self, e: syntax.Call) -> ir.Call:
        return calls.check_call(self, e)

    def _vector(self, e: syntax.Vector) -> ir.Vector:
        items = tuple(self._expr(item) for item in e.items)
        for item in items[1:]:
            if not shapes.same(item.shape, items[0].shape):
                raise errors.shape_mismatch(item.span, items[0].shape, item.shape,
                                            "shapes of the vector's items")
        dtype = "int" if all(i.dtype == "int" for i in items) else "real"
        deps = frozenset().union(*(i.deps for i in items))
        return self._within_rank(ir.Vector(items, (len(items),) + items[0].shape, dtype, deps,
                                           span=e.span))

    def _within_rank(self, value: ir.Expr) -> ir.Expr:
        """``value`` unchanged; checked where a rank can grow: indexing (newaxis), vector
        literals, function calls (outer, stack, reshape)."""
        if len(value.shape) > shapes.MAX_RANK:
            raise errors.too_many_dimensions(value.span, len(value.shape), shapes.MAX_RANK)
        return value

    def _static_value(self, e: ir.Expr):
        """An int expression of int literals and int data scalars (+ - * and unary minus):
        its value, or None without dims; anything else gives _NOT_STATIC."""
        if isinstance(e, ir.Const):
            return e.value if e.dtype == "int" else _NOT_STATIC
        if isinstance(e, ir.Ref):
            return self.static.get(e.name, _NOT_STATIC)
        if isinstance(e, ir.Neg):
            v = self._static_value(e.operand)
            return v if v is None or v is _NOT_STATIC else -v
        if isinstance(e, ir.BinOp) and e.op in ("+", "-", "*"):
            a, b = self._static_value(e.left), self._static_value(e.right)
            if a is _NOT_STATIC or b is _NOT_STATIC:
                return _NOT_STATIC
            return None if a is None or b is None else supports.ARITHMETIC[e.op](a, b)
        return _NOT_STATIC


# ----- helpers on literals and supports -----------------------------------------------------

def _warn_observed_twice(statements) -> None:
    """A name observed whole by two statements (a likelihood line copied and edited, the old
    one left in) counts its data twice; the fit cannot tell, so it is warned of here. Parts
    observed apart (y[0:2], y[2:4]) are not compared."""
    first: dict[str, Span] = {}
    for s in statements:
        if isinstance(s, ir.Observe) and isinstance(s.value, ir.Ref):
            if s.value.name in first:
                warnings.warn(errors.observed_twice(s.span, s.value.name,
                                                    first[s.value.name]), stacklevel=2)
            first.setdefault(s.value.name, s.span)


def _warn_params_no_term_reads(statements) -> None:
    """A param without a distribution that no term of the log joint reads (only a let, or
    nothing) has a zero gradient: the fit leaves it at its random start and the summary would
    report that start as if it were estimated. A model without any term is refused by the
    fit instead (Model.check_something_to_fit), with nothing printed before."""
    if not any(isinstance(s, (ir.Latent, ir.Observe, ir.Factor))
               or isinstance(s, ir.Param) and s.dist is not None for s in statements):
        return
    read: set[str] = set()
    for s in statements:
        if isinstance(s, ir.Latent):
            read |= s.deps
        elif isinstance(s, ir.Observe):
            read |= s.dist.deps
        elif isinstance(s, ir.Factor):
            read |= s.value.deps
        elif isinstance(s, ir.Guide):
            read |= s.loc.deps | s.scale.deps
        elif isinstance(s, ir.Param):
            bounds = (getattr(s.support, end, None) for end in ("lower", "upper"))
            read |= s.dist.deps if s.dist is not None else frozenset()
            read = read.union(*(b.deps for b in bounds if isinstance(b, ir.Expr.__args__)))
    for s in statements:
        if isinstance(s, ir.Param) and s.dist is None and s.name not in read:
            warnings.warn(errors.param_enters_no_term(s.span, s.name), stacklevel=2)


def _forms(signatures) -> list[str]:
    """Argument lists for messages: the first signature positional, the others by keyword
    after the names they share with it."""
    first = signatures[0]
    forms = [", ".join(first)]
    for sig in signatures[1:]:
        shared = 0
        while shared < min(len(sig), len(first)) and sig[shared] == first[shared]:
            shared += 1
        forms.append(", ".join(list(sig[:shared]) + [f"{n}=..." for n in sig[shared:]]))
    return forms


def _elementwise_product_hint(dist: ir.Dist) -> str | None:
    """Where a distribution's shape is too large because a parameter multiplies a matrix by
    a vector with '*' (Stan's matrix product, numpy's elementwise one: X [N, K] * beta [K]
    is [N, K]), the hint that the product is '@'."""
    for node in ir.walk(dist):
        if isinstance(node, ir.BinOp) and node.op == "*":
            shapes_ = sorted((node.left.shape, node.right.shape), key=len)
            if len(shapes_[0]) == 1 and len(shapes_[1]) == 2 and shapes_[0][0] == shapes_[1][1]:
                left, right = (node.left, node.right) if len(node.left.shape) == 2 else \
                    (node.right, node.left)
                return errors.matrix_product_hint(node.span.text, node.shape, left.span.text,
                                                  right.span.text)
    return None
