"""parse(): valid snippets -> expected ASTs, spans, syntax error messages, and a fuzz property."""
import dataclasses
import functools
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppl.errors import PplError
from ppl.frontend import syntax
from ppl.frontend.parse import parse

REPO = Path(__file__).resolve().parents[2]

EIGHT_SCHOOLS = """\
# Eight schools, non-centered
data J: int
data y: real[J]
data sigma: real<lower=0>[J]

sample mu ~ Normal(0, 5)
sample tau ~ HalfCauchy(5)
sample eta: real[J] ~ Normal(0, 1)
let theta = mu + tau * eta
observe y ~ Normal(theta, sigma)
"""


# ----- AST builders (spans are excluded from ==, so None stands in) -------------------------

def num(value, text=None):
    text = str(value) if text is None else text
    return syntax.Number(value, not any(c in text for c in ".eE"), text, None)


def nm(id_):
    return syntax.Name(id_, None)


def neg(operand):
    return syntax.Unary("-", operand, None)


def bi(op, left, right):
    return syntax.Binary(op, left, right, None)


def ix(base, *items):
    return syntax.Index(base, tuple(items), None)


def sl(start=None, stop=None):
    return syntax.Slice(start, stop, None)


def call(func, *args, **kwargs):
    keywords = tuple(syntax.Keyword(k, v, None) for k, v in kwargs.items())
    return syntax.Call(func, tuple(args), keywords, None, None)


def ty(elem, dims=(), lower=None, upper=None):
    return syntax.Type(elem, lower, upper, tuple(dims), None)


def prog(*statements):
    return syntax.Program(tuple(statements), None)


def data(name, type_):
    return syntax.Data(name, type_, None, None)


def sample(name, type_, dist):
    return syntax.Sample(name, type_, dist, None, None)


def let(name, value):
    return syntax.Let(name, value, None, None)


def observe(value, dist):
    return syntax.Observe(value, dist, None)


# ----- expressions: `let v = TEXT` parses to `let v = EXPECTED` -----------------------------

def vec(*items):
    return syntax.Vector(tuple(items), None)


NEWAXIS = syntax.NewAxis(None)


