"""The claims table and the report of notebook 05.

    table = claims(results)          # results: the tables of cptlib.study.experiments, by name (see CLAIM_INPUTS)
    write_report(profile, table, calibration, run_times)   # figures/<profile>/REPORT.md and report.html

Verdicts are computed from the data by the criteria in CRITERIA, written down (here and in docs/study.md)
before any result was looked at. Δ values are paired by training seed; "CI" is the 95% t-interval of the
per-seed Δ (cptlib.study.stats); with one seed there is no interval and the criteria use the point estimate.
EFFECT = 0.05 (5 points of accuracy) is the smallest difference the verdicts treat as real.
"""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import pandas as pd

from cptlib.study.plots import figures_dir, markdown
from cptlib.study.stats import ci95
from cptlib.study.experiments import CPT_B, CPT_I, REST, TESTBED_ONLY

EFFECT = 0.05
CRITERIA = {
    "C1": "Δ = IF(instruct_v1) − IF(CPT(instruct_v1)) at the final budget. reproduced: Δ − CI > 0 and Δ ≥ 0.05 and "
          "IF at the final budget below IF at the first milestone; partly: Δ > 0 but not all of these; else not.",
    "C2": "Δ = era-A acc(base_v1) − era-A acc(CPT(base_v1)). reproduced: Δ + CI ≤ 0.05; partly: Δ ≤ 0.05 < Δ + CI; "
          "else not.",
    "C3": "ΔIF = IF(CPT(base_v1)+Θr) − IF(instruct_v1), ΔB = era-B acc(CPT(base_v1)+Θr) − era-B acc(CPT(base_v1)). "
          "reproduced: ΔIF ≥ −0.05 and ΔB ≥ −0.05 and the restored model knows more news than instruct_v1 (era-B acc "
          "higher by ≥ 0.05); partly: it beats CPT(instruct_v1) on IF by ≥ 0.05 and ΔB ≥ −0.05; else not.",
    "C4": "(a) IF(base_v1+Θr(v2)) ≥ IF(instruct_v1) − 0.05; (b) IF(base_v2+Θr(v1)) − IF(base_v2) ≥ 0.05. "
          "reproduced: both; partly: one; else not (first seed).",
    "C5": "recovery = IF(CPT(base_v1)+Θr) / IF(instruct_v1) per size. reproduced: recovery grows with size "
          "(non-decreasing) and smallest < largest by ≥ 0.05; partly: smallest < largest; else not; "
          "not tested with one size.",
    "C6": "ratio = FLOPs(SFT after CPT) / FLOPs(adding Θr). reproduced: ≥ 100; partly: ≥ 10; else not.",
    "Q1": "open question: recovery (as C5) per size is the answer.",
    "Q2": "open question: IF of CPT(instruct_v1) and of CPT(base_v1)+Θr at the first milestone and the final budget.",
    "Q3": "open question: IF and era-B acc of each merge method on CPT(base_v1); the best by IF is named.",
    "N1": "expected to fail. ΔIF = IF(CPT(base_v1)+Θr(other_family)) − IF(CPT(base_v1)). reproduced (it fails): "
          "ΔIF < 0.05 and below the own-family residual's gain by ≥ 0.05; partly: only the second; else not.",
    "N2": "forgetting Δ = IF(instruct_v1) − IF(CPT(instruct_v1)) per CPT corpus against the corpus' shift (base_v1 "
          "bits per byte). reproduced: Δ is larger on the corpus with the larger shift by ≥ 0.05; partly: larger; "
          "else not; not tested with one corpus.",
    "N3": "open question: the module with the largest ‖Θr‖/‖θ_base‖, and IF with the attention-only and MLP-only residual.",
    "N4": "open question: the largest drift ratio ‖θ_cpt − θ_base‖/‖Θr‖ at which the restored IF is still ≥ 0.8 × "
          "IF(instruct_v1), over budgets × learning rates.",
}
PAPER = {
    "C1": "IFEval drops up to 5.7 pts after 100M tokens (avg 2.7 over tasks); ≈10 pts after 1B (secondary)",
    "C2": "small degradation of base abilities",
    "C3": "restored ≈ instruct, sometimes +4–5 pts IFEval, news kept",
    "C4": "3.1 residual on 3 base beats 3 Instruct; 3 residual on 3.1 base below 3.1 Instruct, above base",
    "C5": "≤1.5B models benefit less / vary more",
    "C6": "≈2000× fewer FLOPs than instruction tuning",
    "Q1": "(open)", "Q2": "(open)", "Q3": "(open)",
    "N1": "(suggested check; expected to fail)", "N2": "(suggested check)", "N3": "(suggested check)",
    "N4": "(our question; paper's regime = small drift)",
}
CLAIM_INPUTS = ("forgetting", "n4", "recipes", "costs", "transfer", "ablations", "sizes", "shift")
RESULT = "measured (95% CI over seeds)"
NO_NEWS = "not tested (no new-knowledge metric: map era_b in eval.metrics)"


