"""The ``ppl`` command: check, fit, summary, predict, plot.

The only code that prints errors: a PplError is printed as it renders (stderr, exit 2); any
other exception is a bug in ppl and gets one 'internal error' line asking for a report (exit 1).
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import re
import sys
import warnings
from pathlib import Path

from . import __version__
from .errors import (PplError, as_flag, bad_option, file_error, init_is_saved_fit,
                     no_saved_fit_folder, not_a_regular_file, out_not_a_saved_fit,
                     out_overwrites_input, out_replaces_fitted_model, stale_output,
                     stdout_unwritable)

FIT_FLAGS = ("guide", "iter", "lr", "mc_samples", "draws", "seed", "optimizer", "precondition",
             "stl", "tol", "window", "init_scale", "correct", "starts", "method",
             "dadvi_draws", "init", "batch")
DATA_HELP = "data file (.json, .csv, .npz or .npy) or a folder of NAME.npy files"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one PplError line (exit 2), no usage dump."""

    def __init__(self, *args, **kwargs):
        # no abbreviated flags: '--dat' was read as --data, and an abbreviation would change
        # its meaning silently the day a flag beginning the same way is added
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise PplError(f"{message} (see 'ppl {self.prog.split()[-1]} --help')"
                       if " " in self.prog else f"{message} (see 'ppl --help')")


def _add_fit_options(parser: argparse.ArgumentParser) -> None:
    # Flags are generated from FitOptions so that the CLI and the API share one definition.
    from . import guides, options
    docs = _option_docs(options.FitOptions)
    choices = {"guide": guides.SPECS, "optimizer": options.OPTIMIZERS,
               "precondition": options.PRECONDITIONERS, "correct": options.CORRECTIONS,
               "method": options.METHODS}
    for f in dataclasses.fields(options.FitOptions):
        if f.name not in FIT_FLAGS:
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=docs.get(f.name))
            continue
        kind = {"int": _plain_int, "float": _plain_float, "str": str}.get(
            str(f.type).split(" ")[0], _plain_float)
        if f.name == "init":
            parser.add_argument(flag, action=_ReadInit, default=argparse.SUPPRESS,
                                metavar="FILE.json", help=docs.get(f.name))
            continue
        if f.name == "batch":
            parser.add_argument(flag, type=str, default=argparse.SUPPRESS, metavar="DIM=B",
                                help=docs.get(f.name))
            continue
        # A choice option lists its values as its metavar ({adam,sgd,stan}); FitOptions, not
        # argparse, refuses other values, so the CLI and the API give the same message.
        metavar = "{" + ",".join(choices[f.name]) + "}" if f.name in choices else f.name.upper()
        text = docs.get(f.name, "")
        # 'auto' (default): ... says it already; a None default cannot be typed ('(default:
        # None)' invited --lr None, which argparse refuses): the text says what happens
        # without the option
        if "(default)" not in text and f.default is not None:
            text += f" (default: {f.default})"
        parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, metavar=metavar,
                            help=text)


def _plain_number(kind):
    """``kind`` (int or float) of an option's text, refusing what Python's int() and float()
    accept beyond data files' numbers: other scripts' digits ('--seed ٣' was seed 3) and '_'
    ('--seed 1_000'), as the model's numbers and data files refuse them."""
    def parse(text: str):
        if not text.isascii() or "_" in text:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a plain number: numbers are written with the ASCII digits "
                f"0-9, without '_'")
        return kind(text)
    parse.__name__ = kind.__name__     # argparse's 'invalid int value' names it
    return parse


_plain_int, _plain_float = _plain_number(int), _plain_number(float)


class _ReadInit(argparse.Action):
    """--init FILE.json: ``init`` gets the file's object, ``init_path`` the path (so that
    --out can refuse to overwrite it)."""

    def __call__(self, parser, namespace, path, option_string=None):
        namespace.init = _read_init(path)
        namespace.init_path = path


