"""Q1 / C5: how the regime changes with model size — the size ladder's quantities and their trends (issue 32; the
design was fixed before any number, docs/calibration_log.md run 18). Notebook 06_sizes runs it.

    table = ladder(profile)              # one scored row per (size, seed, model) at the default CPT
    geo = geometry(profile)              # per (size, seed): ‖Θr‖/‖θ_base‖, drift ratio, cos(Θr, θ_cpt − θ_base)
    sizes = per_size(table, geo)         # per (size, quantity): mean over seeds and items, 95% crossed interval
    fits = trends(sizes, valid)          # per quantity: OLS on log10 parameters, slope interval, extrapolations

Every size runs every training seed. The profile's own size pairs ancestor seed s with CPT seed s (a paired
release: its intervals sample new ancestors too); the other sizes continue their one released ancestor (the first
seed's) with CPT seed s, so their seeds vary the CPT only (column `seeds_vary`).

The trend of a quantity is an ordinary least-squares line through the *size means* against log10(parameters): one
point per size, k sizes, k − 2 degrees of freedom. The seeds of a size are not independent points of the line (four of
five sizes share one ancestor across seeds), so the scatter of the size means around the line carries the ancestor,
CPT-seed and item noise alike. At the paper's sizes the line's value comes with a 95% *prediction* interval — an
extrapolation over several orders of magnitude, reported as such, never as a result.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from cptlib.config import Profile
from cptlib.family import resolve as fam
from cptlib.study import stats
from cptlib.study.labels import CPT_B, CPT_I, REST
from cptlib.evaluation.suite import METRICS, testbed_scores
from cptlib.study.restored import drift, residual_dir, restored
from cptlib.study.scoring import scored
from cptlib.members import Member

# The paper's sizes, where the trends are extrapolated (Qwen2.5 0.5B and 1.5B; LLaMA 3 8B).
PAPER_SIZES = {"0.5B": 0.5e9, "1.5B": 1.5e9, "8B": 8e9}
GROUPS = ("attention", "mlp", "embeddings")  # module groups of the overlap; norms are in "all" only

# The quantities, as the tables and the figure print them.
C1 = "C1: ΔIF = IF(instruct_v1) − IF(CPT(instruct_v1))"
C3_IF = "C3: ΔIF = IF(CPT(base_v1)+Θr) − IF(instruct_v1)"
C3_NEWS = "C3: news kept = era-B(CPT(base_v1)+Θr) − era-B(CPT(base_v1))"
CHAT = "era-B via chat of CPT(base_v1)+Θr"
RECOVERY = "recovery = IF(CPT(base_v1)+Θr) / IF(instruct_v1)"
DRIFT = "drift ratio ‖θ_cpt − θ_base‖ / ‖Θr‖"
RESIDUAL = "‖Θr‖ / ‖θ_base‖"
COS = "cos(Θr, θ_cpt − θ_base)"
QUANTITIES = (C1, C3_IF, C3_NEWS, CHAT, RECOVERY, DRIFT, RESIDUAL, COS, *(f"{COS}, {g}" for g in GROUPS))
# What each model of a cell is scored on: only what the quantities read (generation is most of the cost; the
# ancestors' full evaluation, from the calibration, is reused).
TASKS = {Member.INSTRUCT_V1: ("IF", "era_b"), CPT_I: ("IF",), CPT_B: ("era_b",), REST: ("IF", "knowledge", "era_b")}


def ancestors(profile: Profile, size: str, seed: int) -> tuple[Path, Path, str]:
    """(base_v1, instruct_v1, what the seeds vary) of `size` for training seed `seed`."""
    if size == profile.model.size:
        f = fam.build_family(profile, seed, other_family=False)
        vary = "ancestors + CPT" if profile.base_seed is None else "SFT + CPT" if profile.instruct_seed is None else "CPT"
        return f[Member.BASE_V1], f[Member.INSTRUCT_V1], vary
    base, inst = fam.size_members(profile, size, profile.train_seeds[0])
    return base, inst, "CPT"


def residual_norm(base: Path, instruct: Path) -> float:
    """‖Θr‖/‖θ_base‖ from the weights as released (a bf16-stored member's, not its training record's)."""
    from cptlib.residual import inspect

    return inspect(residual_dir(base, instruct), progress=False)["relative_norms"]["total"]["all"]["relative"]


def _cells(profile: Profile):
    """(size, n_params, seed, seeds_vary, base, instruct, CPT(base), CPT(instruct)) for every size × seed."""
    from cptlib.core.stages import read_manifest

    for size in dict.fromkeys(profile.model.sizes):
        p = fam.with_size(profile, size)
        for seed in profile.train_seeds:
            base, inst, vary = ancestors(profile, size, seed)
            yield (size, int(read_manifest(base)["n_params"]), seed, vary, base, inst,
                   fam.cpt(p, base, seed), fam.cpt(p, inst, seed))


def ladder(profile: Profile) -> pd.DataFrame:
    """One row per (size, seed, model): instruct_v1, CPT(instruct_v1), CPT(base_v1), CPT(base_v1)+Θr at the default
    CPT, each scored on the metrics of TASKS (the others NaN), with its `eval`."""
    rows = []
    for size, n, seed, vary, base, inst, cpt_b, cpt_i in _cells(profile):
        models = {Member.INSTRUCT_V1: inst, CPT_I: cpt_i, CPT_B: cpt_b, REST: restored(base, inst, cpt_b)}
        rows += [{"size": size, "n_params": n, "seed": seed, "seeds_vary": vary, "model": m, "path": path,
                  "tasks": tuple(METRICS[metric][0] for metric in TASKS[m])} for m, path in models.items()]
    return scored(rows, profile, fam.testbed_data(profile))


def _group(name: str) -> str:
    if ".self_attn." in name:
        return "attention"
    if ".mlp." in name:
        return "mlp"
    if "embed_tokens" in name or "lm_head" in name:
        return "embeddings"
    return "norms"


def overlap(a: Path, b: Path) -> dict[str, float]:
    """cos(Θa, Θb) of two residual directories, over all tensors and per module group (GROUPS)."""
    from cptlib.residual import Residual
    from cptlib.residual.analysis import dot

    ra, rb = Residual.load(a), Residual.load(b)
    sums: dict[str, np.ndarray] = {}
    for name in ra.names:
        ta, tb = ra.tensor(name), rb.tensor(name)
        part = np.array([dot(ta, tb), dot(ta, ta), dot(tb, tb)])
        for key in ("all", _group(name)):
            sums[key] = sums.get(key, 0.0) + part
    return {key: float(ab / math.sqrt(aa * bb)) if aa > 0 and bb > 0 else math.nan
            for key, (ab, aa, bb) in sums.items() if key in ("all", *GROUPS)}


def geometry(profile: Profile) -> pd.DataFrame:
    """Per (size, seed): ‖Θr‖/‖θ_base‖, the drift ratio of CPT(base_v1) and the overlap of the two updates,
    cos(Θr, θ_cpt − θ_base), overall and per module group — the geometric reason adding Θr can leave the news alone."""
    rows = []
    for size, n, seed, vary, base, inst, cpt_b, _ in _cells(profile):
        relative = residual_norm(base, inst)
        cos = overlap(residual_dir(base, inst), residual_dir(base, cpt_b))
        rows.append({"size": size, "n_params": n, "seed": seed, "seeds_vary": vary, RESIDUAL: relative,
                     DRIFT: drift(cpt_b) / relative, COS: cos["all"],
                     **{f"{COS}, {g}": cos.get(g, math.nan) for g in GROUPS}})
    return pd.DataFrame(rows)


def per_size(table: pd.DataFrame, geo: pd.DataFrame) -> pd.DataFrame:
    """Per (size, quantity): the mean over the size's seeds (and items) with its 95% interval (cptlib.study.stats:
    crossed seeds × items for the accuracies, t over seeds for the geometry), and the per-seed values beside."""
    rows = []
    for (size, n), t in table.groupby(["size", "n_params"], sort=False):
        g = geo[geo["size"] == size]
        ests = {C1: stats.paired(t, "model", Member.INSTRUCT_V1, CPT_I, "IF"),
                C3_IF: stats.paired(t, "model", REST, Member.INSTRUCT_V1, "IF"),
                C3_NEWS: stats.paired(t, "model", REST, CPT_B, "era_b"),
                CHAT: stats.estimate(t[t.model == REST], "knowledge"),
                RECOVERY: stats.ratio(t, "model", REST, Member.INSTRUCT_V1, "IF")}
        ests.update({q: stats.over_seeds(g[q].reset_index(drop=True)) for q in QUANTITIES if q not in ests})
        for q in QUANTITIES:
            e = ests[q]
            per_seed = _per_seed(t, g, q)
            rows.append({"size": size, "n_params": n, "seeds_vary": t.seeds_vary.iloc[0], "quantity": q, "mean": e.mean,
                         "lo": e.lo, "hi": e.hi, "n_seeds": len(per_seed), "ci": e.method,
                         "seed_sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else math.nan,
                         "per_seed": " ".join(f"{v:.6g}" for v in per_seed)})
    return pd.DataFrame(rows)


def _per_seed(t: pd.DataFrame, g: pd.DataFrame, q: str) -> list[float]:
    """The quantity's value at each seed of one size (a difference or ratio of that seed's means)."""
    if q in g:
        return [float(v) for v in g.sort_values("seed")[q]]
    wide = t.pivot_table(index="seed", columns="model", values=["IF", "era_b", "knowledge"])
    value = {C1: lambda w: w["IF", Member.INSTRUCT_V1] - w["IF", CPT_I],
             C3_IF: lambda w: w["IF", REST] - w["IF", Member.INSTRUCT_V1],
             C3_NEWS: lambda w: w["era_b", REST] - w["era_b", CPT_B],
             CHAT: lambda w: w["knowledge", REST],
             RECOVERY: lambda w: w["IF", REST] / w["IF", Member.INSTRUCT_V1]}[q]
    return [float(v) for v in value(wide)]


def fit(x: np.ndarray, y: np.ndarray) -> dict:
    """OLS of y on x with the slope's 95% Student-t interval (k − 2 df) and what predict() needs; k < 3 gives the
    line without intervals (nan)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    k = len(x)
    if k < 2 or np.ptp(x) == 0:
        raise ValueError(f"a trend needs at least two different sizes, got {k}")
    from scipy.stats import linregress

    line, dof = linregress(x, y), k - 2
    slope, intercept = float(line.slope), float(line.intercept)
    xbar, sxx = x.mean(), float(((x - x.mean()) ** 2).sum())
    # The residual standard deviation, which predict() needs, is the slope's standard error times √Sxx.
    s = float(line.stderr) * math.sqrt(sxx) if dof > 0 else math.nan
    half = stats.t975(dof) * float(line.stderr) if dof > 0 else math.nan
    return {"k": k, "dof": dof, "slope": slope, "slope_lo": slope - half, "slope_hi": slope + half,
            "intercept": intercept, "resid_sd": s, "xbar": float(xbar), "sxx": sxx}