def _paired(table: pd.DataFrame, key: str, a: str, b: str, metric: str) -> tuple[float, float]:
    """Mean and 95% CI half-width of metric(a) − metric(b) paired by seed, rows selected by table[key]."""
    wide = table[table[key].isin([a, b])].pivot_table(index="seed", columns=key, values=metric)
    return ci95(wide[a] - wide[b])


def _ci(x: float) -> float:
    return 0.0 if math.isnan(x) else x


def _fmt(mean: float, half: float) -> str:
    return f"{mean:+.3f}" + ("" if math.isnan(half) else f" ± {half:.3f}")


def _verdict(full: bool, part: bool) -> str:
    return "reproduced" if full else "partly" if part else "not reproduced"


def _value(table: pd.DataFrame, metric: str, **where) -> float:
    hit = table
    for k, v in where.items():
        hit = hit[hit[k] == v]
    if hit.empty:
        raise ValueError(f"no row with {where} in the table")
    return float(hit[metric].mean())


def claims(r: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per claim: claim, paper, testbed (with its 95% CI), verdict, criterion."""
    out = {}
    fg, final = r["forgetting"], r["forgetting"].tokens.max()
    end = fg[fg.tokens.isin([0, final])]
    d, h = _paired(end, "model", "instruct_v1", CPT_I, "IF")
    first_ms = fg[(fg.model == CPT_I) & (fg.tokens > 0)].tokens.min()
    s0 = fg.seed.min()
    grows = _value(fg, "IF", model=CPT_I, tokens=final, seed=s0) < _value(fg, "IF", model=CPT_I, tokens=first_ms, seed=s0)
    out["C1"] = (f"ΔIF {_fmt(d, h)} after {final:,} tokens", _verdict(d - _ci(h) > 0 and d >= EFFECT and grows, d > 0))
    d, h = _paired(end, "model", "base_v1", CPT_B, "era_a")
    out["C2"] = (f"Δ era-A {_fmt(d, h)}", _verdict(d + _ci(h) <= EFFECT, d <= EFFECT))

    rc = r["recipes"]
    news = rc.era_b.notna().any()  # a real profile measures new knowledge only if it maps era_b to a task
    dif, hif = _paired(rc, "recipe", REST, "instruct_v1", "IF")
    dnaive, _ = _paired(rc, "recipe", REST, CPT_I, "IF")
    if news:
        db, hb = _paired(end[end.tokens == final], "model", REST, CPT_B, "era_b")
        dnews, _ = _paired(rc, "recipe", REST, "instruct_v1", "era_b")
        out["C3"] = (f"ΔIF vs instruct {_fmt(dif, hif)}; Δ era-B vs CPT(base) {_fmt(db, hb)}",
                     _verdict(dif >= -EFFECT and db >= -EFFECT and dnews >= EFFECT, dnaive >= EFFECT and db >= -EFFECT))
    else:
        out["C3"] = (f"ΔIF vs instruct {_fmt(dif, hif)}; ΔIF vs CPT(instruct) {dnaive:+.3f}", NO_NEWS)

    tr = r["transfer"]
    a = _value(tr, "IF", source="v2", target="base_v1") - _value(tr, "IF", source="native", target="instruct_v1")
    b = _value(tr, "IF", source="v1", target="base_v2") - _value(tr, "IF", source="none", target="base_v2")
    out["C4"] = (f"IF(base_v1+Θr(v2)) − IF(instruct_v1) {a:+.3f}; IF(base_v2+Θr(v1)) − IF(base_v2) {b:+.3f}",
                 _verdict(a >= -EFFECT and b >= EFFECT, a >= -EFFECT or b >= EFFECT))

    if "sizes" in r:
        sz = r["sizes"].sort_values("n_params")
        rec = [(size, _value(g, "IF", model=REST) / max(_value(g, "IF", model="instruct_v1"), 1e-9))
               for size, g in sz.groupby("size", sort=False)]
        rec_text = ", ".join(f"{s} {v:.2f}" for s, v in rec)
        if len(rec) < 2:
            out["C5"] = (f"recovery {rec_text}", "not tested (one size)")
        else:
            vals = [v for _, v in rec]
            mono = all(x <= y for x, y in zip(vals, vals[1:]))
            out["C5"] = (f"recovery {rec_text}", _verdict(mono and vals[-1] - vals[0] >= EFFECT, vals[0] < vals[-1]))
        out["Q1"] = (f"recovery by size: {rec_text}", "answered")
    else:
        out["C5"] = out["Q1"] = (TESTBED_ONLY["sizes"], "not run (testbed only)")
    co = r["costs"]
    if (co["step after CPT"] == "SFT").any():
        ratio = co[co["step after CPT"] == "SFT"].flops.mean() / co[co["step after CPT"] == "add Θr"].flops.mean()
        out["C6"] = (f"SFT / add-Θr FLOPs = {ratio:,.0f}×", _verdict(ratio >= 100, ratio >= 10))
    else:
        add = co[co["step after CPT"] == "add Θr"]
        out["C6"] = (f"adding Θr: {add.flops.mean():.3g} FLOPs, {add.wall_seconds.mean():.1f} s; {TESTBED_ONLY['sft']}",
                     "not run (testbed only)")

    out["Q2"] = (f"IF CPT(instruct) {_value(fg, 'IF', model=CPT_I, tokens=first_ms, seed=s0):.2f} → "
                 f"{_value(fg, 'IF', model=CPT_I, tokens=final, seed=s0):.2f}; restored "
                 f"{_value(fg, 'IF', model=REST, tokens=first_ms, seed=s0):.2f} → "
                 f"{_value(fg, 'IF', model=REST, tokens=final, seed=s0):.2f} ({first_ms:,} → {final:,} tokens)", "answered")
    mg = r["ablations"][r["ablations"].ablation == "merge"]
    best = mg.loc[mg.IF.idxmax()]
    out["Q3"] = ("; ".join(f"{s} IF {i:.2f}" for s, i in zip(mg.setting, mg.IF)) + f" — best: {best.setting}", "answered")

    own = _value(tr, "IF", source="v1", target="CPT(base_v1)") - _value(fg, "IF", model=CPT_B, tokens=final, seed=s0)
    if (tr.source == "other_family").any():
        other = _value(tr, "IF", source="other_family", target="CPT(base_v1)") - _value(fg, "IF", model=CPT_B, tokens=final, seed=s0)
        out["N1"] = (f"IF gain other-family {other:+.3f} vs own {own:+.3f}",
                     _verdict(other < EFFECT and own - other >= EFFECT, own - other >= EFFECT))
    else:
        out["N1"] = (f"own-family IF gain {own:+.3f}; no other family in the profile (models.other_family)", "not run")
    if "shift" in r:
        sh = r["shift"][r["shift"].model == CPT_I].sort_values("shift_bpb")
        inst_if = _value(fg, "IF", model="instruct_v1", seed=s0)
        drops = [(c, s, inst_if - i) for c, s, i in zip(sh.corpus, sh.shift_bpb, sh.IF)]
        text = "; ".join(f"{c}: shift {s:.2f} bpb, ΔIF {x:+.3f}" for c, s, x in drops)
        out["N2"] = (text, "not tested (one corpus)" if len(drops) < 2 else
                     _verdict(drops[-1][2] - drops[0][2] >= EFFECT, drops[-1][2] > drops[0][2]))
    else:
        out["N2"] = (TESTBED_ONLY["shift"], "not run (testbed only)")
    ab = r["ablations"]
    mods = ab[ab.ablation == "modules"]
    out["N3"] = ("; ".join(f"{s} IF {i:.2f}" for s, i in zip(mods.setting, mods.IF)), "answered")
    n4 = r["n4"][r["n4"].model == REST]
    inst_if_mean = _value(fg, "IF", model="instruct_v1")
    ok = n4[n4.IF >= 0.8 * inst_if_mean]
    kept = (f"restored IF ≥ 0.8×instruct up to drift ratio {ok.drift_ratio.max():.2f}" if len(ok)
            else f"restored IF < 0.8×instruct at every drift ratio ≥ {n4.drift_ratio.min():.2f}")
    out["N4"] = (f"{kept}. {regime(r['n4'], inst_if_mean)}", "answered")
    return pd.DataFrame([{"claim": k, "paper (approx.)": PAPER[k], RESULT: v[0], "verdict": v[1],
                          "criterion": CRITERIA[k]} for k, v in sorted(out.items(), key=lambda kv: list(PAPER).index(kv[0]))])



def regime(n4: pd.DataFrame, instruct_if: float, keep: float = 0.8, knows: float = 0.9) -> str:
    """N4 in one sentence, from the data: the (budget, learning rate) cells where CPT(base)+Θr both follows
    instructions (IF ≥ `keep` × instruct_v1's) and knows the news (era-B ≥ `knows`), and where IF breaks."""
    rest = n4[n4.model == REST]
    follows = rest.IF >= keep * instruct_if
    if rest.era_b.isna().all():  # a real profile without a new-knowledge metric: IF only
        text = (f"Restored IF ≥ {keep:.0%} of instruct_v1's in {int(follows.sum())} of {len(rest)} budget × learning-rate "
                f"cells" + (f", up to drift ratio {rest[follows].drift_ratio.max():.2f}" if follows.any() else ""))
        return text + "; whether the news is learned is not measured (no era_b metric)."
    works, broken = rest[follows & (rest.era_b >= knows)], rest[~follows]
    cells = lambda t: ", ".join(f"{tok:,} tokens at lr {lr:g}" for tok, lr in zip(t.tokens, t.lr))  # noqa: E731
    text = (f"The recipe works (restored IF ≥ {keep:.0%} of instruct_v1's and era-B accuracy ≥ {knows:.2f}) in "
            f"{len(works)} of {len(rest)} budget × learning-rate cells")
    text += (f", at drift ratios {works.drift_ratio.min():.2f}–{works.drift_ratio.max():.2f} ({cells(works)})"
             if len(works) else "")
    if len(broken):
        text += (f"; it breaks (restored IF below {keep:.0%} of instruct_v1's) from drift ratio "
                 f"{broken.drift_ratio.min():.2f} on ({len(broken)} cells, the largest drift {broken.drift_ratio.max():.2f})")
    else:
        text += f"; restored IF never fell below {keep:.0%} of instruct_v1's (drift ratio up to {rest.drift_ratio.max():.2f})"
    early = rest[follows & (rest.era_b < knows)]
    if len(early):
        text += f"; in {len(early)} cells IF is kept but the news is not yet learned (drift ≤ {early.drift_ratio.max():.2f})"
    return text + "."


HEADLINE = ("forgetting", "recipes", "transfer", "n4_map")
FIGURES = HEADLINE + ("costs", "ablations", "sizes", "shift", "residual_norms")


def _calibration(out: Path) -> pd.DataFrame | None:
    path = out / "calibration.csv"
    return pd.read_csv(path) if path.is_file() else None


def write_report(profile, claims_table: pd.DataFrame, run_times: dict[str, float]) -> dict[str, Path]:
    """figures/<profile>/REPORT.md (links the PNGs beside it) and report.html (PNGs embedded: one file)."""
    from cptlib.study.plots import _atomic, provenance_record, scope

    out = figures_dir(profile)
    calib = _calibration(out)
    times = pd.DataFrame([{"notebook": k, "seconds": v} for k, v in sorted(run_times.items())])
    prov = provenance_record(profile)
    shown = [f for f in FIGURES if (out / f"{f}.png").is_file()]
    captions = {f: json.loads((out / f"{f}.json").read_text())["caption"] for f in shown}
    summary = claims_table.drop(columns="criterion")
    md = [f"# Report — profile `{profile.name}`", "", f"> {scope(profile)} Paper figures are approximate (secondary "
          "sources, BRIEF §1).", "", f"Code version `{prov['code_version']}`; training seeds {profile.train_seeds}.", "",
          "## Headline figures", ""]
    md += [f"![{f}]({f}.png)\n\n*{captions[f]}*\n" for f in shown if f in HEADLINE]
    n4_row = claims_table[claims_table.claim == "N4"]
    regime_text = n4_row[RESULT].iloc[0] if len(n4_row) else "(no N4 result)"
    md += ["## Where the recipe works (N4)", "", regime_text, ""]
    md += ["## Claims", "", markdown(summary), "", "Verdict criteria (fixed before the results):", ""]
    md += [f"- **{k}**: {v}" for k, v in CRITERIA.items()]
    md += ["", "## Calibration", "", markdown(calib) if calib is not None else "(notebook 00 has not run)", "",
           "## Run time per notebook", "", markdown(times) if len(times) else "(no timed runs yet)",
           "", "(05 is this notebook; its own time is recorded after it finishes.)", "", "## Other figures", ""]
    md += [f"![{f}]({f}.png)\n\n*{captions[f]}*\n" for f in shown if f not in HEADLINE]
    md += ["## Provenance", "", "```", f"libraries: {prov['libraries']}", "```", ""]
    _atomic(out / "REPORT.md", lambda p: p.write_text("\n".join(md)))

    def img(f: str) -> str:
        data = base64.b64encode((out / f"{f}.png").read_bytes()).decode()
        return f'<figure><img src="data:image/png;base64,{data}" style="max-width:100%"><figcaption>{html.escape(captions[f])}</figcaption></figure>'

    body = [f"<h1>Report — profile {html.escape(profile.name)}</h1>",
            f"<p><em>{html.escape(scope(profile))} Paper figures are approximate (secondary sources).</em></p>",
            f"<p>Code version <code>{html.escape(prov['code_version'])}</code>; training seeds {profile.train_seeds}.</p>",
            "<h2>Headline figures</h2>", *[img(f) for f in shown if f in HEADLINE],
            "<h2>Where the recipe works (N4)</h2>", f"<p>{html.escape(regime_text)}</p>",
            "<h2>Claims</h2>", summary.to_html(index=False, escape=True),
            "<h3>Verdict criteria (fixed before the results)</h3><ul>",
            *[f"<li><b>{k}</b>: {html.escape(v)}</li>" for k, v in CRITERIA.items()], "</ul>",
            "<h2>Calibration</h2>", calib.to_html(index=False) if calib is not None else "<p>(notebook 00 has not run)</p>",
            "<h2>Run time per notebook</h2>", times.to_html(index=False) if len(times) else "<p>(none)</p>",
            "<h2>Other figures</h2>", *[img(f) for f in shown if f not in HEADLINE],
            "<h2>Provenance</h2>", f"<pre>{html.escape(str(prov['libraries']))}</pre>"]
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>cptlib report</title><style>body{font-family:"
            "sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;font-size:12px}td,th{border:1px "
            "solid #ccc;padding:3px 6px;vertical-align:top}figcaption{font-size:12px;color:#555}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
    _atomic(out / "report.html", lambda p: p.write_text(page))
    return {"markdown": out / "REPORT.md", "html": out / "report.html"}
