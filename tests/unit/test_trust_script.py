"""benchmarks/trust.py's pairing of the fits auto's ``assess`` saw with the rungs of its report."""
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import trust  # noqa: E402

from ppl.infer import auto  # noqa: E402


def _fit(elbo, moved=False, guide="fullrank"):
    return SimpleNamespace(result=SimpleNamespace(elbo=elbo, moved=moved,
                                                  guide=SimpleNamespace(name=guide)))


def test_climb_fits_leaves_out_the_probe_and_a_move_auto_did_not_keep():
    # assess is called on mean field, the probe of full rank's start (mean field's result with
    # full rank's guide: the same ELBO trace, and mean field's seconds, so a filter on seconds
    # kept it), full rank, its move (not kept), the flow, and flow:4 after a failed rung
    mf_trace, fr_trace = np.zeros(3), np.zeros(5)
    mf, probe, fr, fr_moved, flow = (_fit(mf_trace), _fit(mf_trace), _fit(fr_trace),
                                     _fit(fr_trace, moved=True), _fit(np.zeros(4)))
    rung = lambda level, moved=False, student_t=False: SimpleNamespace(  # noqa: E731
        level=level, moved=moved, student_t=student_t)
    tried = (rung("unreliable"), rung("unreliable"), rung("unreliable"), rung(auto.FAILED))
    fits = [mf, probe, fr, fr_moved, flow]
    assert not trust.is_probe(mf, fits) and trust.is_probe(probe, fits)
    assert trust.climb_fits(fits, tried) == [mf, fr, flow, None]
    # the move kept: full rank's rung is the moved fit, and the climb ends there
    kept = (rung("unreliable"), rung("usable with care", moved=True))
    assert trust.climb_fits([mf, probe, fr, fr_moved], kept) == [mf, fr_moved]
    # full rank under Student-t noise (auto.heavier_tailed) not kept, its move kept; or the t kept
    fr_t = _fit(fr_trace, moved=True, guide="studentt")
    assert trust.climb_fits([mf, probe, fr, fr_t, fr_moved], kept) == [mf, fr_moved]
    kept_t = (rung("unreliable"), rung("reliable", student_t=True))
    assert trust.climb_fits([mf, probe, fr, fr_t], kept_t) == [mf, fr_t]
    # a skipped full rank (its probe only), then the flow
    skipped = (rung("unreliable"), rung(auto.SKIPPED), rung("reliable"))
    assert trust.climb_fits([mf, probe, flow], skipped) == [mf, None, flow]