EXPRESSIONS = [
    ("a < b", bi("<", nm("a"), nm("b"))),
    ("a + 1 >= b * 2", bi(">=", bi("+", nm("a"), num(1)), bi("*", nm("b"), num(2)))),
    ("(a == b) != c", bi("!=", bi("==", nm("a"), nm("b")), nm("c"))),
    ("x <= -1", bi("<=", nm("x"), neg(num(1)))),
    ("a > b", bi(">", nm("a"), nm("b"))),
    ("[1, 2.5]", vec(num(1), num(2.5))),
    ("[[1, 0], [0, 1]]", vec(vec(num(1), num(0)), vec(num(0), num(1)))),
    ("[a]", vec(nm("a"))),
    ("[a, b][0]", ix(vec(nm("a"), nm("b")), num(0))),
    ("x[:, newaxis]", ix(nm("x"), sl(), NEWAXIS)),
    ("x[newaxis]", ix(nm("x"), NEWAXIS)),
    ("lpdf(Normal(0, 1), y)", call("lpdf", call("Normal", num(0), num(1)), nm("y"))),
    ("3", num(3)),
    ("0.5", num(0.5)),
    (".5", num(0.5, ".5")),
    ("1e-3", num(1e-3, "1e-3")),
    ("2.5E+4", num(2.5e4, "2.5E+4")),
    ("1E3", num(1000.0, "1E3")),  # an upper-case E without '.' is a real too
    ("x", nm("x")),
    ("_eta2", nm("_eta2")),
    ("database + integer", bi("+", nm("database"), nm("integer"))),  # keywords as prefixes
    ("(x)", nm("x")),
    ("a + b - c", bi("-", bi("+", nm("a"), nm("b")), nm("c"))),
    ("a - (b - c)", bi("-", nm("a"), bi("-", nm("b"), nm("c")))),
    ("a + b * c", bi("+", nm("a"), bi("*", nm("b"), nm("c")))),
    ("(a + b) * c", bi("*", bi("+", nm("a"), nm("b")), nm("c"))),
    ("a * b / c @ d", bi("@", bi("/", bi("*", nm("a"), nm("b")), nm("c")), nm("d"))),
    ("X @ beta + alpha", bi("+", bi("@", nm("X"), nm("beta")), nm("alpha"))),
    ("-x", neg(nm("x"))),
    ("--x", neg(neg(nm("x")))),
    ("-x * y", bi("*", neg(nm("x")), nm("y"))),
    ("x * -y", bi("*", nm("x"), neg(nm("y")))),
    ("a - -b", bi("-", nm("a"), neg(nm("b")))),
    ("-x ** 2", neg(bi("**", nm("x"), num(2)))),
    ("-2**2", neg(bi("**", num(2), num(2)))),
    ("(-2) ** 2", bi("**", neg(num(2)), num(2))),
    ("2 ** -1", bi("**", num(2), neg(num(1)))),
    ("a ** b ** c", bi("**", nm("a"), bi("**", nm("b"), nm("c")))),
    ("(a ** b) ** c", bi("**", bi("**", nm("a"), nm("b")), nm("c"))),
    ("a * b ** c", bi("*", nm("a"), bi("**", nm("b"), nm("c")))),
    ("x[i] ** 2", bi("**", ix(nm("x"), nm("i")), num(2))),
    ("-x[0]", neg(ix(nm("x"), num(0)))),
    ("x[i]", ix(nm("x"), nm("i"))),
    ("x[i, j]", ix(nm("x"), nm("i"), nm("j"))),
    ("x[i][j]", ix(ix(nm("x"), nm("i")), nm("j"))),
    ("alpha[county]", ix(nm("alpha"), nm("county"))),
    ("x[1:]", ix(nm("x"), sl(num(1)))),
    ("x[:-1]", ix(nm("x"), sl(None, neg(num(1))))),
    ("x[a:b]", ix(nm("x"), sl(nm("a"), nm("b")))),
    ("x[:]", ix(nm("x"), sl())),
    ("X[:, 0]", ix(nm("X"), sl(), num(0))),
    ("y[K - 1:T - 1]", ix(nm("y"), sl(bi("-", nm("K"), num(1)), bi("-", nm("T"), num(1))))),
    ("f()", call("f")),
    ("exp(x)", call("exp", nm("x"))),
    ("sum(x, axis=0)", call("sum", nm("x"), axis=num(0))),
    ("f(a, b, c=1, d=x + 1)",
     call("f", nm("a"), nm("b"), c=num(1), d=bi("+", nm("x"), num(1)))),
    ("Bernoulli(logit=x)", call("Bernoulli", logit=nm("x"))),
    ("Uniform(lower=0, upper=1)", call("Uniform", lower=num(0), upper=num(1))),
    ("f(x)[0]", ix(call("f", nm("x")), num(0))),
    ("log(sum(exp(x - m))) + m",
     bi("+", call("log", call("sum", call("exp", bi("-", nm("x"), nm("m"))))), nm("m"))),
    ("(a +\n  b)", bi("+", nm("a"), nm("b"))),
    ("f(\n  a,\n  # a comment inside brackets\n  b\n)", call("f", nm("a"), nm("b"))),
    ("x[\n0\n]", ix(nm("x"), num(0))),
]


@pytest.mark.parametrize("text, expected", EXPRESSIONS, ids=[t for t, _ in EXPRESSIONS])
def test_expression_parses_to_expected_ast(text, expected):
    assert parse(f"let v = {text}") == prog(let("v", expected))


@pytest.mark.parametrize("text, value, is_int", [
    ("3", 3, True), ("0.5", 0.5, False), (".5", 0.5, False), ("1e-3", 1e-3, False),
    ("2.5E+4", 25000.0, False), ("10", 10, True), ("1.", 1.0, False), ("1E3", 1000.0, False)])
def test_number_value_and_kind(text, value, is_int):
    number = parse(f"let v = {text}").statements[0].value
    assert (number.value, number.is_int, number.text) == (value, is_int, text)
    assert type(number.value) is (int if is_int else float)


def test_an_int_literal_of_as_many_digits_as_python_reads_is_an_int():
    # Python's int() reads at most 4300 digits; one more is refused as ours, not its ValueError
    assert parse("let v = " + "9" * 4300).statements[0].value.value == 10 ** 4300 - 1
    with pytest.raises(PplError, match="too many digits"):
        parse("let v = " + "9" * 4301)


def test_an_int_literal_beyond_a_lower_digit_limit_set_for_python_is_located():
    # PYTHONINTMAXSTRDIGITS=640 lowers int()'s limit below ours: its ValueError was a traceback
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        with pytest.raises(PplError) as caught:
            parse("let v = " + "9" * 700, "m.ppl")
    finally:
        sys.set_int_max_str_digits(limit)
    assert str(caught.value).splitlines()[0] == (
        "m.ppl:1:9: error: syntax error: bad number '99999999999999999...': too many digits")


