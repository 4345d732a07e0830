"""Hostile models and options (issue 9, item 6): each is one located PplError, never an
internal error. Data files are in test_data.py, outputs in test_output.py."""
from __future__ import annotations

import dataclasses
import os
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import ppl
from ppl.errors import PplError, PplWarning
from ppl.options import FitOptions
from ppl.frontend.depth import MAX_DEPTH
from ppl.frontend.printer import to_source
from ppl.frontend.check import check
from ppl.frontend.parse import parse

ROOT = Path(__file__).resolve().parents[2]

NESTINGS = {
    "sum": lambda n: " + ".join(["mu"] * n),
    "exp": lambda n: "sigmoid(" * n + "mu" + ")" * n,
    "neg": lambda n: "-" * n + "mu",
    "power": lambda n: " ** ".join(["mu"] * n),
}


def _nested(form: str, n: int) -> str:
    return f"sample mu ~ Normal(0, 1)\nlet z = {NESTINGS[form](n)}\n"


def _deepest_accepted(form: str) -> int:
    """The largest n whose model passes the nesting check (bisection)."""
    lo, hi = 1, 4 * MAX_DEPTH
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            check(parse(_nested(form, mid)))
            lo = mid
        except PplError:
            hi = mid - 1
    return lo


@pytest.mark.parametrize("form", sorted(NESTINGS))
def test_nesting_just_below_the_limit_runs_every_stage(form):
    n = _deepest_accepted(form)
    assert n < 4 * MAX_DEPTH
    text = _nested(form, n)
    to_source(parse(text))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ppl.compile(text).fit(iter=30, seed=0)
    fit.summary()


@pytest.mark.parametrize("form", sorted(NESTINGS))
def test_nesting_beyond_the_limit_is_a_located_error(form):
    n = _deepest_accepted(form) + 1
    with pytest.raises(PplError) as info:
        ppl.compile(_nested(form, n))
    assert info.value.message == f"expression nested too deeply (more than {MAX_DEPTH} levels)"
    assert info.value.span.line == 2


def test_very_deep_nesting_is_a_located_error_too():
    with pytest.raises(PplError, match="nested too deeply"):
        ppl.compile(_nested("neg", 20_000))


def test_parentheses_do_not_count_as_nesting():
    ppl.compile("sample mu ~ Normal(0, 1)\nlet z = " + "(" * 5000 + "mu" + ")" * 5000 + "\n")


# ----- options and memory ---------------------------------------------------------------------

SMALL = "data y: real[3]\nsample mu ~ Normal(0, 1)\nobserve y ~ Normal(mu, 1)\n"
Y = {"y": [1.0, 2.0, 3.0]}


@pytest.mark.parametrize("option", ["lr", "init_scale", "tol"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0])
def test_non_finite_or_negative_options_are_option_errors(option, value):
    with pytest.raises(PplError, match=f"option {option}: must be a positive finite number"):
        ppl.compile(SMALL).fit(Y, **{option: value})


def test_starts_beyond_the_cap_is_an_option_error():
    # starts=10**9 ran whole fits one after another until killed, printing nothing
    with pytest.raises(PplError, match=r"option starts: must be at most 1000 \(each start is "
                                       r"a whole fit\); found 1000000000"):
        FitOptions(starts=10 ** 9)
    assert FitOptions(starts=1000).starts == 1000


def test_a_window_of_one_step_is_an_option_error():
    # one step has no spread to measure: numpy warned "Degrees of freedom <= 0" and the rule
    # ran on NaN
    with pytest.raises(PplError, match="option window: must be at least 2 steps; found 1"):
        ppl.compile(SMALL).fit(Y, window=1)


POINT = "data y: real[3]\nparam mu: real ~ Normal(0, 10)\nobserve y ~ Normal(mu, 1)\n"
GUIDED = ("data y: real[3]\nsample mu ~ Normal(0, 10)\nobserve y ~ Normal(mu, 1)\n"
          "param m: real\nguide mu ~ Normal(m, 1)\n")


@pytest.mark.parametrize("text, options, names", [
    # DADVI's L-BFGS-B on fixed draws takes no step size, no step count, no ADVI window
    (SMALL, {"method": "dadvi", "lr": 0.1, "iter": 50}, "options lr, iter have"),
    # a DADVI summary and a params-only fit are never importance-corrected: 'none' changed
    # nothing
    (SMALL, {"method": "dadvi", "correct": "none"}, "option correct has"),
    (POINT, {"correct": "none"}, "option correct has"),
    (SMALL, {"guide": "meanfield", "iter": 30, "dadvi_draws": 5}, "option dadvi_draws has"),
    # a params-only model is fitted by L-BFGS-B on its log joint: no guide, no steps
    (POINT, {"guide": "flow", "mc_samples": 50}, "options mc_samples, guide have"),
    (POINT, {"precondition": "none", "stl": True}, "options precondition, stl have"),
    # every latent has a guide statement (a VAE's): --guide's family draws none of them
    (GUIDED, {"guide": "flow", "iter": 30}, "option guide has"),
    (GUIDED, {"init_scale": 1.0, "iter": 30}, "option init_scale has"),
    # a fit with param or guide statements is ADVI's: it draws no fixed draws
    (GUIDED, {"dadvi_draws": 5, "iter": 30}, "option dadvi_draws has"),
])
def test_an_option_the_fit_does_not_use_is_warned_of(text, options, names):
    # each was ignored without a word: the fit identical to one without it
    with pytest.warns(PplWarning, match=f"^{names} no effect: .*; ignored$"):
        ppl.compile(text).fit(Y, **options)


ROWS = "data N: int\ndata y: real[N]\nsample mu ~ Normal(0, 1)\nobserve y ~ Normal(mu, 1)\n"


@pytest.mark.parametrize("text, options, warned", [
    (ROWS, {"batch": {"N": 2}, "dadvi_draws": 5, "precondition": "none", "iter": 30},
     ["option precondition has no effect: a minibatch fit takes ADVI's steps without whitening",
      "option dadvi_draws has no effect: only method dadvi draws fixed draws"]),
    # a minibatch fit whose every latent has a guide statement (the VAE under --batch)
    (ROWS.replace("mu ~", "mu: real[N] ~") + "param m: real\nguide mu ~ Normal(m * y, 1)\n",
     {"batch": {"N": 2}, "guide": "meanfield", "iter": 30},
     ["option guide has no effect: every latent has a guide statement, so the guide family "
      "draws none of them"]),
    (SMALL, {"method": "dadvi", "lr": 0.1, "correct": "none"},
     ["option lr has no effect: method dadvi fits by L-BFGS-B on fixed draws, not by ADVI's "
      "steps", "option correct has no effect: a DADVI summary is never importance-corrected"]),
])
def test_each_unused_option_is_given_its_own_reason(text, options, warned):
    # --batch N=2 --dadvi-draws 5 said '--dadvi-draws has no effect: a minibatch fit takes
    # ADVI's steps without whitening', the reason of --precondition (found by the outdir audit)
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ppl.compile(text).fit({"N": 3, **Y} if "batch" in options else Y, draws=10,
                              **options)
    unused = [str(w.message) for w in caught if "no effect" in str(w.message)]
    assert unused == [f"{line}; ignored" for line in warned]


@pytest.mark.parametrize("text, options", [
    (SMALL, {"method": "dadvi", "starts": 2, "lr": 0.1}),
    (POINT, {"method": "dadvi", "lr": 0.1}),
    (POINT, {"starts": 2, "precondition": "none"}),
    (ROWS, {"batch": {"X": 2}, "precondition": "none"}),
    (ROWS, {"batch": {"N": 2}, "method": "dadvi", "dadvi_draws": 5}),
    (ROWS.replace("mu ~", "mu: real[N] ~"), {"batch": {"N": 2}, "guide": "fullrank",
                                            "precondition": "none"}),
])
def test_a_refused_fit_warns_of_no_unused_option(text, options):
    # the command printed 'warning: option --lr has no effect', then refused the fit for
    # another reason: the user should see only the error (found by the leftalone3 audit)
    import warnings
    with warnings.catch_warnings(record=True) as caught, pytest.raises(PplError):
        warnings.simplefilter("always")
        ppl.compile(text).fit({"N": 3, **Y} if "batch" in options else Y, **options)
    assert [str(w.message) for w in caught] == []


def test_the_command_line_names_unused_options_as_flags(capsys):
    from ppl import cli
    from ppl.errors import options_unused
    cli._show_warning(options_unused(["dadvi_draws"], "why"), PplWarning, "", 0)
    assert capsys.readouterr().err == ("ppl: warning: option --dadvi-draws has no effect: "
                                       "why; ignored\n")


def test_the_commands_warning_lines_end_with_the_command(tmp_path, capsys):
    # main() set warnings.showwarning for good: after a first command run in the process (a
    # notebook calling ppl.cli.main, a test), every warning of the caller's own code was
    # printed as 'ppl: warning: ...' (found by the savedfit audit)
    import warnings
    from ppl.cli import main
    (tmp_path / "m.ppl").write_text("data y: real\nsample mu ~ Normal(0, 1)\n"
                                    "observe y ~ Normal(mu, 1)\n")
    (tmp_path / "m.json").write_text('{"y": 1.0, "z": 2.0}')
    before = warnings.showwarning
    assert main(["check", str(tmp_path / "m.ppl")]) == 0
    assert "ppl: warning: " in capsys.readouterr().err      # the command's own, as before
    assert warnings.showwarning is before


@pytest.mark.parametrize("text, data, draws, figure", [
    # per draw: mu (1 value) and the observed y (3, for predictive draws), 8 bytes each:
    # 1e15 * 4 * 8 bytes = 2.91e4 TB (2^40 bytes)
    (SMALL, Y, 10 ** 15, "2.91e+04 TB"),
    # a model of no values is counted as one a draw (its log densities and weights, one
    # float a draw): counted as none, 10^18 draws were let through to numpy's MemoryError
    ("sample z: real[0] ~ Normal(0, 1)\n", None, 10 ** 18, "7.28e+06 TB")])
def test_draws_beyond_memory_are_refused_with_the_figure(text, data, draws, figure):
    with pytest.raises(PplError) as info:
        ppl.compile(text).fit(data, draws=draws)
    assert info.value.message.startswith(f"--draws {draws} needs at least {figure}")


def test_mc_samples_beyond_memory_are_refused_with_the_figure():
    with pytest.raises(PplError, match=r"--mc-samples 100000000000000 \(draws per step\) on "
                                       r"this model needs at least"):
        ppl.compile(SMALL).fit(Y, mc_samples=10 ** 14)


def test_dadvi_draws_beyond_memory_are_refused_with_the_figure():
    with pytest.raises(PplError, match=r"--dadvi-draws 100000000000000 on this model needs at "
                                       r"least"):
        ppl.compile(SMALL).fit(Y, method="dadvi", dadvi_draws=10 ** 14)


def test_a_flows_steps_are_counted_at_its_own_draws(monkeypatch):
    # a flow's step takes 12 times --mc-samples draws and holds its layers' arrays. Per draw
    # (D = 1): mu, the observe's mean and its gradient (3 floats), the noise, the draw and its
    # cotangent (3), and for flow:2 2 * (8 D + 2 * 8 hidden units) = 48 more. At 10^6: mean
    # field 1e6 * 6 * 8 bytes = 46 MB, the flow 12e6 * 54 * 8 = 4.83 GB (2^30 bytes)
    from ppl import api, memory
    model = ppl.compile(SMALL)
    concrete, _, compiled = model.prepare(Y)
    monkeypatch.setattr(memory, "available", lambda: 2 ** 30)
    options = FitOptions(mc_samples=10 ** 6)
    api._check_step_memory(concrete, compiled, options)
    api._check_step_memory(concrete, compiled, dataclasses.replace(options, guide="meanfield"))
    with pytest.raises(PplError, match=r"--mc-samples 1000000 \(12000000 draws per step of "
                                       r"flow:2\) on this model needs at least 4.83 GB") as info:
        api._check_step_memory(concrete, compiled, dataclasses.replace(options, guide="flow"))
    # the flow's own arrays are 51 of the 54 floats a draw: the error pointed at a
    # statement of the model, not at the option that caused it
    assert info.value.span is None and info.value.hint.startswith(
        "most of it is the guide flow:2's own arrays: use fewer --mc-samples or a flow of fewer")


