"""``ppl plot``: what elbo.png and marginals.png say for each kind of saved fit (the titles,
labels and panels drawn, read from the figures before they are rendered)."""
import warnings

import numpy as np
import pytest

from ppl.errors import PplError

pytest.importorskip("matplotlib")

NORMAL = "data y: real[3]\nsample mu ~ Normal(0, 10)\nobserve y ~ Normal(mu, 1)\n"
PARAMS = "data y: real[3]\nparam m: real\nobserve y ~ Normal(m, 1)\n"
MIXED = ("data y: real[3]\nparam s: real<lower=0>\nsample mu ~ Normal(0, 10)\n"
         "observe y ~ Normal(mu, s)\n")
DISCRETE = ("data y: real[3]\nsample mu: real[3] ~ Normal(0, 10)\n"
            "sample k: int ~ DiscreteUniform(0, 2)\nobserve y ~ Normal(mu[k], 1)\n")
NOTHING = "data y: real[3]\nobserve y ~ Normal(0, 1)\n"


def _figures(tmp_path, monkeypatch, text, *options, data='{"y": [1.0, 2.0, 0.5]}',
             plotting=()):
    """{png name: [(title, x label, y label, lines, bars, texts) per visible axis]} of
    ``ppl plot`` (with the options ``plotting``) on a fit of ``text`` to ``data`` with
    ``options``."""
    from ppl import plot
    from ppl.cli import main
    (tmp_path / "m.ppl").write_text(text)
    (tmp_path / "m.json").write_text(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", str(tmp_path / "m.ppl"), "--out", str(tmp_path / "o"), "--quiet",
                     *options]) == 0
    drawn, headings = [], []
    real_png = plot._png

    def record(figure):
        drawn.append([(a.get_title(), a.get_xlabel(), a.get_ylabel(), len(a.lines),
                       len(a.patches), [t.get_text() for t in a.texts])
                      for a in figure.axes if a.axison or a.texts])
        headings.append(figure.get_suptitle())
        return real_png(figure)
    monkeypatch.setattr(plot, "_png", record)
    assert main(["plot", str(tmp_path / "o"), *plotting]) == 0
    return {**dict(zip(("elbo.png", "marginals.png"), drawn)), "headings": headings}


def test_advi_trace_is_shown_beside_its_moving_mean(tmp_path, monkeypatch):
    elbo = _figures(tmp_path, monkeypatch, NORMAL, "--guide", "meanfield")["elbo.png"]
    assert [a[:3] for a in elbo] == [("ELBO estimate at each step", "step", "ELBO"),
                                     ("mean over the last 100 steps", "step", "ELBO")]


def test_dadvi_trace_is_its_fixed_draw_objective_without_a_moving_mean(tmp_path, monkeypatch):
    # DADVI's iterations are a deterministic objective: a moving mean "over the last 100
    # steps" of 10 L-BFGS iterations meant nothing
    elbo = _figures(tmp_path, monkeypatch, NORMAL, "--method", "dadvi",
                    "--dadvi-draws", "8")["elbo.png"]
    assert [a[:3] for a in elbo] == [("ELBO at DADVI's 8 fixed draws and their mirrors",
                                      "optimizer iteration", "ELBO")]


def test_params_only_trace_is_the_log_joint_of_lbfgs(tmp_path, monkeypatch):
    figures = _figures(tmp_path, monkeypatch, PARAMS)
    assert [a[:3] for a in figures["elbo.png"]] == [
        ("log joint at the params (L-BFGS-B, params only)", "L-BFGS-B iteration", "log joint")]
    # a param is one value, drawn as a line with it in the title, not a histogram
    (title, _, _, lines, bars, _), = figures["marginals.png"]
    assert title.startswith("m = 1.167 (param)") and (lines, bars) == (1, 0)


