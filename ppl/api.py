"""The Python API: load or compile a model, fit it, and get a Fit back.

This module only runs the stages in order (parse, check, load data, check with the data's
dimensions, compile, fit); the mathematics lives in the stages themselves.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from . import memory
from .guides import user
from .infer import advi, auto, starts
from .infer.psis import psis_draws
from .compiler import compile_model
from .data import load_data, validate_observed
from . import ir
from .errors import (PplError, bad_option, data_file_as_model, empty_model, file_error,
                     guides_fixed, no_data_given, not_a_regular_file, not_utf8,
                     options_unused, prior_without_param_prior)
from .frontend.check import check
from .frontend.parse import parse
from .frontend.printer import to_source
from .options import FitOptions, check_count, check_progress, check_seed
from .posterior import Fit
from .source import Source, Span



class Model:
    """A parsed and checked model, ready to be fitted to data.

    Build one with ``ppl.load(path)`` or ``ppl.compile(text)``.
    """

    def __init__(self, text: str, path: str = "<string>", *, from_file: bool = False):
        """``from_file``: the text was read from the file at ``path`` (``load``), whose
        MODEL.json beside it is then the default data; a text given directly
        (``compile``) reads no data it is not given."""
        if not isinstance(text, str):   # lark's error on a non-str was an AttributeError
            raise bad_option("source", f"the model text must be a str; found "
                             f"{type(text).__name__}")
        self.text = text
        self.path = path
        self.from_file = from_file
        self.program = parse(text, path)
        self.ir = check(self.program)

    def __repr__(self) -> str:
        params = f", {len(self.ir.params)} param(s)" if self.ir.params else ""
        return (f"<Model {self.path}: {len(self.ir.latents)} latent(s){params}, "
                f"{len(self.ir.data)} data>")

    @property
    def hash(self) -> str:
        """SHA-256 of what the model means (recorded in saved fits): of its canonical printed
        form, so comments, blank lines and spacing do not change it; any other edit does."""
        return hashlib.sha256(to_source(self.program).encode("utf-8")).hexdigest()

    def default_data_path(self) -> Path | None:
        """``MODEL.json`` beside a model file, if it exists."""
        if not self.from_file:
            return None
        candidate = Path(self.path).with_suffix(".json")
        return candidate if candidate.is_file() else None

    def _data(self, data):
        if data is None:
            data = self.default_data_path()
        if data is None:
            data = {}
        return data

    def _no_data(self, data) -> str | None:
        """When no data was given and none found beside the model, what a 'data is missing'
        error says of it (errors.no_data_given); None otherwise."""
        if data is not None or self.default_data_path() is not None:
            return None
        if not self.from_file:
            return no_data_given(None)
        beside = Path(self.path).with_suffix(".json")
        there = ("broken link" if beside.is_symlink() and not beside.exists() else
                 "folder" if beside.is_dir() else "other" if beside.exists() else None)
        return no_data_given(str(beside), there)

    def prepare(self, data=None, whole: bool = True):
        """Load and validate ``data``, check the model with its dimensions and compile it.

        Returns
        -------
        (ir.Model with concrete shapes, data values, compiler.Compiled, or None when not
        ``whole``)

        Raises
        ------
        PplError for any problem in the data or a shape that does not fit it.
        """
        values, dims = load_data(self.ir, self._data(data), self._no_data(data))
        if whole:
            # a .npy file is memory-mapped, kept so for a minibatch fit (data larger than
            # memory); a fit on the whole data reads every row at each step anyway, and one
            # still mapped read the file again when its summary, k̂ or predictions were asked
            # for: rewritten in place meanwhile (np.save to the same path in a loop), they
            # were of the new data, and a shorter file killed the process (SIGBUS)
            values = {name: np.array(value) if isinstance(value, np.memmap) else value
                      for name, value in values.items()}
        concrete = check(self.program, dims)
        memory.check_model(concrete)  # before anything of the model's size is allocated
        validate_observed(concrete, values, dims)
        return concrete, values, compile_model(concrete, values) if whole else None

    def check_something_to_fit(self) -> None:
        """Raise PplError when the model has nothing to fit: no ``sample``, no ``observe``, and
        no ``param`` with a term to maximize (a ``factor`` or its own ``~ DIST``; params alone
        are fitted by maximum likelihood or MAP, docs/language.md); or every continuous latent
        has a ``guide`` statement and there is no ``param``, so nothing can be optimized."""
        model = self.ir
        drawn = [name for name, latent in model.latents.items() if not latent.discrete]
        if drawn and not model.params and all(name in model.guides for name in drawn):
            # every draw comes from a guide with fixed loc and scale: the step loop had no
            # parameter to move (an internal error at its first window)
            raise guides_fixed(next(iter(model.guides.values())).span)
        if model.latents or model.observes:
            return
        if model.params and (model.factors or any(p.dist for p in model.params.values())):
            return
        raise empty_model(model.source.end_span(), bool(model.params))

    def fit(self, data=None, guide: str = "auto", seed: int = 0,
            progress: Callable[[int, float, float], None] | None = None, **options) -> Fit:
        """Fit the model to ``data`` by ADVI (or DADVI: ``method="dadvi"``) and return the Fit.

        Parameters
        ----------
        data : dict of name -> number/list/array (pandas Series, Index and DataFrames
            too), a pandas DataFrame (columns by name), or a path to a .json, .csv, .npz or
            .npy file or a folder of .npy files. None reads ``MODEL.json`` beside a loaded
            model file, if there is one.
        guide : 'auto' (mean field, then richer families while k̂ says the fit cannot be
            used; see docs/trust.md) or a family: 'meanfield', 'fullrank', 'lowrank[:R]', 'flow[:K]',
            'scaled', 'studentt[:NU]' (docs/guides.md).
        seed : seed of the fit's random numbers; same seed and inputs give the same result.
        progress : called as ``progress(step, smoothed_elbo, step_size)`` while fitting. If
            it also has a method ``family(name)``, ``guide='auto'`` calls it with each
            family's name before fitting that family (the CLI's bar shows it). A
            KeyboardInterrupt (Ctrl-C, or raised by ``progress``) ends an ADVI fit, which is
            returned as it stands (``fit.result.reason`` 'interrupted'); DADVI,
            ``starts`` > 1 and a params-only fit (L-BFGS) raise it. Starts fitted in
            parallel processes (``starts`` > 1 on more than one core) do not call it: one
            bar cannot follow them.
        **options : any other ``FitOptions`` field (``method``, ``iter``, ``lr``, ...).

        Raises
        ------
        PplError for bad data or options, a model with nothing to fit
        (``check_something_to_fit``), or a log density that is not finite.
        """
        fit_options = FitOptions(guide=guide, seed=seed, **options)
        check_progress(progress)
        self.check_something_to_fit()
        user.check_init_names(fit_options.init, _names(self.ir, ir.Param),
                              _names(self.ir, ir.Latent), _names(self.ir, ir.Data))
        # a minibatch fit compiles the model on the whole data only when asked (summaries,
        # draws): its steps compile each batch (infer/minibatch.py)
        concrete, values, compiled = self.prepare(data, whole=fit_options.batch is None)
        _check_step_memory(concrete, compiled, fit_options)
        check_draw_memory(concrete, compiled, fit_options, "--draws")
        # the refusals come before the warning of unused options: a refused fit showed a
        # warning, then its error
        batch = None
        if fit_options.batch is not None:
            from .infer import minibatch
            batch = minibatch.prepare(self.program, self.ir, concrete, values, fit_options,
                                      np.random.default_rng([fit_options.seed, 5]))
        else:
            _refuse_combinations(fit_options, compiled)
        _warn_unused(fit_options, compiled, batch)
        data_path = self._data(data)
        info = {"model_path": self.path, "model_sha256": self.hash, "model_text": self.text,
                "data_path": str(data_path) if isinstance(data_path, (str, Path)) else None,
                "data_sha256": data_hash(values)}
        rng = np.random.default_rng(fit_options.seed)
        if batch is not None:
            return self._fit_batch(batch, concrete, values, fit_options, info, rng, progress)
        if fit_options.method == "dadvi":
            from .infer import dadvi  # scipy.optimize is imported only when DADVI is used
            result = dadvi.fit(compiled, fit_options, rng, progress=progress)
            return Fit(concrete, compiled, result, fit_options, info,
                       auto_alone=auto.ALONE_DADVI if fit_options.guide == auto.AUTO else None)
        if fit_options.starts > 1:
            return _fit_starts(concrete, compiled, fit_options, info, progress)
        alone = None
        if fit_options.guide == auto.AUTO and auto.with_params(compiled):
            # params and latents without a guide: mean field and the Gaussian rung, by the ELBO
            fit, report = auto.fit_with_params(compiled, fit_options, rng, _assess(
                concrete, compiled, fit_options, info), progress)
            fit.auto, fit.climbing = report, False
            return fit
        if fit_options.guide == auto.AUTO and user.applies(compiled):
            # guide statements, or params alone: the latents without a guide get mean field
            # (the families are not climbed: their warm starts and k̂ ladder assume no params,
            # and a guided latent's entropy varies with the draw)
            fit_options = dataclasses.replace(fit_options, guide="meanfield")
            alone = auto.ALONE_USER if user.auto_dim(compiled) else None
        if fit_options.guide == auto.AUTO:
            fit, report = auto.fit_auto(compiled, fit_options, rng, _assess(
                concrete, compiled, fit_options, info), progress)
            fit.auto, fit.climbing = report, False
            return fit
        result = advi.fit(compiled, fit_options, rng, progress=progress)
        auto.warn_unchecked_params(compiled, result)
        return Fit(concrete, compiled, result, fit_options, info, auto_alone=alone)

    def _fit_batch(self, batch, concrete, values, options, info, rng, progress) -> Fit:
        """A minibatch fit (``batch={"N": B}``; infer/minibatch.py; ``batch`` its prepared
        steps). The Fit's model on the whole data is compiled when first used (summaries,
        draws), not for the steps."""
        from .infer import minibatch
        alone = None
        if options.guide == auto.AUTO:
            options = dataclasses.replace(options, guide="meanfield")
            alone = auto.ALONE_BATCH if user.auto_dim(batch.full) else None
        whole = minibatch.Lazy(lambda: compile_model(concrete, values))
        result = advi.fit(batch, options, rng, progress=progress)
        spec = result.guide.name
        result = dataclasses.replace(result, guide=minibatch.Lazy(
            lambda: user.family_for(whole, spec), name=spec))
        if user.point_only(batch.full):   # the whole data's layout
            # its last window's mean is of batch estimates (-124.80 where the whole data's log
            # joint at the returned params is -123.91): the line reports the whole data's
            zeta = result.guide.draw(result.theta, np.zeros((1, result.guide.eps_dim(0))))
            result = dataclasses.replace(result, final_elbo=float(whole.log_joint(zeta)[0]))
        return Fit(concrete, whole, result, options, info, auto_alone=alone,
                   batch_meanfield=batch.meanfield_only)

    def prior_predictive(self, data=None, n: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
        """Draws from the prior: every latent, and every observed expression given them.

        Returns name (or observed expression text) -> array [n, *shape]. ``n`` is a positive
        int and ``seed`` a non-negative int (numpy ints too), as the fit options' counts and seed.
        Data that is only ever observed may be left out (``y`` of ``observe y ~ ...``, when its
        size is given), as for predictions on new data: it is what is drawn.
        """
        from .predict import compile_given, warn_of_reweighting_factors
        n, seed = check_count("n", n), check_seed("seed", seed)
        compiled = compile_given(self, self._data(data), n, "n =")
        warn_of_reweighting_factors(self.ir)
        # a param without a distribution has no prior to draw from: its draws were its default
        # start, near 0, as if that were a prior (an empirical Bayes mean drawn at 0 +/- 0.1)
        flat = [s for s in self.ir.statements if isinstance(s, ir.Param) and s.dist is None]
        if flat:
            warnings.warn(prior_without_param_prior(flat[0].span, [s.name for s in flat]),
                          stacklevel=2)
        return compiled.sample_prior(np.random.default_rng([seed, 3]), n)


def data_hash(values: dict[str, np.ndarray]) -> str:
    """SHA-256 of loaded data (recorded in saved fits): each name, dtype, shape and the values'
    bytes, so a data file rewritten with the same numbers in another format keeps it."""
    digest = hashlib.sha256()
    for name in sorted(values):
        array = np.ascontiguousarray(values[name])  # a memory-mapped .npy is hashed in place
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode("utf-8"))
        digest.update(array.data)
    return digest.hexdigest()


def _names(program, kind) -> tuple[str, ...]:
    """The names the statements of type ``kind`` (ir.Param, ir.Latent) declare."""
    return tuple(s.name for s in program.statements if isinstance(s, kind))


def _assess(concrete, compiled, options, info):
    """result -> its Fit (k̂ and verdict computed on demand), for auto's climb."""
    return lambda result: Fit(concrete, compiled, result, options, info, climbing=True)


