"""Means and 95% intervals of the study's numbers: over training seeds *and* the evaluation's items.

    s = summarize(table, ["model", "tokens"], ["IF", "era_b"])   # columns <m>, <m>_lo, <m>_hi, n_seeds
    d = paired(table, "model", "instruct_v1", CPT_I, "IF")      # Estimate of IF(instruct_v1) − IF(CPT_I)
    print(d.text())                                             # "+0.217 [+0.148, +0.286] (3 seeds)"

The one aggregation rule of the report (fixed before the numbers, docs/calibration_log.md run 17): a number is the
mean over every training seed the table has for it and over the evaluation's items (a single-seed number says
"1 seed"). Its 95% interval is Student t over a variance with both sources of noise, seeds and items *crossed*
(every seed answers the same items, and a comparison's two models too, so paired differences stay paired):

    Var = s²(per-seed means) / S + s²(per-item means over the seeds) / I,   S − 1 degrees of freedom

The seed term samples what a new training seed changes (with a paired release: new ancestors, CPT and SFT runs);
the item term, new evaluation items; the seed × item interaction is counted in both, so the interval is
conservative, and S − 1 degrees of freedom (I − 1 where the seeds do not vary: one seed, or one model in every
row) make it more so: the simulation in tests/test_stats.py covers the true mean in ≥ 95% of studies whether seeds
or items dominate. A combination of means (a ratio) is linearised at the means first (the delta method). An accuracy's
interval is clipped to [0, 1]; a model evaluated once (one seed) still has one: its test set's sampling noise.

Rows are tied to their items by the `eval` column (EVAL: the evaluation's stage directory under build/stages/,
whose lm-eval samples hold the per-item scores), a study metric to its task by that evaluation
(cptlib.evaluation.suite.item_source: the testbed's tasks, or the eval.metrics of the real profile that scored it),
so an interval depends on the table alone. Where a table has none, the interval is the Student-t interval over
seeds, clipped to the metric's range, and `method` says so.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cptlib.core import paths
from cptlib.evaluation.suite import item_source
from cptlib.metrics import METRICS

EVAL = "eval"  # the column naming each row's evaluation stage (build/stages/<eval>/)
ITEM_METRICS = tuple(m.name for m in METRICS.values() if m.per_item)  # accuracies: means over items
CROSSED = "t over seeds + items (crossed)"
T_OVER_SEEDS = "t-interval over seeds"

def t975(dof: float) -> float:
    """The two-sided 95% quantile of Student's t with `dof` degrees of freedom (fractional: Welch–Satterthwaite)."""
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


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


def _items(eval_name: str, task: str, name: str) -> np.ndarray:
    from cptlib.evaluation.harness import item_scores

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
    if metric not in ITEM_METRICS or EVAL not in rows or rows[EVAL].isna().any():
        return None
    sources = [item_source(e, metric) for e in rows[EVAL]]
    if None in sources:  # an evaluation that does not measure it (a real profile maps no task to it)
        return None
    mats = [_items(e, *source) for e, source in zip(rows[EVAL], sources)]
    if len({len(m) for m in mats}) != 1:
        raise ValueError(f"the evaluations {list(rows[EVAL])} scored different numbers of {metric} items "
                         f"({[len(m) for m in mats]}): compare results with the same eval settings")
    return np.stack(mats)


def crossed_t(parts: list[np.ndarray], combine: Callable[..., np.ndarray]) -> tuple[float, float, float]:
    """(point, lo, hi) of combine(mean of part 1, mean of part 2, ...), each part a seeds × items matrix with the
    same seeds and items (row s of every part: training seed s; column i: item i): the module's crossed
    seeds + items Student-t interval, on the combination linearised at the means (exact for a difference)."""
    n_seeds, n_items = parts[0].shape
    if any(p.shape != (n_seeds, n_items) for p in parts):
        raise ValueError(f"parts of different shapes {[p.shape for p in parts]}: compare the same items and seeds")
    means = [float(p.mean()) for p in parts]
    value = lambda ms: float(combine(*[np.array([m]) for m in ms])[0])  # noqa: E731
    point, eps = value(means), 1e-6
    grad = [(value([m + eps * (j == k) for j, m in enumerate(means)]) -
             value([m - eps * (j == k) for j, m in enumerate(means)])) / (2 * eps) for k in range(len(parts))]
    z = sum(g * p for g, p in zip(grad, parts))
    seeds = z.mean(axis=1).var(ddof=1) / n_seeds if n_seeds > 1 else 0.0
    items = z.mean(axis=0).var(ddof=1) / n_items if n_items > 1 else 0.0
    var = seeds + items
    if var <= 0:
        return point, point, point
    # S − 1 degrees of freedom (the seeds are the scarce unit); I − 1 where the seeds do not vary at all (one seed,
    # or the same model in every row). Welch–Satterthwaite's df covered only 92% in the seed-dominated case of
    # tests/test_stats.py's simulation, S − 1 at least 95% in every case there.
    dof = n_seeds - 1 if seeds > 0 else n_items - 1
    half = t975(dof) * math.sqrt(var)
    return point, point - half, point + half


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
    return Estimate(*_clip(crossed_t([x], lambda a: a), low, high), _distinct(rows), CROSSED)


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
    return Estimate(*_clip(crossed_t([xa, xb], combine), *bounds), _distinct(ra, rb), CROSSED)


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
