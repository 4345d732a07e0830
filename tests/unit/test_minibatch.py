"""Minibatch ADVI (infer/minibatch.py): unbiased gradients, option and located errors, fits."""
import numpy as np
import pytest
from autograd import grad

import ppl
from ppl.errors import PplError
from ppl.guides import user
from ppl.infer import minibatch
from ppl.infer.elbo import elbo
from ppl.options import FitOptions

LOCAL = """
data N: int
data y: real[N]
data x: real[N]
sample mu ~ Normal(0, 3)
sample s: real<lower=0> ~ Normal(0, 2)
sample z: real[N] ~ Normal(mu + x, 1)
observe y ~ Normal(z, s)
"""

AMORTIZED = """
data N: int
data y: real[N]
let _c = (y - mean(y)) / sqrt(mean(square(y)))
param w: real[2]
sample s: real<lower=0> ~ Normal(0, 2)
sample z: real[N] ~ Normal(0, 2)
observe y ~ Normal(z, s)
guide z ~ Normal(w[0] * _c + y, exp(w[1] + 0 * _c))
"""


# a batched latent with two values per row: theta's rows of z are pairs of columns
PAIRS = """
data N: int
data y: real[N]
sample mu ~ Normal(0, 3)
sample z: real[N, 2] ~ Normal(mu, 1)
observe y ~ Normal(z[:, 0] - z[:, 1], 1)
"""


# batched data in an observe of data alone (a constant that changes with the batch), in a
# factor and in a latent's bound (compiled once, read per batch), beside a user guide
CONSTANTS = """
data N: int
data y: real[N]
data x: real[N]
param w: real
sample mu ~ Normal(0, 3)
sample z: real<lower=x - 10>[N] ~ Normal(mu + x, 1)
observe y ~ Normal(0, 2)
observe y ~ Normal(z, 1)
factor -0.5 * square(x - mu)
guide mu ~ Normal(w, 1)
"""


# data on the batched axis and off it, a data-only let of the whole data, a gather through the
# rows (a[g]), terms of other lengths, a param, a mixture and a censored factor
MIXED = """
data N: int
data J: int
data g: int<lower=0, upper=J - 1>[N]
data y: real[N]
data x: real[N]
let xs = (x - mean(x)) / sqrt(mean(square(x - mean(x))))
let w = [0.5, -0.25]
param c: real
sample a: real[J] ~ Normal(0, 1)
sample b: real[2] ~ Normal(w, 1)
sample s: real<lower=0> ~ HalfNormal(2)
observe y ~ Mixture([0.3, 0.7], Normal(a[g][:, newaxis] + c + b * xs[:, newaxis], s))
observe w ~ Normal(b, 1)
factor lccdf(Normal(b[1] + a[g], 1), x)
"""


# data with the batched dimension on its second axis, read only through a data-only let of
# its rows: the let's rows are taken per batch, the data itself stays whole (X[idx] would
# take rows of its first axis, of length 2)
FEATURE_MAJOR = """
data N: int
data X: real[2, N]
data y: real[N]
let x = X[0] - X[1]
sample mu ~ Normal(0, 3)
sample z: real[N] ~ Normal(mu + x, 1)
observe y ~ Normal(z, 1)
"""


# a batched latent whose rows have fewer free values than values (a simplex per row: 3 values,
# 2 free), so theta's layout has 2 columns a row
SIMPLEX = """
data N: int
data y: real[N]
sample p: real[N, 3] ~ Dirichlet([1.5, 2.0, 2.5])
observe y ~ Normal(p[:, 0] - p[:, 2], 0.5)
"""


def _setup(text, N=12, B=4, seed=0):
    rng = np.random.default_rng(seed)
    data = {"N": N, "y": rng.standard_normal(N) * 2, "x": rng.standard_normal(N), "J": 3,
            "g": rng.integers(0, 3, N), "X": rng.standard_normal((2, N))}
    model = ppl.compile(text)
    data = {k: v for k, v in data.items() if k in model.ir.data}
    concrete, values, full = model.prepare(data)
    options = FitOptions(guide="meanfield", batch={"N": B})
    batch = minibatch.prepare(model.program, model.ir, concrete, values, options,
                              np.random.default_rng(1))
    guide = user.family_for(full, "meanfield", np.random.default_rng(2))
    theta = guide.init(full.dim, 0.5) + 0.3 * rng.standard_normal(guide.init(full.dim, 1).size)
    return full, batch, guide, theta, rng