def _fit_starts(concrete, compiled, options, info, progress) -> Fit:
    """``options.starts`` independent fits (infer/starts.py); the best, with their comparison.

    With guide 'auto' every start climbs the families on its own; the reported start's
    climb is the fit's ``auto``."""
    K, workers = options.starts, starts.workers_for(options.starts)
    shown = progress if workers == 1 else None   # one bar cannot follow parallel starts
    fit_fn = None
    if options.guide == auto.AUTO:
        def fit_fn(model, rng, progress):
            assess = _assess(concrete, model, options, info)
            fit, report = auto.fit_auto(model, options, rng, assess, progress)
            return fit.result, report
    outcomes = starts.run_starts(
        lambda k: starts.fit_start(compiled, options, k, shown, fit_fn), K, workers)
    fits = []
    for outcome in outcomes:
        result, climb = outcome if fit_fn is not None else (outcome, None)
        fits.append(Fit(concrete, compiled, result, options, info, auto=climb))
    # a start's time is its whole climb under auto, not its last family's
    seconds = [sum(t.seconds for t in f.auto.tried) if f.auto else f.result.seconds
               for f in fits]
    khats = [f.khat for f in fits]    # first: the ELBOs below read k̂'s log weights again
    # each start's ELBO on its k̂ draws: one estimate of the fit it reports, whatever its
    # family; a final ELBO is the steps' windowed mean, or, for a fit auto moved or one on
    # fixed draws, an estimate on fresh draws (auto.elbo_on_khat_draws)
    elbos, ses = zip(*(auto.elbo_on_khat_draws(f) for f in fits))
    report = starts.compare([f.summary().to_dict() for f in fits], elbos, khats, seconds,
                            workers, ses)
    best = fits[report.best]
    best.starts = report
    return best


