"""ppl.linalg.solve_lower: the values of a triangular solve, gradients by finite differences."""
import numpy as np
from autograd.test_util import check_grads

from ppl.linalg import solve_lower


def test_solve_lower_matches_a_dense_solve_and_its_gradients():
    rng = np.random.default_rng(0)
    L = np.tril(rng.normal(size=(4, 4))) + 3 * np.eye(4)
    b = rng.normal(size=(4, 3))
    np.testing.assert_allclose(solve_lower(L, b), np.linalg.solve(L, b), rtol=1e-12)
    check_grads(solve_lower, modes=["rev"], order=1)(L, b)