@pytest.mark.parametrize("text", [LOCAL, AMORTIZED, CONSTANTS, MIXED, PAIRS, FEATURE_MAJOR,
                                  SIMPLEX])
def test_batch_gradients_average_to_the_full_gradient(text):
    # Enumerate a fixed partition of the rows into N / B batches, each with the full draw's
    # noise at its rows: the average of the batch ELBOs (and gradients) is the full-data ELBO
    # (and gradient) exactly, up to float rounding, which is what unbiasedness means for a
    # batch drawn uniformly from the partition.
    full, batch, guide, theta, rng = _setup(text)
    # theta's layout, derived from the batch's model, is the whole data's (summaries and draws
    # after the fit name its columns so)
    assert batch.dim == full.dim and batch.unconstrained_names() == full.unconstrained_names()
    S = 3
    eps = rng.standard_normal((S, guide.eps_dim(full.dim)))
    want_value = elbo(full.log_joint, theta, eps, guide)
    want = grad(lambda t: elbo(full.log_joint, t, eps, guide))(theta)
    bg = minibatch.BatchedGuide(batch, guide)
    values, grads = [], []
    for idx in np.arange(12).reshape(3, 4)[::-1]:
        batch.set_batch(idx)
        guided = [int(np.flatnonzero(guide.guided_cols == c)[0]) for c in bg.guided_cols]
        eps_b = np.concatenate([eps[:, bg.auto_map], eps[:, guide.eps_auto + np.array(
            guided, dtype=int)]], axis=1) if guided else eps[:, bg.auto_map]
        values.append(elbo(batch.log_joint, theta, eps_b, bg))
        grads.append(grad(lambda t: elbo(batch.log_joint, t, eps_b, bg))(theta))
    assert np.mean(values) == pytest.approx(want_value, rel=1e-12)
    np.testing.assert_allclose(np.mean(grads, axis=0), want, rtol=1e-10, atol=1e-10)
    assert np.std([g[0] for g in grads]) > 0     # the batches do differ


@pytest.mark.parametrize("batch, message", [
    ({"M": 4}, "'M' is not a dimension declared by the data"),
    ({"N": 40}, "larger than the dimension 'N' = 12"),
    ("N=x", "must be DIM=B"),
    ({"N": 0}, "positive integer"),
    # what else the fit was given: the message said only 'use it with method advi and a
    # single start'
    ({"N": 4, "method": "dadvi"}, "option batch: minibatches fit with method advi from one "
                                  "start; found method dadvi, starts 1"),
    ({"N": 4, "starts": 2}, "found method advi, starts 2"),
    ({"N": 4, "guide": "fullrank"}, "a batched latent without a guide statement needs --guide "
                                    r"meanfield \(found fullrank\)"),
])
def test_bad_batch_is_an_option_error(batch, message):
    model = ppl.compile(LOCAL)
    data = {"N": 12, "y": np.zeros(12), "x": np.zeros(12)}
    options = {"guide": "meanfield"}
    if isinstance(batch, dict):     # the other options of a row
        options.update({k: v for k, v in batch.items() if k not in ("N", "M")})
        batch = {k: v for k, v in batch.items() if k in ("N", "M")}
    with pytest.raises(PplError, match=message):
        model.fit(data, batch=batch, **options)


@pytest.mark.parametrize("B", [10, 12])
def test_a_batch_is_a_sorted_sample_without_replacement(B):
    # sorted, so that a memory-mapped file is read in order; B = N is allowed (every row)
    _, batch, _, _, _ = _setup(LOCAL, N=12, B=B)
    for _ in range(20):
        batch.next_batch()
        assert len(batch.idx) == B and np.all(np.diff(batch.idx) > 0)
        assert 0 <= batch.idx[0] and batch.idx[-1] < 12


