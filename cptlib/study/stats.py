"""95% confidence intervals over training seeds: Student-t on the per-seed values (no scipy needed).

    mean, half = ci95([0.61, 0.64, 0.58])    # mean ± half is the 95% interval; half is nan for one seed
"""
from __future__ import annotations

import math
import statistics

import pandas as pd

# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (standard tables).
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042]


def t975(dof: int) -> float:
    return T975[dof - 1] if dof <= len(T975) else 1.96


def ci95(values) -> tuple[float, float]:
    """(mean, half-width of the 95% t-interval); the half-width is nan with fewer than two values."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("ci95 of no values")
    if any(math.isnan(v) for v in values):
        raise ValueError(f"ci95 of {values}: a missing value (NaN), e.g. a seed without a row for this model")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def summarize(table: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean, 95% half-width and seed count of each metric per group: columns <m>, <m>_ci95, n_seeds."""
    rows = []
    for key, group in table.groupby(by, sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        for m in metrics:
            row[m], row[f"{m}_ci95"] = ci95(group[m])
        row["n_seeds"] = len(group)
        rows.append(row)
    return pd.DataFrame(rows)