@pytest.mark.parametrize("text, value", [
    ("1234567890", 1234567890), ("0.0123456789", 0.0123456789), (".5e-3", 5e-4),
    ("2.5E+4", 25000.0), ("7e09", 7e9), ("0", 0)])
def test_numbers_written_with_every_ascii_digit_keep_their_value(text, value):
    number = parse(f"let v = {text}").statements[0].value
    assert number.value == value and type(number.value) is type(value)


@pytest.mark.parametrize("text, col, found", [
    ("let z = \u0663", 9, "character '\u0663'"),  # Arabic-Indic three: was the number 3
    ("let z = 1\u0663", 10, "character '\u0663'"),  # was the number 13
    ("let z = \uff13.\uff15", 9, "character '\uff13'"),  # fullwidth 3.5: was the number 3.5
    ("let z = x\u0663", 10, "character '\u0663'"),  # was "unexpected number"
    ("let z = 2.5E+\u0664", 12, "name 'E'"),  # the number is 2.5; its exponent has no digit
])
def test_a_digit_outside_ascii_is_a_located_syntax_error(text, col, found):
    # Numbers are ASCII (LANGUAGE.md, Lexical rules), as in data files; the lexer's \d matched
    # any Unicode decimal digit, and Python's int() and float() read them.
    with pytest.raises(PplError) as caught:
        parse(text, "m.ppl")
    assert str(caught.value).splitlines()[0].startswith(
        f"m.ppl:1:{col}: error: syntax error: unexpected {found}")


@pytest.mark.parametrize("text", ["let z = \u0663", "let z = \uff13.\uff15"])
def test_a_digit_outside_ascii_gets_a_hint(text):
    # as a letter outside ASCII does: the message alone names only the character
    with pytest.raises(PplError) as caught:
        parse(text, "m.ppl")
    assert caught.value.hint == "numbers are written with the ASCII digits 0-9, as in data files"


def test_the_ast_compares_numbers_by_value_not_by_their_text():
    assert parse("let v = 1.0") == parse("let v = 1.") == parse("let v = 1e0")
    assert parse("let v = 1") != parse("let v = 1.0")  # an int and a real differ


def test_the_ast_is_immutable_and_hashable():
    kinds = [k for k in vars(syntax).values()
             if dataclasses.is_dataclass(k) and k.__module__ == syntax.__name__]
    assert len(kinds) >= 19 and all(k.__dataclass_params__.frozen for k in kinds)
    assert hash(parse(EIGHT_SCHOOLS)) == hash(parse(EIGHT_SCHOOLS))


# ----- statements and whole programs --------------------------------------------------------