def test_a_model_with_a_discrete_latent_cannot_be_batched():
    model = ppl.compile("data N: int\ndata y: real[N]\nsample k: int ~ Bernoulli(0.5)\n"
                        "observe y ~ Normal(k, 1)\n")
    with pytest.raises(PplError, match="models with discrete latents are not supported"):
        model.fit({"N": 12, "y": np.zeros(12)}, batch={"N": 4}, guide="meanfield")


def test_batch_over_a_dimension_nothing_is_on_is_an_option_error():
    # K is declared but no array starts with it: the fit ran on the whole data, under the
    # batch rule and its 1000 k̂ draws, as if it had been subsampled
    model = ppl.compile("data N: int\ndata K: int\ndata y: real[N]\nsample m ~ Normal(0, 1)\n"
                        "observe y ~ Normal(m, 1)\n")
    with pytest.raises(PplError, match="no data, data-only let or latent has 'K' as its first"):
        model.fit({"N": 6, "K": 3, "y": np.zeros(6)}, batch={"K": 2})


def test_reduction_over_the_batched_axis_is_located():
    model = ppl.compile("data N: int\ndata y: real[N]\nsample z: real[N] ~ Normal(0, 1)\n"
                        "observe y ~ Normal(z, 1)\nfactor -sum(z) ** 2\n")
    with pytest.raises(PplError) as info:
        model.fit({"N": 6, "y": np.zeros(6)}, guide="meanfield", batch={"N": 2})
    assert info.value.span.line == 5 and "cannot be scaled unbiasedly" in str(info.value)


def test_data_only_reduction_outside_a_let_is_located():
    model = ppl.compile("data N: int\ndata y: real[N]\nsample m ~ Normal(0, 1)\n"
                        "observe y ~ Normal(m + mean(y), 1)\n")
    with pytest.raises(PplError, match="data-only let"):
        model.fit({"N": 6, "y": np.zeros(6)}, guide="meanfield", batch={"N": 2})


def test_cli_batch_errors_exit_2(tmp_path, capsys):
    from ppl.cli import main
    path = tmp_path / "m.ppl"
    path.write_text(LOCAL)
    (tmp_path / "m.json").write_text('{"N": 3, "y": [1, 2, 3], "x": [0, 0, 0]}')
    assert main(["fit", str(path), "--batch", "K=2"]) == 2
    assert "not a dimension declared by the data" in capsys.readouterr().err
    assert main(["fit", str(path), "--batch", "N=5"]) == 2


def test_npy_folder_is_memory_mapped_and_batched(tmp_path):
    from ppl.data import load_data
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 2))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", X @ [1.0, -1.0] + 0.5 * rng.standard_normal(500))
    model = ppl.compile("data N: int\ndata X: real[N, 2]\ndata y: real[N]\n"
                        "sample b: real[2] ~ Normal(0, 5)\nsample s: real<lower=0> ~ Normal(0, 2)\n"
                        "observe y ~ Normal(X @ b, s)\n")
    values, dims = load_data(model.ir, str(tmp_path))
    assert isinstance(values["X"], np.memmap) and dims == {"N": 500}   # no copy, N inferred
    one = load_data(ppl.compile("data X: real[500, 2]\n").ir, str(tmp_path / "X.npy"))[0]
    assert isinstance(one["X"], np.memmap)
    fit = model.fit(str(tmp_path), guide="meanfield", batch={"N": 50}, iter=300, lr=0.01)
    assert fit.result.steps == 300
    assert isinstance(fit.compiled, minibatch.Lazy)      # the whole data compiled on demand
    assert fit.draws(10)["b"].shape == (10, 2)


def test_bad_npy_values_are_refused(tmp_path):
    X = np.zeros((100, 2))
    X[70, 1] = np.nan
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(PplError, match="X\\[70,1\\]"):
        ppl.compile("data X: real[100, 2]\nsample m ~ Normal(0, 1)\n").fit(
            str(tmp_path), guide="meanfield")


