"""The report's statistics (cptlib.study.stats): the bootstrap over seeds × items, paired contrasts, the
fallback t-interval, and the one aggregation rule's seed count."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cptlib.study import stats


def _scores(p: float, n_seeds: int, n_items: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((n_seeds, n_items)) < p).astype(float)


def test_bootstrap_interval_holds_the_mean_stays_in_range_and_is_reproducible():
    x = _scores(0.3, 3, 300, 0)
    point, lo, hi = stats.bootstrap([x], lambda a: a)
    assert point == pytest.approx(x.mean())
    assert 0.0 <= lo < point < hi <= 1.0
    assert stats.bootstrap([x], lambda a: a) == (point, lo, hi)  # fixed generator: the tables do not move
    # about the binomial standard error of 900 items: the half-width is ~1.96 * sqrt(p(1-p)/900) or more
    assert hi - lo == pytest.approx(2 * 1.96 * math.sqrt(0.3 * 0.7 / 900), rel=0.5)


def test_items_make_an_interval_even_for_one_model_and_a_paired_difference_of_equals_is_zero():
    x = _scores(0.6, 1, 200, 1)
    _, lo, hi = stats.bootstrap([x], lambda a: a)
    assert hi - lo > 0.05  # a released ancestor (one model) still has its test set's sampling noise
    assert stats.bootstrap([x, x.copy()], np.subtract) == (0.0, 0.0, 0.0)


def test_paired_resampling_is_narrower_than_unpaired_for_correlated_models():
    a = _scores(0.5, 3, 400, 2)
    b = a.copy()
    b[:, :20] = 1 - b[:, :20]  # b differs from a on 20 of 400 items
    _, lo, hi = stats.bootstrap([a, b], np.subtract)
    assert hi - lo < 0.06  # an unpaired interval of two ~0.5 accuracies on 1,200 items each is ~0.08 wide


def test_bootstrap_refuses_parts_that_are_not_the_same_items():
    with pytest.raises(ValueError, match="different shapes"):
        stats.bootstrap([np.zeros((3, 10)), np.zeros((3, 11))], np.subtract)


def test_without_items_the_interval_is_the_t_interval_over_seeds_clipped_to_the_range():
    table = pd.DataFrame({"seed": [0, 1, 2], "model": "m", "IF": [0.9, 1.0, 0.99]})
    est = stats.estimate(table, "IF")
    mean, half = stats.ci95(table.IF)
    assert est.method == stats.T_OVER_SEEDS and est.mean == pytest.approx(mean)
    assert est.lo == pytest.approx(mean - half) and est.hi == 1.0 < mean + half
    assert est.n_seeds == 3 and est.text(signed=False).endswith("(3 seeds)")


def test_a_paired_contrast_uses_the_seeds_both_sides_have():
    table = pd.DataFrame({"seed": [0, 1, 2, 0], "model": ["a", "a", "a", "b"], "IF": [0.8, 0.7, 0.9, 0.5]})
    est = stats.paired(table, "model", "a", "b", "IF")
    assert est.mean == pytest.approx(0.3) and est.n_seeds == 1 and math.isnan(est.lo)
    assert est.text() == "+0.300 (1 seed)"
    with pytest.raises(ValueError, match="no rows with model = 'c'"):
        stats.paired(table, "model", "a", "c", "IF")


def test_two_rows_of_one_model_and_seed_are_an_error_not_an_average():
    table = pd.DataFrame({"seed": [0, 0], "model": "m", "IF": [0.1, 0.2]})
    with pytest.raises(ValueError, match="more than one row per seed"):
        stats.estimate(table, "IF")