PROGRAMS = [
    ("data N: int", prog(data("N", ty("int")))),
    ("data y: real[N]", prog(data("y", ty("real", [nm("N")])))),
    ("data X: real[N, 3]", prog(data("X", ty("real", [nm("N"), num(3)])))),
    ("data s: real<lower=0>", prog(data("s", ty("real", lower=num(0))))),
    ("data s: real<upper=-1>[J]", prog(data("s", ty("real", [nm("J")], upper=neg(num(1)))))),
    ("data p: real<lower=0, upper=1>[N, K]",
     prog(data("p", ty("real", [nm("N"), nm("K")], lower=num(0), upper=num(1))))),
    ("data c: int<lower=0, upper=n - 1>[N]",
     prog(data("c", ty("int", [nm("N")], lower=num(0), upper=bi("-", nm("n"), num(1)))))),
    ("sample mu ~ Normal(0, 5)", prog(sample("mu", None, call("Normal", num(0), num(5))))),
    ("sample eta: real[J] ~ Normal(0, 1)",
     prog(sample("eta", ty("real", [nm("J")]), call("Normal", num(0), num(1))))),
    ("sample phi: real<lower=-1, upper=1> ~ Normal(0, 0.5)",
     prog(sample("phi", ty("real", lower=neg(num(1)), upper=num(1)),
                 call("Normal", num(0), num(0.5))))),
    ("let theta = mu + tau * eta",
     prog(let("theta", bi("+", nm("mu"), bi("*", nm("tau"), nm("eta")))))),
    ("observe y[1:] ~ Normal(mu, sigma)",
     prog(observe(ix(nm("y"), sl(num(1))), call("Normal", nm("mu"), nm("sigma"))))),
    ("observe y ~ Poisson(log_rate=a + b)",
     prog(observe(nm("y"), call("Poisson", log_rate=bi("+", nm("a"), nm("b")))))),
    ("factor -x ** 2", prog(syntax.Factor(neg(bi("**", nm("x"), num(2))), None))),
    ("sample c: ordered[K] ~ Normal(0, 5)",
     prog(sample("c", ty("ordered", [nm("K")]), call("Normal", num(0), num(5))))),
    ("sample c: positive_ordered[3] ~ Exponential(1)",
     prog(sample("c", ty("positive_ordered", [num(3)]), call("Exponential", num(1))))),
    ("data b: real<lower=(1 < 2)>", prog(data("b", ty("real", lower=bi("<", num(1), num(2)))))),
    ("", prog()),
    ("\n\n# only a comment\n", prog()),
    ("data N: int  # trailing comment\n\n\n# between\n  let z = N\n",
     prog(data("N", ty("int")), let("z", nm("N")))),
    ("data N: int\r\nlet z = N\r\n", prog(data("N", ty("int")), let("z", nm("N")))),
    ("let z = (1 +\n  2)\nlet w = z", prog(let("z", bi("+", num(1), num(2))), let("w", nm("z")))),
    (EIGHT_SCHOOLS, prog(
        data("J", ty("int")),
        data("y", ty("real", [nm("J")])),
        data("sigma", ty("real", [nm("J")], lower=num(0))),
        sample("mu", None, call("Normal", num(0), num(5))),
        sample("tau", None, call("HalfCauchy", num(5))),
        sample("eta", ty("real", [nm("J")]), call("Normal", num(0), num(1))),
        let("theta", bi("+", nm("mu"), bi("*", nm("tau"), nm("eta")))),
        observe(nm("y"), call("Normal", nm("theta"), nm("sigma"))))),
]


@pytest.mark.parametrize("text, expected", PROGRAMS, ids=[t[:40] for t, _ in PROGRAMS])
def test_program_parses_to_expected_ast(text, expected):
    assert parse(text) == expected


def test_last_line_needs_no_newline():
    assert parse("data N: int") == parse("data N: int\n")


# Every valid snippet above, as a whole program text (test_printer round-trips these).
VALID_TEXTS = [f"let v = {t}" for t, _ in EXPRESSIONS] + [t for t, _ in PROGRAMS]


# ----- spans --------------------------------------------------------------------------------

def _where(span):
    return (span.line, span.col, span.end_line, span.end_col)


def test_statement_and_name_spans():
    program = parse("data N: int\nsample mu: real<lower=0> ~ Normal(0, 1)\n", "m.ppl")
    data_, sample_ = program.statements
    assert _where(data_.span) == (1, 1, 1, 12)
    assert _where(data_.name_span) == (1, 6, 1, 7)
    assert _where(sample_.span) == (2, 1, 2, 40)
    assert _where(sample_.name_span) == (2, 8, 2, 10)
    assert _where(sample_.type.span) == (2, 12, 2, 25)
    assert _where(sample_.dist.func_span) == (2, 28, 2, 34)
    assert sample_.span.source.path == "m.ppl"


def test_let_param_and_guide_name_spans_and_the_program_span():
    program = parse("data N: int\nlet a = 1\nparam w: real\nsample z ~ Normal(0, 1)\n"
                    "guide z ~ Normal(w, 1)\n")
    assert [_where(s.name_span) for s in program.statements] == [
        (1, 6, 1, 7), (2, 5, 2, 6), (3, 7, 3, 8), (4, 8, 4, 9), (5, 7, 5, 8)]
    assert _where(program.span) == (1, 1, 6, 1)  # the whole text, to the empty last line
    assert _where(parse("data N: int").span) == (1, 1, 1, 12)


def test_expression_spans_include_parentheses_of_their_operands():
    value = parse("let t = (a + b) * c[1:, :]").statements[0].value
    assert _where(value.span) == (1, 9, 1, 27)
    assert _where(value.left.span) == (1, 10, 1, 15)  # the grouped node keeps its own span
    assert _where(value.right.items[0].span) == (1, 21, 1, 23)
    assert _where(value.right.items[1].span) == (1, 25, 1, 26)