def _read_init(path: str) -> dict:
    """--init FILE.json: a JSON object of param name -> value."""
    from .datafiles import load_json_names
    if not path:    # Path("") is the working folder: 'not a regular file' named no file
        raise bad_option("--init", "must name a JSON file; found ''")
    try:
        if Path(path).exists() and not Path(path).is_file():  # a FIFO blocks, /dev/zero never ends
            raise not_a_regular_file(path, Path(path).is_dir())
        # read as a data file is: a byte-order mark skipped, a name given twice refused (the
        # last value was kept)
        value = load_json_names(Path(path), path)
    except OSError as error:
        raise file_error(path, f"cannot read the init file ({error.strerror})") from None
    except ValueError as error:     # an int of more digits than Python converts
        raise file_error(path, f"cannot read the init file ({error})") from None
    if not isinstance(value, dict):
        raise file_error(path, "the init file must hold a JSON object: param name -> value")
    if "saved_fit_format" in value:
        raise init_is_saved_fit(path)
    return value


def _option_docs(cls) -> dict[str, str]:
    """Field name -> its whole description in the class docstring's Attributes section: the
    ``name : text`` line and the more deeply indented lines that continue it."""
    docs, name = {}, None
    for line in inspect.cleandoc(cls.__doc__ or "").splitlines():
        if line[:1].isspace() and name is not None:
            docs[name] += " " + line.strip()
        elif " : " in line:
            name, text = line.split(" : ", 1)
            docs[name] = text.strip()
        else:
            name = None
    return {key: _as_cli_text(text, docs) for key, text in docs.items()}


