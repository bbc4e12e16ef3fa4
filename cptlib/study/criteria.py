"""The verdicts' shared thresholds and the rules that apply to every claim (each claim's own rule, its paper's words
and numbers, and whether it was changed after the results were first seen live in its module, cptlib/study/claims/).

The in-kind rules were written before any result was looked at, except those with `old` set: C4, C6, N4 (issue 29,
2026-12-03, after a reviewer's read of the committed figures), C5 (calibration log run 18), C1, C2 (run 19: the
paper's benchmarks, added before any benchmark number after CPT) and C1–C6 again (run 22, 2026-12-07: bounds judged on
the interval, after a reviewer's read of the committed claims; before any C1–C3 number of the real pair).
"""
from __future__ import annotations

EFFECT = 0.05  # 5 points of accuracy: the smallest difference the verdicts treat as real
FACTOR = 3.0  # "in size": within ×/÷ 3 of a number the paper states
KEEP = 0.8  # N4: restored IF still ≥ 80% of instruct_v1's
KNOWS = 0.90  # N4: the news counts as learned at era-B accuracy ≥ 0.90 (the calibration target)
# The calibration rows that say whether a model is valid for a claim (its own targets, notebook 00). The regime
# ratios (residual, drift, register, tokens) describe where the testbed sits and do not gate a verdict.
VALIDITY = ("IF prompt-level strict", "era-A accuracy", "era-A via chat", "era-B accuracy")
SIZE_RULE = (f"an effect the paper states as a number is within a factor {FACTOR:g} of it (C1: 5.7 points; C6: "
             f"2000×); one it states as about equal or a few points (C3 ΔIF 0 to +5 points; C4 (a) 0 to +5; C4 (b) −5 "
             f"to 0 points below the newer instruct model) lies in that range widened by {EFFECT:g} away from 0 (never to the "
             "opposite sign; calibration log run 22); claims the paper "
             "gives no number for are not judged in size.")
VALIDITY_RULE = ("a seed whose member misses one of its own calibration targets is left out of every claim that needs "
                 "that member (the claim's numbers use the other seeds and name the one left out); a claim with no "
                 "seed left is not testable")
# Rules for every claim changed after results were seen: (what, the rule now, the rule before), in the order made.
GENERAL_CHANGES = (
    ("every claim", "a claim whose models miss their own calibration target (VALIDITY) is not testable; its numbers "
     "are shown unjudged", "judged as any other claim (C5: 'not reproduced' on sizes whose bases miss their era-A "
     "target)"),
    ("every claim (run 22)", VALIDITY_RULE, "the first seed's members gated a claim (not testable); another seed's "
     "member that missed was counted and named beside the numbers"),
    ("every claim (run 22)", "a bound is judged on the 95% interval: met when the interval lies on the claim's side, "
     "missed when it lies wholly on the other, inconclusive when it spans the bound; a claim whose headline check is "
     "inconclusive is 'inconclusive'", "most bounds were judged on the mean (C1's Δ ≥ 0.05, C3, C6, N1, N2), a few "
     "on the interval (C1, C2, C4, C5)"),
    ("in size (run 22)", f"a range the paper states is widened by {EFFECT:g} away from 0 only", f"widened by "
     f"{EFFECT:g} on both sides, which accepted the opposite sign (C4 (a) at −0.05 for 'beats')"),
)
CALIBRATION_CHANGE = ("instruct models' IF target ≥ 0.60 and ≥ their base's + 0.40 (issue 30's re-anchoring on "
                      "real instruct models' IFEval: 0.77 Llama-3-8B-Instruct, 0.71 Qwen2.5-7B-Instruct); was ≥ 0.85")

