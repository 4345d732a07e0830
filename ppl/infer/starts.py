"""Several independent fits of one model (``--starts K``): their seeds and dispersed starting
points, running them in parallel processes, and comparing their answers.

A start is one ADVI fit (advi.py) from its own point of the unconstrained space with its own
random stream; the comparison is like R̂ between MCMC chains (the spread of each mean between
starts against the posterior sd). What the comparison means for the user is verdict.py's.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import advi
from .ladder import by_elbo
from ..errors import start_failed

# Starting points of starts 1.. are drawn uniformly from [-INIT_RADIUS, INIT_RADIUS] in every
# unconstrained coordinate, as Stan's default random inits are (CmdStan ``init=2``); start 0
# starts at the origin, so it is the fit that starts=1 gives.
INIT_RADIUS = 2.0
# A mean disagrees between starts when its between-start sd exceeds this many posterior sds.
# R̂ = sqrt(1 + B^2 / W^2) for between-start sd B and posterior sd W; 0.3 is R̂ 1.044. The
# fitted means carry optimizer noise of a few hundredths of a posterior sd (advi.fit's
# docstring; tests/stats), so the spread of agreeing starts stays well below 0.3.
MAX_SPREAD = 0.3


@dataclass(frozen=True)
class StartsReport:
    """How K starts compare.

    Attributes
    ----------
    elbos : [K] every start's ELBO on its k̂ draws (start 0 first): the same estimate of each
        start's reported fit (auto.elbo_on_khat_draws), where the final ELBOs are of two kinds
        (the steps' windowed mean, or an estimate on fresh draws after auto's move).
    khats : [K] k̂ of every start.
    seconds : [K] wall time of every start's optimization.
    spread : element name -> between-start sd of its mean / its posterior sd (pooled over
        the starts).
    disagree : names whose spread exceeds MAX_SPREAD, largest first.
    best : index of the start reported (the highest ELBO; among ties, the smallest k̂).
    workers : processes the starts ran in.
    """

    elbos: tuple
    khats: tuple
    seconds: tuple
    spread: dict
    disagree: tuple
    best: int
    workers: int

    def line(self) -> str:
        """One line: starts, processes, the range of ELBOs, the largest spread of a mean."""
        name = max(self.spread, key=self.spread.get) if self.spread else None
        worst = f"{self.spread[name]:.2f} posterior sd ({name})" if name else "none"
        return (f"starts: {len(self.elbos)} in {self.workers} process"
                f"{'es' if self.workers > 1 else ''}; ELBOs on k̂'s draws "
                f"{min(self.elbos):.6g} to {max(self.elbos):.6g}; largest spread of a mean "
                f"between starts {worst}; start {self.best} reported")

    def to_dict(self) -> dict:
        """Plain values for fit.json, with the line (``ppl summary`` prints it again)."""
        return {"line": self.line(), "elbos": [_json_float(e) for e in self.elbos],
                "khats": [_json_float(k) for k in self.khats],
                "seconds": list(self.seconds), "spread": dict(self.spread),
                "disagree": list(self.disagree), "best": self.best, "workers": self.workers}


def _json_float(value: float):
    return float(value) if np.isfinite(value) else None


def fit_start(compiled, options, k: int, progress=None,
              fit_fn: Callable | None = None) -> advi.AdviResult | tuple:
    """Start ``k``'s fit: seed options.seed (k = 0) or the stream [seed, k], and a starting
    point drawn from that stream (k >= 1). Depends on nothing but (model, options, k).
    ``fit_fn(compiled, rng, progress)`` fits and returns an AdviResult (default: advi.fit
    with options) or, for ``--guide auto``'s climb, (AdviResult, auto.AutoReport); fit_start
    returns the same, the result in the model's coordinates.

    The guide's mean starts at 0 in advi.fit; a start elsewhere is the same fit of the log
    joint shifted by the starting point, whose guide is shifted back afterwards (push_affine).
    """
    if fit_fn is None:
        def fit_fn(model, rng, progress):
            return advi.fit(model, options, rng, progress)
    if k == 0:
        return fit_fn(compiled, np.random.default_rng(options.seed), progress)
    rng = np.random.default_rng([options.seed, k])
    shift = rng.uniform(-INIT_RADIUS, INIT_RADIUS, compiled.dim)
    outcome = fit_fn(_Shifted(compiled, shift), rng, progress)
    result, climb = outcome if isinstance(outcome, tuple) else (outcome, None)
    theta = result.guide.push_affine(result.theta, shift, np.ones(compiled.dim))
    result = dataclasses.replace(result, theta=theta)
    return result if climb is None else (result, climb)


class _Shifted:
    """``compiled`` seen from a moved origin: log_joint(zeta) = compiled.log_joint(zeta + shift)."""

    def __init__(self, compiled, shift: np.ndarray):
        self.compiled, self.shift, self.dim = compiled, shift, compiled.dim
        # the model behind it sizes the fit's chunks and allows the early stop, as for start
        # 0: without it, starts 1..K ran without the early stop, with central-difference
        # Hessians and k̂'s draws in one call over the whole data
        self.model = getattr(compiled, "model", None)

    def log_joint(self, zeta):
        return self.compiled.log_joint(zeta + self.shift)

    def terms(self, zeta):
        return self.compiled.terms(zeta + self.shift)

    def unconstrained_names(self):
        return self.compiled.unconstrained_names()

    # what the verdict of a rung of auto's climb reads with --correct none (the plain summary
    # checked against its weights): without them, starts 1.. were an internal error
    def constrained(self, zeta, rng=None, uniforms=None):
        return self.compiled.constrained(zeta + self.shift, rng, uniforms)

    def probabilities(self, zeta):
        return self.compiled.probabilities(zeta + self.shift)

    def values(self):
        return self.compiled.values()

    def uniforms(self, rng, s: int):
        return self.compiled.uniforms(rng, s)


def workers_for(K: int) -> int:
    """Processes for K starts: one per core this process may use, at most K; 1 where
    processes cannot be forked (then the starts run one after another)."""
    if not hasattr(os, "fork"):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(K, cores or 1))


def run_starts(fit_one: Callable[[int], advi.AdviResult | tuple], K: int,
               workers: int) -> list:
    """Run ``fit_one(k)`` for k = 0 .. K-1, in ``workers`` forked processes at a time.

    Each start depends only on k (fit_start), so the results are the same however many
    processes run them. A child sends what fit_one returned (an AdviResult, or one with its
    auto.AutoReport) back as JSON through a pipe (floats round-trip exactly through repr); no
    pickle. A start that raises PplError is re-raised here naming the start.
    """
    if workers <= 1:
        results = []
        for k in range(K):
            results.append(_call(fit_one, k))
            if _interrupted(results[-1]):   # Ctrl-C ends the run, as with parallel starts
                raise KeyboardInterrupt     # (it ended start 0, and starts 1.. ran in full)
        return results
    results = []
    with _ending_signals_raise():
        for first in range(0, K, workers):
            children = []
            try:
                for k in range(first, min(first + workers, K)):
                    _fork_into(children, fit_one, k)
                results += [_collect(pid, fd, k) for k, (pid, fd) in
                            zip(range(first, first + len(children)), children)]
            except BaseException:
                for pid, _ in children:      # our own children only, by their ids
                    _kill(pid)
                raise
    return results


# Signals whose default action ends this process at once: the forked starts would go on
# fitting, orphaned, until they finish (``kill`` names only this process).
_ENDING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                        if hasattr(signal, name))


_HELD_AT_FORK = (*_ENDING_SIGNALS, signal.SIGINT)


class _Ended(BaseException):
    """One of _ENDING_SIGNALS, raised so that run_starts ends its children first."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_ended(signum, frame):
    raise _Ended(signum)