def _refuse_combinations(options: FitOptions, compiled) -> None:
    """Refuse the options a whole-data fit of this model cannot combine (minibatch.prepare
    refuses a minibatch fit's)."""
    if options.method == "dadvi" and user.applies(compiled):
        raise bad_option("method", "dadvi does not fit models with param or guide "
                         "statements; use advi")
    if options.method == "dadvi" and options.starts > 1:
        # it was ignored without a word: one fit, no comparison, yet 'starts' asked for
        raise bad_option("starts", "method dadvi fits from one start; the multi-start "
                         "check needs method advi")
    if options.starts > 1 and user.applies(compiled):
        raise bad_option("starts", "models with param or guide statements are fitted "
                         "from one start")


def _warn_unused(options: FitOptions, compiled, batch=None) -> None:
    """Warn of options given that this fit does not use (options.unused): a silently ignored
    option reads as if it had steered the fit. ``compiled`` is None for a minibatch fit
    (``batch``, whose whole-data layout says which latents have guide statements)."""
    from .options import unused
    kind = ("batch" if compiled is None else "dadvi" if options.method == "dadvi" else
            "point" if user.point_only(compiled) else "user" if user.applies(compiled) else
            "advi")
    layout = compiled if compiled is not None else batch.full
    if kind == "batch" and user.point_only(layout):
        kind = "batch point"    # its steps draw nothing: --guide's reason was a guided model's
    groups = unused(options, kind)
    if kind in ("user", "batch") and user.applies(layout) and not user.auto_dim(layout):
        # every continuous latent has its guide statement (a VAE's): --guide drew none
        groups += unused(options, "guided")
    for names, why in groups:
        warnings.warn(options_unused(names, why), stacklevel=3)