def test_huge_dimensions_are_refused_before_allocating():
    with pytest.raises(PplError) as info:
        ppl.compile("sample z: real[4611686018427387904] ~ Normal(0, 1)\n").fit()
    assert "needs at least 3.36e+07 TB of memory" in info.value.message
    assert info.value.span.line == 1


def test_memory_estimate_counts_draws_and_intermediates():
    from ppl import memory
    from ppl.frontend.check import check
    model = check(parse("data x: real[10]\nsample z: real[10] ~ Normal(0, 1)\n"
                        "let w = z * x + 1\n"), {})
    # per draw: z (10), the let's nodes z*x+1, z*x, z (10 each): 40 values; once: x (10), the
    # let's 1, Normal's 0 and 1 (1 each): 13 values; 8 bytes each
    with pytest.raises(PplError):
        memory.check_model(model, draws_per_step=2, limit=(40 * 2 + 13) * 8 - 1)
    memory.check_model(model, draws_per_step=2, limit=(40 * 2 + 13) * 8)


def test_step_memory_counts_the_guides_arrays_and_names_the_family_only_when_they_dominate():
    from ppl import memory
    from ppl.guides import MEAN_FIELD
    model = check(parse("data x: real[10]\nsample z: real[10] ~ Normal(0, 1)\n"
                        "let w = z * x + 1\n"), {})
    # the guide's noise, draw and cotangent: 3 D floats per draw
    assert memory.guide_floats(MEAN_FIELD, 10) == 30
    # per draw: z (10), and the let's z * x + 1, z * x, z (10 each) twice, for the gradient:
    # 70 values; once: x (10), 1, 0 and 1 (13 values); 8 bytes each
    model_bytes = (70 * 2 + 13) * 8
    memory.check_step(model, 2, 30, "a step", limit=model_bytes + 30 * 2 * 8, family="g")
    with pytest.raises(PplError) as info:      # the let (1048 bytes) outweighs the guide's 480
        memory.check_step(model, 2, 30, "a step", limit=model_bytes + 30 * 2 * 8 - 1,
                          family="g")
    assert info.value.span is not None and "guide g" not in str(info.value)
    with pytest.raises(PplError, match="most of it is the guide g's own arrays") as info:
        memory.check_step(model, 2, 1000, "a step", limit=model_bytes, family="g")
    assert info.value.span is None
    with pytest.raises(PplError) as info:      # no family to name (DADVI): the largest statement
        memory.check_step(model, 2, 1000, "a step", limit=model_bytes)
    assert info.value.span is not None and "guide" not in str(info.value)


def test_the_draws_check_counts_latents_reported_lets_and_observes_to_the_byte():
    # per draw: a (1), the reported let mu (10) and the observed y (10, for predictive draws),
    # not the hidden _h, which no draw reports: 21 values of 8 bytes
    from ppl import memory
    model = check(parse("data x: real[10]\ndata y: real[10]\nsample a ~ Normal(0, 1)\n"
                        "let mu = a * x\nlet _h = a * x\nobserve y ~ Normal(mu, 1)\n"), {})
    memory.check_draws(100, model, "--draws", limit=100 * 21 * 8)
    with pytest.raises(PplError) as info:
        memory.check_draws(100, model, "--draws", limit=100 * 21 * 8 - 1)
    assert info.value.message == ("--draws 100 needs at least 16800 bytes of memory; this "
                                  "machine has 16799 bytes")


def test_probabilities_by_draw_name_the_discrete_latent_with_the_most():
    # [10, 2, 10] of k and [10, 3, 100] of j: 3200 floats, 25600 bytes, most of them j's
    from ppl import memory
    model = check(parse("sample k: int[2] ~ DiscreteUniform(0, 9)\n"
                        "sample j: int[3] ~ DiscreteUniform(0, 99)\n"), {})
    values = {"k": np.arange(10), "j": np.arange(100)}
    memory.check_probabilities(10, model, values, limit=25600)
    with pytest.raises(PplError, match="discrete latent 'j'") as info:
        memory.check_probabilities(10, model, values, limit=25599)
    assert info.value.span.line == 2


def test_the_affordable_draws_count_a_discrete_latents_probabilities():
    # per draw: k (3) with its probabilities of 1000 values each (3000) and s (1): 3004
    # floats; half of the limit for the draws
    from ppl import memory
    model = check(parse(DISCRETE), {"N": 3})
    limit = 2 * 3004 * 8 * 7
    assert memory.affordable_draws(model, limit=limit, values={"k": np.arange(1000)}) == 7


def test_the_summary_check_names_the_probabilities_that_outweigh_every_draw():
    # z's 40 draws (400 values) outweigh k's (80), but k's probabilities [10, 2, 100] (2000)
    # outweigh both: they are named, with the larger of the draws (480) and the rows' five
    # statistics (1000): 3000 values of 8 bytes
    from ppl import memory
    model = check(parse("sample k: int[2] ~ DiscreteUniform(0, 99)\n"
                        "sample z: real[10] ~ Normal(0, 1)\n"), {})
    values = {"k": np.arange(100)}
    memory.check_summary(40, model, limit=24000, values=values, value_draws=10)
    with pytest.raises(PplError) as info:
        memory.check_summary(40, model, limit=23999, values=values, value_draws=10)
    assert info.value.message.startswith("the summary's probabilities of the 100 values of "
                                         "discrete latent 'k' (2 element(s), at 10 draws)")
    assert info.value.span.line == 1


LET_OVER_DATA = ("data x: real[1000]\ndata y: real[1000]\nsample a ~ Normal(0, 1)\n"
                 "let mu = a * x\nobserve y ~ Normal(mu, 1)\n")


def test_a_reported_let_too_large_for_the_summary_is_refused_before_the_fit(monkeypatch):
    # the summary reports mu at 4000 draws: 4000 * (1 + 1000) * 8 bytes = 30.5 MB; the
    # --draws check (1000 draws of a, mu and the observed y: 15.3 MB) passes under 20 MB
    from ppl import memory
    monkeypatch.setattr(memory, "available", lambda: 20 * 2 ** 20)
    data = {"x": np.linspace(-1, 1, 1000), "y": np.linspace(-1, 1, 1000)}
    with pytest.raises(PplError) as info:
        ppl.compile(LET_OVER_DATA).fit(data)
    assert info.value.message == ("the summary's 4000 draws of every reported value need at "
                                  "least 30.5 MB of memory, most of it for 'mu'; this machine "
                                  "has 20 MB")
    assert info.value.span.line == 4 and "name it _mu" in info.value.hint
    # hidden, it is computed only where the model uses it
    hidden = LET_OVER_DATA.replace("mu", "_mu")
    assert ppl.compile(hidden).fit(data, seed=0).summary().rows.keys() == {"a"}


DISCRETE = ("data N: int\ndata y: real[N]\nsample k: int[N] ~ DiscreteUniform(0, 999)\n"
            "sample s ~ HalfNormal(1)\nobserve y ~ Normal(k, s)\n")


def test_discrete_probabilities_too_large_for_the_summary_are_refused_before_the_fit(
        monkeypatch, tmp_path, capsys):
    # the summary holds k's probabilities at its 4000 draws: 4000 * 3 * 1000 * 8 bytes = 96
    # MB, with the 4000 draws of k and s (128 kB): 91.7 MB (2^20 bytes). Counted as 3 values
    # a draw, it was 128 kB, and the summary of k[20] with 9001 values took 23.4 GB.
    from ppl import memory
    from ppl.cli import main
    monkeypatch.setattr(memory, "available", lambda: 20 * 2 ** 20)
    data = {"N": 3, "y": [1.0, 500.0, 998.0]}
    with pytest.raises(PplError) as info:
        ppl.compile(DISCRETE).fit(data)
    assert info.value.message == ("the summary's probabilities of the 1000 values of discrete "
                                  "latent 'k' (3 element(s), at 4000 draws) need at least "
                                  "91.7 MB of memory; this machine has 20 MB")
    assert info.value.span.line == 3 and "narrow the bounds of 'k'" in info.value.hint
    model = tmp_path / "m.ppl"
    model.write_text(DISCRETE)
    (tmp_path / "m.json").write_text('{"N": 3, "y": [1.0, 500.0, 998.0]}')
    assert main(["fit", str(model)]) == 2
    assert "discrete latent 'k'" in capsys.readouterr().err


def test_the_summary_check_counts_each_value_of_a_discrete_latent():
    from ppl import memory
    model = check(parse(DISCRETE), {"N": 3})
    values = {"k": np.arange(1000)}
    # probabilities [10, 3, 1000] and the larger of the 40 draws of k and s (160 values) and
    # the rows' five statistics (15000): 8 bytes each
    needed = (10 * 3 * 1000 + 5 * 3 * 1000) * 8
    memory.check_summary(40, model, limit=needed, values=values, value_draws=10)
    with pytest.raises(PplError, match="discrete latent 'k'"):
        memory.check_summary(40, model, limit=needed - 1, values=values, value_draws=10)


def test_probabilities_by_draw_at_more_draws_than_memory_holds_are_refused(monkeypatch):
    # a fit that passed the check before it, asked for n draws of k's probabilities [n, 3,
    # 1000]: 10^5 draws are 2.2 GB, refused on a 1 GB machine before anything is drawn (they
    # were counted as 3 values a draw, 2.3 MB)
    from ppl import memory
    fit = ppl.compile(DISCRETE).fit({"N": 3, "y": [1.3, 500.6, 998.2]}, guide="meanfield",
                                    draws=10, iter=200, correct="none", seed=0)
    monkeypatch.setattr(memory, "available", lambda: 2 ** 30)
    with pytest.raises(PplError, match="discrete latent 'k' .* at 100000 draws"):
        fit.probabilities_by_draw(10 ** 5)
    assert fit.probabilities_by_draw(20)["k"].shape == (20, 3, 1000)


def test_the_corrected_summary_draws_no_more_of_a_large_let_than_half_the_memory():
    from ppl import memory
    from ppl.frontend.check import check
    model = check(parse(LET_OVER_DATA), {})
    # per draw: a and mu, 1001 values of 8 bytes; half of the limit for the draws
    assert memory.affordable_draws(model, limit=2 * 8008 * 5000) == 5000
    assert memory.affordable_draws(model, limit=10) == 1


def test_reported_values_are_computed_a_chunk_of_draws_at_a_time():
    # mu has 1000 elements a draw: the score chunk is 10^6 / 1000 = 1000 draws, so the
    # summary's 4000 draws take four calls, whose values are those of one call
    fit = ppl.compile(LET_OVER_DATA).fit({"x": np.linspace(-1, 1, 1000),
                                           "y": np.linspace(-1, 1, 1000)}, seed=0)
    zeta, calls, constrained = fit._zeta(4000), [], fit.compiled.constrained
    fit.compiled.constrained = lambda z, rng=None: calls.append(len(z)) or constrained(z, rng)
    chunked = fit._constrained(zeta, None)
    assert calls == [1000] * 4
    for name, values in constrained(zeta).items():
        np.testing.assert_array_equal(chunked[name], values)


def test_predictive_and_pointwise_draws_of_large_data_come_in_chunks(monkeypatch):
    # above LARGE_DRAW_ELEMENTS (here 10^5: 1000 draws of mu's 1000 values are 10^6) the
    # outputs' lets are computed a score chunk (1000 draws) at a time; the log-likelihoods
    # are those of one call, bit for bit, and the predictive draws keep their shapes and
    # distribution (the random stream is taken in another order)
    from ppl import posterior
    data = {"x": np.linspace(-1, 1, 1000), "y": np.linspace(-1, 1, 1000)}
    fit = ppl.compile(LET_OVER_DATA).fit(data, seed=0)
    zeta = fit._posterior_zeta(3000)
    whole = fit.compiled.pointwise_log_likelihood(zeta)
    single = fit.predictive(3000)["y"]
    monkeypatch.setattr(posterior, "LARGE_DRAW_ELEMENTS", 10 ** 5)
    calls, predictive = [], fit.compiled.predictive
    fit.compiled.predictive = lambda z, rng: calls.append(len(z)) or predictive(z, rng)
    chunked = fit.predictive(3000)["y"]
    assert calls == [1000] * 3 and chunked.shape == single.shape == (3000, 1000)
    # y_rep = a x + N(0, 1) noise at the same draws: the residuals are 3 * 10^6 standard
    # normals; 5 standard errors of their mean (1 / sqrt(n)) and sd (1 / sqrt(2 n))
    residual = chunked - fit._constrained(zeta, None)["mu"]
    n = residual.size
    assert abs(residual.mean()) < 5 / np.sqrt(n) and abs(residual.std() - 1) < 5 / np.sqrt(2 * n)
    chunks = posterior.by_draws(fit.compiled.pointwise_log_likelihood, zeta,
                                posterior.large_draws(fit.compiled, len(zeta)))
    for name in whole:
        np.testing.assert_array_equal(chunks[name], whole[name])


