"""FitOptions' refusals and ``options.unused``, tested without a fit (the mutation pass over
options.py and api.py, docs/history/trust-log.md): each bad option is one PplError naming it,
accepted before anything is compiled or fitted."""
from __future__ import annotations

from dataclasses import fields

import pytest

from ppl.errors import PplError
from ppl.options import FitOptions, unused


@pytest.mark.parametrize("options, message", [
    # the cap itself: 1000 is accepted (test_hostile_input.py), one more is not
    ({"starts": 1001}, r"option starts: must be at most 1000 \(each start is a whole fit\); "
                       "found 1001"),
    ({"draws": 0}, "option draws: must be a positive integer; found 0"),
    # '0 < value': a zero tolerance never ends the steps, a zero init_scale has no spread
    ({"tol": 0.0}, "option tol: must be a positive finite number; found 0.0"),
    ({"init_scale": 0}, "option init_scale: must be a positive finite number; found 0"),
    # None means 'let the eta search pick it' for lr alone
    ({"tol": None}, "option tol: must be a positive finite number; found None"),
    ({"init_scale": None}, "option init_scale: must be a positive finite number; found None"),
    ({"method": "dadvi", "guide": "studentt"}, "option guide: method dadvi fits the meanfield, "
                                               "fullrank and lowrank guides, not studentt"),
    ({"guide": "flow:x"}, "option guide: the number of layers K in 'flow:x' must be a positive "
                          "integer"),
    ({"batch": {}}, "option batch: must name one dimension and its batch size"),
])
def test_a_bad_fit_option_is_one_option_error(options, message):
    with pytest.raises(PplError, match=message):
        FitOptions(**options)


def _equal_copy(value):
    """``value`` as another object of the same type and value (a float or int read back from
    its text), so that a comparison by identity would tell them apart."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return type(value)(str(value))
    return value


@pytest.mark.parametrize("kind", ["dadvi", "point", "user", "batch", "advi", "guided"])
def test_an_option_given_at_its_default_value_is_not_unused(kind):
    # a user who writes iter=10000 or tol=1e-3 (the defaults) has changed nothing: no warning
    given = FitOptions(**{f.name: _equal_copy(f.default) for f in fields(FitOptions)})
    assert given.iter is not FitOptions().iter      # the test's premise: other objects
    assert unused(given, kind) == []