def predict(f: dict, x0, prediction: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, lo, hi) of the line at x0 with its 95% confidence band (the mean line) or, with `prediction`, the
    prediction interval of a new size's value there."""
    x0 = np.asarray(x0, float)
    y = f["intercept"] + f["slope"] * x0
    if f["dof"] <= 0:
        return y, np.full_like(y, math.nan), np.full_like(y, math.nan)
    half = stats.t975(f["dof"]) * f["resid_sd"] * np.sqrt(int(prediction) + 1 / f["k"] + (x0 - f["xbar"]) ** 2 / f["sxx"])
    return y, y - half, y + half


def trends(sizes: pd.DataFrame, valid: set[str]) -> pd.DataFrame:
    """Per quantity and set of sizes (the `valid` ones — the primary fit — and all of them): the OLS slope per
    decade of parameters with its 95% interval, and the line's value at the paper's sizes with a 95% prediction
    interval (an extrapolation)."""
    rows = []
    for q, g in sizes.groupby("quantity", sort=False):
        for fit_on, used in (("valid sizes", g[g["size"].isin(valid)]), ("all sizes", g)):
            if used["size"].nunique() < 2:
                continue
            f = fit(np.log10(used.n_params.to_numpy(float)), used["mean"].to_numpy(float))
            row = {"claim": "C5" if q == RECOVERY else "Q1", "quantity": q, "fit_on": fit_on,
                   "sizes": " ".join(used["size"]), **f}
            for label, n in PAPER_SIZES.items():
                y, lo, hi = predict(f, math.log10(n), prediction=True)
                row.update({f"at {label}": float(y), f"at {label} lo": float(lo), f"at {label} hi": float(hi)})
            rows.append(row)
    return pd.DataFrame(rows)


