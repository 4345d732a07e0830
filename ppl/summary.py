"""Summary: the posterior summary table (mean, sd, 5/50/95% quantiles of every reported
element), plain or importance-weighted, built from draws by ``Fit.summary``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .errors import non_finite_summary
from .ir import element_names

QUANTILES = (0.05, 0.5, 0.95)
COLUMNS = ("mean", "sd", "5%", "50%", "95%")
MCSE = "mcse"
# Elements (draws x columns) summarized at a time: the statistics' temporaries (sort orders,
# sorted copies, squared deviations) are several times the draws they summarize, so a let of
# 2 * 10^4 elements at 4000 draws took 2.1 GB at once; a block of columns keeps them near
# 8 MB each. Every column's statistics are its own, so blocks do not change them.
STATS_ELEMENTS = 2 ** 20
KEY_VALUES = 32    # values of a row spread over its draws that key it (_earlier_copies)
CANDIDATES = 8     # earlier rows of a key a row is compared with whole (_earlier_copies)


@dataclass(frozen=True)
class Summary:
    """A printable posterior summary table: one row per reported element.

    ``rows`` maps an element name (``x[0]``) to its mean, sd, 5%, 50% and 95% quantiles, and,
    for a DADVI fit, the Monte Carlo standard error of the mean (``columns`` names them);
    ``note``, if any, is printed under the table (which sds are shown).
    """

    rows: dict[str, tuple[float, ...]]
    columns: tuple[str, ...] = COLUMNS
    note: str = ""

    @classmethod
    def from_draws(cls, draws: dict[str, np.ndarray], weights: np.ndarray | None = None,
                   note: str = "", mcse: dict[str, np.ndarray] | None = None) -> "Summary":
        """Summarize draws given as name -> array [n, *shape] (sd with the n - 1 denominator).

        With ``weights`` [n] (normalized importance weights), weighted statistics instead:
        see :func:`weighted_stats`. ``note`` is printed above the table. ``mcse``, name ->
        [*shape], adds an 'mcse' column (DADVI).
        """
        rows = {}
        for name, values in draws.items():
            flat = np.asarray(values, dtype=float).reshape(len(values), -1)
            mean, sd, quantiles = _stats(flat, weights)
            extra = () if mcse is None else (np.ravel(mcse[name]),)
            for i, element in enumerate(element_names(name, values.shape[1:])):
                rows[element] = (mean[i], sd[i], *quantiles[:, i], *(e[i] for e in extra))
        _warn_non_finite(rows)
        return cls(rows, COLUMNS if mcse is None else (*COLUMNS, MCSE), note)

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{element: {'mean': .., 'sd': .., '5%': .., '50%': .., '95%': ..}}`` (and 'mcse')."""
        return {name: dict(zip(self.columns, map(float, row)))
                for name, row in self.rows.items()}

    def to_pandas(self):
        """A pandas DataFrame: one row per element (the index), columns mean, sd, 5%, 50%, 95%
        (and mcse for a DADVI fit).

        Needs pandas (``pip install 'ppl[pandas]'``).
        """
        try:
            import pandas
        except ImportError:
            from .errors import missing_extra
            raise missing_extra("Summary.to_pandas()", "pandas", "pandas") from None
        return pandas.DataFrame.from_dict(
            {name: list(map(float, row)) for name, row in self.rows.items()},
            orient="index", columns=list(self.columns))

    def __str__(self) -> str:
        width = max([len("name")] + [len(name) for name in self.rows])
        lines = [self.note] if self.note else []
        lines.append(f"{'':<{width}}" + "".join(f"{c:>11}" for c in self.columns))
        for name, row in self.rows.items():
            # NaN beside a finite mean is a cell with no value (a param's sd, a probability's
            # mcse): blank; beside a mean that is not finite it is undefined draws: nan, as
            # the warning says (blank, such a row looked like a param's)
            blank = np.isfinite(row[0])
            # a space before every cell: -1.615e+200 is 11 characters and must not touch
            # its neighbour (other values print exactly as with a width of 11); + 0.0 makes
            # -0.0 (the quantile of a let of -mu * 0) print as 0, not -0
            lines.append(f"{name:<{width}}" + "".join(
                " " * 11 if blank and np.isnan(v) else f" {v + 0.0:>10.4g}" for v in row))
        return "\n".join(lines)

    __repr__ = __str__


