"""Which cptlib modules the CPT learning rate passes through on its way to claims.csv (issue 47's measure of how far
a reader must follow one profile value): the modules whose code runs while a value derived from `cpt.lr` is an
argument, from the profile to the CPT stage's key and from the CPT stage to the claims' verdicts.

    CPTLIB_BUILD_DIR=<a built default> .venv/bin/python bench/cpt_lr_path.py

Traces (sys.setprofile) two calls on the default profile, both cached (nothing is trained or evaluated): the CPT
stage of seed 0 (`cptlib.family.resolve.cpt`: the learning rate becomes part of the stage key) and the claims
(`cptlib.study.report.assess` on the study's results: the stage's evaluations become verdicts). It counts the cptlib
modules entered in each, and the returns into an already-entered module (a back-and-forth).
"""
from __future__ import annotations

import sys

from cptlib.config import load_profile


def modules_entered(fn, *args):
    """Call fn(*args), return (the cptlib modules entered, in order of first entry; the back-and-forths: distinct
    (module, module it calls back into) pairs, where a module calls into one already further down the stack)."""
    order, stack, back = [], [], set()

    def hook(frame, event, arg):
        mod = frame.f_globals.get("__name__", "")
        if not mod.startswith("cptlib"):
            return
        if event == "call":
            if mod not in order:
                order.append(mod)
            if stack and stack[-1] != mod and mod in stack[:-1]:
                back.add((stack[-1], mod))
            stack.append(mod)
        elif event == "return" and stack:
            stack.pop()

    sys.setprofile(hook)
    try:
        fn(*args)
    finally:
        sys.setprofile(None)
    return order, sorted(back)


def main() -> None:
    from cptlib.family import resolve as fam
    from cptlib.members import Member
    from cptlib.study import experiments, report

    profile = load_profile("default")
    family = fam.build_family(profile, 0, other_family=False)
    to_key, back_key = modules_entered(fam.cpt, profile, family[Member.BASE_V1], 0)
    results = experiments.all_results(profile)
    to_claims, back_claims = modules_entered(report.assess, profile, results)
    every = list(dict.fromkeys(to_key + to_claims))
    for what, mods, back in (("profile -> CPT stage key", to_key, back_key), ("CPT stage -> claims", to_claims, back_claims)):
        print(f"{what}: {len(mods)} modules: {', '.join(mods)}")
        print(f"  {len(back)} back-and-forths: {', '.join(f'{a} -> {b}' for a, b in back) or 'none'}")
    print(f"in all: {len(every)} modules")


if __name__ == "__main__":
    main()
