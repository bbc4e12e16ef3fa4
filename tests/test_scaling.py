"""The size ladder's arithmetic (cptlib.study.scaling): the OLS trend and its intervals against scipy, their coverage,
the overlap of two updates on real model directories, and which sizes a calibration miss leaves out."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

from cptlib.study import scaling
from residual_helpers import write_model

X = np.log10([0.24e6, 0.55e6, 1.1e6, 2.3e6, 3.9e6])


def test_fit_matches_scipy_linregress_and_its_t_interval():
    y = np.array([0.70, 0.78, 0.74, 0.86, 0.90])
    f = scaling.fit(X, y)
    ref = sps.linregress(X, y)
    assert f["slope"] == pytest.approx(ref.slope) and f["intercept"] == pytest.approx(ref.intercept)
    half = sps.t.ppf(0.975, 3) * ref.stderr
    assert (f["slope_lo"], f["slope_hi"]) == pytest.approx((ref.slope - half, ref.slope + half))
    assert f["k"] == 5 and f["dof"] == 3


def test_prediction_interval_is_wider_than_the_band_and_grows_away_from_the_data():
    f = scaling.fit(X, np.array([0.70, 0.78, 0.74, 0.86, 0.90]))
    y, lo, hi = scaling.predict(f, f["xbar"], prediction=False)
    assert hi - y == pytest.approx(sps.t.ppf(0.975, 3) * f["resid_sd"] / math.sqrt(5))  # at x̄: t·s/√k
    _, plo, phi = scaling.predict(f, f["xbar"], prediction=True)
    assert phi - plo > hi - lo
    widths = [float(np.subtract(*scaling.predict(f, math.log10(n), True)[2:0:-1])) for n in (1e7, 5e8, 8e9)]
    assert widths == sorted(widths) and widths[-1] > 5 * (hi - lo)


def test_two_sizes_give_a_line_without_intervals_and_one_size_no_line():
    f = scaling.fit(X[:2], np.array([0.5, 0.6]))
    assert f["dof"] == 0 and math.isnan(f["slope_lo"]) and f["slope"] == pytest.approx(0.1 / (X[1] - X[0]))
    assert math.isnan(scaling.predict(f, 9.0, True)[1])
    with pytest.raises(ValueError, match="at least two different sizes"):
        scaling.fit(X[:1], np.array([0.5]))


def test_slope_interval_covers_the_true_slope_95_percent_of_the_time():
    """5 sizes, y = a + b·x + noise, 2,000 simulated ladders (a fixed generator: deterministic)."""
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(2000):
        f = scaling.fit(X, 0.8 + 0.05 * X + rng.normal(0, 0.04, len(X)))
        covered += f["slope_lo"] <= 0.05 <= f["slope_hi"]
    assert 0.935 <= covered / 2000 <= 0.965


def _per_size(values: dict[str, float], n_params: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame([{"size": s, "n_params": n_params[s], "quantity": q, "mean": v + (0.1 if q == scaling.DRIFT else 0)}
                         for s, v in values.items() for q in (scaling.RECOVERY, scaling.DRIFT)])


def test_trends_fit_the_valid_sizes_first_and_every_size_beside():
    n = dict(zip(["tiny", "mini", "small", "medium", "base"], 10 ** X))
    sizes = _per_size({"tiny": 0.2, "mini": 0.5, "small": 0.70, "medium": 0.72, "base": 0.74}, n)
    t = scaling.trends(sizes, valid={"small", "medium", "base"})
    rec = t[t.quantity == scaling.RECOVERY].set_index("fit_on")
    assert rec.loc["valid sizes", "sizes"] == "small medium base" and rec.loc["valid sizes", "k"] == 3
    assert rec.loc["all sizes", "k"] == 5 and rec.loc["all sizes", "slope"] > rec.loc["valid sizes", "slope"]
    assert {"at 0.5B", "at 1.5B lo", "at 8B hi"} <= set(t.columns)
    assert list(t.claim) == ["C5", "C5", "Q1", "Q1"]  # recovery is C5's quantity, the rest answer Q1
    one = scaling.trends(sizes, valid={"base"})  # a single valid size: only the fit over all sizes
    assert set(one.fit_on) == {"all sizes"}


def test_overlap_is_the_cosine_overall_and_per_module_group(tmp_path):
    names = {"model.embed_tokens.weight": (8, 4), "model.layers.0.self_attn.q_proj.weight": (4, 4),
             "model.layers.0.mlp.up_proj.weight": (6, 4), "model.norm.weight": (4,)}
    gen = torch.Generator().manual_seed(0)
    a = {k: torch.randn(s, generator=gen) for k, s in names.items()}
    b = {k: (-v if "mlp" in k else v) for k, v in a.items()}  # the same update, the MLP reversed
    base = write_model(tmp_path / "base", {k: torch.zeros(s) for k, s in names.items()})
    ra = _residual(base, write_model(tmp_path / "a", a), tmp_path / "ra")
    rb = _residual(base, write_model(tmp_path / "b", b), tmp_path / "rb")
    cos = scaling.overlap(ra, rb)
    assert cos["attention"] == pytest.approx(1.0) and cos["embeddings"] == pytest.approx(1.0)
    assert cos["mlp"] == pytest.approx(-1.0)
    mlp = float((a["model.layers.0.mlp.up_proj.weight"] ** 2).sum())
    total = sum(float((v ** 2).sum()) for v in a.values())
    assert cos["all"] == pytest.approx((total - 2 * mlp) / total, rel=1e-6)


def _residual(base, model, out):
    from cptlib.residual import extract

    return extract(base, model, out, progress=False)


def test_a_sizes_first_seed_miss_leaves_that_size_out_another_seeds_is_named():
    invalid = {"base_v1 (tiny)": ["era-A accuracy 0.655, target >= 0.95"], "instruct_v1 (seed 2)": ["IF 0.587"],
               "other_family": ["IF 0.153"]}
    gating, named = scaling.invalid_sizes(invalid, main_size="small")
    assert gating == {"tiny": ["base_v1 (tiny): era-A accuracy 0.655, target >= 0.95"]}
    assert named == ["instruct_v1 (seed 2): IF 0.587"]  # another ancestor seed's miss is named, not gating (run 17)
    assert scaling.size_of("instruct_v1 (medium)", "small") == "medium" and scaling.size_of("base_v1", "small") == "small"