def test_after_a_batch_fit_khat_draws_are_fewer_and_evaluated_in_chunks(monkeypatch):
    # k̂ after --batch: 1000 draws (psis.BATCH_PSIS_DRAWS), and the guide's draws, log q
    # and log joint on the whole data taken a few draws at a time: the same values as at once.
    from ppl import posterior
    from ppl.infer import psis
    model = ppl.compile(LOCAL)
    rng = np.random.default_rng(0)
    data = {"N": 40, "y": rng.standard_normal(40), "x": rng.standard_normal(40)}
    fit = model.fit(data, guide="meanfield", batch={"N": 10}, iter=100, lr=0.01)
    assert fit._psis_draws() == psis.BATCH_PSIS_DRAWS == 1000
    calls = []
    log_joint = fit.compiled.log_joint
    monkeypatch.setattr(fit.compiled, "log_joint",
                        lambda z: calls.append(len(z)) or log_joint(z), raising=False)
    monkeypatch.setattr(posterior, "BATCH_CHUNK_ROWS", 40 * 7)     # 7 draws per chunk
    chunked = fit.log_weights(50)
    assert calls == [7] * 7 + [1]
    monkeypatch.setattr(posterior, "BATCH_CHUNK_ROWS", 40 * 50)
    np.testing.assert_allclose(chunked, fit.log_weights(50), rtol=1e-12)


def test_after_a_batch_fit_the_summary_weights_no_more_draws_than_khat():
    # every draw is a pass over the whole data: neither the ESS's rule nor the means' standard
    # errors (posterior._summary_weights) draw more than k̂'s own
    model = ppl.compile(LOCAL)
    rng = np.random.default_rng(0)
    data = {"N": 40, "y": rng.standard_normal(40), "x": rng.standard_normal(40)}
    fit = model.fit(data, guide="meanfield", batch={"N": 10}, iter=100, lr=0.01)
    assert fit._summary_weights().log_weights.size == fit.psis.log_weights.size == 1000


def test_a_value_of_another_dimension_of_the_same_length_is_refused():
    # u is declared on M, not N: a step would keep it whole, and at B = 1 broadcast all of it
    # against the one row of z (the average of the batch ELBOs was 3.6% off the full-data one,
    # its gradient 79%); at B > 1 the batch's check failed with shapes [B] and [N]
    model = ppl.compile("data N: int\ndata M: int\ndata u: real[M]\nsample m ~ Normal(0, 1)\n"
                        "sample z: real[N] ~ Normal(m, 1)\nobserve u ~ Normal(z, 1)\n")
    data = {"N": 6, "M": 6, "u": np.arange(6.0)}
    for size in (1, 2):
        with pytest.raises(PplError, match="not 'N'") as info:
            model.fit(data, guide="meanfield", batch={"N": size}, iter=50)
        assert (info.value.span.line, info.value.span.col) == (6, 9)


def test_a_data_only_let_whose_length_depends_on_the_batched_dimension_is_refused():
    # ys is computed once on the whole data ([6]), but a step's model, checked with N = B,
    # read it as [min(6, B)]: the batch ELBOs averaged over a partition were 10% off the
    # full-data ELBO, without an error. (y[:6] at B = 4 is now refused as a slice bound out of
    # range in the step's model; y[2:] has a length that depends on N within the range)
    model = ppl.compile("data N: int\ndata y: real[N]\nlet ys = y[2:]\nsample m ~ Normal(0, 1)\n"
                        "observe ys ~ Normal(m, 2)\nobserve y ~ Normal(m, 1)\n")
    with pytest.raises(PplError, match="the data-only let 'ys' has shape \\[10\\] on the whole "
                                       "data but \\[2\\] in a step's model") as info:
        model.fit({"N": 12, "y": np.zeros(12)}, batch={"N": 4})
    assert info.value.span.line == 3
    # where a step's model does not even check, its error says it is the step's (here y[:M]
    # at M = 6 > B = 4, out of range there; it was the shape mismatch at line 6 before)
    model = ppl.compile("data N: int\ndata M: int\ndata y: real[N]\nlet ys = y[:M]\n"
                        "sample w: real[M] ~ Normal(0, 1)\nobserve ys ~ Normal(w, 2)\n"
                        "observe y ~ Normal(0, 1)\n")
    with pytest.raises(PplError, match="in a step's model, where 'N' = 4") as info:
        model.fit({"N": 12, "M": 6, "y": np.zeros(12)}, batch={"N": 4})
    assert info.value.span.line == 4


