"""Means and 95% intervals of the study's numbers: over training seeds *and* the evaluation's items.

    s = summarize(table, ["model", "tokens"], ["IF", "era_b"])   # columns <m>, <m>_lo, <m>_hi, n_seeds
    d = paired(table, "model", "instruct_v1", CPT_I, "IF")      # Estimate of IF(instruct_v1) − IF(CPT_I)
    print(d.text())                                             # "+0.217 [+0.148, +0.286] (3 seeds)"

The one aggregation rule of the report: a number is the mean over every training seed the table has for it (a
single-seed number says "1 seed"), and its interval is a percentile bootstrap that resamples both sources of
noise at once: the seeds (with replacement) and the evaluation's items (with replacement, the same items for
every model in a comparison, so paired differences stay paired). An accuracy's interval therefore never leaves
[0, 1] and a model evaluated once (a released ancestor, the same for every seed) still has one: its test set's
sampling noise. With 3 seeds the seed part is coarse (10 distinct resamples) and, like every bootstrap over
few units, a little narrow; the report says so.

Rows are tied to their items by the `eval` column (EVAL: the evaluation's stage directory under build/stages/,
whose lm-eval samples hold the per-item scores), a study metric to its task by `metric_tasks` (a real profile's
eval.metrics after `use_profile`). Where a table has none, the interval is the Student-t interval over seeds,
clipped to the metric's range, and `method` says so.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cptlib.core import paths
from cptlib.study.restored import METRICS

EVAL = "eval"  # the column naming each row's evaluation stage (build/stages/<eval>/)
N_BOOT = 2000  # bootstrap resamples: the 2.5% / 97.5% percentiles move by < 0.005 between draws of this size
RNG_SEED = 20241014  # fixed: the intervals in the committed tables are reproducible
ITEM_METRICS = ("IF", "knowledge", "era_a", "era_b", "updated")  # accuracies: means over items (bootstrapped)
BOOTSTRAP = "bootstrap over seeds × items"
T_OVER_SEEDS = "t-interval over seeds"

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


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% interval [lo, hi] (nan where there is none), the number of training seeds behind it
    (distinct models: a released ancestor is one, whatever the seed) and how the interval was made."""
    mean: float
    lo: float
    hi: float
    n_seeds: int
    method: str

    def text(self, signed: bool = True, digits: int = 3) -> str:
        f = f"{{:{'+' if signed else ''}.{digits}f}}"
        interval = "" if math.isnan(self.lo) else f" [{f.format(self.lo)}, {f.format(self.hi)}]"
        return f.format(self.mean) + interval + f" ({self.n_seeds} seed{'s' if self.n_seeds != 1 else ''})"

    def excludes(self, value: float) -> bool:
        """Whether the interval lies entirely on one side of `value` (no interval: the point estimate decides)."""
        if math.isnan(self.lo):
            return self.mean != value
        return self.lo > value or self.hi < value


# study metric -> (lm-eval task, metric) whose per-item scores a row's evaluation holds: the testbed's by default,
# a real profile's eval.metrics once `use_profile` has been called (cptlib.study.notebooks.configure does).
metric_tasks: dict[str, tuple[str, str]] = dict(METRICS)


def use_profile(profile) -> None:
    """Read per-item scores under the profile's metric mapping (a real profile's eval.metrics, else the testbed's)."""
    metric_tasks.clear()
    if profile.models is None:
        metric_tasks.update(METRICS)
    else:
        from cptlib.evaluation.real_profile import study_metrics

        metric_tasks.update(study_metrics(profile))


def _items(eval_name: str, metric: str) -> np.ndarray:
    from cptlib.evaluation.evaluate import item_scores

    task, name = metric_tasks[metric]
    return np.asarray(item_scores(paths.stages_dir() / eval_name, task, name), dtype=float)


