"""PplError, the one user-facing exception, and one constructor per kind of user mistake.

Every message is written here, once. The CLI prints ``str(error)``; the API lets it propagate.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import PurePath

from .source import Span


class PplError(Exception):
    """A mistake in a model, its data or the options, located where possible.

    ``str()`` gives the full rendering: ``path:line:col: error: message``, the source line and a
    caret under the offending span, then the hint if there is one.
    """

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint

    def __str__(self) -> str:
        if self.span is None:
            text = f"error: {self.message}"
        else:
            text = f"{self.span.location}: error: {self.message}\n{self.span.excerpt()}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class PplWarning(UserWarning):
    """A located warning about a model: rendered like PplError, without the 'error:' word."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.message, self.span, self.hint = message, span, hint

    def __str__(self) -> str:
        text = self.message if self.span is None else (
            f"{self.span.location}: {self.message}\n{self.span.excerpt()}")
        return text + (f"\nhint: {self.hint}" if self.hint else "")


def suggest(name: str, candidates: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def suggest_data_flag(extra: Iterable[str], command: str) -> str:
    """What to write instead of a data file given positionally (CmdStan's habit), or of the
    data given before the model: '' when no extra argument is a model or a data file."""
    for argument in extra:
        suffix = argument.rsplit(".", 1)[-1].lower() if "." in argument else ""
        if suffix == "ppl":
            return (f"; the model comes first and a data file is given with --data: "
                    f"ppl {command} {argument} --data DATA")
        if suffix in ("json", "csv", "npz", "npy"):
            return (f"; a data file is given with --data: ppl {command} MODEL.ppl "
                    f"--data {argument}")
    return ""


# Options of MCMC tools (Stan, PyMC, NumPyro) that a variational fit has no use for, and what
# ppl has instead; {draws}, {starts}, {iter} and {method} are spelled as the API or the CLI
# spells its options. 'samples' is handled apart (:func:`mcmc_option`).
_MCMC_OPTIONS = {
    "chains": "a variational fit has no chains: {starts} K runs K independent fits and "
              "compares them, as R-hat compares chains",
    "warmup": "a variational fit has no warmup: it runs until its convergence rule, {iter} "
              "capping its steps",
    "target_accept": "a variational fit has no NUTS step size to adapt ({method} is advi or "
                     "dadvi)",
}
_MCMC_ALIASES = {"num_chains": "chains", "num_warmup": "warmup", "iter_warmup": "warmup",
                 "tune": "warmup", "adapt_delta": "target_accept"}


def mcmc_option(typed: str, flag: bool = False) -> str | None:
    """What ppl has instead of an MCMC tool's option ``typed`` (``num_samples``, ``chains``,
    ``tune``, ...), its names spelled as flags when ``flag``; None for another name.
    Stan's num_samples and output_samples, PyMC's and NumPyro's samples are posterior draws:
    mc_samples 2000 would take 2000 draws per gradient step (Stan's ADVI's grad_samples);
    Stan's ADVI's elbo_samples are its ELBO estimate's draws, not posterior draws."""
    name = typed.lstrip("-").replace("-", "_")
    spell = (lambda option: "--" + option.replace("_", "-")) if flag else \
        (lambda option: f"'{option}'")
    if "samples" in name and not name.startswith(("mc", "grad", "elbo")):
        return f"a variational fit's posterior draws are {spell('draws')}"
    text = _MCMC_OPTIONS.get(_MCMC_ALIASES.get(name, name))
    if text is None:
        return None
    return text.format(**{o: spell(o) for o in ("draws", "starts", "iter", "method")})


# Other tools' names of their variational fits' options (Stan's variational, PyMC's pm.fit,
# NumPyro's SVI; docs/coming-from.md's table) -> ppl's
_VI_OPTIONS = {"num_steps": "iter", "n": "iter", "learning_rate": "lr", "eta": "lr",
               "step_size": "lr", "grad_samples": "mc_samples", "obj_n_mc": "mc_samples",
               "num_particles": "mc_samples", "tol_rel_obj": "tol", "random_seed": "seed",
               "rng_seed": "seed"}


def suggest_option(typed: str, options: Iterable[str]) -> str:
    """``; did you mean 'iter'?`` for an unknown option of ``fit`` (API spelling): ppl's name
    of another tool's option of its variational fit (NumPyro's num_steps, PyMC's
    learning_rate: no hint before), else the closest by spelling."""
    options = list(options)
    same = _VI_OPTIONS.get(typed)
    return f"; did you mean '{same}'?" if same in options else suggest(typed, options)


def suggest_flag(typed: str, flags: Iterable[str]) -> str:
    """``; did you mean '--iter'?`` for an unknown flag: ppl's name of another tool's option
    (:func:`suggest_option`), else the longest flag it begins with (--iterations,
    --init-file, --output-dir), else the closest by spelling without the dashes, which made
    --output-dir look like --optimizer and --tune like --iter."""
    name = typed.lstrip("-").replace("_", "-")
    names = [flag.lstrip("-") for flag in flags if flag.startswith("--")]
    if "draws" in names and (instead := mcmc_option(name, flag=True)) is not None:
        return f"; {instead}"
    same = _VI_OPTIONS.get(name.replace("-", "_"), "").replace("_", "-")
    if same in names:
        return f"; did you mean '--{same}'?"
    begun = [n for n in names if name.startswith(n)]
    close = max(begun, key=len) if begun else next(iter(difflib.get_close_matches(name, names,
                                                                                   n=1)), None)
    return f"; did you mean '--{close}'?" if close else ""


# ----- syntax -------------------------------------------------------------------------------

def syntax_error(span: Span, found: str, expected: Iterable[str],
                 left_open: tuple[str, int, int] | None = None) -> PplError:
    """``left_open``: the bracket, line and column of one opened on an earlier line and never
    closed, the likely mistake (the lines after it were read as its expression)."""
    expected = sorted(set(expected))
    wanted = ", ".join(expected[:10]) + (", ..." if len(expected) > 10 else "")
    message = f"syntax error: unexpected {found}"
    hint = _statement_hint(found, expected, span.source.line(span.line).lstrip())
    if left_open is not None:
        bracket, line, column = left_open
        hint = f"the '{bracket}' on line {line}, column {column} is not closed"
    return PplError(message + (f"; expected {wanted}" if wanted else ""), span, hint=hint)


# Stan's container types, where a ppl type is expected: what ppl writes instead
_STAN_TYPES = {"vector": "vector[N] is written real[N]", "row_vector": "row_vector[N] is "
               "written real[N]", "matrix": "matrix[N, K] is written real[N, K]",
               "array": "array[N] T is written T[N]"}


def _statement_hint(found: str, expected: list[str], line: str = "") -> str | None:
    """Stan's habits where they stop the parse: ``y ~ ...`` and ``target += ...`` where a
    statement should start, its container types where a type should be, Stan's order
    ``data int N``, and its truncation ``T[L, U]`` after a distribution (of a latent, or of
    observed data: ``line`` is the statement's)."""
    word = found[len("name '"):-1] if found.startswith("name '") else None
    if word in _STAN_TYPES and "'real'" in expected:
        return f"Stan's {_STAN_TYPES[word]} here"
    if found in ("keyword 'int'", "keyword 'real'") and expected == ["a name"]:
        words = line.replace(";", " ").split()     # 'data int N;': Stan's order
        name = words[2] if len(words) > 2 and words[2].isidentifier() else "N"
        return f"a declaration is NAME: TYPE, as '{words[0]} {name}: {words[1]}'"
    if word == "T" and "a newline" in expected:
        if line.startswith("observe"):
            return ("a truncated likelihood is written with factor and lccdf or lcdf: "
                    "factor lpdf(Normal(mu, sigma), y) - lccdf(Normal(mu, sigma), L) for "
                    "y truncated below at L")
        return ("Stan's truncation T[L, U] is written as bounds on the latent: "
                "sample x: real<lower=L, upper=U> ~ DIST")
    if found == "'='" and line.startswith("param"):    # Pyro's pyro.param("m", init)
        name = line.split()[1].rstrip(":") if len(line.split()) > 1 else "m"
        return (f"a param's start is not written in the model: give it with --init FILE.json "
                f"or fit(init={{'{name}': ...}}); 'param {name}: real ~ DIST' gives it a prior")
    if "'observe'" not in expected or not found.startswith("name "):
        return None
    if found == "name 'target'":
        return "Stan's 'target += EXPR' is written 'factor EXPR'"
    # (a name like 'model' that starts a line without a brace is a statement's keyword left out)
    if word in ("parameters", "model", "transformed", "generated", "functions") and "{" in line:
        return _NO_BLOCKS
    if word in ("import", "from") and "~" not in line and "=" not in line or \
            word in ("with", "def") and line.rstrip().endswith(":"):
        return ("a model file is not Python: it holds data, sample, let and observe lines "
                "(docs/coming-from.md translates a PyMC or NumPyro model)")
    if found == "name 'for'":
        return ("ppl has no loops: a statement is vectorized, 'observe y ~ Normal(mu, 1)' "
                "observes every element of y, and 'Normal(a[group], 1)' indexes per element")
    return ("a statement starts with its keyword: 'observe y ~ ...' for data, "
            "'sample x ~ ...' for a latent, 'let z = ...'")


_NO_BLOCKS = ("ppl has no blocks: a Stan program's data block is 'data' lines, its parameters "
              "'sample' lines with their priors, transformed parameters and generated "
              "quantities 'let' lines, and its likelihood 'observe' lines (docs/coming-from.md)")

# Characters other languages give a meaning ppl writes otherwise (Stan's ';', '^' and the bar
# of normal_lpdf(y | mu, sigma); NumPyro's and PyMC's module prefixes, dist.Normal).
_CHARACTER_HINTS = {";": "a statement ends at the end of its line, without ';'",
                    "^": "a power is written '**', as in Python: x ** 2",
                    "|": "Stan's normal_lpdf(y | mu, sigma) is written lpdf(Normal(mu, sigma), "
                         "y), and its _lpmf, _lcdf and _lccdf as lpdf, lcdf and lccdf; an 'or' of "
                         "comparisons (0/1 ints) is maximum(a < b, c < d)",
                    "{": _NO_BLOCKS,
                    ".": "names have no attributes or modules: a distribution is Normal(0, 1) "
                         "and a function exp(x), not dist.Normal, pm.Normal, np.exp(x) or x.exp(); "
                         "x.T is transpose(x)"}


def unexpected_character(span: Span, char: str) -> PplError:
    hint = _CHARACTER_HINTS.get(char)
    if char.isalpha() and not char.isascii():
        hint = "names are ASCII letters, digits and '_' (write mu, sigma, ... for Greek letters)"
    elif char.isdigit() and not char.isascii():
        hint = "numbers are written with the ASCII digits 0-9, as in data files"
    return PplError(f"syntax error: unexpected character {char!r}", span, hint=hint)


def unexpected_end(span: Span, expected: Iterable[str],
                   left_open: tuple[str, int, int] | None = None) -> PplError:
    return syntax_error(span, "end of file", expected, left_open)


def too_deeply_nested(span: Span, limit: int) -> PplError:
    return PplError(f"expression nested too deeply (more than {limit} levels)", span,
                    hint="split it into several 'let' statements")


def bad_number(span: Span, text: str, reason: str) -> PplError:
    shown = text if len(text) <= 20 else text[:17] + "..."
    return PplError(f"syntax error: bad number '{shown}': {reason}", span)


# ----- names --------------------------------------------------------------------------------

def unknown_name(span: Span, name: str, candidates: Iterable[str]) -> PplError:
    return PplError(f"unknown name '{name}'{suggest(name, candidates)}", span)


def used_before_definition(span: Span, name: str, defined_at: Span) -> PplError:
    return PplError(f"'{name}' is used before it is defined (on line {defined_at.line})", span)


def defined_twice(span: Span, name: str, first: Span, sampled_data: bool = False) -> PplError:
    """``sampled_data``: the name is data and the second statement samples it, as NumPyro's
    sample("y", dist, obs=y) does: say how a likelihood is written."""
    hint = (f"'{name}' is data: its likelihood is written 'observe {name} ~ DIST(...)' "
            "(NumPyro's obs=, PyMC's observed=)") if sampled_data else None
    return PplError(f"'{name}' is already defined on line {first.line}", span, hint=hint)


def reserved_name(span: Span, name: str, kind: str, data: bool = False) -> PplError:
    """``kind``: what the name already is (a keyword, a distribution, a function); ``data``: it
    is declared as data, whose name must match the data's key (radon's column ``floor``)."""
    hint = f"'{name}' is {kind}; choose another name"
    if data:
        hint += " and rename the data's key (or column) to match"
    return PplError(f"'{name}' is a reserved name and cannot be defined", span, hint=hint)


# Stan's, PyMC's and NumPyro's names for distributions ppl has under another name or form,
# where the closest spelling is another distribution ('neg_binomial_2' and 'NegBinomial' ->
# 'Binomial') or nothing ('inv_gamma', 'TruncatedNormal').
_DISTRIBUTION_FORMS = {
    "neg_binomial_2": "NegativeBinomial(mu, phi)", "NegBinomial": "NegativeBinomial(mu, phi)",
    "neg_binomial_2_log": "NegativeBinomial(log_mu=x, phi=p)",
    "bernoulli_logit": "Bernoulli(logit=x)", "binomial_logit": "Binomial(n, logit=x)",
    "poisson_log": "Poisson(log_rate=x)", "categorical_logit": "Categorical(logits=x)",
    "inv_gamma": "InverseGamma(shape, scale)", "InvGamma": "InverseGamma(shape, scale)",
    "lkj_corr_cholesky": "LKJCholesky(eta)",
    "multi_normal": "MvNormal(mu, cov)", "multi_normal_cholesky": "MvNormal(mu, scale_tril=L)",
    "MultivariateNormal": "MvNormal(mu, cov)", "MvNormalCholesky": "MvNormal(mu, scale_tril=L)",
    "TruncatedNormal": "Normal(mu, sigma) on a latent with bounds: sample x: real<lower=L, "
                       "upper=U> ~ Normal(mu, sigma)",
    "HalfStudentT": "StudentT(nu, 0, sigma) on a latent with bounds: sample x: real<lower=0> "
                    "~ StudentT(nu, 0, sigma)",
}


def unknown_distribution(span: Span, name: str, candidates: Iterable[str]) -> PplError:
    if name in _DISTRIBUTION_FORMS:
        return PplError(f"unknown distribution '{name}'; write {_DISTRIBUTION_FORMS[name]}", span)
    return PplError(f"unknown distribution '{name}'{suggest(name, candidates)}", span)


# Names other languages (Stan, PyMC, scipy) use for functions ppl has under another name.
_FUNCTION_ALIASES = {"inv_logit": "sigmoid", "expit": "sigmoid", "logistic": "sigmoid",
                     "invlogit": "sigmoid", "logsumexp": "log_sum_exp",
                     "log1p_exp": "softplus"}


# Stan's functions that ppl writes with an expression. The closest name by spelling means
# something else for each of them ('log1m' -> 'log1p' flips a sign, 'inv' -> 'sin', 'exp2' ->
# 'exp', 'max' -> 'softmax'), so the message gives the expression instead.
_FUNCTION_FORMULAS = {
    "log1m": "log1p(-x) for log1m(x)", "inv": "1 / x for inv(x)", "pow": "x ** y for pow(x, y)",
    "exp2": "2 ** x for exp2(x)", "fabs": "abs(x)", "fmax": "maximum(a, b)",
    "fmin": "minimum(a, b)",
    "max": "maximum(a, b), elementwise (there is no maximum over a vector's elements)",
    "min": "minimum(a, b), elementwise (there is no minimum over a vector's elements)",
    "log_inv_logit": "-softplus(-x) for log_inv_logit(x)",
    "log1m_inv_logit": "-softplus(x) for log1m_inv_logit(x)",
    "log1m_exp": "log(-expm1(x)) for log1m_exp(x)",
    "inv_cloglog": "1 - exp(-exp(x)) for inv_cloglog(x)",
    "lbeta": "lgamma(a) + lgamma(b) - lgamma(a + b) for lbeta(a, b)",
    "lchoose": "lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1) for lchoose(n, k)",
    "log_mix": "Mixture(w, COMPONENT) after '~', or log_sum_exp(log(w) + lpdf(...)) in a factor",
    "Phi_approx": "Phi(x)",
}


def unknown_function(span: Span, name: str, candidates: Iterable[str]) -> PplError:
    candidates = list(candidates)
    alias = _FUNCTION_ALIASES.get(name)
    if alias in candidates:
        return PplError(f"unknown function '{name}'; did you mean '{alias}'?", span)
    if name in _FUNCTION_FORMULAS:
        return PplError(f"unknown function '{name}'; write {_FUNCTION_FORMULAS[name]}", span)
    # Stan's densities by name (a factor's normal_lpdf(y, mu, sigma)): the closest spelling,
    # if any, is no density; ppl takes the distribution as an argument
    stan = re.fullmatch(r"\w+_(lpdf|lpmf|lupdf|lupmf|lcdf|lccdf)", name)
    if stan:
        kind = {"lcdf": "lcdf", "lccdf": "lccdf"}.get(stan.group(1), "lpdf")
        return PplError(f"unknown function '{name}'; write {kind}(DIST(...), y) for Stan's "
                        f"{name}(y | ...), e.g. {kind}(Normal(mu, sigma), y)", span)
    return PplError(f"unknown function '{name}'{suggest(name, candidates)}", span)


def not_a_function(span: Span, name: str) -> PplError:
    return PplError(f"'{name}' is a distribution, not a function; use it after '~'", span)


def not_a_distribution(span: Span, name: str) -> PplError:
    return PplError(f"'{name}' is a function, not a distribution", span)


# ----- arguments ----------------------------------------------------------------------------

def wrong_arguments(span: Span, callee: str, signatures: Iterable[str],
                    args: tuple[str, ...] = ()) -> PplError:
    """``args``: the arguments' texts. A half-distribution given a location and a scale
    (Stan's cauchy(0, 5) on a real<lower=0>) gets the form with its scale alone."""
    forms = " or ".join(f"{callee}({s})" for s in signatures)
    hint = None
    if callee.startswith("Half") and len(args) == 2:
        hint = (f"a half-distribution has no location, its scale alone: {callee}({args[1]}) is "
                f"Stan's {callee[4:].lower()}(0, {args[1]}) on a real<lower=0>")
    return PplError(f"wrong arguments to '{callee}'; expected {forms}", span, hint=hint)


def unknown_keyword(span: Span, callee: str, keyword: str, candidates: Iterable[str],
                    distribution: bool = False) -> PplError:
    """Names the closest argument, or, when none is close (PyMC's ``sd=`` for ``sigma``), all
    of them, so the message says what to write instead; to a ``distribution``'s shape keyword,
    where a shape is declared."""
    candidates = list(dict.fromkeys(candidates))
    other = _other_tools_keyword(callee, keyword, candidates, distribution)
    hint = "" if other else suggest(keyword, candidates)   # 'scale' is not Gamma's 'shape'
    if not hint:
        hint = (f"; its arguments are {', '.join(candidates)}" if candidates
                else "; it takes no keyword arguments")
    return PplError(f"'{callee}' has no argument '{keyword}'{hint}", span, hint=other)


def _other_tools_keyword(callee: str, keyword: str, candidates: list[str],
                         distribution: bool) -> str | None:
    """What PyMC's or NumPyro's argument ``keyword`` is in ppl's ``callee`` (a
    ``distribution`` or a function), if known."""
    if keyword in ("shape", "size", "dims", "sample_shape") and distribution:
        return f"a latent's shape is declared with its name: sample x: real[N] ~ {callee}(...)"
    if keyword in ("obs", "observed") and distribution:
        return f"observed data is its own statement: observe y ~ {callee}(...)"
    if keyword == "tau" and "sigma" in candidates:
        return "PyMC's precision tau is written as the scale sigma = 1 / sqrt(tau)"
    if keyword == "sd" and "sigma" in candidates:
        return "PyMC's sd is sigma"
    if keyword in ("loc", "scale") and {"mu", "sigma"} <= set(candidates):
        return "NumPyro's loc and scale are mu and sigma"
    if keyword == "scale" and "rate" in candidates:
        return f"{callee} takes a rate, the scale's inverse: rate = 1 / scale"
    if keyword in ("lam", "mu") and "rate" in candidates:
        return f"PyMC's {keyword} is {callee}'s rate"
    if keyword in ("alpha", "beta") and candidates[:2] == ["a", "b"]:
        return f"PyMC's alpha and beta are {callee}'s a and b"
    return None


def duplicate_keyword(span: Span, keyword: str) -> PplError:
    return PplError(f"argument '{keyword}' is given twice", span)


def bad_parameter(span: Span, callee: str, param: str, constraint: str, found) -> PplError:
    return PplError(f"parameter '{param}' of {callee} must be {constraint}; found {found}", span)


def empty_support(span: Span, callee: str, support: str) -> PplError:
    return PplError(f"the parameters of {callee} give an empty support {support}", span)


# ----- types and shapes ---------------------------------------------------------------------

def shape_mismatch(span: Span, left, right, what: str = "shapes",
                   hint: str | None = None) -> PplError:
    return PplError(f"{what} do not match: {format_shape(left)} and {format_shape(right)}", span,
                    hint=hint)


def matrix_product_hint(product: str, shape, matrix: str, vector: str) -> str:
    """The hint of a shape mismatch where ``product`` multiplies a matrix by a vector with '*'."""
    return (f"'*' multiplies elementwise, as numpy's does: {product} is {format_shape(shape)}; "
            f"the matrix-vector product (Stan's '*') is {matrix} @ {vector}")


def event_batch_mismatch(span: Span, dist: str, event: int, left, right, what: str) -> PplError:
    """The batch shapes of a distribution with event axes (AR1, MvNormal, Dirichlet) and of
    its value: the value's last ``event`` axes are one event and take no part."""
    axes = "axis holds" if event == 1 else f"{event} axes hold"
    example = " (a value [N, T] takes parameters [N] or scalars)" if event == 1 else ""
    return PplError(
        f"{what} do not match: {format_shape(left)} and {format_shape(right)}", span,
        hint=f"the value's last {axes} one {dist} event; the parameters line up with the "
             f"axes before it{example}")


def wrong_shape(span: Span, what: str, expected, found) -> PplError:
    return PplError(f"{what} must have shape {format_shape(expected)}; found {format_shape(found)}",
                    span)


def wrong_type(span: Span, what: str, expected: str, found: str) -> PplError:
    return PplError(f"{what} must be {expected}; found {found}", span)


def bad_dimension(span: Span, reason: str) -> PplError:
    return PplError(f"bad dimension: {reason}", span,
                    hint="a dimension is an int literal, an int data scalar declared earlier, "
                         "or a let of them with + - * (let Kc = K - 1)")


def bad_index(span: Span, reason: str) -> PplError:
    return PplError(f"bad index: {reason}", span)


def bad_axis(span: Span, axis, ndim: int) -> PplError:
    return PplError(f"axis {axis} is out of range for a value with {ndim} dimension(s)", span)


def mean_of_nothing(span: Span, shape, axis) -> PplError:
    where = "" if axis is None else f" over axis {axis}"
    return PplError(f"'mean'{where} of no values: its argument has shape {format_shape(shape)} "
                    "with this data", span,
                    hint="the mean of no values is undefined (Stan refuses it too); with data "
                         "that can be empty, leave the statement out for it (sum(x) of no "
                         "values is 0)")


def too_few_dimensions(span: Span, what: str, ndim: int, found) -> PplError:
    return PplError(f"{what} must have at least {ndim} dimension(s); found {format_shape(found)}",
                    span)


def latent_below_event(span: Span, name: str, elem: str, dist: str, event: int, found,
                       shape) -> PplError:
    """``sample w ~ Dirichlet(...)`` declared with fewer axes than the distribution's values
    have; ``shape``: the shape its values have (None: set by the declaration alone, as a
    RandomWalk's length)."""
    declared = f"{elem}[T]" if shape is None else f"{elem}{format_shape(shape)}"
    return PplError(too_few_dimensions(span, f"a value of {dist}", event, found).message, span,
                    hint=f"a latent's declaration gives its shape: 'sample {name}: {declared} "
                         f"~ {dist}(...)'" + (" (T the length)" if shape is None else ""))


def too_many_dimensions(span: Span, ndim: int, limit: int) -> PplError:
    return PplError(f"too many dimensions: {ndim}; a value may have at most {limit} (numpy "
                    f"handles {limit + 1} axes, and the fit adds one for the draws)", span)


def int_overflow(span: Span) -> PplError:
    return PplError("int overflow: the result does not fit in a 64-bit int "
                    "(-9223372036854775808 to 9223372036854775807)", span,
                    hint="compute it as real: multiply a factor by 1.0")


def int_of_non_finite(span: Span) -> PplError:
    return PplError("floor of a value that is not finite (an infinity or NaN): no int holds it",
                    span, hint="check the data it is computed from (log or division of 0, "
                               "sqrt of a negative value)")


def int_literal_too_large(span: Span) -> PplError:
    return PplError("int literal out of range: ints are 64-bit "
                    "(-9223372036854775808 to 9223372036854775807)", span,
                    hint="write it as a real, e.g. 1e20")


def format_shape(shape) -> str:
    """``[J, 3]`` style, ``scalar`` for ``()``; symbolic dims print by name, unknown as ``?``."""
    if shape is None:
        return "?"
    if len(shape) == 0:
        return "scalar"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


# ----- statements ---------------------------------------------------------------------------

def dependency(name: str, kind: str) -> str:
    """How a message names a latent or param an expression may not depend on."""
    return f"the param '{name}'" if kind == "param" else f"the latent variable '{name}'"


def observe_depends_on_latent(span: Span, latent: str, param: bool = False) -> PplError:
    if param:   # 'observe w ~ Normal(0, 1)' for a penalty, as a PyMC or Stan user might
        return PplError(f"observed expression depends on the param '{latent}'", span,
                        hint="only data (or lets of data) can be observed; a param's "
                             f"penalty is written 'param {latent}: real ~ DIST' (or a factor)")
    return PplError(f"observed expression depends on the latent variable '{latent}'", span,
                    hint="only data (or lets of data) can be observed; "
                         "use 'sample' for unknown quantities")


def discrete_latent(span: Span, name: str, dist: str) -> PplError:
    return PplError(f"'{name}' would be a discrete latent variable ({dist} has a discrete "
                    "support) but is not declared int", span,
                    hint=f"declare it 'sample {name}: int ~ ...' (with both bounds if the support "
                         "is infinite) to sum it out, or observe it as data")


def support_depends_on_latent(span: Span, callee: str, param: str, latent: str,
                              side: str, observed: str) -> PplError:
    # max and min are not functions of the language: the hint asks for a data scalar
    extreme = f"{'max' if side == 'lower' else 'min'}({observed})"
    return PplError(f"the support of {callee} moves with its parameter '{param}', which depends "
                    f"on the latent variable '{latent}': the data bound '{latent}', and the fit "
                    "cannot see a bound that is not declared", span,
                    hint=f"declare the bound, 'sample {latent}: real<{side}=b> ~ ...' with b a "
                         f"data scalar holding {extreme}, and give '{latent}' itself as '{param}'")


def parameter_outside_constraint(span: Span, callee: str, param: str, constraint: str,
                                 dependency: str) -> PplError:
    return PplError(f"parameter '{param}' of {callee} must be {constraint}, but it is outside "
                    f"that for every value of {dependency}", span,
                    hint="change the prior or the bounds of the latent, or transform it "
                         "(exp() is positive, sigmoid() lies in (0, 1))")


def parameter_may_leave_constraint(span: Span, callee: str, param: str, constraint: str,
                                   dependency: str) -> PplWarning:
    return PplWarning(f"parameter '{param}' of {callee} must be {constraint}, but {dependency} "
                      "can take it outside; there the log density is -inf",
                      span, hint=f"declare bounds on {dependency} or a prior whose support "
                                 "fits, or transform it (exp() is positive, sigmoid() lies in "
                                 "(0, 1))")


def truncation_moves_with_param(span: Span, name: str, dist: str, param: str,
                                side: str) -> PplWarning:
    cdf = "lccdf" if side == "lower" else "lcdf"
    return PplWarning(f"the {side} bound of '{name}' reads the param '{param}' and truncates "
                      f"{dist}: the truncation's normalizing constant is dropped (as Stan does "
                      f"without T[]) though it moves with '{param}', so '{param}' is fitted to "
                      "a likelihood that is not a density of the data", span,
                      hint=f"add the normalizer once per element of '{name}': factor -{cdf}("
                           f"{dist}(...), BOUND) with the distribution's arguments and the bound")


def density_value_outside_support(span: Span, callee: str, support: str,
                                  dependency: str) -> PplError:
    return PplError(f"the value of lpdf must lie in the support {support} of {callee}, but it "
                    f"is outside that for every value of {dependency}", span,
                    hint="change the prior or the bounds of the latent, or transform it")


def density_of_continuous_value(span: Span, callee: str, latent: str) -> PplError:
    return PplError(f"lpdf of {callee}, a distribution of integers, at a value that moves with "
                    f"the continuous latent variable '{latent}': the value is almost never an "
                    "integer, so lpdf is -inf at almost every draw", span,
                    hint="give the discrete quantity an int latent (sample k: int ~ ...), or use "
                         "a continuous distribution")


def density_value_may_leave_support(span: Span, callee: str, support: str,
                                    dependency: str) -> PplWarning:
    return PplWarning(f"the value of lpdf must lie in the support {support} of {callee}, but "
                      f"{dependency} can take it outside; there lpdf is -inf",
                      span, hint=f"declare bounds on {dependency} that keep the value inside "
                                 "the support, or transform it")


def bounds_outside_support(span: Span, name: str, bound: str, support: str) -> PplError:
    return PplError(f"bound {bound} of '{name}' lies outside the support {support} "
                    "of its distribution", span)


def bad_bounds(span: Span, reason: str) -> PplError:
    return PplError(f"bad bounds: {reason}", span)


def bounds_on_support(span: Span, name: str, support: str) -> PplError:
    """Bounds on a latent whose support is not an interval (a simplex, Cholesky factors)."""
    return PplError(f"'{name}' has the support {support}; bounds cannot be declared on it", span)


def data_bound_depends_on_latent(span: Span, name: str, dependency: str) -> PplError:
    return PplError(f"the bounds of data '{name}' depend on {dependency}", span,
                    hint="bounds on data may use only data")


# ----- data ---------------------------------------------------------------------------------

def data_missing(span: Span, name: str, csv: bool = False, unnamed: bool = False,
                 inside: str | None = None, read_at: int | None = None,
                 no_data: str | None = None) -> PplError:
    """``csv``: the data is a CSV file, which holds columns only, so a scalar cannot be in it.
    ``unnamed``: the data has arr_0, np.savez's name for an array given without a name.
    ``inside``: the name of an object of the data that holds ``name`` one level down.
    ``read_at``: for a prediction, the line of a statement that reads ``name``, which is
    observed too (only data observed and read nowhere else may be left out).
    ``no_data``: when no data was given, the hint of ``no_data_given``."""
    hint = ("a CSV file holds one column per vector, not scalars: give the data as a .json "
            "or .npz file, or from Python as a dict (columns and scalars together)"
            if csv else None)
    if unnamed:
        hint = ("np.savez(path, a, b) names its arrays arr_0, arr_1, ...: name them by their "
                "data declarations, np.savez(path, x=x, y=y)")
    if inside is not None:
        hint = (f"'{name}' is inside the object '{inside}': the data's names go at the top "
                f"level ({{\"{name}\": ...}}, not {{\"{inside}\": {{\"{name}\": ...}}}})")
    if read_at is not None:
        hint = (f"'{name}' is observed, but line {read_at} reads it too: only data that is "
                f"observed and read nowhere else may be left out (it is what is drawn)")
    if no_data is not None:
        hint = no_data
    return PplError(f"data '{name}' is missing", span, hint=hint)


def no_data_given(beside: str | None, there: str | None = None) -> str:
    """The hint of a missing name when no data was given: ``beside`` is the model's MODEL.json
    path (None for a model compiled from a string), ``there`` what is at that path instead of
    a file: None (nothing), 'broken link', 'folder' or 'other' (a FIFO, a device)."""
    if beside is None:
        return "no data was given: pass it to model.fit(data)"
    found = {None: f"there is no {PurePath(beside).name} beside the model",
             "broken link": f"{beside} is a link to a file that does not exist",
             "folder": f"{beside} is {not_a_file_reason(True)}",
             "other": f"{beside} is {not_a_file_reason(False)}"}[there]
    return (f"no data was given, and {found}: give it with --data FILE (from Python, "
            f"model.fit(data)), or save it beside the model as {PurePath(beside).name}")


def data_wrong_shape(span: Span, name: str, expected, found,
                     one_as_scalar: bool = False) -> PplError:
    """``one_as_scalar``: a number given for an array of one element. It stays refused, as
    CmdStan's JSON reader refuses it (a number where an array is declared may be the wrong
    name or declaration); the hint says how the one element is given."""
    hint = (f"an array of one element is given as an array: \"{name}\": [x] in JSON, not x"
            if one_as_scalar else None)
    return PplError(f"data '{name}' must have shape {format_shape(expected)}; "
                    f"found {format_shape(found)}", span, hint=hint)


def data_negative_size(span: Span, name: str, shape, dim: str, value: int) -> PplError:
    return PplError(f"data '{name}' has shape {format_shape(shape)}: '{dim}' is {value}, a "
                    "negative size", span, hint=f"check the value of '{dim}' in the data")


def empty_event(span: Span, name: str, shape, callee: str) -> PplError:
    return PplError(f"'{name}' has shape {format_shape(shape)}: a {callee} value needs at "
                    f"least one element on its last axis", span,
                    hint="check the data that sets its size")


def data_not_int(span: Span, name: str, found) -> PplError:
    return PplError(f"data '{name}' is declared int; found {found}", span)


def data_not_number(span: Span, name: str, found) -> PplError:
    # PyMC takes observed=(df.x > 0): say what ppl reads instead of booleans
    hint = ("give 0/1 ints for a boolean: np.asarray(x, dtype=int), or 0 and 1 for false and "
            "true in a JSON file") if "boolean" in str(found) else None
    return PplError(f"data '{name}' must hold numbers; found {found}", span, hint=hint)


def data_masked(span: Span, name: str, at: str) -> PplError:
    """A numpy masked array, or one inside a list (``at``: ' at y[0]'): numpy reads its masked
    values as if they were data."""
    return data_not_number(span, name, f"a masked array{at} (fill or drop the masked values "
                                       "first)")


def data_not_finite(span: Span, name: str, where: str, found) -> PplError:
    # PyMC imputes a masked or NaN observed value; a NaN here is most often a missing one
    hint = ("a missing value is not imputed: drop its rows from every array, or declare the "
            "missing entries as latents and observe the rest") if str(found) == "nan" else None
    return PplError(f"data '{name}' must be finite; found {found} at {where}", span, hint=hint)


def data_out_of_bounds(span: Span, name: str, where: str, bound: str, found) -> PplError:
    return PplError(f"data '{name}' must be {bound}; found {found} at {where}", span)


def data_outside_support(span: Span, name: str, where: str, support: str, found) -> PplError:
    return PplError(f"observed value {found} at {where} of '{name}' is outside the support "
                    f"{support} of the distribution", span)


def _valid_indices(size, from_end: bool = True) -> str:
    if size <= 0:
        return " (the dimension is empty)"
    return (f" (indexing is 0-based: 0 to {size - 1}"
            + (f", or -{size} to -1 from the end)" if from_end else ")"))


def index_out_of_range(span: Span, name: str, where: str, found, size,
                       from_end: bool = True) -> PplError:
    """``from_end``: whether negative values count from the end here (a literal index; one
    computed from data may not be negative, ``negative_index``)."""
    return PplError(f"index '{name}' holds {found} at {where}, out of range for a dimension "
                    f"of size {size}{_valid_indices(size, from_end)}", span)


def constant_index_out_of_range(span: Span, index: int, size: int,
                                from_end: bool = True) -> PplError:
    """``from_end`` as in ``index_out_of_range``: false for an index computed from data."""
    return PplError(f"bad index: index {index} is out of range for an axis of size {size}"
                    f"{_valid_indices(size, from_end)}", span)


def slice_bound_out_of_range(span: Span, bound: int, size: int,
                             from_end: bool = True) -> PplError:
    """``from_end`` as in ``index_out_of_range``: false for a bound computed from data."""
    valid = f"0 to {size}" + (f", or -{size} to -1 from the end" if from_end and size else "")
    return PplError(f"bad slice: bound {bound} is out of range for an axis of size {size} "
                    f"(slice bounds run from {valid}; numpy would silently clip the slice)", span)


def reversed_slice(span: Span, start: int, stop: int) -> PplError:
    return PplError(f"bad slice: its start {start} comes after its stop {stop}, so it holds no "
                    "elements (numpy would silently give an empty slice)", span,
                    hint="slices are half-open: x[a:b] holds x[a] up to x[b - 1]")


def undeclared_data(names: list) -> PplWarning:
    shown = ", ".join(map(data_name, names[:10])) + (
        f" and {len(names) - 10} more" if len(names) > 10 else "")
    return PplWarning(f"the data has names the model does not declare: {shown}")


def data_for_non_data(span: Span, name: str, kind: str) -> PplWarning:
    return PplWarning(f"the data gives a value for '{name}', a {kind} of the model: it is "
                      "ignored, not fixed to that value", span,
                      hint=f"declare it 'data {name}: ...' to condition on it")


def data_name(name, limit: int = 40) -> str:
    """A data key as written in a message: a plain identifier as it is; any other key (empty,
    an invisible character, a terminal escape) quoted and escaped by repr; cut after ``limit``
    characters."""
    text = str(name)
    cut, more = text[:limit], "..." if len(text) > limit else ""
    return (cut if cut.isascii() and cut.isidentifier() else repr(cut)) + more


def bad_data_argument(found: str) -> PplError:
    return PplError(f"data must be a dict of names and values, a pandas DataFrame, or a path "
                    f"to a .json, .csv, .npz or .npy file or a folder of .npy files; found "
                    f"{found}")


def data_key_not_a_name(key, column: bool = False) -> PplError:
    """A data dict's key, or a DataFrame's column label (``column``), that is not a str: no
    data declaration can match it (a JSON file's names are strings), and it was only warned of
    as an undeclared name, quoted as a str."""
    what = "the DataFrame's column label" if column else "the key"
    return PplError(f"data: {what} {key!r} (of type {type(key).__name__}) is not a name; "
                    "data names are strings, as in a JSON file",
                    hint=("name each column by its 'data' declaration's name (df.columns = "
                          "[...], or a flat index for a MultiIndex)") if column else
                    "key each value by its 'data' declaration's name, a str")


def data_inferred_dim_mismatch(span: Span, name: str, expected, found, dim: str, value: int,
                               origin: str) -> PplError:
    return PplError(f"data '{name}' must have shape {format_shape(expected)}; "
                    f"found {format_shape(found)}", span,
                    hint=f"'{dim}' is not in the data; it was read as {value} "
                         f"from the shape of '{origin}'")


# ----- fitting and options ------------------------------------------------------------------

def _wide_start(init_scale: float | None) -> str:
    # a start the user widened (--init-scale above its default) is the likelier cause
    return "" if init_scale is None else \
        f"the guide started wide (--init-scale {init_scale:g}): try a smaller one; or "


def not_finite_at_start(span: Span | None, what: str, init_scale: float | None = None,
                        init_given: bool = False, guide=None, element: str | None = None
                        ) -> PplError:
    """``init_given``: the params started at --init values, the likelier cause (the hint named
    only the priors, bounds and data). ``guide``: the ir.Guide statement the blamed latent's
    draws come from (a loc of 1e300 was blamed on the latent's prior alone). ``element``:
    the observed element whose density is not finite at every draw ('t[2] = 0'), or None."""
    start = ("the params start at the --init values: check them against the priors, bounds "
             "and data" if init_given else "check the priors, bounds and data")
    if guide is not None:
        start = (f"its draws come from the guide statement on line {guide.span.line}: check "
                 f"its loc and scale; or {start}")
    if span is None:    # no single statement's term (the sum was not finite)
        return PplError(f"the log density is {what} at every starting point tried", span,
                        hint=_wide_start(init_scale) + start)
    at = "" if element is None else f", first at {element}"
    return PplError(f"the log density of this statement is {what} at every starting point "
                    f"tried{at}", span, hint=_wide_start(init_scale) + start
                    + ("" if init_given else " of this statement"))


def params_not_finite_at_start(span: Span | None, what: str, init_given: bool,
                               element: str | None = None) -> PplError:
    """A params-only (point) fit whose log joint, or its gradient, is ``what`` ('nan', 'inf',
    '-inf', 'finite but its gradient is not') at the params' starting values: the statement
    blamed where one is (it read 'the log density of this statement' with no statement), and
    the observed ``element`` whose density is not finite there ('t[2] = 0'), or None."""
    where = "this statement's log density" if span is not None else "the log joint"
    start = "the --init values" if init_given else "the params' starting values"
    hint = ("give --init values where every statement's density is finite" if not init_given
            else "check the --init values against the priors, bounds and data")
    at = "" if element is None else f", first at {element}"
    return PplError(f"{where} is {what} at {start}{at}", span, hint=hint)


def diverged(span: Span | None, steps: int, init_scale: float | None = None,
             rounds: bool = False) -> PplError:
    if rounds:   # a fit on fixed draws (--guide scaled): it has no step size to reduce
        where = "this statement's log density" if span is not None else "the log density"
        return PplError(f"the fit on fixed draws diverged after {steps} steps: {where} was not "
                        "finite at the guide's draws on every set of fresh draws tried", span,
                        hint=_wide_start(init_scale) + "try --guide flow or --guide fullrank, "
                             "or check that the fit it starts from (mean field) converged")
    if span is None:    # no single statement's term was to blame (the sum overflowed)
        return PplError(f"the optimization diverged after {steps} steps: the log density was "
                        "not finite even after reducing the step size",
                        hint=_wide_start(init_scale) + "try a smaller --lr, or rescale data "
                             "far from 1 (and the priors with it)")
    return PplError(f"the optimization diverged after {steps} steps: the log density of this "
                    "statement was not finite even after reducing the step size", span,
                    hint=_wide_start(init_scale) + "try a smaller --lr, or check the "
                         "statement's parameters (and its bounds: where they cross, a draw "
                         "has no support)")


def diverged_unbounded_scale(span: Span | None, steps: int, name: str, sd: float,
                             lr: float | None = None) -> PplError:
    """The fit diverged with the guide's sd of one latent grown beyond any scale a proper
    posterior has: the ELBO rose without limit by spreading q along a direction the log joint
    does not penalize (DADVI's words for it: dadvi_unbounded, dadvi_not_positive_definite).
    ``lr``: the step size the user set, which can do the same (:func:`_improper`)."""
    where = "this statement's log density" if span is not None else "the log density"
    return _improper(f"the optimization diverged after {steps} steps: the guide's sd of "
                     f"'{name}' (unconstrained) grew to {sd:.3g} before {where} overflowed",
                     name, span, lr)


_IMPROPER_HINT = ("look for a factor that cancels a prior or grows without bound, or a latent "
                  "that neither a proper prior nor the likelihood pins down")


def diverged_runaway_mean(span: Span | None, steps: int, name: str, value: float,
                          lr: float | None = None) -> PplError:
    """The fit diverged with the guide's mean of a latent (as the model sees it) beyond any
    value a proper posterior at a sane data scale has: the log joint kept rising along it, as
    for a positive latent whose prior a factor cancels (the flat density on (0, inf) is, on
    the log scale the guide works on, exp(u) times the Jacobian: it grows without bound)."""
    where = "this statement's log density" if span is not None else "the log density"
    return _improper(f"the optimization diverged after {steps} steps: the guide's mean of "
                     f"'{name}' ran off to {value:.3g} before {where} overflowed", name, span,
                     lr)


def _improper(what: str, name: str, span: Span | None, lr: float | None) -> PplError:
    """``what`` happened: most likely an improper posterior along ``name``, unless the user
    set the step size ``lr`` (eight schools at --lr 10 ran tau's mean off to inf and was
    called improper, with no word of --lr)."""
    if lr is None:
        return PplError(f"{what}, so the posterior is most likely improper: flat, or growing "
                        f"without bound, along '{name}'", span, hint=_IMPROPER_HINT)
    return PplError(f"{what}: the step size --lr {lr:g} may be too large for this model, or "
                    f"the posterior improper along '{name}'", span,
                    hint="try a smaller --lr, or leave it out (the search picks one); if it "
                         "still diverges, " + _IMPROPER_HINT)


def warm_start_diverged(family: str, source: str, steps: int, why: str) -> PplError:
    return PplError(f"'{family}' is warm-started from a {source} fit, and that fit diverged "
                    f"after {steps} steps ({why}): '{family}' cannot be fitted from it",
                    hint=f"try a smaller --lr (--guide {source} shows the fit it starts from)")


def bad_draw_parameter(span: Span | None, callee: str, param: str, constraint: str,
                       found: str) -> PplError:
    return PplError(f"cannot draw from {callee}: parameter '{param}' must be {constraint}; "
                    f"found {found} at one of the draws", span,
                    hint="bound the latent that reaches this parameter, or transform it")


def truncated_draws_on_bound(span: Span, name: str, count: int, total: int,
                             rounds: int) -> PplWarning:
    return PplWarning(f"prior draws of '{name}': {count} of {total} values were still outside "
                      f"its bounds after {rounds} redraws and were set onto the nearest bound: "
                      "these are not draws of the truncated prior", span,
                      hint="the prior has little mass inside the bounds; check the bounds, or "
                           "give a prior that puts its mass inside them")


def draw_failed(span: Span | None, callee: str, reason: str) -> PplError:
    return PplError(f"cannot draw from {callee} at one of the draws: {reason}", span,
                    hint="the draws (of the prior in prior_predictive, else of the fit) put "
                         "this statement's parameters beyond what numpy's sampler takes: bound "
                         "the latent that reaches them, or transform it")


def unbounded_elbo(steps: int, final_elbo: float) -> PplError:
    """The fit ended (converged by its rule, or out of steps) at an ELBO no proper posterior
    has (advi.UNBOUNDED_ELBO): its log normalizer would need ~1e27 observations to be near."""
    return PplError(f"the fit ended after {steps} steps with an ELBO of {final_elbo:.3g}, far "
                    "beyond any proper posterior's, so the posterior is most likely improper: "
                    "its log density grows without bound", hint=_IMPROPER_HINT)


def fit_not_at_optimum(name: str, steps: float, smallest: str, sd: float, lr: float,
                       final_elbo: float, rounds: int = 0) -> PplWarning:
    hint = ("rescale the data (and the priors with them) to values near 1, or pass a smaller "
            "--lr and a larger --window")
    if sd < lr / 100:
        cause = (f"the guide sd of '{smallest}' is {sd:.3g}, far below the step size {lr:.3g}: "
                 "the data's scale is far from the priors', or the posterior is very narrow")
    elif abs(final_elbo) > 1e8:
        cause = (f"the ELBO is about {final_elbo:.3g}: the data are on a scale far from the "
                 "priors', and the relative convergence rule stopped far from the optimum")
    else:
        cause = "the optimizer stopped before the optimum"
    after = f" even after {rounds} Newton steps" if rounds else ""
    return PplWarning(f"this fit may be wrong: a Newton step would move the mean of '{name}' "
                      f"(unconstrained) by {steps:.3g} guide sds{after}; {cause}", hint=hint)


def params_unchecked(family: str, params: list[str], em_max_dim: int) -> PplWarning:
    """A fit with params under a family that cannot hold the latents' correlations given
    them, which no full rank checked (auto.warn_unchecked_params); EM finishes full rank's
    params up to ``em_max_dim`` latents."""
    names = ", ".join(f"'{name}'" for name in params)
    return PplWarning(f"this fit may be wrong: the params ({names}) are the {family} guide's "
                      "ELBO maximum, and the latents are correlated given them, where that "
                      "maximum moves a variance component towards 0 (a random effect's scale, "
                      "a random walk's step); k̂ judges the guide given the params and cannot "
                      "see it", hint="--guide fullrank holds those correlations (its params "
                      f"are finished by EM up to {em_max_dim} latents); compare its params")


def guide_collapsed(name: str, sd: float, ratio: float, rounds: int = 0) -> PplWarning:
    """A mean-field guide sd far below the one its curvature asks for (diagnostics.short_sd),
    where the mean's check, in guide sds, saw nothing."""
    after = f" even after {rounds} Newton steps" if rounds else ""
    return PplWarning(f"this fit may be wrong: the guide sd of '{name}' (unconstrained) is "
                      f"{sd:.3g}, {ratio:.2g} of the sd the curvature at its draws asks for"
                      f"{after}: the fit stopped away from its optimum, at sds so small that "
                      f"the check of its means (in guide sds) cannot tell how far",
                      hint="centre and rescale the predictors (e.g. year - 1985), so that "
                      "the fit starts near the posterior, or try another --seed")


def too_much_memory(span: Span | None, what: str, needed: int, available: int,
                    family: str | None = None) -> PplError:
    """``family``: the guide family whose own arrays are most of it (no statement is then
    to blame: ``flow:10000000`` pointed at eight schools' ``let theta``)."""
    hint = "use smaller sizes, fewer draws or fewer --mc-samples"
    if family is not None:
        fewer = " or a flow of fewer layers (flow:K)" if family.startswith("flow") else ""
        hint = f"most of it is the guide {family}'s own arrays: use fewer --mc-samples{fewer}"
    return PplError(f"{what} needs at least {_bytes(needed)} of memory; this machine has "
                    f"{_bytes(available)}", span, hint=hint)


def summary_too_large(span: Span | None, name: str, is_let: bool, draws: int, needed: int,
                      available: int) -> PplError:
    hint = (f"name it _{name} to compute it only where the model uses it, not reported"
            if is_let else "use smaller sizes")
    return PplError(f"the summary's {draws} draws of every reported value need at least "
                    f"{_bytes(needed)} of memory, most of it for '{name}'; this machine has "
                    f"{_bytes(available)}", span, hint=hint)


def probabilities_too_large(span: Span | None, name: str, elements: int, values: int,
                            draws: int, needed: int, available: int) -> PplError:
    return PplError(f"the summary's probabilities of the {values} values of discrete latent "
                    f"'{name}' ({elements} element(s), at {draws} draws) need at least "
                    f"{_bytes(needed)} of memory; this machine has {_bytes(available)}", span,
                    hint=f"narrow the bounds of '{name}' (every value between them is "
                    "enumerated), or use fewer --draws")


def _bytes(n: int) -> str:
    for unit, size in (("TB", 2 ** 40), ("GB", 2 ** 30), ("MB", 2 ** 20)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def let_not_finite(span: Span, name: str, where: str, found) -> PplWarning:
    return PplWarning(f"let '{name}' is not finite: {found} at {where} (computed from the data "
                      "once, before the fit)", span,
                      hint="a division by zero, log(0) or an overflow in this let's arithmetic")


def non_finite_summary(names: list[str]) -> PplWarning:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return PplWarning(f"the summary of {shown} is not finite: its draws overflow (inf) or are "
                      "undefined (nan); the table shows inf or nan there",
                      hint="check the lets and priors of these elements: exp() of large "
                           "values overflows, and a very wide prior can have an infinite sd")
def start_failed(k: int, rendered: str) -> PplError:
    return PplError(f"start {k} of the multi-start check failed (starts 1 and up begin at "
                    f"dispersed points):\n{rendered}",
                    hint="fewer --starts, or fix the problem above")


def dadvi_not_finite(span: Span | None, what: str, draws: int, where: str,
                     init_scale: float | None = None) -> PplError:
    """``init_scale``: the starting guide's sd, where the user widened it (as ADVI's start
    error names it: DADVI's blamed the model alone)."""
    return PplError(f"the log density of this statement is {what} at some of DADVI's {draws} "
                    f"fixed draws {where}", span,
                    hint=_wide_start(init_scale) + "check the priors, bounds and data of this "
                    "statement, or try --method advi")


def dadvi_not_converged(optimizer: str, iterations: int, decrement: float | None,
                        message: str) -> PplError:
    """``decrement`` None: the Hessian where the optimizer stopped is not positive definite
    (far from the optimum, where 'not identified' would blame the model)."""
    left = ("its Hessian there is not positive definite" if decrement is None
            else f"the Newton decrement is {decrement:.3g}")
    return PplError(f"DADVI's optimizer ({optimizer}) stopped after {iterations} iterations "
                    f"without meeting its tolerance: {left} (scipy: {message})",
                    hint="the model may be badly scaled or not identified; try --method advi")


def dadvi_mcse_large(name: str, ratio: float, draws: int) -> PplWarning:
    return PplWarning(f"DADVI's Monte Carlo error of the mean of {name} is {ratio:.2f} "
                      f"posterior sds with {draws} fixed draws; more --dadvi-draws are needed "
                      "for a reliable mean")


def dadvi_unbounded(elbo: float) -> PplError:
    return PplError(f"DADVI's objective has no minimum: the ELBO at its fixed draws grew to "
                    f"{elbo:.3g} before a step overflowed, so the posterior is most likely "
                    "improper", hint="look for a factor or likelihood term that grows "
                    "without bound, or a latent without a proper prior")


class NotPositiveDefinite(PplError):
    """dadvi_not_positive_definite's class: dadvi.py tells it from the other errors of its
    Hessian where the optimizer ran out of iterations (no optimum, so no model to blame)."""


def dadvi_not_positive_definite(names: Iterable[str]) -> PplError:
    return NotPositiveDefinite(
        "the DADVI objective's Hessian is not positive definite at the optimum, so the "
        f"posterior has a flat or downward direction along {', '.join(names)}: the model is "
        "not identified", hint="give these parameters informative priors or remove the redundancy")


def dadvi_hessian_not_finite() -> PplError:
    """The Hessian at DADVI's optimum has NaN or infinite entries: a numerical failure at the
    fixed draws, not a flat direction (Weibull(1e-3, 1) read 'not identified along :', no
    name)."""
    return PplError("the DADVI objective's Hessian is not finite at the optimum: the log "
                    "density cannot be differentiated twice there at the fixed draws (an "
                    "extreme shape, or values that overflow)",
                    hint="try --method advi, or a scale for the latents nearer 1")


# With guide statements or params a family draws only the other latents (guides/user.py),
# and its limits count those: "this model has 1" misread a model of 25 dimensions.
UNGUIDED = "the latents without a guide statement"


def guide_too_large(family: str, D: int, limit: int, instead: str, letter: str,
                    guided: bool = False) -> PplError:
    """``family`` beyond its ``limit`` of dimensions; the hint names the family its record
    suggests instead (guides.Family.beyond), with the letter of its ':N'."""
    has = f"{UNGUIDED} have {D}" if guided else f"this model has {D}"
    return bad_option("guide", f"'{family}' is limited to {limit} unconstrained dimensions and "
                      f"{has}", hint=f"use --guide {instead} (or {instead}:{letter}) instead")


def rank_too_large(rank: int, D: int, guided: bool = False) -> PplError:
    of = f"the {D} unconstrained dimensions of {UNGUIDED}" if guided else \
        f"the model's {D} unconstrained dimensions"
    return bad_option("guide", f"rank {rank} is larger than {of}")


def bad_option(name: str, reason: str, hint: str | None = None) -> PplError:
    error = PplError(f"option {name}: {reason}", hint=hint)
    error.option, error.reason = name, reason     # for as_flag
    return error


# options of the CLI alone, which a user of the CLI first passes to fit(): the closest
# spelling among fit()'s options ('quiet' -> 'guide') has nothing to do with them
CLI_ONLY_OPTIONS = {
    "quiet": "fit() shows no progress bar (give progress= a callable to follow the fit)",
    "out": "fit() writes no files (ppl fit MODEL --out DIR writes them)"}


# Where other tools' result attributes are on a Fit: NumPyro's MCMC and SVI, PyMC's and
# ArviZ's InferenceData
_FIT_ATTRIBUTES = {
    "get_samples": "the posterior draws are fit.draws()",
    "samples": "the posterior draws are fit.draws()",
    "posterior": "the posterior draws are fit.draws(), and fit.to_arviz() is an ArviZ "
                 "InferenceData with a .posterior group",
    "print_summary": "print(fit.summary()) prints the summary",
    "get_params": "the fitted guide's values are fit.result.theta; a model's params, "
                  "fit.params()",
    "losses": "the ELBO at every step is fit.elbo (the loss is its negative)",
}


def other_tools_attribute(owner: str, name: str) -> AttributeError:
    """Python's AttributeError for ``owner.name``, saying where a Fit keeps what another
    tool's result calls ``name``."""
    text = f"'{owner}' object has no attribute '{name}'"
    instead = _FIT_ATTRIBUTES.get(name)
    return AttributeError(text + (f"; {instead}" if instead else ""))


def cli_only_option(name: str) -> PplError:
    return bad_option(name, f"the CLI's --{name}; {CLI_ONLY_OPTIONS[name]}")


def repeated_flag(flag: str, command: str | None) -> PplError:
    """A command-line flag given more than once (``ppl fit M --seed 1 --seed 2``)."""
    usage = "ppl --help" if command is None else f"ppl {command} --help"
    return bad_option(flag, f"given more than once; give each option once (see '{usage}')")


def unknown_choice(name: str, what: str, found, choices: Iterable[str]) -> PplError:
    """An option that takes one of a few words (--optimizer, --method, --correct)."""
    choices = list(choices)
    return bad_option(name, f"unknown {what} {found!r}{suggest(str(found), choices)} "
                      f"(choose one of {', '.join(choices)})")


def as_flag(error: PplError) -> PplError:
    """An option error as the command line spells the option: ``option --dadvi-draws: ...``
    where the API says ``option dadvi_draws: ...`` (its keyword). Other errors unchanged."""
    name = getattr(error, "option", None)
    if name is None or name.startswith("--"):
        return error
    keyword, _, rest = name.partition(" ")
    flag = "--" + keyword.replace("_", "-") + (" " + rest if rest else "")
    return PplError(f"option {flag}: {error.reason}", error.span, error.hint)


def options_unused(names: list[str], why: str, flags: bool = False) -> PplWarning:
    """Options given (set away from their defaults) that the fit does not use: named as the
    API's keywords, or as the command line's flags when ``flags``."""
    shown = [("--" + n.replace("_", "-")) if flags else n for n in names]
    what = f"option {shown[0]} has" if len(shown) == 1 else f"options {', '.join(shown)} have"
    warning = PplWarning(f"{what} no effect: {why}; ignored")
    warning.options, warning.why = names, why       # for the CLI's flags
    return warning


def fit_not_picklable() -> TypeError:
    """pickle.dumps(fit): a TypeError, as pickle's own refusals are, that says how to keep it."""
    return TypeError("a ppl Fit cannot be pickled (its model is compiled to Python closures): "
                     "save it with 'ppl fit MODEL --out DIR' (then 'ppl summary DIR', 'ppl "
                     "predict DIR'), or keep its draws: fit.draws(), fit.to_arviz()")


def file_error(path: str, reason: str) -> PplError:
    return PplError(f"{path}: {reason}")


def stdout_unwritable(error: OSError, saved: str | None = None) -> PplError:
    """Standard output refused the result (a full disk, a closed stream); ``saved``: the --out
    folder the fit was written to first."""
    where = f"; the fit was saved to {saved}" if saved else ""
    return PplError(f"cannot write the result to standard output ({error.strerror or error})"
                    f"{where}", hint="send the output to a file or a terminal that takes it")


def init_is_saved_fit(path: str) -> PplError:
    """A saved fit's fit.json given as --init (a warm start from an earlier fit): its entries
    (model_path, ...) were read as params, 'the value of 'model_path' is not a number'."""
    return file_error(path, "a saved fit's fit.json, not an init file; an init file is a JSON "
                            "object of param name -> value, as the saved fit's 'params' entry "
                            "holds: write that entry to a file of its own")


def no_such_fit_folder(path: str) -> PplError:
    """A DIR given to ppl summary, predict or plot that does not exist."""
    return file_error(path, "no such folder; a saved fit is the folder that 'ppl fit MODEL "
                            "--out DIR' wrote")


def no_saved_fit_folder() -> PplError:
    """An empty DIR given to ppl summary, predict or plot."""
    return PplError("'': an empty path names no folder; a saved fit is the folder that 'ppl fit "
                    "MODEL --out DIR' wrote")


def csv_row_width(path: str, line: int, width: int, row: list[str]) -> PplError:
    """A CSV row of more or fewer cells than the header has names. One cell more, of digits
    on both sides, is most often a decimal comma (1,5 for 1.5: a spreadsheet's locale)."""
    cells = "cell" if width == 1 else "cells"
    hint = None
    if len(row) == width + 1 and any(a.strip().lstrip("-").isdigit() and b.strip().isdigit()
                                     for a, b in zip(row, row[1:])):
        hint = "a decimal comma? ppl reads '.' as the decimal mark: 1.5, not 1,5"
    return PplError(f"{path}: line {line}: expected {width} {cells}, found {len(row)}",
                    hint=hint)


def data_file_as_model(path: str, suffix: str) -> PplError:
    return PplError(f"{path}: a data file ({suffix}), not a model; a model is a .ppl file, and "
                    "data is given with --data (ppl fit MODEL.ppl --data DATA) or to "
                    "model.fit(DATA)")


def not_a_regular_file(path: str, is_folder: bool) -> PplError:
    """A file to read that exists but is a folder, a FIFO or a device (a FIFO would block,
    /dev/zero never end)."""
    return file_error(path, not_a_file_reason(is_folder))


def npy_name_twice(folder: str, name: str, first: str, second: str) -> PplError:
    """Two files of an .npy folder named alike but for their suffix's case (y.npy, y.NPY): each
    is the data 'y'. One silently replaced the other (whichever sorted last)."""
    return file_error(folder, f"two files hold the data '{name}': {first} and {second}")


def not_a_file_reason(is_folder: bool) -> str:
    return "a folder, not a file" if is_folder else "not a regular file"


def invalid_json(path: str, error) -> PplError:
    """``error``: the json.JSONDecodeError of a data, init or saved-fit file."""
    return file_error(path, f"invalid JSON on line {error.lineno}, column {error.colno}: "
                            f"{error.msg}")


def not_utf8(span: Span, byte: int) -> PplError:
    return PplError(f"the model file is not UTF-8 text: byte 0x{byte:02x} cannot be decoded", span,
                    hint="save the file as UTF-8 (an editor's Latin-1 or Windows-1252 'é' is "
                         "such a byte)")


def corrupted_saved_fit(path: str, reason: str) -> PplError:
    return PplError(f"{path}: corrupted saved fit: {reason}",
                    hint="fit the model again with 'ppl fit MODEL --out DIR'")


def not_a_saved_fit(path: str, found: str) -> PplError:
    return PplError(f"{path}: not a fit that ppl saved: {found}",
                    hint="a saved fit is the folder that 'ppl fit MODEL --out DIR' wrote; "
                         "this fit.json is another program's or your own")


def model_changed_copy_used(path: str, copy: str) -> PplWarning:
    return PplWarning(f"{path}: the model changed since this fit was saved; predicting from "
                      f"the fitted model's copy, {copy}",
                      hint="to predict from the changed model, fit it again")


def saved_file_changed(path: str) -> PplError:
    return PplError(f"{path}: changed since the fit was saved (its SHA-256 is not the one "
                    "fit.json records)", hint="fit the model again with 'ppl fit MODEL --out DIR'")


def saved_fit_too_new(path: str, found: int, known: int) -> PplError:
    return PplError(f"{path}: a saved fit of format {found}, written by a later ppl; this ppl "
                    f"reads format {known} and earlier",
                    hint="upgrade ppl, or fit the model again with 'ppl fit MODEL --out DIR'")


def out_overwrites_input(path: str, role: str) -> PplError:
    return PplError(f"option --out: the fit would write {path}, which is this run's {role} file",
                    hint=f"move the {role} file, or choose another --out folder")


def out_not_a_saved_fit(path: str) -> PplError:
    """``path``: a file in the --out folder that the fit would replace, in a folder with no
    fit.json that ppl wrote (so not one a fit wrote: the file is the user's)."""
    return PplError(f"option --out: the fit would replace {path}, in a folder that holds no "
                    "saved fit (no fit.json that ppl wrote)",
                    hint="choose another --out folder, or move the file away")


def out_replaces_fitted_model(path: str) -> PplError:
    """``path``: DIR/model.ppl of a saved fit that was fitted from that very file (in place), so
    the user's model, not ppl's copy, which a fit of another model would replace."""
    return PplError(f"option --out: the fit would replace {path}, the model the saved fit there "
                    "was fitted from (the file itself, not a copy)",
                    hint="choose another --out folder, or move the model file away")


def stale_output(path: str, reason: str) -> PplError:
    """A file 'ppl predict' or 'ppl plot' wrote for the saved fit that 'ppl fit --out' has just
    replaced, which cannot be removed."""
    return PplError(f"{path}: cannot remove this file of the fit that was replaced ({reason}); "
                    "it is not of the new fit", hint="remove it by hand")


def not_ppls_output(path: str, command: str) -> PplError:
    """A file by the name ppl predict or ppl plot writes in a saved fit's folder that is not
    as either wrote it (savedfit.written_as_recorded): the user's own, or edited since."""
    return PplError(f"{path}: ppl {command} would replace this file, which is not as ppl "
                    "predict or ppl plot wrote it (a file of your own by that name, or edited "
                    "since)", hint="move or rename it, then run the command again")


def predict_overwrites_data(path: str) -> PplError:
    return PplError(f"option --data: ppl predict would write {path}, which is this run's data "
                    "file", hint="move or rename the data file")


def empty_model(span: Span, has_params: bool) -> PplError:
    if has_params:
        return PplError("nothing to fit: the model has params but no term to maximize (no "
                        "'observe', no 'factor' and no param with '~ DIST')", span,
                        hint="add an 'observe' or a 'factor' that uses them")
    return PplError("nothing to fit: the model has no 'sample', no 'param' and no 'observe' "
                    "statement", span, hint="declare a latent with 'sample NAME ~ DIST(...)'")


def guides_fixed(span: Span) -> PplError:
    return PplError("nothing to fit: every latent has a guide statement and the model has no "
                    "param, so the guides' loc and scale are fixed", span,
                    hint="give a guide params to fit (param m: real, param s: real, then "
                         "'~ Normal(m, exp(s))'), or leave a latent to --guide's family")


def missing_extra(feature: str, package: str, extra: str) -> PplError:
    return PplError(f"{feature} needs {package}, an optional dependency: "
                    f"pip install 'ppl[{extra}]'")
# ----- language version 2 -------------------------------------------------------------------

def chained_comparison(span: Span) -> PplError:
    return PplError("comparisons cannot be chained", span,
                    hint="write (a < b) * (b < c) for 'a < b < c'")


def binary_index_warning(span: Span, name: str, size: int) -> PplWarning:
    return PplWarning(f"'{name}' is declared int<lower=0, upper=1> and indexes an axis of size "
                      f"{size}: indexing gathers elements 0 and 1; it does not select by a 0/1 "
                      "mask", span)


def ordered_data(span: Span, name: str, elem: str) -> PplError:
    return PplError(f"data '{name}' is declared {elem}; {elem} types are for latent variables",
                    span, hint="declare the data real and check its order yourself")


def bounds_on_ordered(span: Span, name: str, elem: str) -> PplError:
    return PplError(f"'{name}' is declared {elem}; bounds cannot be declared on it", span)


def ordered_shape(span: Span, name: str, elem: str, shape) -> PplError:
    return PplError(f"'{name}' is declared {elem}, which must be one vector [K]; "
                    f"found shape {format_shape(shape)}", span)


def ordered_distribution(span: Span, name: str, elem: str, dist: str, support: str) -> PplError:
    return PplError(f"'{name}' is declared {elem}, but {dist} has the support {support}", span,
                    hint="an ordered type takes a distribution on the real line; "
                         "positive_ordered also one on (0, inf)")


def density_needs_distribution(span: Span, func: str) -> PplError:
    return PplError(f"the first argument of '{func}' must be a distribution call, "
                    f"as in {func}(Normal(mu, sigma), x)", span)


def no_cdf(span: Span, func: str, dist: str) -> PplError:
    return PplError(f"'{func}' is not available for {dist}", span)


def component_not_distribution(span: Span, callee: str) -> PplError:
    return PplError(f"the components of {callee} must be one distribution call, as in "
                    f"{callee}(w, Normal(mu, sigma))", span)


def multivariate_component(span: Span, callee: str, dist: str) -> PplError:
    return PplError(f"the components of {callee} must be univariate; {dist} is multivariate",
                    span)


def mixture_mismatch(span: Span, callee: str, weights: int, components: int) -> PplError:
    return PplError(f"{callee} has {weights} weights but {components} components "
                    "(the last axis of the components' parameters)", span)


def int_latent_continuous(span: Span, name: str, dist: str) -> PplError:
    return PplError(f"latent '{name}' is declared int, but {dist} is a continuous distribution",
                    span)


def joint_discrete_latent(span: Span, name: str, dist: str) -> PplError:
    return PplError(f"discrete latent '{name}' ~ {dist}: its elements are drawn jointly, so they "
                    "cannot be summed out one by one", span,
                    hint="a discrete latent's elements must be independent given the continuous "
                         "latents (Bernoulli, Categorical, Binomial, DiscreteUniform)")


def infinite_support(span: Span, name: str, support: str) -> PplError:
    return PplError(f"discrete latent '{name}' has the infinite support {support}; "
                    "it cannot be summed out", span,
                    hint="declare both bounds, as in int<lower=0, upper=20>")


def discrete_bounds_depend_on_latent(span: Span, name: str, latent: str) -> PplError:
    return PplError(f"the values of discrete latent '{name}' depend on the latent variable "
                    f"'{latent}'; they must be known from the data", span)


def too_many_values(span: Span, name: str, count: int, limit: int) -> PplError:
    return PplError(f"discrete latent '{name}' takes {count} values; at most {limit} "
                    "can be enumerated", span)


def enumeration_too_large(span: Span, size: int, limit: int) -> PplError:
    return PplError(f"enumerating the discrete latents of this statement needs {size} values "
                    f"at once; the limit is {limit}", span,
                    hint="use fewer values per discrete latent, or marginalize it by hand")


def reduction_across_discrete(span: Span, latent: str, what: str) -> PplError:
    return PplError(f"{what} across the elements of the discrete latent '{latent}'; they must "
                    "stay independent to be summed out one by one", span,
                    hint="each element of a discrete latent may reach a term only through "
                         "its own index, as in mu[z]")


def two_discrete_latents(span: Span, first: str, second: str) -> PplError:
    return PplError(f"this statement depends on two discrete latents, '{first}' and "
                    f"'{second}'; enumerating them jointly is not supported", span)


def discrete_index_out_of_range(span: Span, name: str, where: str, found, size, latent: str,
                                value) -> PplError:
    """An index computed from a discrete latent, at one of the latent's values; ``where`` is
    ' at ELEMENT' for an array index, '' for a scalar."""
    negative = " (a negative index is not counted from the end)" if int(found) < 0 else ""
    return PplError(f"index '{name}' is {found}{where} when the discrete latent '{latent}' "
                    f"is {value}, out of range for a dimension of size {size}"
                    f"{_valid_indices(size, from_end=False)}{negative}", span)


def negative_index(span: Span, name: str, where: str, found) -> PplError:
    return PplError(f"index '{name}' holds {found} at {where}; an index from the data must be "
                    "non-negative (numpy would silently count it from the end)", span)


def negative_slice_bound(span: Span, name: str, found) -> PplError:
    return PplError(f"slice bound '{name}' is {found}; a slice bound from the data must be "
                    "non-negative (numpy would silently count it from the end)", span)


def not_square_latent(span: Span, name: str, dist: str, shape) -> PplError:
    return PplError(f"'{name}' ~ {dist} must be declared as one square matrix real[K, K]; "
                    f"found shape {format_shape(shape)}", span)


def static_argument(span: Span, func: str, param: str, vector: bool = True) -> PplError:
    what = ", an int data scalar, or a vector literal of them" if vector else \
        " or an int data scalar"
    return PplError(f"argument '{param}' of '{func}' must be an int literal{what}", span)


def data_only_argument(span: Span, func: str, dependency: str) -> PplError:
    return PplError(f"'{func}' has no gradient; its argument cannot depend on {dependency}",
                    span)


def bound_depends_on_discrete(span: Span, name: str, latent: str) -> PplError:
    return PplError(f"the bounds of '{name}' depend on the discrete latent '{latent}', which is "
                    "summed out; bounds may use data and continuous latents", span)


def no_pointwise_with_discrete(names: list[str]) -> PplError:
    return PplError(f"pointwise log-likelihoods are not available for a model with discrete "
                    f"latents ({', '.join(names)}): observations are summed out with them")


def no_log_likelihood_group(names: list[str]) -> PplWarning:
    """``names``: the model's discrete latents; none when it has no ``observe`` statement."""
    if not names:
        return PplWarning("to_arviz(): no log_likelihood group, so az.loo, az.waic and "
                          "az.compare cannot run on it: the model has no observe statement, "
                          "and a factor term belongs to no observed element",
                          hint="write the likelihood as 'observe y ~ DIST' where it is one; "
                               "a censored part can stay a factor beside it")
    return PplWarning(f"to_arviz(): no log_likelihood group, so az.loo, az.waic and az.compare "
                      f"cannot run on it: the model's discrete latents ({', '.join(names)}) are "
                      "summed out of the likelihood, which then has no log density per "
                      "observed element",
                      hint="a mixture written with Mixture(w, COMPONENTS) instead of a label "
                           "z has one (models/mixture.ppl)")



def prior_ignores_factor(span: Span) -> PplWarning:
    return PplWarning("prior_predictive(): this factor statement changes the joint density of "
                      "the latents it reads, which ancestral draws from the prior cannot follow: "
                      "they are drawn as if it were absent", span,
                      hint="a factor that is a likelihood term (censored data) is rightly "
                           "left out; a prior shaped by a factor is not followed: write it as a "
                           "distribution to draw from it")


def prior_without_param_prior(span: Span, names: list[str]) -> PplWarning:
    listed = ", ".join(f"'{n}'" for n in names)
    which, its = ((f"param {listed} has", "its") if len(names) == 1
                  else (f"params {listed} have", "their"))
    return PplWarning(f"prior_predictive(): {which} no distribution, so no prior: {its} "
                      "draws, and every value drawn from them, use the default start (small "
                      "random values around 0 on the unconstrained scale)", span,
                      hint=f"give each one to draw from a prior (param {names[0]}: real ~ "
                           "Normal(0, 5)), or draw the latents from their prior at the fitted "
                           "params with fit.prior_predictive()")

# ----- param, guide and minibatches (issue 13) ------------------------------------------------

def param_not_real(span: Span, name: str, elem: str) -> PplError:
    return PplError(f"param '{name}' must be real; found {elem}", span,
                    hint="a param is a point estimate on a continuous scale: declare it real "
                         "(with bounds if needed)")


def observed_twice(span: Span, name: str, first: Span) -> PplWarning:
    return PplWarning(f"'{name}' is observed whole on line {first.line} and again here: its "
                      "likelihood is counted twice, so the posterior is as if the data were "
                      "given twice (sds about 1/sqrt(2) as wide)", span,
                      hint="remove one of the two observe statements, unless the data is "
                           "meant to count twice")


def param_enters_no_term(span: Span, name: str) -> PplWarning:
    return PplWarning(f"param '{name}' has no distribution and no term of the model reads it "
                      "(no sample, observe, factor, guide or other param): the log density "
                      "does not depend on it, so its reported value is its random start, not "
                      "an estimate", span,
                      hint=f"use it in the model, give it a distribution (param {name}: real "
                           "~ Normal(0, 5)), or remove it")


def params_not_estimated(names: list[str]) -> PplWarning:
    """Params a converged point fit never moved from their random start, where the log joint's
    gradient in them is exactly 0: it does not depend on them there (``factor 0 * k``, or data
    that zero every term reading them, or a comparison ``x < c`` alone reads them), which the
    checker's reading of the text cannot see. Point fits and ADVI's alike."""
    shown = ", ".join(f"'{n}'" for n in names[:5]) + (" ..." if len(names) > 5 else "")
    which = "param" if len(names) == 1 else "params"
    return PplWarning(f"{which} {shown} never moved from the random start, and the log joint's "
                      "gradient there is exactly 0: the log density does not depend on "
                      f"{'it' if len(names) == 1 else 'them'} here, so the value reported is "
                      "the start, not an estimate",
                      hint="check the terms that read it: a factor multiplied by 0, data "
                           "that zero them, or a comparison (x < c), which has no gradient (a "
                           "change point is a discrete latent: sample s: int ~ "
                           "DiscreteUniform(0, T - 1)); or give it a distribution")


def param_prior_depends_on_latent(span: Span, name: str, latent: str,
                                  part: str = "distribution") -> PplError:
    """``part``: 'distribution' or 'bound', what of the param reads the latent."""
    return PplError(f"the {part} of param '{name}' depends on the latent variable "
                    f"'{latent}'; it may use data and earlier params only", span)


def param_support(span: Span, name: str, dist: str, support: str) -> PplError:
    return PplError(f"param '{name}' cannot have the support of {dist} ({support}): a param's "
                    "support must be real, or an interval set by lower/upper bounds", span,
                    hint=f"make '{name}' a latent: 'sample {name}: ... ~ {dist}(...)'")


def param_prior_discrete(span: Span, name: str, dist: str) -> PplError:
    return PplError(f"param '{name}' is continuous but {dist} is a discrete distribution", span)


def guide_unknown_latent(span: Span, name: str, latents: Iterable[str]) -> PplError:
    return PplError(f"guide for '{name}', which is not a latent variable defined earlier"
                    f"{suggest(name, latents)}", span,
                    hint="a guide names a latent declared with 'sample' before it")


def guide_not_reparameterizable(span: Span, name: str, dist: str) -> PplError:
    return PplError(f"the guide of '{name}' must be Normal(loc, scale) on its unconstrained "
                    f"coordinates; found {dist}, which is not supported as a guide", span,
                    hint="guides must be reparameterizable; only Normal is, for now")


def guide_twice(span: Span, name: str, first: Span) -> PplError:
    return PplError(f"a second guide for '{name}' (the first is at line {first.line})", span)


def guide_depends_on_later(span: Span, name: str, later: str) -> PplError:
    what = "itself" if later == name else f"'{later}', which is defined after it"
    return PplError(f"the guide of '{name}' depends on {what}; a guide may use data, params "
                    f"and latents defined before '{name}'", span)


def guide_not_finite(span: Span, name: str, steps: int) -> PplError:
    when = "at the start" if steps == 0 else f"the optimization diverged after {steps} steps"
    return PplError(f"{when}: the scale of the guide of '{name}' was not positive, or its loc "
                    "or scale not finite", span,
                    hint="a guide's scale must stay positive: write it as exp(...) or "
                         "softplus(...), or declare the param it reads with <lower=0>")


def guide_reads_discrete(span: Span, name: str, discrete: str) -> PplError:
    return PplError(f"the guide of '{name}' depends on '{discrete}', a discrete latent summed "
                    "out by enumeration: the guide draws no value of it", span,
                    hint="a guide may use data, params and continuous latents defined "
                         f"before '{name}'")


def guide_unsupported_latent(span: Span, name: str, reason: str) -> PplError:
    return PplError(f"'{name}' cannot have a guide: {reason}", span)


def bad_init(name: str, reason: str) -> PplError:
    return bad_option("init", f"'{name}': {reason}")


def batch_unknown_dimension(name: str, dims: Iterable[str]) -> PplError:
    dims = list(dims)
    return bad_option("batch", f"'{name}' is not a dimension declared by the data"
                      f"{suggest(name, dims)} (int data scalars: {', '.join(dims) or 'none'})")


def batch_too_large(name: str, size: int, value: int) -> PplError:
    return bad_option("batch", f"the batch size {size} is larger than the dimension "
                      f"'{name}' = {value}")


def batch_nothing_on(name: str) -> PplError:
    return bad_option("batch", f"no data, data-only let or latent has '{name}' as its first "
                      f"axis: --batch {name}=B would subsample nothing")


def batch_not_supported(reason: str) -> PplError:
    return bad_option("batch", reason)


def batch_mixes_rows(span: Span, dim: str, latent: bool) -> PplError:
    if latent:
        return PplError(f"under --batch {dim}=B, this combines rows of the batched dimension "
                        f"'{dim}' in a value that depends on latents or params; it cannot be "
                        "scaled unbiasedly from a minibatch", span,
                        hint="keep the batched axis elementwise (reduce over other axes only)")
    return PplError(f"under --batch {dim}=B, this combines rows of the batched dimension "
                    f"'{dim}' inside a statement computed per step (on the batch's rows only)",
                    span, hint="compute it in a data-only let: those are computed once, on the "
                               "whole data")


def batch_axis_not_first(span: Span, name: str, dim: str) -> PplError:
    return PplError(f"'{name}' has the batched dimension '{dim}' on an axis other than its "
                    f"first; under --batch {dim}=B only first axes are taken at the batch's "
                    "rows", span,
                    hint=f"declare it with '{dim}' first, or use it only in data-only lets")


def batch_dimension_value(span: Span, dim: str) -> PplError:
    return PplError(f"under --batch {dim}=B, the value of '{dim}' in a statement computed per "
                    "step would be the batch size B", span,
                    hint=f"name it in a data-only let (let n = {dim}), computed once on the "
                         "whole data")


def batch_unbatched_axis(span: Span, dim: str) -> PplError:
    return PplError(f"under --batch {dim}=B, this value is broadcast against the rows of "
                    f"'{dim}' on an axis that is not '{dim}' (another dimension, a literal or a "
                    "length known only from the data): a step takes only the batch's rows of "
                    f"values on '{dim}', and would pair them with all of its elements", span,
                    hint=f"declare it with '{dim}' as its first axis, or fit without --batch")


def batch_check_failed(error: PplError, dim: str, size: int) -> PplError:
    """``error`` from checking the model with ``dim`` = ``size`` (a step's model), where the
    whole data's model passed."""
    return PplError(f"{error.message} (in a step's model, where '{dim}' = {size})", error.span,
                    hint=f"under --batch {dim}=B only values whose first axis is '{dim}' are "
                         f"taken at the batch's rows; one whose length depends on '{dim}' "
                         f"otherwise (a data-only let such as y[:M]) needs its own data name "
                         "and dimension, or fit without --batch")


def batch_let_shape(span: Span, name: str, dim: str, whole, batch) -> PplError:
    return PplError(f"under --batch {dim}=B, the data-only let '{name}' has shape "
                    f"{format_shape(whole)} on the whole data but {format_shape(batch)} in a "
                    f"step's model: its shape depends on the value of '{dim}', yet its first "
                    f"axis is not '{dim}', so a step cannot take its rows", span,
                    hint="give the values it selects their own data name and dimension, or fit "
                         "without --batch")


def batch_term_rows(span: Span, dim: str) -> PplError:
    return PplError(f"under --batch {dim}=B, this term runs over the rows of '{dim}' on an "
                    "axis other than its first, so it cannot be scaled by N / B", span,
                    hint=f"make '{dim}' the first axis of the observed value or factor")


def batch_param_rows(span: Span, name: str, dim: str) -> PplError:
    return PplError(f"param '{name}' has the batched dimension '{dim}' as its first axis; "
                    "under --batch params are global", span,
                    hint="make it a latent with a guide, or fit without --batch")


def predict_shape_changed(name: str, before, after, span: Span | None = None,
                          param: bool = False) -> PplError:
    shapes = (f"has shape {format_shape(before or ())} in the fit and {format_shape(after)} "
              "with the new data")
    if param:   # a point estimate: its values are per fitted row, none for the new rows
        return PplError(f"predict: the param '{name}' {shapes}; its fitted values cannot be "
                        "reused", span,
                        hint="size the params by something other than the data (an encoder "
                             "reading each data row: an amortized guide), or predict with data "
                             "of the same shape")
    return PplError(f"predict: the latent '{name}' {shapes}; the fitted guide cannot be reused "
                    "for it", span,
                    hint="give it a guide statement computed from its data row (amortized), "
                         "or predict with data of the same shape")



def predict_support_changed(span: Span, name: str) -> PplError:
    return PplError(f"predict on new data: '{name}' takes other values at the fit's posterior "
                    "draws: its bounds depend on data that differ from the fitted data, so its "
                    "fitted posterior does not carry over", span,
                    hint="give that data its fitted values (only the rows to predict for may "
                         "change), or fit again with the new bounds")

def predict_with_discrete(span: Span, names: list[str]) -> PplError:
    which = (f"discrete latent '{names[0]}' would be drawn from its" if len(names) == 1 else
             "discrete latents " + ", ".join(f"'{n}'" for n in names)
             + " would be drawn from their")
    return PplError(f"predict on new data: the {which} posterior "
                    "given the new data's observations (or the zeros standing in for them), "
                    "not the fitted ones; new data is not supported for a model with discrete "
                    "latents", span,
                    hint="predict on the fitted data (no --data), or sum the latent out in the "
                         "model: observe y ~ Mixture(w, Normal(mu, sigma)) for mixture labels")


def predict_needs_model() -> PplError:
    return PplError("predict: this fit does not carry its model's text; fit it through "
                    "ppl.load or ppl.compile")