def test_a_param_beside_latents_is_marked_as_a_point_estimate(tmp_path, monkeypatch):
    marginals = _figures(tmp_path, monkeypatch, MIXED, "--iter", "300")["marginals.png"]
    assert [a[0].partition(" = ")[0] for a in marginals] == ["mu", "s"]
    assert marginals[0][4] == 40                 # mu: a histogram of 40 bins
    assert marginals[1][0].endswith("(param)") and marginals[1][3:5] == (1, 0)


def test_a_fit_of_no_steps_says_so(tmp_path, monkeypatch):
    figures = _figures(tmp_path, monkeypatch, NOTHING)
    (elbo,) = figures["elbo.png"]
    # the log density of y = (1, 2, 0.5) under Normal(0, 1)
    assert elbo[5] == ["no steps recorded; final ELBO -5.38182"]
    assert figures["marginals.png"][0][5] == ["no reported elements"]


def test_a_dadvi_fit_that_starts_at_its_optimum_says_so(tmp_path, monkeypatch):
    # a Gaussian posterior: the Laplace start is DADVI's optimum, no iteration is recorded
    (elbo,) = _figures(tmp_path, monkeypatch, NORMAL, "--method", "dadvi")["elbo.png"]
    assert elbo[0] == "ELBO at DADVI's 30 fixed draws and their mirrors"
    assert elbo[5][0].startswith("no steps recorded; final ELBO -")


def test_a_discrete_latent_has_one_bar_per_value(tmp_path, monkeypatch):
    marginals = _figures(tmp_path, monkeypatch, DISCRETE, "--guide", "meanfield",
                         "--iter", "300")["marginals.png"]
    k = [a for a in marginals if a[0] == "k"][0]
    assert k[4] <= 3        # values 0..2: at most three bars, not 40 bins


def test_minibatch_trace_says_it_is_of_minibatches(tmp_path, monkeypatch):
    text = ("data N: int\ndata y: real[N]\nsample z: real[N] ~ Normal(0, 1)\n"
            "observe y ~ Normal(z, 1)\n")
    elbo = _figures(tmp_path, monkeypatch, text, "--batch", "N=2", "--iter", "200",
                    data='{"N": 4, "y": [1, 2, 3, 4]}')["elbo.png"]
    assert elbo[0][0] == "ELBO estimate at each step (minibatches of 2 along N)"


def test_integer_bins_are_centred_on_the_values():
    from ppl.plot import _bins
    assert np.array_equal(_bins(np.array([25.0, 26.0, 25.0, 27.0])), [24.5, 25.5, 26.5, 27.5])
    assert _bins(np.array([0.5, 1.0])) == 40


def test_without_vars_the_drawn_values_come_before_the_params(tmp_path, monkeypatch):
    # a VAE's first 30 elements are all decoder weights: 30 vertical lines, no posterior
    text = ("data y: real[3]\nparam w: real[40]\nsample mu ~ Normal(0, 10)\n"
            "observe y ~ Normal(mu + sum(w) * 0, 1)\n")
    marginals = _figures(tmp_path, monkeypatch, text, "--iter", "200")["marginals.png"]
    assert marginals[0][0] == "mu" and marginals[1][0].startswith("w[0] = ")


def test_the_marginals_carry_the_fits_verdict(tmp_path, monkeypatch):
    # histograms of an unreliable fit look like any posterior's: the verdict says what they are
    import json
    figures = _figures(tmp_path, monkeypatch, NORMAL, "--guide", "meanfield", "--iter", "300")
    line = json.loads((tmp_path / "o" / "fit.json").read_text())["verdict"]["line"]
    assert figures["headings"][1] == "verdict: " + line.partition(":")[0]


def test_a_value_equal_in_every_draw_is_a_line_not_a_bar(monkeypatch):
    # a Cholesky factor's L[0,0] is 1 in every draw: one bin filled the panel like a uniform
    from ppl import plot
    seen = []
    monkeypatch.setattr(plot, "_png", lambda figure: seen.append(
        [(a.get_title(), len(a.lines), len(a.patches)) for a in figure.axes]) or b"")
    draws = np.column_stack([np.ones(50), np.random.default_rng(0).normal(size=50)])
    plot._plot_marginals(["L[0,0]", "mu"], draws, 2, [False, False], "reliable")
    assert seen[0] == [("L[0,0] = 1 (every draw)", 1, 0), ("mu", 0, 40)]


