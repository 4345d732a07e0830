"""to_source / expr_to_source: printing an AST and parsing it again gives the same AST."""
import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppl.frontend import syntax
from ppl.frontend.parse import parse
from ppl.frontend.printer import expr_to_source, to_source

REPO = Path(__file__).resolve().parents[2]


def _load_test_parse():
    # By path, so this works whatever package layout the tests directory has.
    spec = importlib.util.spec_from_file_location(
        "_ppl_test_parse_tables", Path(__file__).with_name("test_parse.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_TABLES = _load_test_parse()


def _model_paths():
    return sorted((REPO / "models").glob("*.ppl")) + \
        sorted((REPO / "models" / "posteriordb").glob("*.ppl"))


def _roundtrips(text):
    program = parse(text)
    printed = to_source(program)
    assert parse(printed) == program
    assert to_source(parse(printed)) == printed  # printing is a fixed point


@pytest.mark.parametrize("path", _model_paths(), ids=lambda p: p.name)
def test_model_file_roundtrips(path):
    _roundtrips(path.read_text(encoding="utf-8"))


def test_eight_schools_roundtrips():
    _roundtrips(_TABLES.EIGHT_SCHOOLS)


@pytest.mark.parametrize("text", _TABLES.VALID_TEXTS)
def test_valid_snippet_roundtrips(text):
    _roundtrips(text)


@pytest.mark.parametrize("text, printed", [
    ("a+b*c", "a + b * c"),
    ("(a+b)*c", "(a + b) * c"),
    ("a-(b-c)", "a - (b - c)"),
    ("(a-b)-c", "a - b - c"),
    ("-x**2", "-x ** 2"),
    ("(-x)**2", "(-x) ** 2"),
    ("2**-1", "2 ** -1"),
    ("(a**b)**c", "(a ** b) ** c"),
    ("a**(b**c)", "a ** b ** c"),
    ("-(a*b)", "-(a * b)"),
    ("(-a)*b", "-a * b"),
    ("a - (-b)", "a - -b"),
    ("(x + 1)[0]", "(x + 1)[0]"),
    ("(-x)[0]", "(-x)[0]"),
    ("X[:, 1:]", "X[:, 1:]"),
    ("y[ : -1 ]", "y[:-1]"),
    ("sum(x,axis=0)", "sum(x, axis=0)"),
    (".5", ".5"),
    ("(a<b)+c", "(a < b) + c"),
    ("a+1<b", "a + 1 < b"),
    ("(a<b)<c", "(a < b) < c"),
    ("a<(b<c)", "a < (b < c)"),
    ("[ 1,[a,b] ]", "[1, [a, b]]"),
    ("x[ :,newaxis ]", "x[:, newaxis]"),
])
def test_expression_printed_canonically(text, printed):
    assert expr_to_source(parse(f"let v = {text}").statements[0].value) == printed


def test_comparison_bound_printed_in_parentheses():
    text = "data s: real<lower=(0 < 1)>\nfactor -x\nsample c: ordered[3] ~ Normal(0, 1)\n"
    assert to_source(parse(text)) == text


def test_comparison_upper_bound_printed_in_parentheses():
    text = "data s: real<lower=0, upper=(a == b)>\nparam w: real<upper=(a < b)>[2]\n"
    assert to_source(parse(text)) == text


@pytest.mark.parametrize("value, printed", [(3, "3"), (0.1, "0.1"), (2.0, "2.0")])
def test_number_built_in_code_prints_its_kind(value, printed):
    # a node without source text (built in code) prints the shortest text that reads back
    # as the same kind: an int without '.', a float with one
    number = syntax.Number(value, isinstance(value, int), None, None)
    assert expr_to_source(number) == printed
    assert parse(f"let v = {printed}").statements[0].value == number


def test_program_printed_canonically():
    text = "data s:real<lower=0,upper=1>[ N,3 ]\nsample m:real[N]~Normal(0,1)\nobserve y~N(m,s)"
    assert to_source(parse(text)) == (
        "data s: real<lower=0, upper=1>[N, 3]\n"
        "sample m: real[N] ~ Normal(0, 1)\n"
        "observe y ~ N(m, s)\n")


# ----- property: random expression ASTs survive print -> parse ------------------------------

_NAMES = st.sampled_from(["x", "y", "mu", "_z", "alpha2", "N"])


def _number(value):
    text = str(value) if isinstance(value, int) else repr(value)
    return syntax.Number(value, isinstance(value, int), text, None)


_LEAVES = st.one_of(
    _NAMES.map(lambda n: syntax.Name(n, None)),
    st.integers(0, 10**6).map(_number),
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False).map(_number),
)


def _compound(children):
    slices = st.builds(lambda a, b: syntax.Slice(a, b, None),
                       st.none() | children, st.none() | children)
    keywords = st.builds(lambda n, v: syntax.Keyword(n, v, None), _NAMES, children)
    return st.one_of(
        st.builds(lambda e: syntax.Unary("-", e, None), children),
        st.builds(lambda op, a, b: syntax.Binary(op, a, b, None),
                  st.sampled_from(["+", "-", "*", "/", "@", "**", "<", "<=", ">", ">=",
                                   "==", "!="]), children, children),
        st.builds(lambda b, items: syntax.Index(b, tuple(items), None),
                  children, st.lists(children | slices | st.just(syntax.NewAxis(None)),
                                     min_size=1, max_size=3)),
        st.builds(lambda items: syntax.Vector(tuple(items), None),
                  st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda f, args, kws: syntax.Call(f, tuple(args), tuple(kws), None, None),
                  _NAMES, st.lists(children, max_size=3), st.lists(keywords, max_size=2)),
    )


EXPRS = st.recursive(_LEAVES, _compound, max_leaves=25)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(EXPRS)
def test_random_expression_roundtrips(expr):
    program = syntax.Program((syntax.Let("v", expr, None, None),), None)
    assert parse(to_source(program)) == program