def check_draw_memory(concrete, compiled, options: FitOptions, option: str) -> None:
    """Refuse the draws ``options`` asks for (``option``, as the error names it), and k̂'s and
    the summary's, when the machine cannot hold them: before a fit, and when a saved fit is
    restored (its fit.json's draws, which an edit or another machine may have made too many)."""
    memory.check_draws(options.draws, concrete, option)
    memory.check_summary(psis_draws(options), concrete, values=compiled.values()
                         if compiled is not None else None, value_draws=psis_draws(options))


def _check_step_memory(concrete, compiled, options: FitOptions) -> None:
    """Refuse, before the fit, draws per step the machine cannot hold (memory.check_step): an
    explicit family's steps take ``draws_scale`` times --mc-samples (a flow's 12), DADVI's
    evaluate its --dadvi-draws fixed draws. Auto is checked on its first rung, mean field, so
    a fit that mean field can make is not refused for a flow it may never need."""
    if compiled is None:        # a minibatch fit: its steps compile each batch
        memory.check_model(concrete, options.mc_samples)
        return
    from .guides import family
    D = compiled.dim
    if options.method == "dadvi":
        memory.check_step(concrete, options.dadvi_draws, memory.guide_floats(None, D),
                          f"--dadvi-draws {options.dadvi_draws} on this model")
        return
    # With params or guide statements the family draws only the other latents, at --mc-samples
    # draws a step (guides/user.py; advi.fit): its size limit (flow: 300, scaled: 20) is on
    # those, not on the params and guided latents, and its draws_scale does not apply.
    users = user.applies(compiled)
    guide = family("meanfield" if options.guide == auto.AUTO else options.guide,
                   user.auto_dim(compiled) if users else D, guided=users)
    scale = 1 if users else getattr(guide, "draws_scale", 1)
    draws = options.mc_samples * scale
    what = (f"--mc-samples {options.mc_samples} (draws per step) on this model"
            if scale == 1 else f"--mc-samples {options.mc_samples} ({draws} draws "
            f"per step of {guide.name}) on this model")
    memory.check_step(concrete, draws, memory.guide_floats(guide, D), what, family=guide.name)