def test_plot_leaves_the_callers_pyplot_figures_and_backend_alone(tmp_path, monkeypatch):
    # plot_fit called matplotlib.use('Agg') and plt.close('all'): 'ppl plot' run in a process
    # with pyplot open (a notebook calling ppl.cli.main) closed every figure there and left
    # the backend switched to Agg (found by the savedfit audit)
    import matplotlib
    import matplotlib.pyplot as plt
    backend, figure = matplotlib.get_backend(), plt.figure()
    try:
        _figures(tmp_path, monkeypatch, NORMAL, "--iter", "100")
        assert plt.get_fignums() == [figure.number]
        assert matplotlib.get_backend() == backend
    finally:
        plt.close(figure)


def test_a_warm_started_fit_marks_where_each_familys_steps_begin(tmp_path, monkeypatch):
    # full rank's trace is mean field's steps and then its own (auto's climb and a warm start
    # alike): elbo.png showed one unmarked curve; fit.json's 'phases' says where each begins
    import json
    from ppl import plot
    from ppl.cli import main
    (tmp_path / "m.ppl").write_text(NORMAL)
    (tmp_path / "m.json").write_text('{"y": [1.0, 2.0, 0.5]}')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["fit", str(tmp_path / "m.ppl"), "--out", str(tmp_path / "o"), "--quiet",
                     "--guide", "fullrank"]) == 0
    info = json.loads((tmp_path / "o" / "fit.json").read_text())
    phases = info["phases"]
    assert [p["family"] for p in phases] == ["meanfield", "fullrank"]
    assert phases[0]["first_step"] == 1 and 1 < phases[1]["first_step"] <= info["steps"]
    marks = []
    real_png = plot._png

    def record(figure):
        marks.append([([line.get_xdata()[0] for line in a.lines[1:]],
                       [t.get_text().strip() for t in a.texts]) for a in figure.axes])
        return real_png(figure)
    monkeypatch.setattr(plot, "_png", record)
    assert main(["plot", str(tmp_path / "o")]) == 0
    boundary = phases[1]["first_step"] - 0.5   # after mean field's last step
    assert marks[0] == [([boundary], ["meanfield", "fullrank"])] * 2


def test_a_fit_of_one_family_has_no_phases(tmp_path, monkeypatch):
    import json
    elbo = _figures(tmp_path, monkeypatch, NORMAL, "--guide", "meanfield")["elbo.png"]
    assert [(lines, texts) for *_, lines, _, texts in elbo] == [(1, []), (1, [])]
    assert "phases" not in json.loads((tmp_path / "o" / "fit.json").read_text())


def test_vars_are_shown_in_their_order_params_too(tmp_path, monkeypatch):
    marginals = _figures(tmp_path, monkeypatch, MIXED, "--iter", "300",
                         plotting=("--vars", "s", "mu"))["marginals.png"]
    assert [a[0].partition(" = ")[0] for a in marginals] == ["s", "mu"]


def test_vars_choose_each_element_once_by_its_exact_name():
    from ppl.plot import _select
    names = ["mu", "w[0]", "w[1]", "z[1]", "z[10]"]
    assert _select(names, ["z[1]", "w", "w[1]", "mu"]) == [3, 1, 2, 0]
    with pytest.raises(PplError) as caught:      # the start of a name is not the name
        _select(names, ["m"])
    assert caught.value.message == ("option --vars: no variable or element 'm' in this fit; "
                                    "did you mean 'mu'?")