def test_spans_across_lines_and_keyword_span():
    observe_ = parse("observe f(\n  y) ~ N(x, s=1)\n").statements[0]
    assert _where(observe_.span) == (1, 1, 2, 17)
    assert _where(observe_.value.span) == (1, 9, 2, 5)
    assert _where(observe_.dist.kwargs[0].span) == (2, 13, 2, 16)


def test_deep_nesting_is_not_a_recursion_error():
    depth = 5000
    value = parse("let v = " + "(" * depth + "-" * depth + "1" + ")" * depth).statements[0].value
    for _ in range(depth):
        value = value.operand
    assert value.value == 1


# ----- syntax errors ------------------------------------------------------------------------

SYNTAX_ERRORS = [
    ("sample mu Normal(0, 1)",
     "m.ppl:1:11: error: syntax error: unexpected name 'Normal'; expected ':', '~'"),
    ("let z = (mu + 1))",
     "m.ppl:1:17: error: syntax error: unexpected ')'; expected a newline, end of file"),
    ("let z = (mu + 1",
     "m.ppl:1:16: error: syntax error: unexpected end of file; expected ')'"),
    ("let z = 1.2.3",
     "m.ppl:1:12: error: syntax error: unexpected number '.3'; "
     "expected '[', a newline, an operator, end of file"),
    ("let z = mu $ 2", "m.ppl:1:12: error: syntax error: unexpected character '$'"),
    ("let data = 1", "m.ppl:1:5: error: syntax error: unexpected keyword 'data'; expected a name"),
    ("let v = a < b < c", "m.ppl:1:15: error: comparisons cannot be chained"),
    ("let v = a == b > c <= d", "m.ppl:1:16: error: comparisons cannot be chained"),
    ("let v = []", "m.ppl:1:10: error: syntax error: unexpected ']'; expected '(', '-', '[', "
                   "a name, a number"),
    ("let newaxis = 1", "m.ppl:1:5: error: syntax error: unexpected keyword 'newaxis'; "
                        "expected a name"),
    # the '_' made it "unexpected 'positive_ordered'", not named a keyword as 'ordered' is
    ("let positive_ordered = 1", "m.ppl:1:5: error: syntax error: unexpected keyword "
                                 "'positive_ordered'; expected a name"),
    ("data y:\n", "m.ppl:1:8: error: syntax error: unexpected newline; expected 'int', 'ordered', 'positive_ordered', 'real'"),
    ("observe y ~\n", "m.ppl:1:12: error: syntax error: unexpected newline; expected a name"),
    ("observe y", "m.ppl:1:10: error: syntax error: unexpected end of file; expected '~'"),
    ("let z = sum(y[1:\n",
     "m.ppl:2:1: error: syntax error: unexpected end of file; "
     "expected '(', ',', '-', '[', ']', a name, a number"),
    ("data N: int data y: real",
     "m.ppl:1:13: error: syntax error: unexpected keyword 'data'; "
     "expected '<', '[', a newline, end of file"),
    ("data s: real<lower 0>",
     "m.ppl:1:20: error: syntax error: unexpected number '0'; expected '='"),
    ("let z = f(a=1, 2)", "m.ppl:1:16: error: syntax error: unexpected number '2'; expected a name"),
    ("sample mu ~ 3", "m.ppl:1:13: error: syntax error: unexpected number '3'; expected a name"),
    ("let z = y[]",
     "m.ppl:1:11: error: syntax error: unexpected ']'; expected '(', '-', ':', '[', 'newaxis', a name, a number"),
    ("x", "m.ppl:1:1: error: syntax error: unexpected name 'x'; "
          "expected 'data', 'factor', 'guide', 'let', 'observe', 'param', 'sample', a newline, "
          "end of file"),
    ("let z = 1\rlet w = 2", "m.ppl:1:10: error: syntax error: unexpected character '\\r'"),
    ("let z = " + "9" * 5000,
     "m.ppl:1:9: error: syntax error: bad number '99999999999999999...': too many digits"),
]


@pytest.mark.parametrize("text, message", SYNTAX_ERRORS, ids=[t[:30] for t, _ in SYNTAX_ERRORS])
def test_syntax_error_message(text, message):
    with pytest.raises(PplError) as caught:
        parse(text, "m.ppl")
    assert str(caught.value).splitlines()[0] == message