# ----- sizes, ints and files ------------------------------------------------------------------

def test_zero_size_data_and_latents_fit():
    text = "data N: int\ndata y: real[N]\nsample mu ~ Normal(0, 1)\nobserve y ~ Normal(mu, 1)\n"
    fit = ppl.compile(text).fit({"N": 0, "y": []}, seed=0)
    assert abs(fit.draws()["mu"].mean()) < 4 / np.sqrt(1000) + 0.1  # the prior, N(0, 1)
    fit = ppl.compile("sample z: real[0] ~ Normal(0, 1)\nsample mu ~ Normal(0, 1)\n").fit()
    assert fit.draws()["z"].shape == (1000, 0)


@pytest.mark.parametrize("expr,col", [("3037000500 * 3037000500", 9), ("sum(a)", 9),
                                      ("a * 3000000000", 9), ("a + a", 9),
                                      ("cumsum(a)", 9)])
def test_int_overflow_is_a_located_error(expr, col):
    text = f"data a: int[2]\nlet s = {expr}\nsample mu ~ Normal(0, 1)\n"
    with pytest.raises(PplError) as info:
        ppl.compile(text).prepare({"a": [4611686018427387904, 4611686018427387904]})
    assert info.value.message.startswith("int overflow")
    assert (info.value.span.line, info.value.span.col) == (2, col)


# floor of real data: beyond int64, an infinity (log of 0) or NaN (sqrt of a negative) was an
# internal error (OverflowError, ValueError) in the exact pass that looks for a wrap
@pytest.mark.parametrize("expr, message", [("floor(x * 1e19)", "int overflow"),
                                           ("floor(log(x - 1))", "floor of a value that is not"),
                                           ("floor(sqrt(x - 2))", "floor of a value that is not")])
def test_floor_without_an_int64_value_is_a_located_error(expr, message):
    text = f"data x: real[2]\nlet k = {expr}\nsample mu ~ Normal(0, 1)\n"
    with pytest.raises(PplError) as info:
        ppl.compile(text).prepare({"x": [1.0, 2.0]})
    assert info.value.message.startswith(message)
    assert (info.value.span.line, info.value.span.col) == (2, 9)


def test_int_literal_beyond_int64_is_a_located_error():
    with pytest.raises(PplError) as info:
        ppl.compile("let x = 9223372036854775808\nsample mu ~ Normal(0, 1)\n")
    assert info.value.message.startswith("int literal out of range")
    assert (info.value.span.line, info.value.span.col) == (1, 9)


def test_int_power_and_division_are_real_as_the_checker_says():
    text = ("data m: int\ndata a: int[3]\nlet p = 2 ** 64\nlet z = m + a ** -dot(a, a)\n"
            "let q = a / 2\nsample mu ~ Normal(0, 1)\nlet out = mu + p + sum(z) + sum(q)\n")
    model = ppl.compile(text)
    assert [model.ir.lets[n].value.dtype for n in ("p", "z", "q")] == ["real"] * 3
    _, _, compiled = model.prepare({"m": 3, "a": [1, 2, 3]})
    out = compiled.constrained(np.zeros((1, 1)))["out"][0]
    expected = 2.0 ** 64 + sum(3 + a ** -14.0 for a in (1, 2, 3)) + 3.0
    assert out == pytest.approx(expected, rel=1e-15)


def test_every_function_on_int_data_has_the_checkers_dtype():
    from ppl import functions
    from ppl.evaluate import evaluate_data
    from ppl.frontend.check import check
    # a static argument (reshape's shape, eye's size) must be a literal: give one that fits a
    static = {"reshape": "[4]", "eye": "2"}
    checked = []
    for name, f in functions.FUNCTIONS.items():
        args = ", ".join(static[name] if i in getattr(f, "static", ()) else "a"
                         for i in range(f.arity))
        text = f"data a: int[2, 2]\nlet z = {name}({args})\n"
        try:
            model = check(parse(text), {})
        except PplError:  # a shape rule that refuses a 2x2 matrix (gp_exp_quad_cov wants [N])
            continue
        checked.append(name)
        let = model.lets["z"]
        value = evaluate_data(let.value, {"a": np.array([[1, 2], [3, 4]])})
        assert value.dtype == {"int": np.int64, "real": np.float64}[let.value.dtype], name
    assert len(checked) >= 0.8 * len(functions.FUNCTIONS)


def test_model_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "m.ppl"
    path.write_bytes(b"\xef\xbb\xbf" + SMALL.encode())
    assert ppl.load(path).ir.latents["mu"].span.line == 2


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_compiled_text_ends_lines_as_a_loaded_file_does(tmp_path, ending):
    # ppl.compile refused an old Mac's '\r' ("unexpected character") that ppl.load read
    text = "data y: real\nsample mu ~ Normal(0, 1)\nobserve y ~ Normal(mu, 1)\n"
    path = tmp_path / "m.ppl"
    path.write_bytes(text.replace("\n", ending).encode())
    compiled = ppl.compile(text.replace("\n", ending))
    assert compiled.ir.latents["mu"].span.line == ppl.load(path).ir.latents["mu"].span.line == 2


@pytest.mark.parametrize("raw, where", [
    (b"# a comment\r\nsample m ~ Normal(0, 1) # caf\xe9\n", "2:30"),    # Latin-1, CRLF lines
    (b"\xef\xbb\xbfsample m ~ Normal(0, 1)\nlet q = m # \xe9\n", "2:13"),   # after a BOM
    (b"sample m ~ Normal(0, 1)\n\xe2\x82", "2:1")])                     # cut mid-character
def test_model_file_that_is_not_utf8_is_located(tmp_path, raw, where):
    # LANGUAGE.md, Lexical rules (UTF-8 text) and Errors (every problem located): the byte's
    # line and column, not 'cannot read the model file (... in position 29 ...)'
    path = tmp_path / "m.ppl"
    path.write_bytes(raw)
    with pytest.raises(PplError) as info:
        ppl.load(path)
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"{path}:{where}: error: the model file is not UTF-8 text: byte 0x")


@pytest.mark.parametrize("name, content", [("d.json", '{"y": [1, 2]}'), ("d.csv", "y\n1\n"),
                                           ("d.npz", "PK\x03\x04")])
def test_a_data_file_given_as_the_model_says_so(tmp_path, name, content):
    # `ppl fit data.json` (the data before the model) said "syntax error: unexpected
    # character '{'", and a .npz 'the model file is not UTF-8 text'
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PplError) as info:
        ppl.load(path)
    assert info.value.message == (f"{path}: a data file ({path.suffix}), not a model; a "
                                  "model is a .ppl file, and data is given with --data "
                                  "(ppl fit MODEL.ppl --data DATA) or to model.fit(DATA)")


# a folder given for a file said 'not a regular file' (found by the outdir audit)
@pytest.mark.parametrize("kind, reason", [("device", "not a regular file"),
                                          ("fifo", "not a regular file"),
                                          ("folder", "a folder, not a file")])
