"""The batched-axis check of --batch (infer/batchaxis.py): what a minibatch cannot compute from
its rows is a located error; row-wise computations pass.

Golden cases: each tests/cases/bad_batch/*.ppl starts with ``# expect: LINE:COL: MESSAGE`` (the
text after ``error: `` on the first line of the error) and ``# batch: DIM``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ppl.errors import PplError
from ppl.frontend.check import check
from ppl.frontend.parse import parse
from ppl.infer import batchaxis

ROOT = Path(__file__).resolve().parents[2]
BAD = sorted((ROOT / "tests" / "cases" / "bad_batch").glob("*.ppl"))
EXPECT = re.compile(r"# expect: (\d+):(\d+): (.+)$")


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_batch_case_reports_its_error(path):
    text = path.read_text(encoding="utf-8")
    first, second = text.splitlines()[:2]
    line, col, message = EXPECT.match(first).groups()
    dim = re.match(r"# batch: (\w+)$", second).group(1)
    model = check(parse(text, str(path)))     # the model itself is fine without --batch
    with pytest.raises(PplError) as info:
        batchaxis.refuse(model, dim)
    assert str(info.value).splitlines()[0] == f"{path}:{line}:{col}: error: {message}"


def test_there_are_bad_batch_cases():
    assert len(BAD) >= 12


HEAD = """data N: int
data K: int
data x: real[N]
data y: real[N]
data X: real[N, K]
data g: int<lower=0, upper=K - 1>[N]
sample z: real[N] ~ Normal(0, 1)
sample Z: real[N, K] ~ Normal(0, 1)
sample w: real[K] ~ Normal(0, 1)
sample W: real[K, K] ~ Normal(0, 1)
"""

ROW_WISE = [
    "observe y ~ Normal(z + x * w[0], 1)",
    "observe y ~ Normal(sum(Z, axis=1), 1)",              # a reduction over another axis
    "observe y ~ Normal(mean(Z * X, axis=-1), 1)",
    "observe y ~ Normal(log_softmax(Z)[:, 0], 1)",        # softmax along each row
    "observe y ~ Normal(cumsum(X @ W)[:, 0] + z, 1)",
    "observe y ~ Normal(X @ w, 1)",                        # rows of the left operand
    "observe y ~ Normal(transpose(W @ transpose(Z))[:, 1], 1)",
    "observe y ~ Normal(dot(Z, X) + w[g], 1)",             # a gather by a row index
    "observe y ~ Normal(stack(z, x, axis=1)[:, 0], 1)",
    "observe y ~ Normal(concat(Z, X, axis=1)[:, 0], 1)",
    "observe y ~ Normal(where(x > 0, z, -z), exp(w[0]))",
    "factor lpdf(Normal(0, 1), Z[:, newaxis, 0])",
    "factor -square(z)",
    "let t = z[:, newaxis] * w\nobserve y ~ Normal(t[:, 0], 1)",
    "factor lpdf(Dirichlet(exp(Z)), softmax(Z))",         # one value per row's event
    # a matrix function of each row's matrix: log_det drops both axes, diagonal one
    "sample A: real[N, K, K] ~ Normal(0, 1)\nfactor log_det(A) + sum(diagonal(A), axis=1)",
    # index arrays separated by a slice: numpy puts their (row) axis first
    "sample V: real[K, K, K] ~ Normal(0, 1)\nobserve X ~ Normal(V[g, :, 0], 1)",
    # a new first axis: the rows move to the second, and [0] takes along the new one
    "observe y ~ Normal(stack(z, x)[0], 1)",
]


@pytest.mark.parametrize("line", ROW_WISE)
def test_row_wise_statements_pass(line):
    batchaxis.refuse(check(parse(HEAD + line)), "N")


MIXING = [
    ("observe y ~ Normal(z - mean(z), 1)", "mean(z)"),
    ("observe y ~ Normal(sum(transpose(Z), axis=-1)[0] + z, 1)", "sum(transpose(Z), axis=-1)"),
    ("observe y ~ Normal(log_softmax(transpose(Z))[0], 1)", "log_softmax(transpose(Z))"),
    ("observe y ~ Normal(z[0] + z, 1)", "z[0]"),
    ("factor -sum(z @ X)", "z @ X"),
    ("observe y ~ Normal(dot(transpose(Z), transpose(X))[0] + z, 1)", "dot("),
    ("observe y ~ Normal(concat(z, z)[:N], 1)", "concat(z, z)"),
    ("observe y ~ Normal(reshape(Z, [K, N])[0], 1)", "reshape(Z, [K, N])"),
    ("observe y ~ Normal(diagonal(outer(z, z)), 1)", "outer(z, z)"),
    ("factor -square(concat(z, x))", "concat(z, x)"),       # along the rows
    ("factor -square(concat(z, x, axis=-1))", "concat(z, x, axis=-1)"),   # so counted from the end
    ("factor -square(reshape(Z, [K, N]))", "reshape("),      # rows no longer first
    ("factor -square(z[1:])", "z[1:]"),                      # a slice of the rows
    ("factor -square(Z[:, g])", "Z[:, g]"),                  # rows paired with an index's rows
    # a negative axis of a 1-D value is its rows (silently passed as a row-wise value)
    ("observe y ~ Normal(z - mean(z, axis=-1), 1)", "mean(z, axis=-1)"),
    # a 1-D right operand's only axis is contracted (the check lets K meet N: both known
    # only from the data)
    ("factor -square(W @ z)", "W @ z"),
    # a guide's loc or scale over rows for a latent without them
    ("guide w ~ Normal(x, 1)", "x, 1)"),
]


@pytest.mark.parametrize("line, where", MIXING)
def test_mixing_rows_is_located_at_the_expression(line, where):
    text = HEAD + line
    with pytest.raises(PplError, match="combines rows of the batched dimension 'N'") as info:
        batchaxis.refuse(check(parse(text)), "N")
    span = info.value.span
    assert span.line == 11 and line[span.col - 1:].startswith(where)


@pytest.mark.parametrize("name", ["vae_digits", "bnn_regression", "linear_regression",
                                  "hierarchical_intercepts", "mixture"])
def test_example_models_batch_over_their_rows(name):
    path = ROOT / "models" / f"{name}.ppl"
    batchaxis.refuse(check(parse(path.read_text(encoding="utf-8"), str(path))), "N")


OTHER = HEAD + "data M: int\ndata u: real[M]\ndata U: real[M, K]\n"
ON_ROWS = [     # a value of another dimension (of N's length in the data) lined up with rows
    ("observe u ~ Normal(z, 1)", "u ~"),
    ("observe y ~ Normal(z + u, 1)", "u, 1)"),
    ("observe y ~ Normal(where(x > 0, u, z), 1)", "u, z)"),
    ("observe y ~ Normal(z, exp(u))", "exp(u)"),
    ("factor lpdf(Normal(u, 1), z)", "u, 1)"),
    ("observe y ~ Normal(sum(Z * U, axis=1), 1)", "U, axis"),
    ("sample v: real[M] ~ Normal(z, 1)", "sample v"),
    ("observe y ~ Normal(w[g] + u[:, newaxis][:, 0] * z, 1)", "u[:, newaxis][:, 0]"),
    ("observe X ~ MvNormal(U, W)", "U, W)"),                 # a batch axis of an event's mean
    # a batch axis of a matmul (Z's rows on the third axis from the end)
    ("observe y ~ Normal((Z[:, newaxis, :] @ U[:, :, newaxis])[:, 0, 0], 1)", "U[:, :, newaxis]"),
]


@pytest.mark.parametrize("line, where", ON_ROWS)
def test_another_dimension_on_the_rows_is_located_at_its_value(line, where):
    # A step takes the batch's rows of values declared on N only: u [M] would stay whole, so
    # with M = N its elements would be paired with the batch's rows (at B = 1 by broadcasting,
    # without any error: a biased ELBO)
    with pytest.raises(PplError, match="broadcast against the rows of 'N' on an axis that is "
                                       "not 'N'") as info:
        batchaxis.refuse(check(parse(OTHER + line)), "N", {"N": 12, "K": 3, "M": 12})
    span = info.value.span
    assert span.line == 14 and line[span.col - 1:].startswith(where)


@pytest.mark.parametrize("line", ["sample V: real[K, N] ~ Normal(0, 1)",
                                  "param P: real[K, N] ~ Normal(0, 1)"])
def test_the_batched_dimension_after_the_first_axis_is_refused(line):
    with pytest.raises(PplError, match="'[VP]' has the batched dimension 'N' on an axis other "
                                       "than its first") as info:
        batchaxis.refuse(check(parse(HEAD + line)), "N")
    assert (info.value.span.line, info.value.span.col) == (11, 1)


def test_a_dimension_of_length_one_broadcasts_against_the_rows():
    model = check(parse(OTHER + "observe y ~ Normal(z + u, 1)"))
    batchaxis.refuse(model, "N", {"N": 12, "K": 3, "M": 1})
    with pytest.raises(PplError, match="not 'N'"):      # its length unknown: refused
        batchaxis.refuse(model, "N")