def _as_cli_text(text: str, options) -> str:
    """An option's docstring text as --help shows it: an option named in ``marks`` by its
    flag (the API's mc_samples is --mc-samples here), other reST marks as plain quotes, no
    source files (infer/starts.py: a user of the command does not read them) and no None
    (not a value the command line can give)."""
    text = re.sub(r"``(\w+)``", lambda m: "--" + m[1].replace("_", "-") if m[1] in options
                  else m[0], text)
    text = text.replace("``", "'")
    text = re.sub(r" \([\w/]+\.py\)", "", text)          # '... agreement (infer/starts.py);'
    text = re.sub(r"[\w/]+\.py(, |; )", "", text)         # '(infer/auto.py, docs/trust.md)'
    return text.replace(" (None)", "")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ppl", description="Fit probabilistic models written in the .ppl "
                     "language by ADVI (automatic differentiation variational inference).")
    parser.add_argument("--version", action="version", version=f"ppl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    check = commands.add_parser("check", help="parse and check a model (and its data)")
    check.add_argument("model", metavar="MODEL.ppl")
    check.add_argument("--data", metavar="DATA",
                       help=DATA_HELP + "; default: MODEL.json if it exists")

    fit = commands.add_parser("fit", help="fit a model and print its posterior summary")
    fit.add_argument("model", metavar="MODEL.ppl")
    fit.add_argument("--data", metavar="DATA",
                     help=DATA_HELP + "; default: MODEL.json if it exists")
    _add_fit_options(fit)
    fit.add_argument("--out", metavar="DIR",
                     help="write draws, summary, ELBO trace, fit.json and model.ppl there")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")

    summary = commands.add_parser("summary", help="print the summary of a saved fit and the "
                                   "lines ppl fit printed below it")
    summary.add_argument("dir", metavar="DIR")

    predict = commands.add_parser("predict",
                                  help="write posterior predictive draws of a saved fit "
                                       "(the fitted model and data unchanged since the fit)")
    predict.add_argument("dir", metavar="DIR")
    predict.add_argument("--draws", type=_plain_int, default=None, metavar="N",
                         help="number of predictive draws (default: the fit's draws)")
    predict.add_argument("--data", default=None, metavar="DATA",
                         help=f"new data to predict for, a {DATA_HELP}: shapes and lets are "
                              "recomputed; data that is only observed may be left out; not for "
                              "a model with discrete latents")

    plot = commands.add_parser("plot", help="plot the ELBO trace and marginals of a saved fit "
                               "(needs: pip install 'ppl[plot]')")
    plot.add_argument("dir", metavar="DIR")
    plot.add_argument("--vars", nargs="+", metavar="NAME",
                      help="marginals to plot: variables (all their elements) or single "
                           "elements such as 'eta[3]' (default: the first 30 elements, "
                           "params last)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``ppl`` command; returns the exit status (0 ok, 1 internal error, 2 user error).

    Its warnings are printed as 'ppl: warning: ...' lines while it runs; afterwards the
    process's own way is back (left set, a notebook's or a test's own warnings printed as
    ppl's after a first main() in the process), unless another thread's main() has it now.
    """
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        # k̂ and element names need not fit stdout's encoding (PYTHONIOENCODING=ascii had made
        # the fit an internal error before its --out was written): escaped, as on stderr
        sys.stdout.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError):     # closed, or not a text stream (a test's capture)
        pass
    try:
        return _run(argv)
    finally:
        if warnings.showwarning is _show_warning:
            warnings.showwarning = previous


def _run(argv: list[str] | None) -> int:
    try:
        args = _parse(build_parser(), argv)
        if args.command is None:
            build_parser().print_help()
            return 2
        if getattr(args, "dir", None) == "":
            # Path("") is the working folder: 'ppl summary ""' read ./fit.json, where an empty
            # --out is refused
            raise no_saved_fit_folder()
        status = COMMANDS[args.command](args)
        _flush_stdout()  # a closed pipe shows up here, inside the handlers below
        return status
    except PplError as error:
        print(str(as_flag(error)), file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(_interrupted(interrupt), file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`ppl fit ... | head -1`): stop quietly, as a command killed
        # by SIGPIPE would (status 128 + 13); stdout goes to devnull so that Python's own
        # flush at exit does not fail again.
        _discard_stdout()
        return 141
    except Exception as error:  # noqa: BLE001 - the one boundary where a bug is reported
        print(f"ppl: internal error: {type(error).__name__}: {error} "
              "(this is a bug in ppl; please report it with the model and data)", file=sys.stderr)
        return 1


def _flush_stdout() -> None:
    """Flush stdout (a closed one, ``>&-``, has nothing to flush), as :func:`_to_stdout`."""
    if sys.stdout is not None:
        _to_stdout(sys.stdout.flush)


def _say(*parts) -> None:
    """``print`` to stdout, as :func:`_to_stdout`."""
    _to_stdout(lambda: print(*parts))


def _to_stdout(write) -> None:
    """``write()``: a broken pipe as it is, any other write error the user's PplError (stdout
    on /dev/full had been an internal error)."""
    try:
        write()
    except BrokenPipeError:
        raise
    except OSError as error:
        _discard_stdout()
        raise stdout_unwritable(error) from None


def _discard_stdout() -> None:
    """stdout to devnull, so that Python's own flush at exit does not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _interrupted(interrupt: KeyboardInterrupt) -> str:
    """'ppl: interrupted', and the files written if the Ctrl-C came while they were: it was
    held until all of them were (output.InterruptedAfterWriting; not imported here, where
    numpy is not yet), and the command's 'wrote ...' line was not printed."""
    names = getattr(interrupt, "names", None)
    if not names:
        return "ppl: interrupted"
    return f"ppl: interrupted after it wrote {interrupt.folder}/{', '.join(names)}"


def _parse(parser: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """parse_args, but an unknown flag of a command is refused by that command's parser: the
    top parser's error said "unrecognized arguments: --itr 3 (see 'ppl --help')", where
    'ppl fit --help' lists the flags, and it named none of them."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        from .errors import suggest_data_flag, suggest_flag
        command, flags = _command_flags(parser, args.command)
        unknown = next((a.split("=")[0] for a in extra if a.startswith("--")), None)
        positional = [a for a in extra if not a.startswith("-")]
        hint = ""
        if unknown is not None:
            hint = suggest_flag(unknown, flags)
        elif args.command in ("fit", "check"):
            hint = suggest_data_flag(positional, args.command)
        command.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    _refuse_repeated_flags(parser, args.command, sys.argv[1:] if argv is None else argv)
    return args


def _command_flags(parser: argparse.ArgumentParser, name: str | None):
    """The parser of command ``name`` (the top parser when there is none) and its flags."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = commands.choices.get(name, parser)
    return command, [flag for action in command._actions for flag in action.option_strings]


def _refuse_repeated_flags(parser: argparse.ArgumentParser, command: str | None, argv) -> None:
    """A flag given twice is an option error: argparse kept the last (`--seed 1 --seed 2` fitted
    seed 2 without a word), where CmdStan refuses a repeated argument. Every token argparse
    reads as a flag counts (it never takes one as another flag's value), up to '--'."""
    from .errors import repeated_flag
    flags = {flag for flag in _command_flags(parser, command)[1] if flag.startswith("--")}
    seen = []
    for token in argv:
        if token == "--":
            break
        flag = token.split("=", 1)[0]
        if flag in flags:
            if flag in seen:
                raise repeated_flag(flag, command)
            seen.append(flag)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # A user warning (extra data names, say) is one plain line, not Python's file:line echo.
    if getattr(message, "options", None):    # options named as they are typed here
        from .errors import options_unused
        message = options_unused(message.options, message.why, flags=True)
    print(f"ppl: warning: {message}", file=sys.stderr)


# ----- check --------------------------------------------------------------------------------

def _cmd_check(args) -> int:
    from .api import load
    model = load(args.model)
    model.check_something_to_fit()  # as fit does: check and fit agree on what is valid
    # MODEL.json beside the model is the data, as for ppl fit: check said ok of a model
    # whose data fit then refused
    data = args.data if args.data is not None else model.default_data_path()
    if data is not None or not model.ir.data:   # --data '' is refused, not skipped
        # a model without data statements has nothing to load: it gets fit's data-time
        # checks too (a parameter of 0 / 0)
        concrete = model.prepare({} if data is None else data, whole=False)[0]
    else:
        concrete = model.ir
    _say(f"{args.model}: ok")
    _say(_describe_model(concrete))
    return 0


def _describe_model(model) -> str:
    """The latent variables (name, shape, support, bijector) and the data variables."""
    from .bijectors import biject_to
    from .compiler.build import innovation_latents
    from .errors import format_shape
    rows = [("latent", "shape", "support", "bijector")]
    innovations = innovation_latents(model)
    for latent in model.latents.values():
        # a discrete latent has no bijector: it is summed out by enumeration
        bijector = ("enumerated" if latent.discrete else "AR1Innovations"
                    if latent.name in innovations else type(biject_to(latent.support)).__name__)
        rows.append((latent.name, format_shape(latent.shape), latent.support.describe(), bijector))
    lines = _table(rows)
    data = [("data", "type", "shape", "bounds")]
    for item in model.data.values():
        bounds = ", ".join(f"{k}={v.span.text}" for k, v in
                           (("lower", item.lower), ("upper", item.upper)) if v is not None)
        data.append((item.name, item.dtype, format_shape(item.shape), bounds or "-"))
    params = [("param", "shape", "support", "bijector")]
    for param in model.params.values():
        params.append((param.name, format_shape(param.shape), param.support.describe(),
                       type(biject_to(param.support)).__name__))
    guides = [("guide", "loc", "scale", "")]
    for guide in model.guides.values():
        guides.append((guide.name, guide.loc.span.text, guide.scale.span.text, ""))
    lets = [("let", "shape", "reported", "")]
    for let in model.lets.values():
        kind = "yes" if let.reported else ("data" if let.data_only else "no (_name)")
        lets.append((let.name, format_shape(let.value.shape), kind, ""))
    out = lines
    if len(data) > 1:
        out += [""] + _table(data)
    for extra in (params, guides):
        if len(extra) > 1:
            out += [""] + _table(extra)
    if len(lets) > 1:
        out += [""] + _table(lets)
    return "\n".join(out)


def _table(rows) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


# ----- fit ----------------------------------------------------------------------------------

def _print_fit(fit) -> None:
    """The summary and the lines under it, as ``ppl fit`` prints them."""
    print(fit.summary())
    # the fit's own seconds, as fit.json keeps them: `ppl summary DIR` prints the same line
    print(fit.convergence_line())
    if fit.auto is not None:
        print(fit.auto.line())
    if fit.auto_alone is not None:
        from .infer.auto import alone_line
        print(alone_line(fit.auto_alone))
    if fit.starts is not None:
        print(fit.starts.line())
    print(fit.verdict())


def _cmd_fit(args) -> int:
    from .api import load
    from .infer.advi import INTERRUPTED
    from .options import FitOptions
    from .savedfit import holds_saved_fit, save_fit
    options = FitOptions(**{k: getattr(args, k) for k in FIT_FLAGS if hasattr(args, k)})
    folder = _out_folder(args)  # fail before fitting, not after
    replacing = folder is not None and holds_saved_fit(folder)
    model = load(args.model)
    with _progress_bar(quiet=args.quiet) as progress:
        fit = model.fit(args.data, progress=progress, **dataclasses.asdict(options))
    try:
        _print_fit(fit)
        unwritable = None
    except OSError as error:     # stdout refused it: the fit is still saved, then the error
        unwritable = error
    if folder is not None:
        # which of its files ppl wrote, as the replaced fit's fit.json records them
        outputs = _replaced_outputs(folder, args) if replacing else ([], [])
        save_fit(fit, folder)
        try:
            if unwritable is None:
                _say(f"wrote {folder}/draws.csv, summary.csv, elbo.csv, fit.json, model.ppl")
        finally:
            _remove_stale(folder, *outputs)
    if isinstance(unwritable, BrokenPipeError):
        raise unwritable
    if unwritable is not None:
        _discard_stdout()
        raise stdout_unwritable(unwritable, None if folder is None else str(folder))
    # Ctrl-C stopped the fit: its approximation is printed (and saved) above, and the status
    # says it was interrupted, as a shell expects after SIGINT; also when it ended auto's
    # climb and auto chose an earlier family's fit, which had converged
    interrupted = fit.auto is not None and fit.auto.interrupted
    return 130 if fit.result.reason == INTERRUPTED or interrupted else 0


def _out_folder(args) -> Path | None:
    """--out DIR, checked before the fit: a folder that can be written, where none of the
    files a fit writes is one of the run's own inputs (`--data DIR/draws.csv --out DIR` would
    replace the user's data with the draws), and, unless DIR holds a saved fit (a fit.json
    ppl wrote), where none of them exists yet (they are the user's own). The model may be
    DIR/model.ppl: it is rewritten with its own text, so a saved fit can be fitted again in
    place."""
    if args.out is None:
        return None
    if not args.out:    # an empty --out wrote nothing, and said nothing
        raise bad_option("--out", f"must name a folder; found {args.out!r}")
    from .output import prepare_dir
    from .savedfit import FILES, fitted_model_path, holds_saved_fit
    folder = prepare_dir(args.out)
    inputs = {"model": args.model, "data": args.data, "init": getattr(args, "init_path", None)}
    for role, path in inputs.items():
        for name in FILES:
            target = folder / name
            if role == "model" and name == "model.ppl":
                continue
            if path is not None and _same_file(target, path):
                raise out_overwrites_input(str(target), role)
    own_model = folder / "model.ppl"
    if not holds_saved_fit(folder):
        # not a folder a fit wrote: a file there with one of our names is the user's own
        for name in FILES:
            target = folder / name
            if os.path.lexists(target) and not (target == own_model
                                                and _same_file(target, args.model)):
                raise out_not_a_saved_fit(str(target))
    elif not _same_file(own_model, args.model) and \
            _same_file(own_model, fitted_model_path(folder) or ""):
        # the saved fit was fitted from DIR/model.ppl itself: it is the user's model
        raise out_replaces_fitted_model(str(own_model))
    return folder


def _replaced_outputs(folder: Path, args) -> tuple[list[str], list[str]]:
    """(stale, kept): what 'ppl predict' and 'ppl plot' wrote for the saved fit in ``folder``
    that this one replaces, as they wrote it (its fit.json records them, before the new fit
    is saved over it), and the files by those names that are not as they wrote them (a file
    of the user's own: their notes saved as predictive.csv). Never one of the run's inputs."""
    from .savedfit import PLOT_FILES, PREDICTIVE_FILES, written_as_recorded
    inputs = [p for p in (args.model, args.data, getattr(args, "init_path", None)) if p]
    present = [name for name in PREDICTIVE_FILES + PLOT_FILES if (folder / name).is_file()
               and not any(_same_file(folder / name, path) for path in inputs)]
    stale = [name for name in present if written_as_recorded(folder, name)]
    return stale, [name for name in present if name not in stale]


def _remove_stale(folder: Path, stale: list[str], kept: list[str]) -> None:
    """Remove ``stale`` (:func:`_replaced_outputs`): left, predictive_summary.csv and
    marginals.png beside the new fit were the old model's, as if of the new one; say what
    was ``kept``."""
    for name in stale:
        try:
            os.unlink(folder / name)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise stale_output(str(folder / name), error.strerror or str(error)) from None
    if stale:
        _say(f"removed {folder}/{', '.join(stale)}: of the fit replaced")
    if kept:
        _say(f"kept {folder}/{', '.join(kept)}: not as ppl predict or ppl plot wrote "
              f"{'it' if len(kept) == 1 else 'them'}, so not removed; not of this fit")


def _same_file(a, b) -> bool:
    """Whether two paths name one existing file (a file that cannot be reached is no match:
    reading it reports why)."""
    try:
        return Path(a).is_file() and Path(b).is_file() and os.path.samefile(a, b)
    except OSError:
        return False


class _progress_bar:
    """A tqdm bar on stderr while fitting, only when stderr is a terminal and not --quiet.

    The bar starts at the first progress report, so that warnings printed while the data is
    loaded come before it, and it counts steps without a total: the convergence rule, not
    the ``iter`` limit, usually ends the fit. It counts every step of the fit: each phase
    (a warm start, each family auto tries) reports its own steps from zero, and the bar adds
    them up rather than running back. Under ``--guide auto`` it names the family being fitted
    (``family``, which auto calls before each one).
    """

    def __init__(self, quiet: bool):
        self.enabled = not quiet and sys.stderr.isatty()
        self.bar = None
        self.last = 0     # the step the current phase last reported
        self.label = "fitting"

    def __enter__(self):
        return self if self.enabled else None

    def __call__(self, step: int, elbo: float, lr: float) -> None:
        self.update(step, elbo, lr)

    def family(self, name: str) -> None:
        self.label = f"fitting {name}"
        if self.bar is not None:
            self.bar.set_description_str(self.label, refresh=False)

    def update(self, step: int, elbo: float, lr: float) -> None:
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(file=sys.stderr, leave=False, unit="step", desc=self.label)
        self.bar.update(step - self.last if step >= self.last else step)
        self.last = step
        self.bar.set_postfix_str(f"ELBO {elbo:.5g}, step size {lr:.3g}", refresh=False)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False


# ----- saved fits ---------------------------------------------------------------------------

def _cmd_summary(args) -> int:
    from .posterior import convergence_text
    from .savedfit import is_point_fit, read_fit_json, read_summary
    info = read_fit_json(Path(args.dir))
    _say(read_summary(Path(args.dir), info))
    khat = info["khat"]
    shown = "" if khat is None else f"; k̂ {khat:.2f}"
    psis = info.get("psis")      # k̂ inf or -inf: null in 'khat', named in psis.khat
    if khat is None and isinstance(psis, dict) and psis.get("khat") in ("inf", "-inf"):
        shown = f"; k̂ {psis['khat']}"
    if is_point_fit(info):   # the log joint at the params; nothing drawn, no k̂
        final = f"final log joint {info['final_elbo']:.6g}"
    else:
        final = f"final ELBO {info['final_elbo']:.6g}{shown}"
    unmoved = info.get("unmoved_final_elbo")     # a number: save_fit's; else not moved
    guide = info.get("guide")
    family = guide.get("family") if isinstance(guide, dict) else None
    _say(convergence_text(info["converged"], info["reason"], info["steps"], info["seconds"],
                           final, unmoved if type(unmoved) in (int, float) else None,
                           family if isinstance(family, str) else ""))
    for report in ("auto", "starts"):   # the lines `ppl fit` printed here (fits saved since)
        entry = info.get(report)
        if isinstance(entry, dict) and isinstance(entry.get("line"), str):
            _say(entry["line"])
    _say(info["verdict"]["line"])
    return 0


def _cmd_predict(args) -> int:
    from .errors import predict_overwrites_data
    from .savedfit import PREDICTIVE_FILES, restore_fit, save_predictive
    if args.draws is not None and args.draws < 1:
        raise bad_option("--draws", f"must be a positive integer; found {args.draws}")
    for name in PREDICTIVE_FILES:   # `--data DIR/predictive.csv` replaced the data with draws
        if args.data is not None and _same_file(Path(args.dir) / name, args.data):
            raise predict_overwrites_data(str(Path(args.dir) / name))
    fit = restore_fit(Path(args.dir))
    path = save_predictive(fit, Path(args.dir), args.draws, args.data)
    _say(f"wrote {path} and {path.with_name('predictive_summary.csv')}")
    return 0


def _cmd_plot(args) -> int:
    from .plot import plot_fit
    plots = plot_fit(Path(args.dir), args.vars)
    for path in plots.paths:
        _say(f"wrote {path}")
    if plots.shown < plots.total:
        _say(f"marginals.png shows the first {plots.shown} of {plots.total} elements; "
              "choose which with --vars NAME ...")
    return 0


COMMANDS = {"check": _cmd_check, "fit": _cmd_fit, "summary": _cmd_summary,
            "predict": _cmd_predict, "plot": _cmd_plot}