def _by_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows indexed by training seed (a table without a seed column: its rows are one seed each)."""
    if "seed" not in rows:
        return rows.reset_index(drop=True)
    if rows.seed.duplicated().any():
        raise ValueError(f"more than one row per seed in {rows.drop(columns=[EVAL], errors='ignore').to_dict('records')}: "
                         "select one model before estimating")
    return rows.set_index("seed")


def _distinct(*tables: pd.DataFrame) -> int:
    """How many different models stand behind the rows (paired rows: different pairs): a released ancestor is the
    same model for every training seed, so it counts once."""
    if all(EVAL in t and t[EVAL].notna().all() for t in tables):
        return len(set(zip(*[t[EVAL] for t in tables])))
    return len(tables[0])


def _matrix(rows: pd.DataFrame, metric: str) -> np.ndarray | None:
    """Seeds × items scores of `metric` for the rows, or None where the rows name no evaluation."""
    if metric not in ITEM_METRICS or metric not in metric_tasks or EVAL not in rows or rows[EVAL].isna().any():
        return None
    mats = [_items(e, metric) for e in rows[EVAL]]
    if len({len(m) for m in mats}) != 1:
        raise ValueError(f"the evaluations {list(rows[EVAL])} scored different numbers of {metric} items "
                         f"({[len(m) for m in mats]}): compare results with the same eval settings")
    return np.stack(mats)


def bootstrap(parts: list[np.ndarray], combine: Callable[..., np.ndarray], n_boot: int = N_BOOT,
              rng_seed: int = RNG_SEED) -> tuple[float, float, float]:
    """(point, lo, hi) of combine(mean of part 1, mean of part 2, ...), each part a seeds × items matrix with the
    same seeds and items (row s of every part: training seed s; column i: item i). Each resample draws seeds and
    items with replacement, once for all parts (paired)."""
    n_seeds, n_items = parts[0].shape
    if any(p.shape != (n_seeds, n_items) for p in parts):
        raise ValueError(f"bootstrap parts of different shapes {[p.shape for p in parts]}")
    rng = np.random.default_rng(rng_seed)
    w = rng.multinomial(n_seeds, [1 / n_seeds] * n_seeds, size=n_boot) / n_seeds
    v = rng.multinomial(n_items, [1 / n_items] * n_items, size=n_boot) / n_items
    draws = combine(*[np.einsum("bs,si,bi->b", w, p, v) for p in parts])
    point = float(combine(*[np.array([p.mean()]) for p in parts])[0])
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return point, float(lo), float(hi)


def _clip(est: tuple[float, float, float], low: float, high: float) -> tuple[float, float, float]:
    m, lo, hi = est
    return m, (lo if math.isnan(lo) else max(low, lo)), (hi if math.isnan(hi) else min(high, hi))


def _t(values: pd.Series, low: float, high: float) -> tuple[float, float, float]:
    m, h = ci95(values)
    return _clip((m, m - h, m + h), low, high)


def over_seeds(values: pd.Series, low: float = -math.inf, high: float = math.inf) -> Estimate:
    """The mean of per-seed values with the Student-t 95% interval over the seeds, clipped to [low, high]."""
    return Estimate(*_t(values, low, high), len(values), T_OVER_SEEDS)


def estimate(rows: pd.DataFrame, metric: str) -> Estimate:
    """The mean of `metric` over the rows (one model, one row per seed) with its 95% interval."""
    rows = _by_seed(rows)
    low, high = (0.0, 1.0) if metric in ITEM_METRICS else (-math.inf, math.inf)
    x = _matrix(rows, metric)
    if x is None:
        return Estimate(*_t(rows[metric], low, high), len(rows), T_OVER_SEEDS)
    return Estimate(*bootstrap([x], lambda a: a), _distinct(rows), BOOTSTRAP)


def _pair(table: pd.DataFrame, key: str, a: str, b: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    ra, rb = _by_seed(table[table[key] == a]), _by_seed(table[table[key] == b])
    if ra.empty or rb.empty:
        raise ValueError(f"no rows with {key} = {a!r}" if ra.empty else f"no rows with {key} = {b!r}")
    common = ra.index.intersection(rb.index)
    if common.empty:
        raise ValueError(f"{a!r} and {b!r} share no training seed (seeds {list(ra.index)} and {list(rb.index)})")
    return ra.loc[common], rb.loc[common]


def contrast(table: pd.DataFrame, key: str, a: str, b: str, metric: str,
             combine: Callable[[np.ndarray, np.ndarray], np.ndarray] = np.subtract, bounds=(-1.0, 1.0)) -> Estimate:
    """combine(metric(a), metric(b)) (default a − b) over the seeds both have, with its paired 95% interval."""
    ra, rb = _pair(table, key, a, b)
    xa, xb = _matrix(ra, metric), _matrix(rb, metric)
    if xa is None or xb is None:
        per_seed = pd.Series(combine(ra[metric].to_numpy(float), rb[metric].to_numpy(float)))
        return Estimate(*_t(per_seed, *bounds), len(ra), T_OVER_SEEDS)
    return Estimate(*bootstrap([xa, xb], combine), _distinct(ra, rb), BOOTSTRAP)


def paired(table: pd.DataFrame, key: str, a: str, b: str, metric: str) -> Estimate:
    """metric(a) − metric(b), paired by seed and by item, with its 95% interval."""
    return contrast(table, key, a, b, metric)


def ratio(table: pd.DataFrame, key: str, a: str, b: str, metric: str) -> Estimate:
    """metric(a) / metric(b) (a ratio of means over seeds and items), with its paired 95% interval."""
    return contrast(table, key, a, b, metric, lambda x, y: x / np.maximum(y, 1e-9), (0.0, math.inf))


def summarize(table: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Per group: each metric's mean over seeds and its 95% interval (columns <m>, <m>_lo, <m>_hi), the seed
    count (n_seeds) and how the intervals were made (ci)."""
    rows = []
    for key, group in table.groupby(by, sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        methods = {}
        for m in metrics:
            if group[m].isna().all():  # a metric this group was not scored on (an intermediate checkpoint)
                row[m] = row[f"{m}_lo"] = row[f"{m}_hi"] = float("nan")
                continue
            est = estimate(group, m)
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = est.mean, est.lo, est.hi
            methods[m] = est.method
        # How the intervals were made: one method for all, or each metric's where they differ.
        row["ci"] = ("" if not methods else next(iter(methods.values())) if len(set(methods.values())) == 1 else
                     "; ".join(f"{m}: {how}" for m, how in methods.items()))
        row["n_seeds"] = _distinct(group)
        rows.append(row)
    return pd.DataFrame(rows)


def yerr(summary: pd.DataFrame, metric: str) -> np.ndarray:
    """Matplotlib's asymmetric error bars (2 × n: below, above) of a summarize() column; 0 where none."""
    m = summary[metric].to_numpy(float)
    return np.nan_to_num(np.vstack([m - summary[f"{metric}_lo"].to_numpy(float),
                                    summary[f"{metric}_hi"].to_numpy(float) - m]))
