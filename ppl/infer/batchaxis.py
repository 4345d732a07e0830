"""Which statements a minibatch can compute from its rows (``--batch DIM=B``; LANGUAGE.md).

A step evaluates every statement but the data and the data-only lets on B rows of DIM, and
scales every term whose first axis is DIM by N / B. That is the full-data model only when row i
of every value computed per step depends on row i of the batched values alone, and every term
over rows keeps DIM as its first axis. So each expression gets the position of its row axis (the
axis that holds DIM's rows, counted from the end so that broadcasting aligns it, or None for a
value that is the same for every row) and an operation that combines different rows is a
located error: a reduction or a softmax, cumsum, sort-like or matrix function along the row
axis, a matmul or dot contracting it, an index into it, two values whose rows sit on different
axes (an outer difference), a multivariate density whose event runs over the rows (a GP).
Besides: a value whose DIM axis is not its first (its rows would not be taken), a value without
rows broadcast against rows on an axis longer than 1 (another dimension of DIM's length, which a
step would pair whole with the batch's rows), and the value of DIM itself, which a step sees as
B.
"""
from __future__ import annotations

from .. import errors, ir
from ..functions import ELEMENTWISE, LAST_AXIS, REDUCTION, lookup

MATRIX = {"cholesky": 0, "log_det": 2, "diagonal": 1}  # over the last two axes: axes dropped


class _Mixes(Exception):
    """Raised inside the walk at the expression that combines rows; becomes a PplError."""

    def __init__(self, expr, latent: bool | None = None):
        super().__init__()
        self.span = expr.span
        self.latent = bool(expr.deps) if latent is None else latent


def refuse(model: ir.Model, dim: str, dims: dict | None = None) -> None:
    """Raise the located error of the first statement a minibatch of ``dim`` cannot compute.
    ``dims``: the int data scalars' values (a symbolic dim of length 1 then broadcasts against
    the rows); without them only a literal 1 does.

    Raises
    ------
    PplError : batch_param_rows, batch_axis_not_first, batch_dimension_value, batch_mixes_rows,
        batch_term_rows, batch_unbatched_axis.
    """
    rows: dict[str, int | None] = {}
    for s in model.statements:
        if isinstance(s, ir.Param) and s.shape[:1] == (dim,):
            raise errors.batch_param_rows(s.span, s.name, dim)
        if isinstance(s, (ir.Param, ir.Latent)) and dim in s.shape[1:]:
            raise errors.batch_axis_not_first(s.span, s.name, dim)
        if isinstance(s, ir.Data) or (isinstance(s, ir.Let) and s.data_only):
            shape = s.shape if isinstance(s, ir.Data) else s.value.shape
            rows[s.name] = -len(shape) if shape[:1] == (dim,) else None
            continue
        try:
            _statement(s, _Rows(dim, rows, dims or {}))
        except _Mixes as found:
            raise errors.batch_mixes_rows(found.span, dim, found.latent) from None


def _statement(s, walk: "_Rows") -> None:
    if isinstance(s, ir.Let):
        walk.rows[s.name] = walk(s.value)
    elif isinstance(s, ir.Latent):
        row = walk.rows[s.name] = -len(s.shape) if s.shape[:1] == (walk.dim,) else None
        if row is not None and -row <= s.support.event_dim:
            raise _Mixes(s, True)  # ordered[N], simplex[N]: the transform runs over the rows
        for bound in (getattr(s.support, "lower", None), getattr(s.support, "upper", None)):
            if isinstance(bound, ir.Expr):
                walk.broadcast(bound, (row, s), (walk(bound), bound))
        walk.term(s, s.shape, walk.dist(s.dist, row, s, latent=True), s.dist)
    elif isinstance(s, ir.Observe):
        walk.term(s, s.value.shape, walk.dist(s.dist, walk(s.value), s.value), s.dist)
    elif isinstance(s, ir.Factor):
        walk.term(s, s.value.shape, walk(s.value), s.value)
    elif isinstance(s, ir.Guide):
        latent = walk.rows.get(s.name)
        for expr in (s.loc, s.scale):
            if walk(expr) not in (None, latent):
                raise _Mixes(expr)
            walk.broadcast(expr, (latent, None), (walk(expr), expr))
    elif isinstance(s, ir.Param) and s.dist is not None:
        walk.term(s, s.shape, walk.dist(s.dist, None, s), s.dist)