@pytest.mark.parametrize("text, hint", [
    # a bracket left open makes the next lines part of its expression (newlines inside
    # brackets are skipped), so the error lands on a later line that has no mistake: the
    # hint names the bracket that is the mistake
    ("sample mu ~ Normal(0, 10\nobserve y ~ Normal(mu, 2)\n",
     "the '(' on line 1, column 19 is not closed"),
    ("let z = sum(y[1:\n", "the '[' on line 1, column 14 is not closed"),
    ("let z = (a  # ( in a comment\n+ b\nlet w = 2\n",
     "the '(' on line 1, column 9 is not closed"),
    # a bracket opened and closed before the error is not the one left open
    ("sample mu ~ Normal(0, f(1)\nobserve y ~ Normal(mu, 2)\n",
     "the '(' on line 1, column 19 is not closed"),
    # the unexpected '(' itself is not counted as open
    ("let z = (a\n+ 2 (c)\n", "the '(' on line 1, column 9 is not closed"),
])
def test_syntax_error_after_a_bracket_left_open_on_an_earlier_line_names_it(text, hint):
    with pytest.raises(PplError) as caught:
        parse(text, "m.ppl")
    assert caught.value.hint == hint


def test_syntax_error_inside_a_bracket_opened_on_its_own_line_keeps_its_hint():
    with pytest.raises(PplError) as caught:
        parse("let z = (mu + 1", "m.ppl")
    assert caught.value.hint is None


def test_a_bracket_closed_on_the_errors_line_before_the_error_is_not_named():
    with pytest.raises(PplError) as caught:
        parse("let z = f(a,\n b) c\n", "m.ppl")
    assert _where(caught.value.span) == (2, 5, 2, 6) and caught.value.hint is None


@pytest.mark.parametrize("text, where", [
    ("let z = mu $ 2", (1, 12, 1, 13)),  # the character
    ("data y:\n", (1, 8, 1, 9)),  # the newline: one column
    ("data y:\r\n", (1, 8, 1, 9)),  # also when written '\r\n'
    ("sample mu Normal(0, 1)", (1, 11, 1, 17)),  # the token
])
def test_a_syntax_errors_span_covers_what_was_unexpected(text, where):
    with pytest.raises(PplError) as caught:
        parse(text, "m.ppl")
    assert _where(caught.value.span) == where


@pytest.mark.parametrize("text", ["sample μ ~ Normal(0, 1)", "let é = 1", "let x = 2 * σ"])
def test_a_letter_outside_ascii_gets_a_hint_that_names_are_ascii(text):
    # Julia's and some PyMC users' Greek names: 'unexpected character' alone did not say why
    with pytest.raises(PplError) as caught:
        parse(text, "m.ppl")
    assert caught.value.hint == ("names are ASCII letters, digits and '_' (write mu, sigma, "
                                 "... for Greek letters)")


def test_syntax_error_caret_under_the_unexpected_token():
    with pytest.raises(PplError) as caught:
        parse("data y: real\nsample mu Normal(0, 1)\n", "models/bad.ppl")
    assert str(caught.value) == (
        "models/bad.ppl:2:11: error: syntax error: unexpected name 'Normal'; expected ':', '~'\n"
        "    2 | sample mu Normal(0, 1)\n"
        "      |           ^~~~~~")


def test_error_at_end_of_file_points_past_the_last_character():
    with pytest.raises(PplError) as caught:
        parse("observe y ~", "m.ppl")
    assert str(caught.value).splitlines()[1:] == ["    1 | observe y ~", "      |            ^"]


def test_an_error_in_a_very_long_line_shows_the_part_around_it():
    # the whole line was printed (80 000 characters for a generated model), the caret at the
    # end of its last screen line
    line = "sample mu ~ Normal(0, 1" + " + 1" * 500 + " $ " + " + 1" * 500 + ")"
    with pytest.raises(PplError) as caught:
        parse(line + "\n", "m.ppl")
    _, shown, caret = str(caught.value).splitlines()
    col = line.index("$") + 1
    assert str(caught.value).startswith(f"m.ppl:1:{col}: ")
    assert shown.startswith("    1 | ...") and shown.endswith("...")
    assert len(shown) <= len("    1 | ") + 106
    assert shown[caret.index("^")] == "$"


# ----- Source and Span: lines, text, the excerpt's cut and marker --------------------------

def _span(text, line, col, end_line, end_col):
    from ppl.source import Source, Span
    return Span(Source("m.ppl", text), line, col, end_line, end_col)