def test_model_that_is_not_a_regular_file(tmp_path, kind, reason):
    path = {"device": Path("/dev/zero"), "fifo": tmp_path / "m.ppl", "folder": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(PplError) as info:
        ppl.load(path)
    assert info.value.message == f"{path}: {reason}"


@pytest.mark.parametrize("kind, reason", [("device", "not a regular file"),
                                          ("fifo", "not a regular file"),
                                          ("folder", "a folder, not a file")])
def test_init_file_that_is_not_a_regular_file(tmp_path, capsys, kind, reason):
    from ppl.cli import main
    model = tmp_path / "m.ppl"
    model.write_text(SMALL)
    path = Path("/dev/zero") if kind == "device" else tmp_path / "init.json"
    if kind == "fifo":
        os.mkfifo(path)     # reading it would block for ever
    if kind == "folder":
        path.mkdir()
    assert main(["fit", str(model), "--init", str(path)]) == 2
    assert capsys.readouterr().err == f"error: {path}: {reason}\n"


def test_an_npy_folders_entry_that_is_a_folder_is_named_so(tmp_path, capsys):
    from ppl.cli import main
    model = tmp_path / "m.ppl"
    model.write_text(SMALL)
    (tmp_path / "data" / "y.npy").mkdir(parents=True)
    assert main(["check", str(model), "--data", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}/data/y.npy: a folder, not a file\n"


def _int_conversion_error(digits: int) -> str | None:
    """Python's message refusing to convert an int of ``digits`` digits (None where it converts
    it)."""
    try:
        int("1" * digits)
    except ValueError as error:
        return str(error)
    return None


@pytest.mark.parametrize("content, message", [
    # worded as a data file's are (datafiles.py): 'not valid JSON (Expecting value: line 1
    # column 1 (char 0))' said it in Python's words
    (b"{'mu': 1}", "invalid JSON on line 1, column 2: Expecting property name enclosed in "
                   "double quotes"),
    (b'{"mu": 1}\xff', "the file is not UTF-8 text"),
    # nesting beyond Python's recursion limit was an internal error (status 1)
    (b'{"mu": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "the JSON is nested too deeply"),
    # JSON, but no object: 3 and null were internal errors ('argument of type 'int' is not
    # iterable') had the check taken only a list for no object
    (b"3", "the init file must hold a JSON object: param name -> value"),
    (b"null", "the init file must hold a JSON object: param name -> value"),
    # Python's own refusal of an int of more than 4300 digits (a ValueError, not a
    # JSONDecodeError), worded as the init file's
    pytest.param(b'{"mu": 1' + b"0" * 5000 + b"}",
                 f"cannot read the init file ({_int_conversion_error(5001)})",
                 marks=pytest.mark.skipif(not hasattr(sys, "set_int_max_str_digits"),
                                          reason="no limit on int digits before Python 3.11"))])
def test_init_file_that_is_not_json(tmp_path, capsys, content, message):
    from ppl.cli import main
    model, path = tmp_path / "m.ppl", tmp_path / "init.json"
    model.write_text(SMALL)
    path.write_bytes(content)
    assert main(["fit", str(model), "--init", str(path)]) == 2
    assert capsys.readouterr().err == f"error: {path}: {message}\n"


def test_init_file_is_read_as_a_json_data_file(tmp_path, capsys):
    # a byte-order mark (as some editors write) was refused with Python's 'Unexpected UTF-8
    # BOM (decode using utf-8-sig)', where a data file's is read; a name given twice kept the
    # last value with no word, where a data file's is refused
    from ppl.cli import main
    model, path = tmp_path / "m.ppl", tmp_path / "init.json"
    model.write_text("param w: real\nobserve 1.0 ~ Normal(w, 1)\n")
    path.write_bytes(b'\xef\xbb\xbf{"w": 2.0}')
    assert main(["fit", str(model), "--init", str(path), "--quiet"]) == 0
    capsys.readouterr()
    path.write_bytes(b'{"w": 2.0, "w": 3.0}')
    assert main(["fit", str(model), "--init", str(path)]) == 2
    assert capsys.readouterr().err == (f"error: {path}: the name 'w' appears twice in one JSON "
                                       "object\n")


def test_a_saved_fits_fit_json_given_as_init_says_so(tmp_path, capsys):
    # a warm start from an earlier fit: its entries were read as params, and the error was
    # "the value of 'model_path' is not a number or an array of numbers"
    from ppl.cli import main
    model = tmp_path / "m.ppl"
    model.write_text("param w: real\nobserve 1.0 ~ Normal(w, 1)\n")
    assert main(["fit", str(model), "--quiet", "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    init = tmp_path / "out" / "fit.json"
    assert main(["fit", str(model), "--init", str(init)]) == 2
    assert capsys.readouterr().err == (
        f"error: {init}: a saved fit's fit.json, not an init file; an init file is a JSON object "
        "of param name -> value, as the saved fit's 'params' entry holds: write that entry to a "
        "file of its own\n")


@pytest.mark.parametrize("n", ["0", "-3"])
def test_predict_draws_below_one_are_an_option_error_before_the_fit_is_read(tmp_path, capsys, n):
    from ppl.cli import main
    assert main(["predict", str(tmp_path), "--draws", n]) == 2
    assert capsys.readouterr() == ("", f"error: option --draws: must be a positive integer; "
                                       f"found {n}\n")


def test_no_command_prints_the_usage_and_exits_2(capsys):
    from ppl.cli import main
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: ppl [-h] [--version] COMMAND ...")


def test_cli_refuses_dev_zero_with_status_2(capsys):
    from ppl.cli import main
    assert main(["check", "/dev/zero"]) == 2
    assert capsys.readouterr().err == "error: /dev/zero: not a regular file\n"


@pytest.mark.parametrize("command", ["check", "fit"])
@pytest.mark.parametrize("kind", ["device", "fifo", "missing"])
def test_cli_data_that_is_not_a_regular_file(tmp_path, capsys, command, kind):
    from ppl.cli import main
    model = tmp_path / "m.ppl"
    model.write_text(SMALL)
    data = {"device": "/dev/null", "fifo": tmp_path / "d.json",
            "missing": tmp_path / "none.json"}[kind]
    if kind == "fifo":
        os.mkfifo(data)
    assert main([command, str(model), "--data", str(data)]) == 2
    reason = "no such data file" if kind == "missing" else "not a regular file"
    assert capsys.readouterr().err == f"error: {data}: {reason}\n"


def test_cli_fit_reads_a_folder_of_npy_files(tmp_path, capsys):
    from ppl.cli import main
    model = tmp_path / "m.ppl"
    model.write_text(SMALL)
    np.save(tmp_path / "y.npy", np.array(Y["y"]))
    assert main(["fit", str(model), "--data", str(tmp_path), "--quiet", "--iter", "50"]) == 0
    assert "mu" in capsys.readouterr().out


# Models a fuzzer found that `ppl check` passed and `ppl fit` crashed on or fitted wrongly:
# each is now refused by check, at the line and column of the argument or statement at fault.
FIT_TIME_FAILURES = [
    ("sample z: int ~ DiscreteUniform(5, 1)\n", "1:17", "empty support {5..1}"),
    ("sample a ~ Normal(0, 1)\nlet b = eye(-3) * a\n", "2:13", "'eye' must be a size >= 0"),
    ("sample a: real[2] ~ MvNormal([0.0, 0.0], eye(3))\n", "1:42", "'cov' of MvNormal must have"),
    (f"sample mu: real[{', '.join(['1'] * 65)}] ~ Normal(0, 1)\n", "1:12",
     "too many dimensions: 65"),
    (f"sample mu ~ Normal(0, 1)\nlet a = mu[{', '.join(['newaxis'] * 64)}]\n", "2:9",
     "too many dimensions: 64"),
    ("sample z: int ~ Categorical([-1.0, 2.0])\n", "1:29", "'p' of Categorical must be simplex"),
    ("sample z: int ~ Categorical([0.3, 0.3])\n", "1:29", "'p' of Categorical must be simplex"),
    ("sample a ~ Mixture([0.3, 0.3], Normal([0.0, 1.0], 1))\n", "1:20", "'w' of Mixture"),
    ("sample a: real[2] ~ MvNormal([0.0, 0.0], [[1.0, 0.9], [0.0, 1.0]])\n", "1:42",
     "symmetric positive definite"),
    ("sample a: real[2] ~ Dirichlet([-1.0, 1.0])\n", "1:31", "'alpha' of Dirichlet"),
    ("sample a ~ Mixture([-0.5, 1.5], Normal([0.0, 1.0], 1))\n", "1:20", "'w' of Mixture"),
    ("sample mu ~ Normal(0, 1e400)\n", "1:23", "'sigma' of Normal must be (0, inf); found inf"),
    # no value at check time (0 / 0 does not fold): refused by the data-time check, which
    # check runs too on a model without data statements
    ("sample x ~ Normal(0, 0/0)\n", "1:22", "'sigma' of Normal must be (0, inf); found nan"),
    ("sample x: real[3] ~ AR1(0/0, 0.5, 1)\n", "1:25", "'mu' of AR1"),
    ("", "1:1", "nothing to fit"),
    ("# nothing yet\n", "2:1", "nothing to fit"),
    ("data x: real\n", "2:1", "nothing to fit"),
    ("param k: real\n", "2:1", "nothing to fit: the model has params but no term"),
    # every latent guided by a fixed Normal and no param: theta was empty, an internal error
    # ('zero-size array to reduction operation maximum') at the step loop's first window
    ("sample a ~ Normal(0, 1)\nguide a ~ Normal(0.5, 1)\nobserve 1.0 ~ Normal(a, 1)\n", "2:1",
     "nothing to fit: every latent has a guide statement and the model has no param"),
    ("sample a ~ Normal(0, 1)\nsample k: int ~ Bernoulli(0.5)\nguide a ~ Normal(0, 1)\n",
     "3:1", "nothing to fit: every latent has a guide statement"),
]


@pytest.mark.parametrize("text, where, message", FIT_TIME_FAILURES)
def test_check_refuses_what_fit_would_fail_on(tmp_path, capsys, text, where, message):
    from ppl.cli import main
    path = tmp_path / "m.ppl"
    path.write_text(text)
    assert main(["check", str(path)]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith(f"{path}:{where}: error: ") and message in first
    assert main(["fit", str(path), "--quiet"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == first


@pytest.mark.parametrize("data, message", [
    ({"phi": 2.0, "s": 1.0}, "parameter 'phi' of AR1 must be (-1, 1); found 2"),
    ({"phi": 0.5, "s": -1.0}, "parameter 'sigma' of AR1 must be (0, inf); found -1"),
    ({"phi": 0.5, "s": [1.0, 0.0, 1.0]}, "parameter 'sigma' of Normal must be (0, inf); "
                                         "found 0 at sigma[1]"),
])
def test_a_parameter_given_by_data_is_checked_against_its_constraint(data, message):
    # a latent AR1 is fitted through its innovations, whose density stays finite: with phi 2
    # the summary was nan and with sigma -1 a plausible table, both 'reliable'
    latent = ("data s: real[3]\nsample x: real[3] ~ Normal(phi, s)\n"
              if isinstance(data["s"], list) else
              "data s: real\nsample x: real[3] ~ AR1(0, phi, s)\n")
    model = ppl.compile("data phi: real\n" + latent)
    with pytest.raises(PplError, match=re.escape(message)):
        model.fit(data, guide="meanfield", iter=200)


def test_a_data_cov_that_cholesky_refuses_is_refused_by_check(tmp_path, capsys):
    # a squared-exponential kernel near singular: eigvalsh gives its smallest eigenvalue as
    # about +1e-16 but its Cholesky factorization fails, so the check passed it and the fit
    # stopped at "the log density of this statement is nan at every starting point". Which
    # length scales do so depends on the numpy and LAPACK installed (0.2096 did when the test
    # was written; with numpy 2.4.6 eigvalsh gives -4e-17 there), so the first such one on a
    # grid is taken: 106 of these 2001 on numpy 2.4.6
    from ppl.cli import main
    x = np.linspace(0, 1, 20)

    def premise(length_scale):
        cov = np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / length_scale ** 2)
        try:
            np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            return np.linalg.eigvalsh(cov)[0] > 0
        return False

    length_scale = next(ls for ls in np.linspace(0.15, 0.35, 2001) if premise(ls))
    cov = np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / length_scale ** 2)
    path = tmp_path / "m.ppl"
    path.write_text("data C: real[20, 20]\ndata y: real[20]\nsample mu ~ Normal(0, 1)\n"
                    "observe y ~ MvNormal(mu + y * 0, C)\n")
    np.savez(tmp_path / "d.npz", C=cov, y=np.sin(x))
    assert main(["check", str(path), "--data", str(tmp_path / "d.npz")]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith(f"{path}:4:34: error: parameter 'cov' of MvNormal must be "
                            "symmetric positive definite")


def test_an_empty_data_cov_is_accepted():
    # sizes of 0 are allowed: the constraint check took eigvalsh(C)[..., 0] of a 0 x 0 matrix
    # and crashed with an IndexError; the density of an empty vector is 1
    model = ppl.compile("data C: real[0, 0]\ndata y: real[3, 0]\nsample mu ~ Normal(0, 1)\n"
                        "observe y ~ MvNormal(y[0] * mu, C)\n")
    fit = model.fit({"C": [], "y": [[], [], []]}, guide="meanfield", iter=200, seed=0)
    assert np.isfinite(fit.elbo).all()


def test_check_passes_a_model_of_params_and_a_factor(tmp_path, capsys):
    from ppl.cli import main
    path = tmp_path / "m.ppl"
    path.write_text("param k: real\nfactor -k * k\n")
    assert main(["check", str(path)]) == 0


def test_check_reads_the_data_beside_the_model_as_fit_does(tmp_path, capsys):
    # ppl check said ok of a model whose MODEL.json ppl fit then refused: it read data only
    # from --data, fit reads MODEL.json when --data is not given
    from ppl.cli import main
    path = tmp_path / "m.ppl"
    path.write_text("data N: int\ndata y: real[N]\nsample mu ~ Normal(0, 1)\n"
                    "observe y ~ Normal(mu, 1)\n")
    assert main(["check", str(path)]) == 0
    assert "y     real  [N]" in capsys.readouterr().out     # no data: symbolic sizes
    (tmp_path / "m.json").write_text('{"N": 2, "y": [1.0]}')
    assert main(["check", str(path)]) == 2
    assert "data 'y' must have shape [N=2]; found [1]" in capsys.readouterr().err
    (tmp_path / "m.json").write_text('{"N": 1, "y": [1.0]}')
    assert main(["check", str(path)]) == 0
    assert "y     real  [1]" in capsys.readouterr().out


# ----- non-finite summaries (item 7) ----------------------------------------------------------

def test_a_let_that_overflows_is_named_in_a_warning():
    from ppl.errors import PplWarning
    from ppl.posterior import Summary
    draws = {"x": np.array([[0.0], [1.0], [2.0]]), "big": np.array([1.0, np.inf, 2.0])}
    with pytest.warns(PplWarning) as record:
        summary = Summary.from_draws(draws)
    assert len(record) == 1 and "the summary of big is not finite" in str(record[0].message)
    assert "inf" in str(summary).splitlines()[-1]


EMPTY_MEAN = "data N: int\ndata x: real[N]\nlet c = x - mean(x)\n"


@pytest.mark.parametrize("text, data, message", [
    ("let a = 1 / 0\n", {}, "let 'a' is not finite: inf at a"),
    (EMPTY_MEAN + "let d = log(x)\n", {"N": 2, "x": [0.0, 1.0]},
     "let 'd' is not finite: -inf at d[0]"),
    # with N = 0, mean(x) of no values is an error (tests/cases/bad_data/mean_of_no_values)
])
def test_a_data_only_let_that_is_not_finite_is_named_once(text, data, message):
    model = ppl.compile(text + "sample mu ~ Normal(0, 1)\n")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(data, guide="meanfield", iter=200)
    shown = [getattr(w.message, "message", str(w.message)) for w in record]
    assert not any("encountered" in m or "empty slice" in m for m in shown), shown
    named = [m.split(" (computed")[0] for m in shown if "is not finite" in m]
    assert named == ([message] if message else [])


def test_lets_of_a_latent_that_overflow_are_named_by_the_summary_alone():
    # numpy's 'divide by zero' and 'overflow encountered in exp' named no let
    model = ppl.compile("sample mu ~ Normal(0, 1)\nlet a = mu / 0\nlet b = exp(exp(mu * 10))\n")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit({}, guide="meanfield", iter=200).summary()
    shown = [getattr(w.message, "message", str(w.message)) for w in record]
    assert shown == ["the summary of a, b is not finite: its draws overflow (inf) or are "
                     "undefined (nan); the table shows inf or nan there"]


def test_a_huge_but_finite_sd_is_computed_not_overflowed():
    from ppl.posterior import Summary
    values = np.array([-1.0, 0.0, 1.0, 2.0]) * 1e200
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = Summary.from_draws({"w": values}).rows["w"]
    assert row[0] == pytest.approx(0.5e200) and row[1] == pytest.approx(np.std(values / 1e200,
                                                                               ddof=1) * 1e200)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e-310])
@pytest.mark.parametrize("weighted", [False, True])
def test_sds_of_huge_and_tiny_draws_are_their_scaled_sds(scale, weighted):
    # the squared deviations overflowed (a corrected summary's sd of mu * 1e200 was inf, with
    # a warning of overflowing draws) or underflowed (the sd of mu * 1e-200 was 0, silently);
    # the reference is the sd of the unscaled draws times the scale (1e-310 is subnormal: its
    # draws keep about 11 digits)
    from tests.unit.test_summary import assert_scaled_moments
    rng = np.random.default_rng(0)
    assert_scaled_moments(rng.standard_normal(500), rng, scale, weighted)


@pytest.mark.parametrize("weighted", [False, True])
def test_quantiles_of_extreme_draws_do_not_overflow(weighted):
    # linear interpolation took b - a, which overflows between -0.9e308 and 0.9e308: the
    # plain median was -inf, the corrected one inf; the reference is the quantiles of the
    # draws in units of 2^1000, exactly scaled back
    from ppl.posterior import Summary
    x = np.array([-1e308, -0.9e308, 0.9e308, 1e308])
    weights = np.full(4, 0.25) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = Summary.from_draws({"w": x}, weights).rows["w"]
        unit = Summary.from_draws({"w": np.ldexp(x, -1000)}, weights).rows["w"]
    assert row[2:] == tuple(np.ldexp(unit[2:], 1000))
    assert abs(row[3]) < 1e-10 * 0.9e308     # 0, up to the rounding of the weights' positions


def test_plain_quantiles_beside_an_infinite_draw_are_rs_type_7():
    # numpy's linear quantile is inf - inf = nan beside an inf draw, even at an order
    # statistic: the median of 1, 2, inf (and of 1, 2, inf, inf) was nan; R's quantile()
    # gives 2 (inf), and inf wherever it interpolates towards one infinity. A NaN draw makes
    # every quantile NaN, as np.quantile's, also beside an inf ("e": not inf at 95%)
    from ppl.posterior import Summary
    draws = {"a": np.array([1.0, np.inf, 2.0]), "b": np.array([1.0, 2.0, np.inf, np.inf]),
             "c": np.array([-np.inf, -np.inf, 3.0, np.inf]), "d": np.array([-np.inf, np.inf]),
             "e": np.array([1.0, np.nan, 2.0, np.inf, 3.0])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = Summary.from_draws(draws).rows
    np.testing.assert_equal({name: rows[name][2:] for name in draws},
                            {"a": (1.1, 2.0, np.inf), "b": (1.15, np.inf, np.inf),
                             "c": (-np.inf, -np.inf, np.inf), "d": (np.nan,) * 3,
                             "e": (np.nan,) * 3})


def test_summary_cells_never_touch():
    from ppl.posterior import Summary
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = str(Summary.from_draws({"w": np.array([-1.615e200, -3.766e198, 1.756e200])}))
    assert len(text.splitlines()[1].split()) == 6  # the name and five numbers


def test_a_summary_of_undefined_draws_prints_nan_not_a_params_blanks():
    # a let with a NaN draw printed its mean as nan and left sd and quantiles blank, as a
    # param's are, though the warning says "the table shows inf or nan there"
    from ppl.posterior import Summary
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = str(Summary.from_draws({"a": np.array([1.0, np.nan, 2.0]),
                                       "b": np.array([1.0, np.inf, 2.0])}))
    assert [line.split() for line in text.splitlines()[1:]] == [
        ["a", "nan", "nan", "nan", "nan", "nan"], ["b", "inf", "nan", "1.1", "2", "inf"]]
    point = Summary({"w": (0.5, np.nan, np.nan, np.nan, np.nan)})     # a param's row
    assert str(point).splitlines()[1].split() == ["w", "0.5"]


def test_summary_prints_negative_zero_as_zero():
    # the quantiles of draws that are all -0.0 (a let -x * 0) printed as '-0'
    from ppl.posterior import Summary
    text = str(Summary.from_draws({"w": np.full(10, -0.0)}, np.full(10, 0.1)))
    assert text.splitlines()[1].split() == ["w", "0", "0", "0", "0", "0"]


def test_options_a_minibatch_fit_of_params_alone_does_not_use_are_warned_of():
    # --mc-samples, --stl and --correct were ignored without a word, and --guide's warning gave
    # a guided model's reason ('every latent has a guide statement'): there are no latents
    model = ppl.compile("data N: int\ndata y: real[N]\nparam mu: real\n"
                        "observe y ~ Normal(mu, 1)\n")
    data = {"N": 4, "y": [1.0, 2.0, 3.0, 4.0]}
    with pytest.warns(PplWarning) as record:
        model.fit(data, batch={"N": 2}, iter=50, guide="meanfield", mc_samples=2, stl=True,
                  correct="none", init_scale=2.0)
    shown = [str(w.message) for w in record if "no effect" in str(w.message)]
    assert shown == ["options mc_samples, stl, guide, init_scale, correct have no effect: a "
                     "model whose only unknowns are params is fitted on minibatches by steps "
                     "on its log joint: nothing is drawn, no guide is fitted; ignored"]


def _no_raw_warning(call):
    """call() with numpy's and autograd's own warnings made errors: none may reach the user."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.filterwarnings("error", "Output seems independent of input")
        return call()


def test_a_categorical_value_of_probability_zero_warns_of_nothing():
    # log(0) of the value the prior never takes: 'divide by zero encountered in log' from the
    # summary's and the predictive's enumeration; its probability is 0, as it should be
    fit = ppl.compile("sample a ~ Normal(0, 1)\nsample k: int ~ Categorical([0.0, 1.0])\n"
                      ).fit(iter=200, guide="meanfield")
    rows = _no_raw_warning(fit.summary).rows
    assert (rows["k=0"][0], rows["k=1"][0]) == (0.0, pytest.approx(1.0, abs=1e-12))
    _no_raw_warning(lambda: fit.predictive(10))


def test_predictive_draws_that_overflow_are_inf_without_a_raw_warning():
    # InverseGamma(0.01, .): its Gamma draw is 0 with probability about 6e-4 (numpy's, 10^6
    # draws), and the draw inf ('divide by zero'): 10^5 draws hold about 60 (none: e^-60);
    # a prior of sd 1e200 squared overflows ('overflow in square')
    from ppl.distributions import lookup
    rng = np.random.default_rng(0)
    drawn = _no_raw_warning(lambda: lookup("InverseGamma").sample(rng, 100_000, 0.01, 1.0))
    assert np.isposinf(drawn).any() and np.all(drawn > 0)
    source = "data y: real\nsample a ~ Normal(0, 1)\nobserve y ~ InverseGamma(0.01, exp(a))\n"
    fit = ppl.compile(source).fit({"y": 1.0}, iter=200, guide="meanfield")
    _no_raw_warning(lambda: fit.predictive(2000))
    _no_raw_warning(lambda: fit.prior_predictive(2000))
    wide = ppl.compile("sample a ~ Normal(0, 1e200)\nlet b = square(a)\n")
    assert np.isposinf(_no_raw_warning(lambda: wide.prior_predictive(None, 10))["b"]).all()


def test_a_corrected_summary_of_draws_that_overflow_warns_of_nothing_raw():
    # a Cauchy guide (Student-t of 1 degree of freedom) draws log tau near 800 now and then:
    # exp overflowed in the corrected summary's constrained draws (the other summaries' were
    # already quiet); those draws weigh nothing, and the summary is finite. Whether such a
    # fit is corrected at all is its seed's luck (its ELBO is far off whatever the seed):
    # seed 7 gives a corrected one
    source = ("data J: int\ndata y: real[J]\ndata sigma: real<lower=0>[J]\n"
              "sample mu ~ Normal(0, 5)\nsample tau ~ HalfCauchy(5)\n"
              "sample eta: real[J] ~ Normal(0, 1)\nobserve y ~ Normal(mu + tau * eta, sigma)\n")
    data = {"J": 8, "y": [28, 8, -3, 7, -1, 1, 18, 12],
            "sigma": [15, 10, 16, 11, 9, 11, 10, 18]}
    fit = ppl.compile(source).fit(data, guide="studentt:1", iter=500, seed=7)
    assert fit.corrected and np.isfinite(_no_raw_warning(fit.summary).rows["tau"][0])


def test_data_whose_gram_products_overflow_take_the_plain_path():
    # at 2,000 rows a Normal regression takes the Gram form, whose X^T X overflowed at
    # |x| near 1e155 with numpy's raw 'overflow encountered in matmul' beside the error the
    # plain path gives (as at 1,999 rows)
    source = ("data N: int\ndata x: real[N]\ndata y: real[N]\nsample a ~ Normal(0, 5)\n"
              "sample b ~ Normal(0, 1)\nobserve y ~ Normal(a + b * x, 1)\n")
    x = 1e155 * np.random.default_rng(0).normal(size=2000)
    with pytest.raises(PplError) as info:
        _no_raw_warning(lambda: ppl.compile(source).fit({"N": 2000, "x": x, "y": np.zeros(2000)},
                                                        iter=100, guide="meanfield"))
    assert "at every starting point tried" in info.value.message


# ----- corrupted saved fits -------------------------------------------------------------------

def _corruptions(folder: Path):
    import json
    info = json.loads((folder / "fit.json").read_text())

    def with_entry(**changes):
        return json.dumps({**info, **changes})
    yield "fit.json", "{not json"
    yield "fit.json", "[1, 2]"
    yield "fit.json", "[" * 100_000
    yield "fit.json", with_entry(model_path="/etc/passwd")
    yield "fit.json", with_entry(model_path=str(folder))
    yield "fit.json", with_entry(model_path=None)
    yield "fit.json", with_entry(converged="yes")
    yield "fit.json", with_entry(steps="many")
    yield "fit.json", with_entry(final_elbo=None)
    yield "fit.json", with_entry(options={"iter": -3})
    yield "fit.json", with_entry(options={"bogus": 1})
    yield "fit.json", with_entry(guide={"parameters": {"mu": {"mu": "a", "log_sigma": 0}}})
    yield "fit.json", with_entry(guide={"parameters": {}})
    yield "elbo.csv", "step,elbo\n1,abc\n"
    yield "summary.csv", "name,mean\nmu,xyz\n"


def test_corrupted_saved_fits_are_one_clear_error(tmp_path, capsys):
    from ppl.cli import main
    model = tmp_path / "m.ppl"
    model.write_text(SMALL)
    (tmp_path / "m.json").write_text('{"y": [1, 2, 3]}')
    good = tmp_path / "good"
    assert main(["fit", str(model), "--out", str(good), "--quiet", "--iter", "200"]) == 0
    capsys.readouterr()
    assert main(["predict", str(good), "--draws", str(10 ** 15)]) == 2
    assert capsys.readouterr().err.startswith("error: --draws 1000000000000000 needs at least")
    for i, (name, content) in enumerate(_corruptions(good)):
        folder = tmp_path / f"bad{i}"
        folder.mkdir()
        for f in good.iterdir():
            (folder / f.name).write_bytes(f.read_bytes())
        (folder / name).write_text(content)
        for command in ("summary", "predict"):
            status = main([command, str(folder)])
            err = capsys.readouterr().err
            if status == 0:  # a corruption the command does not read
                continue
            assert status == 2 and "internal error" not in err, (name, content[:80], err)
            assert "root:" not in err  # never a line of a file that is not a model



def test_a_model_in_a_folder_that_cannot_be_searched(tmp_path, monkeypatch, capsys):
    # as root, chmod 000 blocks nothing: Path.exists raises as Python 3.11's does there
    from ppl.cli import main

    def refused(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(Path, "exists", refused)
    assert main(["check", str(tmp_path / "m.ppl")]) == 2
    assert "cannot read the model file (Permission denied)" in capsys.readouterr().err


SAVED = "data y: real[3]\nsample mu ~ Normal(0, 1)\nsample s ~ HalfCauchy(5)\n" \
        "observe y ~ Normal(mu, s)\n"
MISSING = object()
# fit.json entry the saved-fit commands read (a dotted name is inside the entry before the
# dot) -> a value of the wrong type; each is also tried missing and null
FIT_JSON_ENTRIES = {"model_path": 5, "model_sha256": 5, "data_path": 5, "options": "x",
                    "converged": "yes", "reason": 5, "steps": 1.5, "seconds": "x",
                    "final_elbo": True, "khat": "x", "verdict": "x", "verdict.line": 5,
                    "summary_note": [], "guide": "x", "guide.family": 5,
                    "guide.parameters": "x"}
NULL_ALLOWED = {"data_path", "khat"}  # data given as a dict; an infinite k̂


@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory) -> Path:
    from ppl.cli import main
    folder = tmp_path_factory.mktemp("saved")
    (folder / "m.ppl").write_text(SAVED)
    (folder / "m.json").write_text('{"y": [1, 2, 3]}')
    assert main(["fit", str(folder / "m.ppl"), "--out", str(folder / "fit"), "--quiet",
                 "--guide", "meanfield", "--iter", "300"]) == 0
    return folder / "fit"


def _copy_with(good: Path, folder: Path, name: str, content: str) -> Path:
    folder.mkdir()
    for f in good.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / name).write_text(content)
    return folder


def _reseal(folder: Path, name: str) -> None:
    """Record the SHA-256 of ``folder/name`` in its fit.json, as save_fit does."""
    import hashlib
    import json
    info = json.loads((folder / "fit.json").read_text())
    info["files_sha256"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "fit.json").write_text(json.dumps(info))


def _fit_json_with(good: Path, folder: Path, entry: str, value) -> Path:
    import json
    info = json.loads((good / "fit.json").read_text())
    *outer, key = entry.split(".")
    holder = info
    for part in outer:
        holder = holder[part]
    if value is MISSING:
        del holder[key]
    else:
        holder[key] = value
    return _copy_with(good, folder, "fit.json", json.dumps(info))


@pytest.mark.parametrize("entry, value", [
    (entry, value) for entry, wrong in FIT_JSON_ENTRIES.items()
    for value in (wrong, MISSING) + (() if entry in NULL_ALLOWED else (None,))])
def test_a_corrupted_fit_json_entry_is_one_clear_error(saved_fit, tmp_path, capsys, entry,
                                                       value):
    from ppl.cli import main
    folder = _fit_json_with(saved_fit, tmp_path / "bad", entry, value)
    for command in ("summary", "plot", "predict"):
        assert main([command, str(folder)]) == 2, command
        err = capsys.readouterr().err
        assert err.startswith(f"error: {folder / 'fit.json'}: corrupted saved fit: ")
        assert f"'{entry}'" in err, (command, err)
    assert not list(folder.glob("*.png")) and not list(folder.glob("predictive*"))


def test_a_fit_json_entry_given_twice_is_one_clear_error(saved_fit, tmp_path, capsys):
    # json kept the later value: a hand-edited second "converged": true read as converged
    from ppl.cli import main
    text = (saved_fit / "fit.json").read_text()
    doubled = text.replace('"converged": ', '"converged": true, "converged": ', 1)
    assert doubled != text
    folder = _copy_with(saved_fit, tmp_path / "bad", "fit.json", doubled)
    for command in ("summary", "plot", "predict"):
        assert main([command, str(folder)]) == 2, command
        assert capsys.readouterr().err == (
            f"error: {folder / 'fit.json'}: the name 'converged' appears twice in one JSON "
            "object\n")


@pytest.mark.parametrize("value, words", [
    (2, "a saved fit of format 2, written by a later ppl; this ppl reads format 1 and earlier"),
    ("1", "corrupted saved fit: entry 'saved_fit_format' must be a positive int"),
    (True, "corrupted saved fit: entry 'saved_fit_format' must be a positive int"),
    (0, "corrupted saved fit: entry 'saved_fit_format' must be a positive int"),
    (None, "corrupted saved fit: entry 'saved_fit_format' must be a positive int")])
def test_a_saved_fit_of_a_later_or_unknown_format_is_refused(saved_fit, tmp_path, capsys,
                                                             value, words):
    # fit.json had no format: a later ppl's saved fit, whose entries could mean something
    # else, would have been read as this one's (found by the savedfit audit)
    from ppl.cli import main
    folder = _fit_json_with(saved_fit, tmp_path / "bad", "saved_fit_format", value)
    for command in ("summary", "plot", "predict"):
        assert main([command, str(folder)]) == 2, command
        assert capsys.readouterr().err.startswith(f"error: {folder / 'fit.json'}: {words}")


def test_a_fit_saved_before_the_format_entry_is_read_as_format_1(saved_fit, tmp_path, capsys):
    from ppl.cli import main
    from ppl.savedfit import holds_saved_fit
    folder = _fit_json_with(saved_fit, tmp_path / "old", "saved_fit_format", MISSING)
    assert main(["summary", str(saved_fit)]) == 0
    expected = capsys.readouterr().out
    assert main(["summary", str(folder)]) == 0
    assert capsys.readouterr().out == expected
    assert holds_saved_fit(folder)      # so 'ppl fit --out' may replace it
    # without the ppl version either, it is another tool's record with the same entries
    theirs = _fit_json_with(folder, tmp_path / "theirs", "versions", MISSING)
    assert not holds_saved_fit(theirs)

@pytest.mark.parametrize("phases", [
    "x", [{"family": 5, "first_step": 1}], [{"family": "meanfield", "first_step": 1.0}],
    [{"family": "meanfield", "first_step": 2}],
    [{"family": "meanfield", "first_step": 1}, {"family": "fullrank", "first_step": 1}],
    [{"family": "meanfield", "first_step": 1}, {"family": "fullrank", "first_step": 10 ** 9}]])
def test_corrupted_phases_are_one_clear_error_of_ppl_plot(saved_fit, tmp_path, capsys, phases):
    # fit.json's 'phases' (where each family's steps begin in elbo.csv) is read by ppl plot
    # alone; a bad one is named, not a traceback from matplotlib
    pytest.importorskip("matplotlib")
    from ppl.cli import main
    folder = _fit_json_with(saved_fit, tmp_path / "bad", "phases", phases)
    assert main(["plot", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder / 'fit.json'}: corrupted saved fit: entry 'phases'")
    assert not list(folder.glob("*.png"))


@pytest.mark.parametrize("content, words", [
    ('{"name": "my project", "version": 3}', "it has none of the entries 'ppl fit --out' "
                                             "writes"),
    ("[1, 2]", "not a JSON object")])
def test_another_programs_fit_json_is_not_called_a_corrupted_saved_fit(saved_fit, tmp_path,
                                                                        capsys, content, words):
    # a folder with another tool's fit.json was 'corrupted saved fit: missing entry
    # 'model_path'', as if ppl had written it and it had been damaged since; 'ppl fit --out'
    # into that folder already said 'no fit.json that ppl wrote'
    from ppl.cli import main
    folder = _copy_with(saved_fit, tmp_path / "theirs", "fit.json", content)
    for command in ("summary", "plot", "predict"):
        assert main([command, str(folder)]) == 2, command
        err = capsys.readouterr().err
        assert err.startswith(f"error: {folder / 'fit.json'}: not a fit that ppl saved: "
                              f"{words}"), err
        assert "another program's or your own" in err
    assert (folder / "fit.json").read_text() == content



@pytest.mark.parametrize("entry, value, words", [
    ("steps", -5, "entry 'steps' is -5; it must be a finite number >= 0"),
    ("seconds", -1.0, "entry 'seconds' is -1.0; it must be a finite number >= 0"),
    ("seconds", float("nan"), "entry 'seconds' is nan; it must be a finite number >= 0"),
    ("khat", float("inf"), "entry 'khat' is inf; it must be a finite number")])
def test_a_number_save_fit_never_writes_is_refused(saved_fit, tmp_path, capsys, entry, value,
                                                   words):
    # 'ppl summary' printed them as they were: 'did NOT converge after -5 steps in nan s'
    # (found by the savedfit audit)
    from ppl.cli import main
    folder = _fit_json_with(saved_fit, tmp_path / "bad", entry, value)
    assert main(["summary", str(folder)]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: {folder / 'fit.json'}: corrupted saved fit: {words}\n")


@pytest.mark.parametrize("options", [{"window": "x"}, {"window": 0}, {"window": None},
                                     {"bogus": 1}, {"guide": 5}])
def test_corrupted_saved_options_are_one_clear_error(saved_fit, tmp_path, capsys, options):
    from ppl.cli import main
    folder = _fit_json_with(saved_fit, tmp_path / "bad", "options", options)
    for command in ("summary", "plot", "predict"):
        assert main([command, str(folder)]) == 2, command
        assert "fit.json: corrupted saved fit: entry 'options': option " in \
            capsys.readouterr().err


@pytest.mark.parametrize("entry, value, words", [
    # read MODEL.json beside the model (other values: 'the data: the data changed since this
    # fit was saved') or, without one, said "data 'y' is missing" at the model (found by the
    # savedfit audit)
    ("data_path", None, "entry 'data_path' is null (no data file), but the model declares"),
    ("guide.parameters.s.log_sigma", 1e6, "gives 's' the mean"),
    ("guide.parameters.mu.log_sigma", 1e6, "sd exp(1e+06); both must be finite"),
    ("guide.parameters.mu.mu", float("nan"), "entry 'guide.parameters.mu.mu' is not a finite"),
    ("guide.parameters.s.mu", float("inf"), "entry 'guide.parameters.s.mu' is not a finite"),
    ("guide.parameters.s.mu", "x", "the guide's parameters (could not convert"),
    ("guide.parameters.s", MISSING, "the guide's parameters have no entry 's'"),
    ("guide.family", "bogus", "entry 'guide.family': option guide: unknown guide 'bogus'"),
    ("guide.lr_covariance", [[1.0]], "'guide.lr_covariance' must be a 2 x 2 positive-definite"),
    ("guide.lr_covariance", [[1.0, 2.0], [2.0, 1.0]], "'guide.lr_covariance' must be a 2 x 2"),
    ("guide.lr_covariance", "x", "'guide.lr_covariance' must be a 2 x 2"),
])
def test_unusable_guide_parameters_are_a_corrupted_fit_for_predict(saved_fit, tmp_path, capsys,
                                                                   entry, value, words):
    from ppl.cli import main
    folder = _fit_json_with(saved_fit, tmp_path / "bad", entry, value)
    assert main(["predict", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder / 'fit.json'}: corrupted saved fit: ")
    assert words in err and "warning" not in err, err
    assert not list(folder.glob("predictive*"))


def test_a_saved_fits_data_file_that_is_gone_is_named_as_the_fits(saved_fit, tmp_path, capsys):
    # said only '/old/y.json: no such data file', a path 'ppl predict DIR' was never given
    # (found by the savedfit audit)
    from ppl.cli import main
    gone = str(tmp_path / "moved" / "y.json")
    folder = _fit_json_with(saved_fit, tmp_path / "bad", "data_path", gone)
    assert main(["predict", str(folder)]) == 2
    assert capsys.readouterr().err == (f"error: {gone}: the data file this fit was saved from "
                                       "is gone (fit.json records it); put it back, or fit "
                                       "again\n")


def test_saved_draws_beyond_memory_are_refused_by_predict(saved_fit, tmp_path, capsys):
    # k̂'s draws are the saved options' draws: 10^12 of them (an edit, or a fit saved on a
    # larger machine) was 'internal error: MemoryError: Unable to allocate 14.6 TiB' (found
    # by the savedfit audit)
    from ppl.cli import main
    folder = _fit_json_with(saved_fit, tmp_path / "bad", "options.draws", 10 ** 12)
    assert main(["predict", str(folder), "--draws", "20"]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: {folder / 'fit.json'}: the saved fit's options.draws 1000000000000 needs at "
        "least ")
    assert not list(folder.glob("predictive*"))


def test_an_int_beyond_a_float_is_refused_on_reading(saved_fit, tmp_path, capsys):
    from ppl.cli import main
    text = (saved_fit / "fit.json").read_text()
    folder = _copy_with(saved_fit, tmp_path / "bad", "fit.json",
                        text.replace('"seconds": ', '"seconds": 1' + "0" * 400 + ", \"x\": "))
    assert main(["summary", str(folder)]) == 2
    assert "fit.json: cannot read the saved fit (the integer 1000" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["summary", "predict", "plot"])
def test_a_saved_fits_file_given_for_its_folder_is_one_clear_error(tmp_path, capsys, command):
    # 'ppl summary DIR/fit.json' said "cannot read the saved fit ([Errno 20] Not a directory:
    # 'DIR/fit.json/fit.json')" (found by the leftalone3 audit)
    from ppl.cli import main
    (tmp_path / "fit.json").write_text("{}")
    assert main([command, str(tmp_path / "fit.json")]) == 2
    assert capsys.readouterr() == ("", f"error: {tmp_path / 'fit.json'}: not a folder; a saved "
                                       "fit is the folder that 'ppl fit MODEL --out DIR' wrote\n")


# worded as a data or --init file's (errors.invalid_json): it said 'cannot read the saved fit
# (Expecting value: line 1 column 1 (char 0))', Python's words
@pytest.mark.parametrize("content, words", [
    (b"", "invalid JSON on line 1, column 1: Expecting value"),
    (b'{"steps": 3,\n  oops}',
     "invalid JSON on line 2, column 3: Expecting property name enclosed in double quotes"),
    (b"\xff{}", "the file is not UTF-8 text"),
    (b"[" * 100_000, "the JSON is nested too deeply"),
])
def test_a_fit_json_that_is_not_json_is_worded_as_a_data_file(saved_fit, tmp_path, capsys,
                                                               content, words):
    from ppl.cli import main
    folder = _copy_with(saved_fit, tmp_path / "bad", "fit.json", "")
    (folder / "fit.json").write_bytes(content)
    assert main(["summary", str(folder)]) == 2
    assert capsys.readouterr().err == f"error: {folder / 'fit.json'}: {words}\n"


HEADER = "name,mean,sd,5%,50%,95%\n"
# (file, content, the commands that read it, the words of the error after the file's name)
CORRUPTED_CSV = [
    ("elbo.csv", "", ("plot", "predict"), "the file is empty; expected the header 'step,elbo'"),
    ("elbo.csv", "garbage\n", ("plot", "predict"), "line 1: expected the header 'step,elbo'"),
    ("elbo.csv", "step,elbo\n1,abc\n", ("plot", "predict"), "line 2: 'abc' is not a number"),
    ("elbo.csv", "step,elbo\n1,-3,4\n", ("plot", "predict"), "line 2: expected 2 cells, found 3"),
    ("elbo.csv", "step,elbo\n1\n", ("plot", "predict"), "line 2: expected 2 cells, found 1"),
    ("elbo.csv", "step,elbo\n1,-3\n2,nan\n", ("plot", "predict"), "the ELBO at step 2 is nan"),
    ("elbo.csv", "step,elbo\n1,-3\n3,-2\n", ("plot", "predict"), "row 2 has step 3"),
    ("summary.csv", "", ("summary",), "the file is empty; expected the header 'name,mean,"),
    ("summary.csv", "garbage here\n", ("summary",), "line 1: expected the header 'name,mean,"),
    ("summary.csv", HEADER + "mu,1,2\n", ("summary",), "line 2: expected 6 cells, found 3"),
    ("summary.csv", HEADER + "mu,1,2,3,xyz,5\n", ("summary",), "line 2: 'xyz' is not a number"),
    ("summary.csv", HEADER + "mu,1,2,3,4,5\n\nmu,1,2,3,4,5\n", ("summary",),
     "line 4: the name 'mu' appears twice"),
    ("summary.csv", HEADER + ",1,2,3,4,5\n", ("summary",), "line 2: a blank name"),
    ("draws.csv", "", ("plot",), "the file is empty"),
    ("draws.csv", "mu,s\n1,2\n3\n", ("plot",), "line 3: expected 2 cells, found 1"),
    ("draws.csv", "mu,s\n1,2\nabc,4\n", ("plot",), "line 3: 'abc' is not a number"),
]
# a table edited (or cut at a line's end) since the fit still reads as a table: refused by
# the SHA-256 fit.json records of it; plot drew such draws as the fit's (found by the
# savedfit audit). 'changed' edits the saved file's text.
EDITED_CSV = [
    ("draws.csv", lambda text: text.replace("mu,s", "nu,s", 1), ("plot",)),         # renamed
    ("draws.csv", lambda text: "".join(text.splitlines(True)[:4]), ("plot",)),      # cut
    ("draws.csv", lambda text: text.splitlines(True)[0], ("plot",)),                # no draws
    ("draws.csv", lambda text: "".join(line.split(",")[0] + "\n"                   # a column
                                       for line in text.splitlines()), ("plot",)),  # dropped
    ("draws.csv", lambda text: "".join(line + (",x\n" if i == 0 else ",1\n")       # added
                                       for i, line in enumerate(text.splitlines())), ("plot",)),
    ("draws.csv", lambda text: text.replace("\n", "\nnan,inf\n", 1), ("plot",)),
    ("draws.csv", lambda text: text.replace("\n", "\r\n"), ("plot",)),             # re-saved
    ("summary.csv", lambda text: text.replace("\nmu,", "\nmu,9", 1), ("summary",)),
    ("elbo.csv", lambda text: "".join(text.splitlines(True)[:3]), ("plot", "predict")),
]


@pytest.mark.parametrize("name, changed, commands", EDITED_CSV)
def test_a_saved_table_edited_since_the_fit_is_refused(saved_fit, tmp_path, capsys, name,
                                                       changed, commands):
    from ppl.cli import main
    folder = _copy_with(saved_fit, tmp_path / "bad", name,
                        changed((saved_fit / name).read_text()))
    for command in commands:
        assert main([command, str(folder)]) == 2, command
        assert capsys.readouterr().err.startswith(
            f"error: {folder / name}: changed since the fit was saved (its SHA-256 is not the "
            "one fit.json records)\n")
    assert not list(folder.glob("*.png")) and not list(folder.glob("predictive*"))


def test_a_fit_saved_before_the_tables_sha256_reads_them_as_they_are(saved_fit, tmp_path,
                                                                    capsys):
    from ppl.cli import main
    folder = _fit_json_with(saved_fit, tmp_path / "old", "files_sha256", MISSING)
    (folder / "elbo.csv").write_text("step,elbo\n1,-5\n")
    for command in ("summary", "plot", "predict"):
        assert main([command, str(folder)]) == 0, command
    capsys.readouterr()
    for value in ("x", [1]):
        folder = _fit_json_with(saved_fit, tmp_path / f"bad{value}", "files_sha256", value)
        assert main(["summary", str(folder)]) == 2
        assert capsys.readouterr().err.startswith(f"error: {folder / 'fit.json'}: corrupted "
                                                  "saved fit: entry 'files_sha256' must be an")


@pytest.mark.parametrize("name, content, commands, words", CORRUPTED_CSV)
def test_a_corrupted_saved_table_is_a_located_error(saved_fit, tmp_path, capsys, name, content,
                                                    commands, words):
    from ppl.cli import main
    folder = _copy_with(saved_fit, tmp_path / "bad", name, content)
    for command in commands:
        assert main([command, str(folder)]) == 2, command
        err = capsys.readouterr().err
        # one error, no raw numpy warning before it
        assert err.startswith(f"error: {folder / name}: corrupted saved fit: {words}"), err
    assert not list(folder.glob("*.png")) and not list(folder.glob("predictive*"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
@pytest.mark.parametrize("name, command", [("fit.json", "summary"), ("summary.csv", "summary"),
                                           ("elbo.csv", "predict")])
def test_a_saved_fits_file_that_is_a_fifo_is_refused(saved_fit, tmp_path, capsys, name,
                                                     command):
    # reading it waited forever for a writer; the alarm turns such a wait into a failure
    import signal
    from ppl.cli import main
    folder = _copy_with(saved_fit, tmp_path / "fifo", name, "")
    (folder / name).unlink()
    os.mkfifo(folder / name)

    def waited(signum, frame):
        raise TimeoutError(f"{command} waited on the FIFO {name}")
    previous = signal.signal(signal.SIGALRM, waited)
    signal.alarm(30)
    try:
        status = main([command, str(folder)])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert status == 2
    assert f"{name} is not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("content", [
    "step,elbo\n1,-1.7e308\n",            # matplotlib could not tick these: internal error
    "step,elbo\n1,-1e308\n2,1e308\n",
    # a fit of data near 1e153 writes this: the moving mean's running sum overflowed (warned)
    "step,elbo\n" + "".join(f"{i},-1.6e307\n" for i in range(1, 301)),
], ids=["one", "both-signs", "a-fit-near-1e153"])
def test_plot_draws_an_elbo_near_the_float_limit(saved_fit, tmp_path, capsys, content):
    from ppl.cli import main
    folder = _copy_with(saved_fit, tmp_path / "large", "elbo.csv", content)
    _reseal(folder, "elbo.csv")     # as if a fit had written it
    assert main(["plot", str(folder)]) == 0
    assert capsys.readouterr().err == ""
    assert (folder / "elbo.png").stat().st_size > 0


def test_plot_into_a_read_only_folder_is_one_clear_error(saved_fit, tmp_path, capsys,
                                                         monkeypatch):
    # root may write into a chmod 555 folder, so creating a file there is refused by hand
    import builtins
    from ppl.cli import main
    folder = _copy_with(saved_fit, tmp_path / "ro", "model.ppl", SAVED)
    real_open, real_os_open = builtins.open, os.open

    def refuse(path, creating: bool):
        if creating and Path(path).parent == folder:
            raise PermissionError(13, "Permission denied", str(path))

    def guarded_open(file, mode="r", *args, **kwargs):
        refuse(file, isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"))
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path, flags, *args, **kwargs):
        refuse(path, bool(flags & os.O_CREAT))
        return real_os_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    assert main(["plot", str(folder)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {folder}: cannot write output files "
                                              "(Permission denied)")
    assert sorted(f.name for f in folder.iterdir()) == sorted(f.name for f in saved_fit.iterdir())


def test_predictions_that_overflow_are_named_in_one_warning(saved_fit, tmp_path, capsys):
    # exp(709) is a finite sd, but the mean of predictions near 1e308 overflows: a valid fit
    # with a very wide prior can do that, so it is a warning, not a corrupted fit
    from ppl.cli import main
    folder = _fit_json_with(saved_fit, tmp_path / "wide", "guide.parameters.mu.log_sigma", 709.0)
    assert main(["predict", str(folder)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("ppl: warning: the summary of y[0], y[1], y[2] is not finite")
    assert err.count("warning") == 1


BATCHED = ("data N: int\ndata y: real[N]\nsample mu ~ Normal(0, 1)\n"
           "sample z: real[N] ~ Normal(mu, 1)\nobserve y ~ Normal(z, 1)\n")


@pytest.mark.parametrize("text, data, options", [
    ("data y: real[3]\nobserve y ~ Normal(0, 1)\n", '{"y": [1, 2, 3]}', []),   # no step
    ("sample mu ~ Normal(0, 1)\nlet w = exp(exp(exp(mu * 10)))\n", None, []),  # inf draws, no y
    # fit.json's guide family is 'user+meanfield' for both: predict called it corrupted
    # for --batch, a model without params or guide statements
    (BATCHED, '{"N": 4, "y": [1, 2, 3, 4]}', ["--batch", "N=2", "--iter", "200"]),
    ("data y: real[3]\nparam m: real\nsample mu ~ Normal(m, 1)\nobserve y ~ Normal(mu, 1)\n",
     '{"y": [1, 2, 3]}', ["--iter", "200"]),
])
def test_plot_and_predict_read_unusual_valid_fits(tmp_path, capsys, text, data, options):
    from ppl.cli import main
    (tmp_path / "m.ppl").write_text(text)
    if data is not None:
        (tmp_path / "m.json").write_text(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", str(tmp_path / "m.ppl"), "--out", str(tmp_path / "o"),
                     "--quiet"] + options) == 0
        capsys.readouterr()
        for command in ("summary", "plot", "predict"):
            assert main([command, str(tmp_path / "o")]) == 0, capsys.readouterr().err


# ----- the API's arguments: one PplError naming the argument, as the CLI's options ----------

@pytest.fixture(scope="module")
def small_fit():
    return ppl.compile(SMALL).fit(Y, guide="meanfield", iter=200)


COUNTS = ["a", float("nan"), float("inf"), [3], -1, 0, 2.5, True, 10 ** 13]


@pytest.mark.parametrize("method", ["draws", "predictive", "log_weights", "probabilities"])
@pytest.mark.parametrize("n", COUNTS, ids=repr)
def test_a_bad_count_of_draws_is_an_option_error(small_fit, method, n):
    expected = "n = 10000000000000 needs at least" if n == 10 ** 13 else \
        "option n: must be a positive integer; found"
    with pytest.raises(PplError, match=expected):
        getattr(small_fit, method)(n)


@pytest.mark.parametrize("kwargs, message", [
    ({"n": "a"}, "option n: must be a positive integer"),
    ({"n": -1}, "option n: must be a positive integer"),
    ({"n": 10 ** 13}, "n = 10000000000000 needs at least"),
    ({"seed": -1}, "option seed: must be a non-negative integer"),
    ({"seed": "a"}, "option seed: must be a non-negative integer"),
    ({"seed": 1.5}, "option seed: must be a non-negative integer")])
def test_prior_predictive_checks_its_arguments(kwargs, message):
    with pytest.raises(PplError, match=message):
        ppl.compile(SMALL).prior_predictive(Y, **kwargs)


def test_numpy_integers_are_counts_and_seeds(small_fit):
    assert small_fit.draws(np.int64(3))["mu"].shape == (3,)
    assert FitOptions(seed=np.int64(3), iter=np.int32(5)) == FitOptions(seed=3, iter=5)
    model = ppl.compile(SMALL)
    assert np.array_equal(model.prior_predictive(Y, n=np.int64(4), seed=np.uint8(2))["mu"],
                          model.prior_predictive(Y, n=4, seed=2)["mu"])


@pytest.mark.parametrize("option, value, message", [
    ("seed", True, "option seed: must be a non-negative integer; found True"),
    ("stl", "false", "option stl: must be True or False; found 'false'"),
    ("stl", "yes", "option stl: must be True or False"),
    ("stl", None, "option stl: must be True or False"),
    ("lr", True, "option lr: must be a positive finite number"),
    # a word option lists its words as words, not as a Python tuple ('psis', 'none')
    ("correct", "foo", r"option correct: unknown correction 'foo' \(choose one of psis, none\)"),
    ("optimizer", "Adam", r"unknown optimizer 'Adam'; did you mean 'adam'\? \(choose one of adam"),
    ("method", "x", r"option method: unknown method 'x' \(choose one of advi, dadvi\)"),
    ("precondition", "full", r"unknown preconditioner 'full' \(choose one of hessian, none\)")])
def test_bools_are_not_numbers_and_only_bools_are_bools(option, value, message):
    with pytest.raises(PplError, match=message):
        FitOptions(**{option: value})


@pytest.mark.parametrize("progress, message", [
    (5, "option progress: must be None or a function"),
    (lambda: None, "option progress: must accept three arguments"),
    # a progress(step, elbo) was let through when only two arguments were tried: a
    # TypeError at the fit's first report
    (lambda step, elbo: None, "option progress: must accept three arguments")])
def test_a_progress_that_cannot_be_called_so_is_an_option_error(progress, message):
    with pytest.raises(PplError, match=message):
        ppl.compile(SMALL).fit(Y, progress=progress)


@pytest.mark.parametrize("call, argument", [
    (lambda: ppl.load(5), "option path: must be a str or os.PathLike; found int"),
    (lambda: ppl.load(None), "option path: must be a str or os.PathLike; found NoneType"),
    (lambda: ppl.load(b"m.ppl"), "option path: must be a str or os.PathLike; found bytes"),
    (lambda: ppl.compile(5), "option source: the model text must be a str; found int"),
    (lambda: ppl.compile(None), "option source: the model text must be a str"),
    (lambda: ppl.compile(SMALL.encode()), "option source: the model text must be a str"),
    # ppl.Model is public too: lark's AttributeError on a non-str had escaped
    (lambda: ppl.Model(5), "option source: the model text must be a str; found int"),
    # a NUL in the path: Python's ValueError 'embedded null byte' had escaped
    (lambda: ppl.load("m\0.ppl"), "cannot read the model file")])
def test_a_model_path_or_text_of_another_type_is_an_option_error(call, argument):
    with pytest.raises(PplError, match=argument):
        call()


@pytest.mark.parametrize("predictive", ["no", 0, None])
def test_to_arviz_predictive_is_true_or_false(small_fit, predictive):
    # a truthy 'no' had added the posterior predictive group it asked to leave out
    with pytest.raises(PplError, match="option predictive: must be True or False"):
        small_fit.to_arviz(predictive=predictive)


@pytest.mark.parametrize("seconds", ["x", float("nan"), float("inf"), -1, True])
def test_convergence_line_seconds_must_be_a_finite_number(small_fit, seconds):
    with pytest.raises(PplError, match="option seconds: must be a finite number of at least 0"):
        small_fit.convergence_line(seconds)


def test_a_divergence_no_statement_is_to_blame_for_says_so_without_this_statement():
    # each observe term is finite (-8e306), their sum is not: the message had said "the log
    # density of this statement" and named none
    model = ppl.compile("data y: real[8]\nsample mu ~ Normal(0, 10)\nobserve y ~ Normal(mu, 1)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(PplError) as info:
            model.fit({"y": [4e153] * 8}, guide="meanfield", iter=200)
    assert info.value.message.endswith("the log density was not finite even after reducing "
                                       "the step size")
    assert info.value.span is None


@pytest.mark.parametrize("typed, hint", [
    ("--itr", "; did you mean '--iter'?"), ("--iterations", "; did you mean '--iter'?"),
    ("--mc_samples", "; did you mean '--mc-samples'?"),
    ("--init-file", "; did you mean '--init'?"),       # was --init-scale
    ("--output-dir", "; did you mean '--out'?"),       # was --optimizer
    # was --mc-samples: Stan's draws
    ("--num-samples", "; a variational fit's posterior draws are --draws"),
    ("--samples", "; a variational fit's posterior draws are --draws"),
    ("--output_samples", "; a variational fit's posterior draws are --draws"),
    ("--grad-samples", "; did you mean '--mc-samples'?"),     # Stan's ADVI's names
    # draws of its ELBO estimate: said "a variational fit's posterior draws are --draws"
    ("--elbo-samples", "; did you mean '--mc-samples'?"),
    # MCMC's options say what a variational fit has instead (--tune was --iter, and
    # --iter-warmup too: the longest flag it begins with)
    ("--tune", "; a variational fit has no warmup: it runs until its convergence rule, --iter "
               "capping its steps"),
    ("--iter-warmup", "; a variational fit has no warmup: it runs until its convergence rule, "
                      "--iter capping its steps"),
    ("--chains", "; a variational fit has no chains: --starts K runs K independent fits and "
                 "compares them, as R-hat compares chains"),
    ("--adapt-delta", "; a variational fit has no NUTS step size to adapt (--method is advi or "
                      "dadvi)"),
    # other tools' variational options (docs/coming-from.md's table) had no hint at all
    ("--num-steps", "; did you mean '--iter'?"), ("--learning-rate", "; did you mean '--lr'?"),
    ("--eta", "; did you mean '--lr'?"), ("--num-particles", "; did you mean '--mc-samples'?"),
    ("--obj-n-mc", "; did you mean '--mc-samples'?"), ("--random-seed", "; did you mean '--seed'?"),
])
def test_an_unknown_flag_is_pointed_to_the_flag_meant(typed, hint):
    from ppl import cli
    from ppl.errors import suggest_flag
    parser = next(a for a in cli.build_parser()._actions if a.dest == "command").choices["fit"]
    assert suggest_flag(typed, [f for a in parser._actions for f in a.option_strings]) == hint


@pytest.mark.parametrize("keyword, reason", [
    # was "did you mean 'mc_samples'?": draws per gradient step, NumPyro's num_samples being
    # posterior draws
    ("num_samples", "a variational fit's posterior draws are 'draws'"),
    ("num_chains", "a variational fit has no chains: 'starts' K runs K independent fits and "
                   "compares them, as R-hat compares chains"),
    ("num_warmup", "a variational fit has no warmup: it runs until its convergence rule, "
                   "'iter' capping its steps"),
    ("target_accept", "a variational fit has no NUTS step size to adapt ('method' is advi or "
                      "dadvi)"),
])
def test_an_mcmc_tools_option_given_to_fit_says_what_ppl_has_instead(keyword, reason):
    with pytest.raises(PplError) as info:
        ppl.compile("sample mu ~ Normal(0, 1)\n").fit(**{keyword: 100})
    assert info.value.message == f"option {keyword}: {reason}"


@pytest.mark.parametrize("keyword, meant", [
    ("num_steps", "iter"), ("n", "iter"), ("learning_rate", "lr"), ("num_particles", "mc_samples"),
    ("obj_n_mc", "mc_samples"), ("tol_rel_obj", "tol"), ("random_seed", "seed")])
def test_another_tools_variational_option_given_to_fit_names_ppls(keyword, meant):
    # NumPyro's SVI(...).run(num_steps=...), PyMC's pm.fit(n=..., obj_n_mc=...): 'unknown
    # option' with no hint, though docs/coming-from.md maps each
    with pytest.raises(PplError) as info:
        ppl.compile("sample mu ~ Normal(0, 1)\n").fit(**{keyword: 100})
    assert info.value.message == f"option {keyword}: unknown option; did you mean '{meant}'?"


@pytest.mark.parametrize("argv, flag", [
    (["fit", "m.ppl", "--seed", "1", "--seed", "2"], "--seed"),
    (["fit", "m.ppl", "--seed=1", "--iter", "3", "--seed", "2"], "--seed"),
    (["fit", "m.ppl", "--quiet", "--quiet"], "--quiet"),
    (["check", "m.ppl", "--data", "a.json", "--data", "b.json"], "--data"),
    (["predict", "out", "--draws", "3", "--draws=4"], "--draws"),
    (["plot", "out", "--vars", "mu", "--vars", "tau"], "--vars"),
])
def test_a_flag_given_twice_is_one_option_error(argv, flag, capsys):
    # argparse kept the last ('--seed 1 --seed 2' fitted seed 2 without a word; '--vars mu
    # --vars tau' plotted tau alone); CmdStan refuses a repeated argument (found by the
    # leftalone3 audit). Refused before any file is read.
    from ppl.cli import main
    assert main(argv) == 2
    assert capsys.readouterr() == ("", f"error: option {flag}: given more than once; give "
                                   f"each option once (see 'ppl {argv[0]} --help')\n")


def test_a_repeated_flag_is_refused_from_the_command_line_itself(monkeypatch, capsys):
    # the 'ppl' command calls main() without argv, which reads sys.argv (mutation3 audit)
    import sys
    from ppl.cli import main
    monkeypatch.setattr(sys, "argv", ["ppl", "fit", "m.ppl", "--seed", "1", "--seed", "2"])
    assert main() == 2
    assert "error: option --seed: given more than once" in capsys.readouterr().err


def test_a_flag_after_a_double_dash_is_an_argument_not_a_repeat(tmp_path, monkeypatch, capsys):
    # after '--' argparse takes every token as a positional argument: a model file named
    # '--data' is not a second --data (mutation3 audit)
    from ppl.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "--data").write_text("sample mu ~ Normal(0, 1)\n")
    (tmp_path / "d.json").write_text("{}")
    assert main(["check", "--data", "d.json", "--", "--data"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv", [["fit", "m.ppl", "--seed", "\u0663"],
                                  ["fit", "m.ppl", "--seed", "1_000"],
                                  ["fit", "m.ppl", "--lr", "\uff11e-2"],
                                  ["predict", "out", "--draws", "1_0"]])
def test_number_options_take_plain_ascii_numbers_only(argv, capsys):
    # Python's int() and float() read other scripts' digits and '_' ('--seed ٣' fitted seed
    # 3), which the model's numbers and data files refuse
    from ppl.cli import main
    assert main(argv) == 2
    assert "is not a plain number: numbers are written with the ASCII digits 0-9, without " \
           "'_'" in capsys.readouterr().err