class _Rows:
    """The row axis of expressions (negative: counted from the end; None: no rows)."""

    def __init__(self, dim: str, rows: dict, dims: dict):
        self.dim, self.rows, self.dims = dim, rows, dims

    def term(self, s, shape, row, where) -> None:
        """A term is scaled by N / B when its first axis is DIM: its rows must be that axis."""
        if row is not None and row != -len(shape):
            raise errors.batch_term_rows(getattr(where, "span", None) or s.span, self.dim)

    def agree(self, a, b, where):
        """The row axis of a broadcast of values with row axes ``a`` and ``b``."""
        if a is not None and b is not None and a != b:
            raise _Mixes(where)
        return a if a is not None else b

    def broadcast(self, where, *operands) -> int | None:
        """The row axis of a broadcast of ``operands``, (row axis, value) pairs (a value: an
        expression or a statement, with a shape and a span; None: nothing to check): rows must
        agree, and a value without rows must have length 1 on the row axis. Another dimension
        of DIM's length (or a literal one, or one known only from the data) would pair each of
        its elements with a row: a step takes only the batch's rows of values on DIM, so it
        would pair the batch's rows with all of them (B = 1: broadcast, silently)."""
        row = None
        for r, _ in operands:
            row = self.agree(row, r, where)
        for r, value in operands:
            if r is None and value is not None:
                self.fits(row, value, value.shape)
        return row

    def fits(self, row: int | None, value, shape) -> None:
        """``value`` (of ``shape``) has no rows: its axis at ``row`` (if any) has length 1."""
        if row is None or len(shape) < -row:
            return
        size = self.dims.get(shape[row]) if isinstance(shape[row], str) else shape[row]
        if size != 1:
            raise errors.batch_unbatched_axis(value.span, self.dim)

    def dist(self, dist: ir.Dist, value: int | None, at=None, latent: bool = False) -> int | None:
        """The row axis of the log density of ``dist`` at a value with row axis ``value``,
        in the value's axes; an event (Dirichlet, AR1, MvNormal) must not run over the rows.
        ``at``: the value (its shape and span); ``latent``: the value is a latent's (for the
        error's wording)."""
        events = dist.cls.event_dim if dist.cls is not None else 0
        latent = latent or bool(dist.deps)
        quiet = []
        params = self._params(dist, latent, quiet)
        row = self.agree(value, None if params is None else params - events, dist)
        if row is not None and row >= -events:
            raise _Mixes(dist, latent)
        if row is not None:
            if value is None and at is not None:
                self.fits(row, at, at.shape)
            for param, shape, shift in quiet:
                self.fits(row + events + shift, param, shape)
        return row

    def _params(self, dist: ir.Dist, latent: bool, quiet: list, shift: int = 0) -> int | None:
        """The row axis of ``dist``'s batch shape, from its parameters; appends to ``quiet``
        each parameter without rows as (expression, its batch shape, where its axes stand
        against ``dist``'s batch axes: 0, or -1 in a mixture's components)."""
        row = None
        for name, param in dist.params:
            if isinstance(param, ir.Dist):   # mixture components: last batch axis = component
                p, events = self._params(param, latent, quiet, shift - 1), 1
            else:
                p = self(param)
                events = dist.cls.param_event_dims.get(name, 0) if dist.cls is not None else 0
                if p is None:
                    quiet.append((param, param.shape[:len(param.shape) - events], shift))
            if p is not None and p >= -events:
                raise _Mixes(dist, latent)
            row = self.agree(row, None if p is None else p + events, dist)
        return row

    def __call__(self, e) -> int | None:
        if isinstance(e, ir.Const):
            return None
        if isinstance(e, ir.Ref):
            return self._ref(e)
        if isinstance(e, ir.Neg):
            return self(e.operand)
        if isinstance(e, ir.BinOp):
            if e.op == "@":
                return self._matmul(e)
            return self.broadcast(e, (self(e.left), e.left), (self(e.right), e.right))
        if isinstance(e, ir.Index):
            return self._index(e)
        if isinstance(e, ir.Call):
            return self._call(e)
        if isinstance(e, ir.Vector):
            return self.broadcast(e, *((self(item), item) for item in e.items))
        if isinstance(e, ir.Density):    # one value per event: the event axes are dropped
            row = self.dist(e.dist, self(e.value), e.value)
            return None if row is None else row + (e.dist.cls.event_dim if e.dist.cls else 0)
        raise TypeError(f"batchaxis: not an expression: {e!r}")

    def _ref(self, e: ir.Ref) -> int | None:
        if e.name == self.dim and not e.shape:
            raise errors.batch_dimension_value(e.span, self.dim)
        row = self.rows.get(e.name)
        front = None if row is None else len(e.shape) + row
        if any(d == self.dim and k != front for k, d in enumerate(e.shape)):
            raise errors.batch_axis_not_first(e.span, e.name, self.dim)
        return row

    @staticmethod
    def _drop_last(row: int, k: int, e) -> int:
        """``row`` after the last ``k`` axes are combined (they must not hold the rows)."""
        if row >= -k:
            raise _Mixes(e)
        return row + k

    def _matmul(self, e: ir.BinOp) -> int | None:
        left, right = self(e.left), self(e.right)
        nl, nr = len(e.left.shape), len(e.right.shape)
        if left is not None:    # left's last axis is contracted, dropped when right is 1-D
            self._drop_last(left, 1, e)
            left = left + 1 if nr == 1 else left
        if right is not None:   # right's second-to-last (its only, when 1-D) is contracted
            if nr == 1 or right == -2:
                raise _Mixes(e)
            right = right + 1 if nl == 1 and right <= -3 else right
        row = self.agree(left, right, e)
        if nl >= 2 and nr >= 2 and row is not None and row <= -3:   # on broadcast batch axes
            self.broadcast(e, (left, e.left), (right, e.right))
        return row

    def _call(self, e: ir.Call) -> int | None:
        f = lookup(e.func)
        args = [None if i in (f.static if f else ()) else self(a) for i, a in enumerate(e.args)]
        if all(a is None for a in args):
            return None
        x, axes = args[0], f.axes if f is not None else ""
        if axes == ELEMENTWISE:
            return self.broadcast(e, *zip(args, e.args))
        if axes == REDUCTION:
            return self._reduced(e, x)
        if axes == LAST_AXIS:                            # mixes the elements of its last axis
            self._drop_last(x, 1, e)
            return x
        if e.func == "transpose":
            nd = len(e.args[0].shape)
            return {-1: -2, -2: -1}.get(x, x) if nd >= 2 else x
        if e.func == "dot":
            return self._drop_last(self.broadcast(e, *zip(args, e.args)), 1, e)
        if e.func in MATRIX:
            return self._drop_last(x, 2, e) - 2 + MATRIX[e.func]
        if e.func in ("concat", "stack"):
            return self._joined(e, self.broadcast(e, *zip(args, e.args)))
        if e.func == "reshape" and x == -len(e.args[0].shape) and e.shape[:1] == (self.dim,):
            return -len(e.shape)                         # the row axis stays first
        raise _Mixes(e)   # diag, outer, solve, gp_exp_quad_cov, reshape of rows: conservative

    def _reduced(self, e: ir.Call, x: int) -> int:
        nd = len(e.args[0].shape)
        if e.axis is None or e.axis % nd == nd + x:
            raise _Mixes(e)
        return x + 1 if e.axis % nd > nd + x else x     # an axis after the rows is removed

    def _joined(self, e: ir.Call, row: int) -> int:
        nd, axis = len(e.args[0].shape), 0 if e.axis is None else e.axis
        if e.func == "concat":
            if axis % nd == nd + row:
                raise _Mixes(e)
            return row
        # stack: a new axis at ``axis`` of the result; before the rows it moves them on
        return row - 1 if axis % (nd + 1) > nd + row else row

    def _index(self, e: ir.Index) -> int | None:
        base = self(e.base)
        nd = len(e.base.shape)
        front = None if base is None else nd + base      # the row axis, from the front
        arrays = [(k, it) for k, it in enumerate(e.items)
                  if not isinstance(it, (ir.SliceItem, ir.NewAxisItem))]
        gathered, block = self._gathered(e, [it for _, it in arrays])
        positions = [k for k, _ in arrays]
        adjacent = positions == list(range(positions[0], positions[0] + len(positions))) \
            if positions else True
        out, axis = [], 0
        for k, item in enumerate(e.items):
            if isinstance(item, ir.NewAxisItem):
                out.append(False)
                continue
            if axis == front and not (isinstance(item, ir.SliceItem) and item.start is None
                                      and item.stop is None):
                raise _Mixes(e)
            if isinstance(item, ir.SliceItem):
                out.append(axis == front)
            elif adjacent and k == positions[0]:
                out.extend(block)
            axis += 1
        out.extend(a == front for a in range(axis, nd))
        if not adjacent:
            out = block + out
        if out.count(True) > 1:
            raise _Mixes(e)   # rows of the base paired with rows of an index array
        return out.index(True) - len(out) if True in out else None

    def _gathered(self, e: ir.Index, items: list) -> tuple[int | None, list]:
        """The row axis of the index arrays' broadcast and its axes as flags (row or not)."""
        row = self.broadcast(e, *((self(item), item) for item in items))
        rank = max((len(item.shape) for item in items), default=0)
        return row, [r - rank == row for r in range(rank)]