def _stats(flat: np.ndarray, weights: np.ndarray | None):
    """Mean [K], sd [K] and QUANTILES [3, K] of draws ``flat`` [n, K], weighted when
    ``weights`` [n] are given, a block of STATS_ELEMENTS at a time. A column bit for bit equal
    to an earlier one takes that one's quantiles, which cost a sort each: a symmetric
    matrix's two halves, a Cholesky factor's zeros (gp_pois_regr's Kmat and L, 164 of their
    242 elements, Kmat being Toeplitz on its evenly spaced x; their sorts, weights and
    interpolations were a third of its corrected summary's CPU, and one block held few of a
    set of copies)."""
    copy_of = _earlier_copies(flat.T)
    block = max(1, STATS_ELEMENTS // max(len(flat), 1))
    parts = []
    for first in range(0, flat.shape[1], block):
        columns = flat[:, first:first + block]
        wanted = copy_of[first:first + block] < 0
        with np.errstate(all="ignore"):  # overflow is reported once, by name (from_draws)
            if weights is not None:
                parts.append(weighted_stats(columns, weights, wanted))
                continue
            mean, sd = _rescaled(columns, *_moments(columns, None), None)
            parts.append((mean, sd, _only(wanted, _linear_quantiles, columns)))
    if not parts:                   # a let of no elements
        return np.zeros(0), np.zeros(0), np.zeros((len(QUANTILES), 0))
    mean, sd, quantiles = zip(*parts)
    quantiles = np.concatenate(quantiles, axis=1)
    copies = np.flatnonzero(copy_of >= 0)
    quantiles[:, copies] = quantiles[:, copy_of[copies]]
    return np.concatenate(mean), np.concatenate(sd), quantiles


def _only(wanted: np.ndarray, quantiles_of, columns: np.ndarray) -> np.ndarray:
    """``quantiles_of(columns)`` [3, K] in the ``wanted`` columns, NaN in the others (each
    column's quantiles are its own: the same numbers as of all columns at once)."""
    if wanted.all():
        return quantiles_of(columns)
    out = np.full((len(QUANTILES), columns.shape[1]), np.nan)
    if wanted.any():
        out[:, wanted] = quantiles_of(columns[:, wanted])
    return out


def _moments(flat: np.ndarray, weights: np.ndarray | None):
    """Mean [K] and sd [K] of draws ``flat`` [n, K]: plain with the n - 1 denominator, or
    with ``weights`` [n] (summing to 1) and the reliability-weights correction."""
    if weights is None:
        mean = flat.mean(axis=0)
        sd = flat.std(axis=0, ddof=1) if len(flat) > 1 else np.zeros_like(mean)
    else:
        mean = weights @ flat
        spread = weights @ (flat - mean) ** 2
        denominator = 1.0 - float(weights @ weights)
        sd = np.sqrt(spread / denominator) if denominator > 0 else np.zeros_like(mean)
    # a column of one value (a Categorical value of probability 1) has that mean and sd 0:
    # the sums' rounding had made its mean 1 - 2e-16 and its sd 6.7e-16
    if len(flat):
        low = flat.min(axis=0)
        same = np.flatnonzero((low == flat.max(axis=0)) & np.isfinite(low))
        mean[same], sd[same] = flat[0, same], 0.0
    return mean, sd


# Below this sd the squared deviations are subnormal or round to 0 (sqrt of the smallest
# normal double, 1.5e-154): draws of mu * 1e-200 had the sd 0.
SMALLEST_SQUARED = np.sqrt(np.finfo(float).tiny)


def _rescaled(flat: np.ndarray, mean: np.ndarray, sd: np.ndarray, weights: np.ndarray | None):
    """Mean and sd recomputed in units of the largest |draw| where the squares of finite
    draws left the range of doubles: draws near 1e200 have a finite sd whose square is not,
    and those near 1e-200 a positive sd whose square is 0."""
    redo = ~np.isfinite(mean) | ~np.isfinite(sd) | (sd < SMALLEST_SQUARED)
    if not redo.any():
        return mean, sd
    candidates = flat[:, redo]      # the few columns in question, not all of them
    redo[redo] = np.all(np.isfinite(candidates), axis=0) & np.any(candidates != 0, axis=0)
    if not redo.any():
        return mean, sd
    scale = np.max(np.abs(flat[:, redo]), axis=0)
    unit_mean, unit_sd = _moments(flat[:, redo] / scale, weights)
    mean, sd = mean.copy(), sd.copy()
    mean[redo], sd[redo] = unit_mean * scale, unit_sd * scale
    return mean, sd


def _linear_quantiles(flat: np.ndarray) -> np.ndarray:
    """QUANTILES [3, K] of draws ``flat`` [n, K]: numpy's linear (R's type 7) as
    ``np.quantile``, whose arithmetic fails at extreme draws: it interpolates with b - a,
    which overflows between -1.7e308 and 1.7e308 (5% inf, 50% -inf), and is inf - inf = nan
    beside an inf draw, even at an order statistic (the median of 1, 2, inf was nan, not 2).
    Such quantiles are redone in units of a power of two (exact), and a quantile with an
    infinite neighbour is that infinity, as in R (nan between -inf and inf)."""
    quantiles = np.quantile(flat, QUANTILES, axis=0)
    redo = ~np.all(np.isfinite(quantiles), axis=0) & ~np.any(np.isnan(flat), axis=0)
    if not redo.any():
        return quantiles
    exponent = _unit_exponents(flat[:, redo])
    ordered = np.sort(np.ldexp(flat[:, redo], -exponent), axis=0)
    unit = np.quantile(ordered, QUANTILES, axis=0)
    n = len(ordered)
    for row, q in enumerate(QUANTILES):
        position = n * q - q                    # numpy's virtual index for 'linear'
        j = int(np.floor(position))
        a, b = ordered[j], ordered[min(j + 1, n - 1)]
        between = np.where(np.isinf(a) & np.isinf(b) & (a != b), np.nan,
                           np.where(np.isinf(a), a, b))
        at_infinity = np.isnan(unit[row]) & (np.isinf(a) | np.isinf(b))
        unit[row][at_infinity] = (a if position == j else between)[at_infinity]
    # the finite ones stay: in units a draw 2^1074 times below the largest is 0 (the 5% and
    # 50% of 1e-300, 2e-300, 3e-300, 1e300, inf were 0)
    quantiles[:, redo] = np.where(np.isfinite(quantiles[:, redo]), quantiles[:, redo],
                                  np.ldexp(unit, exponent))
    return quantiles


def _unit_exponents(flat: np.ndarray) -> np.ndarray:
    """[K] exponents e such that the finite draws of each column of ``flat`` [n, K] are below
    2^e in size, so ``np.ldexp(flat, -e)`` is within [-1, 1] (exactly: a power of two)."""
    finite = np.where(np.isfinite(flat), np.abs(flat), 0.0)
    return np.frexp(finite.max(axis=0))[1]


def _warn_non_finite(rows: dict) -> None:
    """One warning naming the elements whose summary is not finite (a let that overflows,
    a prior so wide that its sd is infinite); the table shows them as inf or nan."""
    bad = [name for name, row in rows.items() if not np.all(np.isfinite(row))]
    if bad:
        warnings.warn(non_finite_summary(bad), stacklevel=3)


def weighted_stats(flat: np.ndarray, weights: np.ndarray, wanted: np.ndarray | None = None):
    """Weighted mean [K], sd [K] and QUANTILES [3, K] of draws ``flat`` [n, K] (quantiles of
    the ``wanted`` columns only when given, NaN in the others).

    ``weights`` [n] sum to 1. The variance uses the reliability-weights correction
    sum w (x - mean)^2 / (1 - sum w^2), which is the n - 1 denominator at equal weights.
    Quantiles invert the weighted empirical distribution with each draw's mass centred on
    it (positions cumsum(w) - w / 2, linear in between; Hazen's rule at equal weights).
    Draws of weight 0 (a non-finite log density) are no part of it: 0 * inf is NaN, and
    a massless draw would be a node of the interpolation.
    """
    if not np.all(weights > 0):
        flat, weights = flat[weights > 0], weights[weights > 0]
    mean, sd = _rescaled(flat, *_moments(flat, weights), weights)
    return mean, sd, _only(np.ones(flat.shape[1], bool) if wanted is None else wanted,
                           lambda columns: _weighted_quantiles(columns, weights), flat)


def _weighted_quantiles(flat: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """QUANTILES [3, K] of :func:`weighted_stats` (its draws of positive weight)."""
    # one row per element, so that sorting and gathering run along memory: along the draws'
    # axis of [n, K] they took 5 of a 2 * 10^4-element let's 13 s
    ordered, orders = _sort_rows(np.ascontiguousarray(flat.T))
    mass = weights[orders]
    position = np.cumsum(mass, axis=1) - 0.5 * mass
    quantiles = np.stack([_interp_rows(q, position, ordered) for q in QUANTILES])
    # interpolation's slope overflows between draws near -+1.7e308 (the median of -1.7e308
    # and 1.7e308 was inf): such quantiles again in units of a power of two (exact), also in
    # a row with an infinite draw (one was inf there), whose inf and NaN quantiles come out
    # the same; the finite ones stay, as in units a draw 2^1074 times below the largest is 0
    # (the median of 1e-300 and 2e-300 beside 1.7e308 was 0)
    redo = ~np.all(np.isfinite(quantiles), axis=0)
    if redo.any():
        exponent = _unit_exponents(ordered[redo].T)
        unit = np.ldexp(ordered[redo], -exponent[:, None])
        again = np.ldexp(np.stack([_interp_rows(q, position[redo], unit) for q in QUANTILES]),
                         exponent)
        quantiles[:, redo] = np.where(np.isfinite(quantiles[:, redo]), quantiles[:, redo], again)
    return quantiles


def _interp_rows(x: float, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``np.interp(x, xp[k], fp[k])`` [K] for every row k at once (xp [K, n] nondecreasing
    along each row), with np.interp's own arithmetic and cases
    (numpy/_core/src/multiarray/compiled_base.c), so each value is bit for bit the loop's:
    a loop over 2 * 10^4 elements took 10 of a summary's 18 s."""
    rows, n = xp.shape
    if n == 1:
        return fp[:, 0].copy()
    j = np.count_nonzero(xp <= x, axis=1) - 1        # the last xp[j] <= x; -1 when none
    at = np.arange(rows), np.clip(j, 0, n - 2)
    x0, x1 = xp[at], xp[at[0], at[1] + 1]
    y0, y1 = fp[at], fp[at[0], at[1] + 1]
    with np.errstate(all="ignore"):
        slope = (y1 - y0) / (x1 - x0)
        value = slope * (x - x0) + y0
        nan = np.isnan(value)      # nan one way (inf - inf): numpy tries the other end
        value[nan] = (slope * (x - x1) + y1)[nan]
        level = nan & np.isnan(value) & (y0 == y1)
        value[level] = y0[level]
    value = np.where(x0 == x, y0, value)
    return np.where(j < 0, fp[:, 0], np.where(j >= n - 1, fp[:, -1], value))



def _earlier_copies(rows: np.ndarray) -> np.ndarray:
    """For each row of ``rows`` [K, n], the first earlier row with the same bits (so -0.0
    and 0.0 differ, and NaN rows match only their own bits), or -1."""
    bits = rows.view(np.int64) if rows.dtype == np.float64 else rows
    copy_of = np.full(len(rows), -1)
    # rows are compared whole only where KEY_VALUES values spread over the draws agree, and
    # with the first CANDIDATES rows of such a key: rows that agree there and differ
    # elsewhere (units of a ReLU layer, off in most draws) had been compared pairwise, K^2 / 2
    # comparisons; a copy not found is only summarized on its own, to the same numbers
    sample = np.unique(np.linspace(0, bits.shape[1] - 1, KEY_VALUES).astype(int)) \
        if bits.shape[1] else np.zeros(0, int)
    first = {}       # the sampled values' bits -> the rows seen with them, in order
    for k, key in enumerate(map(np.ndarray.tobytes, bits[:, sample])):
        for seen in first.get(key, ())[:CANDIDATES]:
            if np.array_equal(bits[k], bits[seen]):
                copy_of[k] = seen
                break
        else:
            first.setdefault(key, []).append(k)
    return copy_of


def _sort_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each row sorted, ``np.argsort(row, kind="stable")``) for rows [K, n]: one quicksort
    of all rows (about a quarter of the stable sort's time, 3 of 12 ms at 4000 draws of 20
    elements), which is that very order where a row has no two equal values and no NaN (the
    sorted order is then unique); such a row alone is sorted stably again."""
    orders = np.argsort(rows, axis=1)
    ordered = np.take_along_axis(rows, orders, axis=1)
    redo = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1) | np.isnan(ordered[:, -1])
    # a constant row (a Cholesky factor's zeros above its diagonal: 55 of gp_pois_regr's 266
    # reported elements) is its own stable order: no sort
    constant = redo & (ordered[:, 0] == ordered[:, -1])
    orders[constant] = np.arange(rows.shape[1])
    ordered[constant] = rows[constant]
    for k in np.flatnonzero(redo & ~constant):
        orders[k] = np.argsort(rows[k], kind="stable")
        ordered[k] = rows[k, orders[k]]
    return ordered, orders


def _probability_rows(name: str, p: np.ndarray, values: np.ndarray,
                      weights: np.ndarray | None = None) -> dict:
    """Rows ``z[3]=1`` for conditional probabilities p [S, *shape, K], weighted as the
    summary's other rows are when ``weights`` [S] are given."""
    mean, sd, quantiles = _stats(p.reshape(len(p), -1), weights)  # element-major, as names
    names = [f"{element}={value}" for element in element_names(name, p.shape[1:-1])
             for value in values]
    return {row: (mean[i], sd[i], *quantiles[:, i]) for i, row in enumerate(names)}


def _points(summary: Summary, params: dict) -> Summary:
    """A param's rows keep its value in the mean column and NaN for the sd and quantiles (a
    point estimate has none); they print as blank cells."""
    if not params:
        return summary
    rows = dict(summary.rows)
    for name, value in params.items():
        for element, v in zip(element_names(name, np.shape(value)), np.ravel(value)):
            if element in rows:
                rows[element] = (float(v),) + (float("nan"),) * (len(rows[element]) - 1)
    return Summary(rows, summary.columns, summary.note)