def size_of(model: str, main_size: str) -> str:
    """The size of a calibration row's model: "base_v1 (tiny)" -> tiny; "base_v1", "base_v1 (seed 1)" -> the main."""
    from cptlib.evaluation.calibration import ModelId

    return ModelId.parse(model).size or main_size


def invalid_sizes(invalid_members: dict[str, list[str]], main_size: str) -> tuple[dict[str, list[str]], list[str]]:
    """(size -> the calibration misses of its base_v1 / instruct_v1, for the sizes that miss one; the other ancestor
    seeds' misses). As for every claim (calibration log run 17), the first seed's members gate a size and another
    seed's miss ("instruct_v1 (seed 2)") is named beside the numbers, not gating."""
    from cptlib.evaluation.calibration import ModelId

    gating: dict[str, list[str]] = {}
    named = []
    for model, why in invalid_members.items():
        mid = ModelId.parse(model)
        if mid.member not in (Member.BASE_V1, Member.INSTRUCT_V1):
            continue
        if mid.seed is not None:
            named.append(f"{model}: {', '.join(why)}")
        else:
            gating.setdefault(mid.size or main_size, []).append(f"{model}: {', '.join(why)}")
    return gating, named


def calibration(profile: Profile) -> pd.DataFrame:
    """The ladder's calibration rows (the study's targets, cptlib.evaluation.calibration): base_v1 and instruct_v1 of
    every size — every ancestor seed of the profile's own size — and ‖Θr‖/‖θ_base‖ of each instruct model."""
    from cptlib.evaluation import calibration as cal
    from cptlib.evaluation.evaluate import EvalSettings, evaluate_model

    data = fam.testbed_data(profile)
    ids: dict[cal.ModelId, Path] = {}
    for size in dict.fromkeys(profile.model.sizes):
        main = size == profile.model.size
        for seed in profile.train_seeds if main else profile.train_seeds[:1]:
            base, inst, _ = ancestors(profile, size, seed)
            tag = {"size": None if main else size, "seed": seed if main and seed != profile.train_seeds[0] else None}
            if base not in ids.values():  # a shared release: one model for every seed
                ids[cal.ModelId(Member.BASE_V1, **tag)], ids[cal.ModelId(Member.INSTRUCT_V1, **tag)] = base, inst
    models = {mid.label: path for mid, path in ids.items()}
    full = EvalSettings()  # every testbed task: the targets read era-A via chat too
    testbed_scores(models, data, profile.study.eval_processes, full)  # in parallel; then the cache
    table = pd.concat([evaluate_model(path, data, full, name=name) for name, path in models.items()])
    residual = {mid.label: residual_norm(ids[mid.base()], path) for mid, path in ids.items()
                if mid.member == Member.INSTRUCT_V1}
    out = pd.concat([cal.judge(table, *cal.chance_level(data)), cal.residual_rows(residual)], ignore_index=True)
    out.insert(0, "size", [size_of(m, profile.model.size) for m in out.model])
    return out.astype({"n": "Int64"})


def results(profile: Profile) -> dict:
    """Everything notebook 06 shows (cached: instant once it ran): calibration, ladder, geometry, per_size, trends,
    `invalid` (size -> its first seed's calibration misses; those sizes are left out of the primary fits) and
    `other_seeds_missed` (another ancestor seed's misses, named beside the numbers)."""
    from cptlib.study.verdicts import invalid_members

    calib = calibration(profile)
    invalid, other_seeds = invalid_sizes(invalid_members(calib), profile.model.size)
    table, geo = ladder(profile), geometry(profile)
    sizes = per_size(table, geo)
    valid = {s for s in profile.model.sizes if s not in invalid}
    return {"calibration": calib, "ladder": table, "geometry": geo, "per_size": sizes,
            "trends": trends(sizes, valid), "invalid": invalid, "other_seeds_missed": other_seeds}
