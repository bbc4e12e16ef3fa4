"""N2 (suggested check): the data shift between CPT and the original data drives forgetting."""
from __future__ import annotations

from dataclasses import replace

import pandas as pd

from cptlib.study import stats
from cptlib.study import verdicts as V
from cptlib.study.claims.base import Claim, Results
from cptlib.study.criteria import EFFECT
from cptlib.study.effects import Quantity, get, row
from cptlib.study.labels import CPT_I
from cptlib.members import Member


def shift_quantity(corpus: str, shift_bpb: float) -> Quantity:
    return Quantity("N2", f"ΔIF on {corpus.removesuffix('.jsonl')} (shift {shift_bpb:.2f} bpb)")


def measure(r: Results) -> list[dict]:
    """Per CPT corpus, in order of shift (base_v1's bits per byte, the mean over the seeds): IF(instruct_v1) −
    IF(CPT(instruct_v1)), paired by seed over the seeds the shift table has."""
    if "shift" not in r or "forgetting" not in r:
        return []
    fg, sh = r["forgetting"], r["shift"][r["shift"].model == CPT_I]
    if "seed" not in sh:  # a table of one seed, written before issue 48
        sh = sh.assign(seed=fg.seed.min())
    inst = fg[(fg.model == Member.INSTRUCT_V1) & (fg.tokens == 0) & fg.seed.isin(sh.seed.unique())]
    rows = []
    for corpus, shift in sh.groupby("corpus").shift_bpb.mean().sort_values().items():
        both = pd.concat([inst.assign(arm=Member.INSTRUCT_V1), sh[sh.corpus == corpus].assign(arm="cpt")])
        drop = stats.paired(both, "arm", Member.INSTRUCT_V1, "cpt", "IF")
        rows.append(row(shift_quantity(corpus, shift), drop))
    return rows


def judge(ctx: V.Context) -> V.Verdict:
    if (gated := V.gate(ctx, CLAIM)) is not None:
        return gated
    drops = [V.Check(q, get(ctx.fx, q), "shown", V.Met.SHOWN)
             for q in (Quantity("N2", text) for text in ctx.fx[ctx.fx.claim == "N2"].quantity)]
    if not drops:
        return V.absent("N2")
    text = "; ".join(f"{c.quantity.text}: {c.estimate.text()}" for c in drops)
    if len(drops) < 2:
        return V.Verdict("N2", V.Outcome.NOT_TESTABLE, text, "one corpus", checks=tuple(drops), note="one corpus")
    lo, hi = drops[0].estimate.mean, drops[-1].estimate.mean  # sorted by shift
    out = V.grade(hi - lo >= EFFECT, hi > lo)
    largest = replace(drops[-1], rule=f"≥ the smallest shift's ΔIF + {EFFECT:g}", met=V.met(hi - lo >= EFFECT))
    one = all(c.estimate.n_seeds == 1 for c in drops)
    return V.Verdict("N2", out, text, f"the larger shift forgets {hi - lo:+.3f} more", checks=(*drops[:-1], largest),
                     note="1 seed" if one else "")


CLAIM = Claim(
    "N2", "(suggested check)",
    "forgetting Δ = IF(instruct_v1) − IF(CPT(instruct_v1)) per CPT corpus against the corpus' shift (base_v1 bits per "
    "byte). reproduced: Δ is larger on the corpus with the larger shift by ≥ 0.05; partly: larger; else not; not "
    "testable with one corpus.", judge, measure, needs=(Member.BASE_V1, Member.INSTRUCT_V1), part="shift")