def test_a_fit_moved_after_its_steps_says_so_over_its_trace(tmp_path, monkeypatch):
    import json
    from ppl import plot
    _figures(tmp_path, monkeypatch, NORMAL, "--guide", "meanfield", "--iter", "200")
    path = tmp_path / "o" / "fit.json"
    info = json.loads(path.read_text())
    assert plot._trace(info, path).title == "ELBO estimate at each step"
    info["unmoved_final_elbo"] = info["final_elbo"] - 1.0
    assert plot._trace(info, path).title == "ELBO estimate at each step (the fit then moved)"


def test_an_elbo_beyond_1e100_is_shown_in_units_of_its_power_of_ten():
    from ppl.plot import _in_units
    values, unit = _in_units(np.array([-1.6e307, -2e306]))
    assert unit == " / 1e307" and np.allclose(values, [-1.6, -0.2], rtol=1e-14)
    values, unit = _in_units(np.array([-3e200]))
    assert unit == " / 1e200" and np.allclose(values, [-3.0], rtol=1e-14)
    values, unit = _in_units(np.array([-5e99, 1.0]))
    assert unit == "" and values.tolist() == [-5e99, 1.0]


def test_the_trace_is_zoomed_to_its_last_ninety_percent():
    from ppl.plot import _figure, _zoom
    _, axes = _figure(1, 2, (4, 2))
    _zoom(axes[0, 0], np.arange(100.0))
    # from the 1% quantile of steps 10..99 to their largest value plus 5% of their range
    assert np.allclose(axes[0, 0].get_ylim(), (10.89, 99 + 0.05 * 89), rtol=1e-12)
    ylim = axes[0, 1].get_ylim()
    _zoom(axes[0, 1], np.array([-1.7e308, 1.7e308] * 10))   # the margin overflows: left alone
    assert axes[0, 1].get_ylim() == ylim


def _marginals(monkeypatch, names, draws):
    """[(title, row, column) per visible axis], the number of axes, of _plot_marginals."""
    from ppl import plot
    seen = []
    monkeypatch.setattr(plot, "_png", lambda figure: seen.append(
        ([(a.get_title(), a.get_subplotspec().rowspan.start, a.get_subplotspec().colspan.start)
          for a in figure.axes if a.axison], len(figure.axes))) or b"")
    plot._plot_marginals(names, draws, len(names), [False] * len(names), "reliable")
    return seen[0]


def test_marginals_are_five_to_a_row(monkeypatch):
    names = [f"x[{i}]" for i in range(7)]
    draws = np.random.default_rng(0).normal(size=(20, 7))
    panels, axes = _marginals(monkeypatch, names, draws)
    assert panels == [(name, i // 5, i % 5) for i, name in enumerate(names)] and axes == 10


def test_a_column_of_no_finite_draws_is_an_empty_panel_that_says_so(monkeypatch):
    draws = np.column_stack([np.full(5, np.nan), [1.0, np.inf, 2.0, 3.0, 1.5]])
    panels, _ = _marginals(monkeypatch, ["a", "b"], draws)
    assert [title for title, *_ in panels] == ["a (5 not finite)", "b (1 not finite)"]


def test_forty_whole_values_are_one_bar_each_and_forty_one_are_forty_bins():
    from ppl.plot import _bins
    assert np.array_equal(_bins(np.arange(40.0)), np.arange(-0.5, 40.0))
    assert _bins(np.arange(41.0)) == 40


def test_draws_near_the_float_limit_are_plotted_in_units_of_their_power_of_ten(monkeypatch):
    # a let of 1.5e308 in every draw (or one of 1e308 * tanh(mu)): matplotlib cannot place its
    # ticks there, and 'ppl plot' ended with an internal error (ValueError: Axis limits cannot
    # be NaN or Inf; Too many bins for data range), found by the mutation pass
    draws = np.column_stack([np.full(5, 1.5e308), [1e308, -1e308, 5e307, 0.0, np.nan]])
    panels, _ = _marginals(monkeypatch, ["big", "wide"], draws)
    assert [title for title, *_ in panels] == ["big / 1e308 = 1.5 (every draw)",
                                               "wide / 1e308 (1 not finite)"]
