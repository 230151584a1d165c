"""McCulloch-Pitts units compute AND/OR/NOT but no single one computes XOR; the perceptron obeys Novikoff's bound.

Checked by hand that these tests can fail, each change made once and then restored: firing on ``>`` instead of ``>=``
fails the AND/OR/NOT and grid-search tests; a perceptron that updates only on ``< 0`` (so never leaves w = 0) fails
the Novikoff and XOR tests; one that never updates its bias fails ``test_perceptron_mistakes_within_novikoff_bound``.
"""

import itertools

import numpy as np
import pytest

from paperzoo.core.classic import Perceptron, ThresholdUnit, and_unit, not_unit, or_unit, realises

BINARY_PAIRS = list(itertools.product((0, 1), repeat=2))
TRUTH_TABLES = {
    "AND": {x: int(x[0] and x[1]) for x in BINARY_PAIRS},
    "OR": {x: int(x[0] or x[1]) for x in BINARY_PAIRS},
    "NAND": {x: int(not (x[0] and x[1])) for x in BINARY_PAIRS},
    "NOR": {x: int(not (x[0] or x[1])) for x in BINARY_PAIRS},
    "XOR": {x: x[0] ^ x[1] for x in BINARY_PAIRS},
    "XNOR": {x: 1 - (x[0] ^ x[1]) for x in BINARY_PAIRS},
}
GRID = np.arange(-3.0, 3.0 + 0.25, 0.5)  # -3, -2.5, ..., 3


@pytest.mark.parametrize("n_inputs", [2, 3])
def test_ready_made_units_compute_and_or(n_inputs):
    for x in itertools.product((0, 1), repeat=n_inputs):
        assert and_unit(n_inputs)(x) == int(all(x))
        assert or_unit(n_inputs)(x) == int(any(x))


def test_not_unit_and_batched_call():
    assert [not_unit()((0,)), not_unit()((1,))] == [1, 0]
    rows = np.array(BINARY_PAIRS)
    np.testing.assert_array_equal(and_unit()(rows), [0, 0, 0, 1])
    assert realises(and_unit().weights, and_unit().threshold, TRUTH_TABLES["AND"])
    assert not realises(or_unit().weights, or_unit().threshold, TRUTH_TABLES["AND"])
    assert repr(ThresholdUnit([1, 1], 2)) == "ThresholdUnit(weights=[1.0, 1.0], threshold=2.0)"


def _grid_solutions(table):
    return [(w1, w2, theta) for w1, w2, theta in itertools.product(GRID, repeat=3) if realises([w1, w2], theta, table)]


@pytest.mark.parametrize("name", ["AND", "OR", "NAND", "NOR"])
def test_grid_search_finds_a_unit_for_linearly_separable_functions(name):
    solutions = _grid_solutions(TRUTH_TABLES[name])
    assert solutions
    # Every unit found must satisfy the four inequalities of its table, checked here without the unit class.
    for w1, w2, theta in solutions:
        for (x1, x2), out in TRUTH_TABLES[name].items():
            assert (w1 * x1 + w2 * x2 >= theta) == bool(out)


@pytest.mark.parametrize("name", ["XOR", "XNOR"])
def test_grid_search_finds_no_unit_for_xor(name):
    assert _grid_solutions(TRUTH_TABLES[name]) == []


def _separable_data(n, dim, gamma, seed):
    """Points in [-1, 1]^dim labelled by a random unit vector u over the augmented x' = (x, 1), margin >= gamma."""
    rng = np.random.default_rng(seed)
    # A small offset keeps the separating hyperplane through the cube, so that both classes are well populated.
    w = rng.normal(size=dim)
    u = np.append(w, rng.uniform(-0.3, 0.3) * np.linalg.norm(w))
    u /= np.linalg.norm(u)
    x = rng.uniform(-1, 1, size=(20 * n, dim))
    x_aug = np.hstack([x, np.ones((len(x), 1))])
    score = x_aug @ u
    keep = np.abs(score) >= gamma
    x, x_aug, score = x[keep][:n], x_aug[keep][:n], score[keep][:n]
    assert len(x) == n
    assert 0.2 < np.mean(score > 0) < 0.8
    return x, np.where(score > 0, 1, -1), x_aug, u


@pytest.mark.parametrize(("dim", "gamma", "seed"), [(2, 0.05, 0), (5, 0.1, 1), (10, 0.05, 2)])
def test_perceptron_mistakes_within_novikoff_bound(dim, gamma, seed):
    x, y, x_aug, u = _separable_data(300, dim, gamma, seed)
    # Novikoff's R and gamma live in the same space as the weights the rule updates: the bias is the weight on the
    # constant feature 1, so both are measured on x' = (x, 1), and gamma is the margin actually achieved by u.
    radius = np.linalg.norm(x_aug, axis=1).max()
    margin = (y * (x_aug @ u)).min()
    assert margin >= gamma
    perceptron = Perceptron(dim)
    fit = perceptron.fit(x, y, max_epochs=1000)
    assert fit.converged
    assert 0 < fit.mistakes <= (radius / margin) ** 2
    np.testing.assert_array_equal(perceptron.predict(x), y)


def test_perceptron_never_converges_on_xor():
    x = np.array(BINARY_PAIRS, dtype=float)
    y = np.array([-1, 1, 1, -1])
    perceptron = Perceptron(2)
    first = perceptron.fit(x, y, max_epochs=100)
    assert not first.converged
    assert first.epochs == 100
    assert first.mistakes >= 100
    again = perceptron.fit(x, y, max_epochs=10)
    assert not again.converged and again.mistakes >= 10
    assert (perceptron.predict(x) != y).any()


def test_perceptron_rejects_zero_one_labels():
    with pytest.raises(ValueError, match="-1 or \\+1"):
        Perceptron(2).fit(np.zeros((2, 2)), np.array([0, 1]))