def test_source_lines_are_numbered_from_one():
    from ppl.source import Source
    source = Source("m.ppl", "a\nb")
    assert [source.line(n) for n in (0, 1, 2, 3)] == ["", "a", "b", ""]


def test_an_error_in_crlf_text_shows_its_line_without_the_carriage_return():
    # parse takes '\r\n' lines as they are (ppl.load and ppl.compile turn them into '\n')
    with pytest.raises(PplError) as caught:
        parse("data y: real\r\nsample mu Normal(0, 1)\r\n", "m.ppl")
    assert str(caught.value).split("\n")[1:] == ["    2 | sample mu Normal(0, 1)",
                                                 "      |           ^~~~~~"]


def test_a_span_over_several_lines_reads_them_joined_by_spaces():
    text = "let z = (1 +\n  2 +\n  3)\n"
    assert _span(text, 1, 9, 3, 5).text == "(1 + 2 + 3)"
    assert _span(text, 1, 9, 2, 4).text == "(1 + 2"
    assert _span(text, 1, 9, 1, 11).to(_span(text, 3, 3, 3, 5)) == _span(text, 1, 9, 3, 5)


def test_a_span_over_several_lines_is_marked_to_the_end_of_its_first():
    assert _span("let z = (1 +\n  2)\n", 1, 9, 2, 5).excerpt() == (
        "    1 | let z = (1 +\n"
        "      |         ^~~~")


def test_a_tab_before_the_error_is_copied_into_the_marker_line():
    assert _span("\tlet\tz = $\n", 1, 10, 1, 11).excerpt() == (
        "    1 | \tlet\tz = $\n"
        "      | \t   \t    ^")


# A line of 300 characters, each column's character readable: "000001002..." cut to 300.
LONG = "".join(f"{i:03d}" for i in range(100))


@pytest.mark.parametrize("col, end_col, shown, marker", [
    # a third of the width (33 characters) before the error, '...' at both cuts
    (150, 153, "..." + LONG[116:216] + "...", " " * 36 + "^~~"),
    # near the end the last 100 characters are shown, the line's end not cut
    (290, 291, "..." + LONG[200:], " " * 92 + "^"),
    # a span running past the part shown is marked to its end, not beyond
    (150, 290, "..." + LONG[116:216] + "...", " " * 36 + "^" + "~" * 66),
])
def test_a_long_lines_excerpt_is_cut_around_the_error(col, end_col, shown, marker):
    assert _span(LONG, 1, col, 1, end_col).excerpt() == (
        f"    1 | {shown}\n      | {marker}")


def test_a_line_one_character_longer_than_the_excerpt_is_cut():
    line = "x" * 100 + "$"
    assert _span(line, 1, 101, 1, 102).excerpt() == (
        f"    1 | ...{'x' * 99}$\n      | {' ' * 102}^")


def _syntax_cases():
    return sorted((REPO / "tests" / "cases" / "bad").glob("syntax_*.ppl"))


def test_there_are_syntax_case_files():
    assert len(_syntax_cases()) >= 10


@pytest.mark.parametrize("path", _syntax_cases(), ids=lambda p: p.name)
def test_syntax_case_file(path):
    text = path.read_text(encoding="utf-8")
    where, message = text.splitlines()[0].removeprefix("# expect: ").split(": ", 1)
    with pytest.raises(PplError) as caught:
        parse(text, str(path))
    assert str(caught.value).splitlines()[0] == f"{path}:{where}: error: {message}"


# ----- property: no input text makes parse raise anything but PplError ---------------------

@functools.cache
def _model_texts():
    paths = sorted((REPO / "models").glob("*.ppl")) + \
        sorted((REPO / "models" / "posteriordb").glob("*.ppl"))
    return [EIGHT_SCHOOLS] + [p.read_text(encoding="utf-8") for p in paths]


# Characters that matter to the grammar, plus letters, digits and a non-ASCII one.
ALPHABET = list("()[]~:<>=,+-*/@.#_ \t\n\r$é0123456789eEabxyz") + \
    ["**", "data ", "sample ", "let ", "observe ", "int", "real", "lower=", "upper="]


@st.composite
def mutated_texts(draw):
    text = draw(st.sampled_from(_model_texts()))
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        at = draw(st.integers(0, len(text)))
        piece = draw(st.sampled_from(ALPHABET))
        if kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 5)):]
        elif kind == "replace":
            text = text[:at] + piece + text[at + 1:]
        else:
            text = text[:at]
    return text