@contextlib.contextmanager
def _ending_signals_raise():
    """While the block runs, _ENDING_SIGNALS raise _Ended; once the block has unwound (the
    children ended), the handlers are put back and the signal is delivered again, so the
    process ends as it would have (status 128 + the signal). Only signals whose handler is
    the default: one the user ignores (``nohup`` ignores SIGHUP) or handles stays so, in this
    process and its starts. Main thread only (elsewhere a handler cannot be set, and the block
    runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_ended) for sig in _ENDING_SIGNALS
                if signal.getsignal(sig) == signal.SIG_DFL}
    try:
        yield
    except _Ended as ended:
        _restore(previous)
        signal.raise_signal(ended.signum)
        raise                            # the restored handler did not end the process
    finally:
        _restore(previous)


def _restore(handlers: dict) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def _interrupted(outcome) -> bool:
    """Whether Ctrl-C ended this start's fit (or its auto climb)."""
    result, climb = outcome if isinstance(outcome, tuple) else (outcome, None)
    return result.reason == advi.INTERRUPTED or bool(climb and climb.interrupted)


def _call(fit_one, k):
    from ..errors import PplError
    try:
        return fit_one(k)
    except PplError as error:
        raise start_failed(k, str(error)) from None


def _fork_into(children: list, fit_one, k: int) -> None:
    """Fork start k's process and add (pid, fd) to ``children``, with _ENDING_SIGNALS and
    SIGINT held meanwhile: one arriving between the fork and the list would leave run_starts a
    child it does not know to end, and a SIGINT in os.fork's own Python hooks is swallowed
    there ('Exception ignored'), so the run went on to the end after Ctrl-C.

    Blocking them in this thread is not enough where the process has other threads (a
    Jupyter kernel's, a timer's): the kernel hands a signal to a thread that does not block
    it, and Python still runs the handler in the main thread, inside the fork's hooks. So
    their Python handlers are also swapped for one that only notes the signal, which is
    raised again once the child is in the list."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_AT_FORK)
    try:
        with _handlers_deferred(_HELD_AT_FORK) as handlers:
            children.append(_fork(fit_one, k, handlers))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@contextlib.contextmanager
def _handlers_deferred(signals):
    """While the block runs, a signal of ``signals`` whose handler is Python's is noted, not
    handled; afterwards the handlers are put back and each noted signal is raised again.
    Yields the handlers put aside (a forked child puts them back itself)."""
    if threading.current_thread() is not threading.main_thread():
        yield {}
        return
    arrived = []
    previous = {sig: signal.signal(sig, lambda signum, frame: arrived.append(signum))
                for sig in signals if callable(signal.getsignal(sig))}
    try:
        yield previous
    finally:
        _restore(previous)
        for sig in dict.fromkeys(arrived):
            signal.raise_signal(sig)


def _fork(fit_one, k: int, handlers: dict):
    read, write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write)
        return pid, read
    os.close(read)
    _restore(handlers)                    # the parent's own, not _handlers_deferred's
    for sig in _ENDING_SIGNALS:           # the parent's _raise_ended is not the child's:
        if signal.getsignal(sig) is _raise_ended:   # _kill's SIGTERM ends it at once; an
            signal.signal(sig, signal.SIG_DFL)        # ignored SIGHUP stays ignored
    # Ctrl-C reaches the terminal's whole process group: the parent ends the starts (_kill).
    # A start acting on it too printed a traceback (a KeyboardInterrupt outside the fit's
    # steps) and made the run an 'internal error: start 0 failed in its process'.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD_AT_FORK)   # held by _fork_into
    status = 0
    from ..errors import PplError
    try:
        try:
            payload = _to_payload(fit_one(k))
        except PplError as error:
            payload = {"error": str(error)}
        with os.fdopen(write, "w", encoding="utf-8") as stream:
            json.dump(payload, stream)
    except BaseException:     # noqa: BLE001 - a forked child must never unwind into the
        import traceback      # caller's stack (it would run the parent's code twice)
        traceback.print_exc(file=sys.stderr)
        status = 1
    finally:
        os._exit(status)


# How often the run, waiting for a start, looks for a signal another thread took (_wait_for).
SIGNAL_POLL_SECONDS = 0.1


def _wait_for(fd: int) -> None:
    """Return when the start's pipe has something to read (or was closed).

    Not a blocking read: the kernel gives a signal sent to the process to any thread not
    blocking it, and while _fork_into holds them on the main thread, to another (OpenBLAS's).
    Python then runs the handler only when the main thread next takes the GIL, which a read
    blocked on a start that fits for minutes does not: ``kill PID`` left the run waiting for
    its starts. Each timed-out select takes the GIL again, so the handler runs within
    SIGNAL_POLL_SECONDS."""
    while not select.select([fd], [], [], SIGNAL_POLL_SECONDS)[0]:
        pass


def _collect(pid: int, fd: int, k: int) -> advi.AdviResult | tuple:
    _wait_for(fd)
    with os.fdopen(fd, "r", encoding="utf-8") as stream:
        text = stream.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not text:
        raise RuntimeError(f"start {k} failed in its process (status {status})")
    payload = json.loads(text)
    if "error" in payload:
        raise start_failed(k, payload["error"])
    result = _from_json(payload["result"])
    if "auto" not in payload:
        return result
    from .auto import AutoReport
    return result, AutoReport.from_plain(payload["auto"])


def _kill(pid: int) -> None:
    import signal
    try:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _to_payload(outcome) -> dict:
    """A start's AdviResult (and its auto.AutoReport, when fit_one returned the pair) as
    plain values for the pipe."""
    if isinstance(outcome, tuple):
        return {"result": _to_json(outcome[0]), "auto": outcome[1].plain()}
    return {"result": _to_json(outcome)}


def _to_json(result: advi.AdviResult) -> dict:
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    fields["guide"] = result.guide.name     # a family is rebuilt from its name (guides.family)
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in fields.items()}


def _from_json(fields: dict) -> advi.AdviResult:
    from ..guides import family
    arrays = {k: np.asarray(fields[k], dtype=float) for k in ("theta", "elbo")}
    guide = family(fields["guide"], len(fields["names"]))
    return advi.AdviResult(**{**fields, **arrays, "guide": guide,
                              "names": tuple(fields["names"]),
                              "phases": tuple(map(tuple, fields["phases"]))})


def compare(summaries: list[dict], elbos, khats, seconds, workers: int,
            elbo_ses=None) -> StartsReport:
    """Compare K starts' summaries (``Summary.to_dict()``, one per start).

    For every element: B, the sd of its K means (ddof 1), against W, the root mean of its K
    posterior variances; spread = B / W. The best start has the highest ELBO (``elbos``, as
    StartsReport's, with standard errors ``elbo_ses``, 0 if not given; a NaN ELBO never
    wins); among starts within a tie of it, the smallest k̂, as auto chooses between its
    rungs (ladder.by_elbo): two fits of one mode differ by noise, not by how good they are.
    """
    names = list(summaries[0])
    means = np.array([[s[n]["mean"] for n in names] for s in summaries])
    sds = np.array([[s[n]["sd"] for n in names] for s in summaries])
    between = means.std(axis=0, ddof=1)
    within = np.sqrt(np.mean(sds ** 2, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(within > 0, between / within, np.where(between > 0, np.inf, 0.0))
    spread = {n: float(v) for n, v in zip(names, spread)}
    disagree = tuple(sorted((n for n, v in spread.items() if v > MAX_SPREAD),
                            key=lambda n: -spread[n]))
    finite = np.where(np.isfinite(elbos), elbos, -np.inf)
    ses = np.zeros(len(finite)) if elbo_ses is None else np.asarray(elbo_ses, dtype=float)
    best = by_elbo(list(zip(finite, ses)), list(khats))
    return StartsReport(tuple(map(float, elbos)), tuple(map(float, khats)),
                        tuple(map(float, seconds)), spread, disagree, best, workers)