def test_a_params_only_batch_fit_reports_the_whole_data_log_joint():
    # its last window's mean is of batch estimates: -124.80 on the params audit's model where
    # the whole data's log joint at the returned params was -123.91
    model = ppl.compile("data N: int\ndata y: real[N]\nparam mu: real\n"
                        "param s: real<lower=0>\nobserve y ~ Normal(mu, s)\n")
    y = np.random.default_rng(0).normal(2.0, 3.0, 40)
    fit = model.fit({"N": 40, "y": y}, batch={"N": 10}, iter=300, lr=0.05)
    mu, s = fit.params()["mu"], fit.params()["s"]
    whole = np.sum(-0.5 * ((y - mu) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi))
    assert fit.result.final_elbo == pytest.approx(whole, rel=1e-12)
    assert f"final log joint {whole:.6g}" in fit.convergence_line()


def test_the_verdict_after_a_batch_fit_names_no_family_the_batch_refuses():
    # z is batched and has no guide statement: --batch fits it by mean field only, so the
    # verdict's 'try --guide flow' was refused when followed ('needs --guide meanfield')
    model = ppl.compile(LOCAL)
    rng = np.random.default_rng(0)
    data = {"N": 40, "y": rng.standard_normal(40), "x": rng.standard_normal(40)}
    line = model.fit(data, batch={"N": 10}, iter=100, lr=0.01).verdict().line
    assert "; try --guide flow without --batch;" in line
    with pytest.raises(PplError, match="needs --guide meanfield"):
        model.fit(data, guide="flow", batch={"N": 10}, iter=1)
    # an amortized z leaves the other latents to --guide, which --batch then takes
    amortized = ppl.compile(AMORTIZED).fit({"N": 40, "y": data["y"]}, batch={"N": 10},
                                           iter=100, lr=0.01)
    assert "without --batch" not in amortized.verdict().line


def test_a_batch_fit_whose_guide_scale_collapsed_is_not_called_usable():
    # z's scale exp(-700) = 1e-304 next to locs of order 1: every draw of z rounds to its
    # loc. After --batch, log q was recomputed at the draws, the same at all of them, so
    # every weight tied: k̂ -inf, 'usable with care', importance-corrected at an ESS of all
    # the draws (a VAE at --batch N=64 --lr 2, its ELBO -8.6e6 against -6.5e4 at step 1).
    # From the draws' own noise log q varies as the guide's density does (its sd of
    # log q is sqrt(N / 2) nats): the weights have that density's heavy tail
    import dataclasses
    from ppl.posterior import Fit
    # z's guide is the only draw (a VAE's): s's would have kept the weights apart
    model = ppl.compile(AMORTIZED.replace("sample s: real<lower=0> ~ Normal(0, 2)",
                                          "data s: real"))
    y = np.random.default_rng(0).standard_normal(40) + 3.0
    fit = model.fit({"N": 40, "y": y, "s": 1.0}, batch={"N": 10}, iter=100, lr=0.01)
    theta = np.array(fit.result.theta)
    theta[-1] = -700.0                      # w[1], the log scale of z's guide
    collapsed = Fit(fit.model, fit.compiled, dataclasses.replace(fit.result, theta=theta),
                    fit.options, fit.info)
    z = [i for i, name in enumerate(fit.result.names) if name.startswith("z[")]
    zeta = collapsed._zeta(1000)[:, z]
    assert len(z) == 40 and np.all(zeta == zeta[0])    # every draw of z is the same
    assert np.ptp(collapsed.log_weights(1000)) > 1.0
    assert collapsed.khat > 0.7 and collapsed.verdict().level == "unreliable"