def _parse_or_ppl_error(text):
    try:
        parse(text, "fuzz.ppl")
    except PplError as error:
        assert str(error).startswith("fuzz.ppl:")  # always located


@settings(max_examples=300, deadline=None, derandomize=True)
@given(mutated_texts())
def test_mutated_models_raise_only_ppl_error(text):
    _parse_or_ppl_error(text)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join))
def test_random_texts_raise_only_ppl_error(text):
    _parse_or_ppl_error(text)


@pytest.mark.parametrize("line, hint", [
    ("sample mu ~ Normal(0, 1);", "a statement ends at the end of its line, without ';'"),
    ("y ~ Normal(0, 1)", "a statement starts with its keyword: 'observe y ~ ...' for data"),
    ("target += -y * y", "Stan's 'target += EXPR' is written 'factor EXPR'"),
    ("let z = y^2", "a power is written '**', as in Python: x ** 2"),
    # numpy's and PyTorch's habits: "unexpected character '.'" named nothing to write
    ("let z = np.exp(y)", "names have no attributes or modules: a distribution is Normal(0, 1) "
     "and a function exp(x), not dist.Normal, pm.Normal, np.exp(x) or x.exp()"),
    ("let z = y.exp()", "names have no attributes or modules"),
    # Stan's density call: "unexpected character '|'" named nothing to write
    ("factor normal_lpdf(y | 0, 1)",
     "Stan's normal_lpdf(y | mu, sigma) is written lpdf(Normal(mu, sigma), y)"),
    # Stan's container types and truncation: "expected 'int', ..., 'real'" and "expected a
    # newline" named neither what to write nor that ppl has it
    ("data x: vector[3]", "Stan's vector[N] is written real[N] here"),
    ("sample b: matrix[2, 3] ~ Normal(0, 1)", "Stan's matrix[N, K] is written real[N, K] here"),
    ("sample s ~ Normal(0, 1) T[0, ]",
     "Stan's truncation T[L, U] is written as bounds on the latent: "
     "sample x: real<lower=L, upper=U> ~ DIST"),
    ("for (n in 1:N) { y[n] ~ Normal(mu, 1) }", "ppl has no loops: a statement is vectorized"),
    ("data int N;", "a declaration is NAME: TYPE, as 'data N: int'"),
    # a Stan program pasted whole, or a Python one
    ("parameters {", "ppl has no blocks: a Stan program's data block is 'data' lines"),
    ("data {", "ppl has no blocks: a Stan program's data block is 'data' lines"),
    ("generated quantities {", "ppl has no blocks"),
    ("import numpyro", "a model file is not Python: it holds data, sample, let and observe"),
    ("with pm.Model() as m:", "a model file is not Python"),
    # Pyro's pyro.param("w", init): the start goes with --init
    ("param w: real = 0.5", "a param's start is not written in the model: give it with --init "
     "FILE.json or fit(init={'w': ...}); 'param w: real ~ DIST' gives it a prior"),
    # such a word as a name, its statement's keyword left out: the keyword's hint
    ("model ~ Normal(0, 1)", "a statement starts with its keyword"),
    ("from ~ Normal(0, 1)", "a statement starts with its keyword"),
    ("sample real<lower=0> sigma ~ Exponential(1)",
     "a declaration is NAME: TYPE, as 'sample sigma: real<lower=0>'"),
    # an observed value's truncation is the likelihood's, not a latent's bounds
    ("observe y ~ Normal(0, 1) T[0, ]", "a truncated likelihood is written with factor and "
     "lccdf or lcdf: factor lpdf(Normal(mu, sigma), y) - lccdf(Normal(mu, sigma), L)"),
    ("sample mu ~ dist.Normal(0, 1)", "names have no attributes or modules: a distribution "
     "is Normal(0, 1)"),
    ("factor normal_lpdf(y | 0, 1)",
     "Stan's normal_lpdf(y | mu, sigma) is written lpdf(Normal(mu, sigma), y)"),
])
def test_stan_habits_get_a_hint(line, hint):
    # a newcomer from Stan read only "unexpected character ';'" or "unexpected name 'y'"
    with pytest.raises(PplError) as info:
        parse(f"data y: real\n{line}\n")
    assert info.value.span.line == 2 and info.value.hint.startswith(hint)


def test_a_syntax_error_inside_a_statement_gets_no_statement_hint():
    with pytest.raises(PplError) as info:
        parse("data y: real\nsample mu Normal(0, 1)\n")
    assert info.value.hint is None