def load(path: str | Path) -> Model:
    """Read, parse and check the model file at ``path``.

    Raises
    ------
    PplError if the file cannot be read or the model is not valid.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise bad_option("path", f"must be a str or os.PathLike; found {type(path).__name__}")
    if path == "":    # Path("") is the working folder: 'not a regular file' named no file
        raise file_error("''", "an empty path names no model file")
    try:
        if Path(path).exists() and not Path(path).is_file():  # a FIFO blocks, /dev/zero never ends
            raise not_a_regular_file(str(path), Path(path).is_dir())
        if Path(path).suffix.lower() in (".json", ".csv", ".npz", ".npy") and \
                Path(path).is_file():   # `ppl fit data.json`: a syntax error at its '{'
            raise data_file_as_model(str(path), Path(path).suffix)
    except OSError as error:    # a folder on the way that cannot be searched
        raise file_error(str(path), f"cannot read the model file ({error.strerror})") from None
    try:
        # utf-8-sig: a byte-order mark, as some editors write, is not part of the model
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise file_error(str(path), "no such model file") from None
    except UnicodeDecodeError:
        raise _not_utf8(Path(path)) from None
    except (OSError, ValueError) as error:   # ValueError: a NUL in the path
        raise file_error(str(path), f"cannot read the model file ({error})") from None
    return Model(text, str(path), from_file=True)


def _not_utf8(path: Path) -> PplError:
    """The located error at the model file's first byte that is not UTF-8 (a Latin-1 'é' in a
    comment), lines counted as ``read_text`` counts them."""
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")     # a byte-order mark is not text
    try:
        raw.decode("utf-8")
        return file_error(str(path), "cannot read the model file (not UTF-8)")   # it changed
    except UnicodeDecodeError as error:
        before, text = (_universal_newlines(b.decode("utf-8", errors="replace"))
                        for b in (raw[:error.start], raw))
        line, col = before.count("\n") + 1, len(before) - before.rfind("\n")
        return not_utf8(Span(Source(str(path), text), line, col, line, col + 1),
                        raw[error.start])


def _universal_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def compile(source: str, path: str = "<string>") -> Model:  # noqa: A001 - the API's name
    """Parse and check model text given directly (``path`` only names it in errors: no data is
    read beside it, as ``load``'s model reads its MODEL.json). Line endings are read as
    ``load`` reads a file's: ``\r\n`` and an old Mac's ``\r`` end a line."""
    if not isinstance(path, (str, os.PathLike)):   # path=None read None.json as the data
        raise bad_option("path", f"must be a str or os.PathLike; found {type(path).__name__}")
    if isinstance(source, str):   # anything else gets Model's error
        source = _universal_newlines(source)
    return Model(source, str(path))


