"""The N4 regime sentence of the report (cptlib.study.report.regime), on a hand-made map."""
from __future__ import annotations

import pandas as pd

from cptlib.study.report import REST, regime


def test_regime_sentence_names_working_broken_and_early_cells():
    """instruct_v1 IF 0.80 -> a restored model keeps IF at >= 0.64. Cells (tokens, lr, IF, era-B, drift):
    (1k, 1e-4, 0.70, 0.50, 0.10) keeps IF, news not learned; (2k, 1e-4, 0.66, 0.95, 0.30) works;
    (1k, 1e-3, 0.40, 0.97, 0.50) and (2k, 1e-3, 0.20, 1.00, 0.90) break. The CPT(instruct) row is ignored."""
    n4 = pd.DataFrame({"model": [REST] * 4 + ["CPT(instruct_v1)"], "tokens": [1000, 2000, 1000, 2000, 2000],
                       "lr": [1e-4, 1e-4, 1e-3, 1e-3, 1e-3], "IF": [0.70, 0.66, 0.40, 0.20, 0.10],
                       "era_b": [0.50, 0.95, 0.97, 1.00, 0.90], "drift_ratio": [0.10, 0.30, 0.50, 0.90, float("nan")]})
    text = regime(n4, 0.80)
    assert "in 1 of 4 budget × learning-rate cells, at drift ratios 0.30–0.30 (2,000 tokens at lr 0.0001)" in text
    assert "from drift ratio 0.50 on (2 cells, the largest drift 0.90)" in text
    assert "in 1 cells IF is kept but the news is not yet learned (drift ≤ 0.10)" in text


def test_regime_sentence_when_nothing_breaks():
    n4 = pd.DataFrame({"model": [REST], "tokens": [1000], "lr": [1e-4], "IF": [0.9], "era_b": [0.95],
                       "drift_ratio": [0.2]})
    assert "never fell below 80% of instruct_v1's (drift ratio up to 0.20)" in regime(n4, 0.8)


def test_regime_sentence_without_a_news_metric():
    """A real profile that maps no era_b task: the sentence is about IF only and says the news is not measured."""
    n4 = pd.DataFrame({"model": [REST] * 2, "tokens": [1000, 2000], "lr": [1e-5, 1e-5], "IF": [0.7, 0.3],
                       "era_b": [float("nan")] * 2, "drift_ratio": [0.1, 0.4]})
    text = regime(n4, 0.8)
    assert text == ("Restored IF ≥ 80% of instruct_v1's in 1 of 2 budget × learning-rate cells, up to drift ratio "
                    "0.10; whether the news is learned is not measured (no era_b metric).")
