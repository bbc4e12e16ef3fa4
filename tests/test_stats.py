"""The report's statistics (cptlib.study.stats): the crossed seeds + items t-interval, paired contrasts, the
fallback t-interval, and the one aggregation rule's seed count."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from cptlib.study import stats


def _scores(p: float, n_seeds: int, n_items: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((n_seeds, n_items)) < p).astype(float)


def test_crossed_interval_holds_the_mean_stays_in_range_and_is_deterministic():
    x = _scores(0.3, 3, 300, 0)
    point, lo, hi = stats.crossed_t([x], lambda a: a)
    assert point == pytest.approx(x.mean())
    assert 0.0 <= lo < point < hi <= 1.0
    assert stats.crossed_t([x], lambda a: a) == (point, lo, hi)  # no resampling: the tables do not move
    # independent seeds: the seed and item terms each about p(1-p)/900 (the interaction counted twice, as
    # documented), with t at S - 1 = 2 degrees of freedom
    assert (hi - lo) / 2 == pytest.approx(4.303 * math.sqrt(2 * 0.3 * 0.7 / 900), rel=0.3)


def test_one_seed_gives_the_items_t_interval_and_constant_items_the_seeds_t_interval():
    x = _scores(0.6, 1, 200, 1)
    point, lo, hi = stats.crossed_t([x], lambda a: a)
    assert (point, hi - point) == pytest.approx(stats.ci95(x[0]))  # a released ancestor: its test set's noise
    assert hi - lo > 0.05
    seeds = np.repeat([[0.5], [0.6], [0.8]], 50, axis=1)  # every item the same within a seed: only seeds vary
    point, lo, hi = stats.crossed_t([seeds], lambda a: a)
    assert (point, hi - point) == pytest.approx(stats.ci95([0.5, 0.6, 0.8]))


def test_a_paired_difference_of_equals_is_zero_and_pairing_narrows_it():
    x = _scores(0.6, 3, 200, 1)
    assert stats.crossed_t([x, x.copy()], np.subtract) == (0.0, 0.0, 0.0)
    a = _scores(0.5, 3, 400, 2)
    b = a.copy()
    b[:, :20] = 1 - b[:, :20]  # b differs from a on 20 of 400 items
    _, lo, hi = stats.crossed_t([a, b], np.subtract)
    assert hi - lo < 0.06  # an unpaired interval of two ~0.5 accuracies on 1,200 items each is ~0.08 wide


def test_a_ratio_is_linearised_at_the_means():
    a, b = _scores(0.4, 3, 300, 3), np.ones((3, 300))
    point, lo, hi = stats.crossed_t([a, b], lambda x, y: x / y)
    assert (point, lo, hi) == pytest.approx(stats.crossed_t([a], lambda x: x))
    point, lo, hi = stats.crossed_t([a, 2 * b], lambda x, y: x / y)
    assert point == pytest.approx(a.mean() / 2) and lo < point < hi


def test_crossed_interval_covers_the_true_mean_at_least_95_percent_of_the_time():
    """Seeds and items as crossed random effects (3 seeds, 300 items, an interaction): the interval is meant to be
    conservative; 400 simulated studies, a fixed generator."""
    for seed_sd, item_sd in ((0.04, 0.1), (0.0, 0.1), (0.01, 0.3)):  # seeds dominate; items only; in between
        rng, covered = np.random.default_rng(7), 0
        for _ in range(400):
            x = 0.5 + rng.normal(0, seed_sd, (3, 1)) + rng.normal(0, item_sd, (1, 300)) + rng.normal(0, 0.2, (3, 300))
            _, lo, hi = stats.crossed_t([x], lambda a: a)
            covered += lo <= 0.5 <= hi
        assert covered / 400 >= 0.95, (seed_sd, item_sd, covered)


def test_crossed_interval_refuses_parts_that_are_not_the_same_items():
    with pytest.raises(ValueError, match="different shapes"):
        stats.crossed_t([np.zeros((3, 10)), np.zeros((3, 11))], np.subtract)


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


def _eval_stage(suite: str, key: str, scores: list[list[int]]) -> str:
    """A finished evaluation stage of `suite` (testbed or real) holding the per-item IF scores `scores`."""
    from cptlib.core.stages import run_stage

    def build(work):
        with open(work / "t.samples.jsonl", "w") as f:
            for i, v in enumerate(scores):
                f.write(json.dumps({"task": "testbed_ifeval" if suite == "testbed" else "real_if", "doc_id": i,
                                    "metrics": ["prompt_level_strict_acc"], "prompt_level_strict_acc": v}) + "\n")
        return {}

    return run_stage("eval", {"suite": suite, "key": key}, build).name


def test_an_interval_reads_its_items_from_the_rows_evaluations_whatever_was_scored_before(tmp_path, monkeypatch):
    """Issue 31: which task a metric's items come from is a fact of each row's evaluation (a testbed stage: the
    testbed's tasks; a real one: the eval.metrics it was scored under), not a module setting that the last profile
    scored changes. A real evaluation nobody scored is an error, and two mappings of one evaluation are refused."""
    from cptlib.core import paths
    from cptlib.core.errors import InputError, MissingInputError
    from cptlib.evaluation import suite

    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    monkeypatch.setattr(suite, "_REAL_SOURCES", {})
    items = [[1, 0, 1, 1, 0, 1, 1, 1], [1, 1, 0, 1, 0, 1, 0, 1]]
    testbed = pd.DataFrame({"seed": [0, 1], "IF": [np.mean(r) for r in items],
                            stats.EVAL: [_eval_stage("testbed", f"t{s}", r) for s, r in enumerate(items)]})
    real = testbed.assign(**{stats.EVAL: [_eval_stage("real", f"r{s}", r) for s, r in enumerate(items)]})
    before = stats.estimate(testbed, "IF")
    assert before.method == stats.CROSSED and before.mean == pytest.approx(np.mean(items))

    with pytest.raises(MissingInputError, match="was not scored in this process"):
        stats.estimate(real, "IF")
    suite.record_sources(real[stats.EVAL], {"IF": ("real_if", "prompt_level_strict_acc")})
    assert stats.estimate(real, "IF") == before  # the same items, read through the real profile's mapping
    assert stats.estimate(testbed, "IF") == before  # unchanged by the real profile scored since
    # A metric that profile does not map to a task has no items to read: the interval over seeds.
    assert stats.estimate(real.assign(era_a=[0.5, 0.6]), "era_a").method == stats.T_OVER_SEEDS
    with pytest.raises(InputError, match="score each profile in its own process"):
        suite.record_sources(real[stats.EVAL], {"IF": ("other_if", "acc")})
    with pytest.raises(MissingInputError, match="not finished"):
        stats.estimate(testbed.assign(**{stats.EVAL: ["eval-missing", "eval-missing2"]}), "IF")
