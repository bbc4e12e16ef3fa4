"""The experiments of notebooks 01–04 (docs/paper.md §3), each returning a tidy table with one row per model scored.

    profile = load_profile("smoke")
    curve = forgetting(profile)        # seed, tokens, model, drift, drift_ratio, IF, knowledge, era_a, ...

Everything is cached (training and restored models as stages, evaluations by model content), so a notebook
that is run again does no work. The key results (forgetting endpoints, recipes, the transfer diagonal) run
every seed of `profile.train_seeds`; the other parts (milestones, the N4 map, the ablations, the data shift) run
`part_seeds(profile)`: every seed whose ancestors meet their calibration, or the first alone (`study.every_seed`).

A real profile (`models:` set, docs/paper.md §5) runs the same functions: its members are released checkpoints, its
scores come from its suite (cptlib.evaluation.suite: lm-eval's real tasks mapped to the study's metrics by
`eval.metrics`), and the parts its suite cannot run (the testbed's own data or training recipes) are skipped with
the reason.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import pandas as pd

from cptlib.core import paths
from cptlib.family import resolve as fam
from cptlib.config import BENCH_NOTEBOOK, SIZES_NOTEBOOK, Profile, n4_cpt
from cptlib.evaluation.suite import PANEL_TASKS, TESTBED_ONLY, suite_for, testbed_scores
from cptlib.study import stats
from cptlib.study.restored import adapter, attached, drift, milestones, residual_dir, restore_timing, restored
from cptlib.core.stages import read_manifest
from cptlib.study.labels import CPT_B, CPT_B2, CPT_I, PEFT, REST, SFT
from cptlib.study.scoring import scored
from cptlib.members import Member

def why_not(profile: Profile, part: str) -> str | None:
    """Why `part` does not run for `profile` (None: it runs): its suite cannot run it, or a member it needs is
    absent (cptlib.evaluation.suite)."""
    return suite_for(profile).why_not(part)


def not_run_message(profile: Profile, reason: str) -> str:
    """What a notebook shows for a part that does not run for `profile`, `reason` being why_not's."""
    return f"Not run for the profile {profile.name!r} ({suite_for(profile).kind}): {reason}."


def runs(profile: Profile, part: str) -> bool:
    """Whether a part of the study runs for `profile`; when it does not, prints why."""
    reason = why_not(profile, part)
    if reason:
        print(not_run_message(profile, reason))
        return False
    return True


def instruct_drift(base: Path, instruct: Path) -> float:
    """‖Θr‖/‖θ_base‖: the drift the SFT stage recorded, or (a released instruct model) from the weights."""
    recorded = read_manifest(instruct).get("drift")
    if recorded:
        return recorded["total"]
    from cptlib.residual import inspect

    return inspect(residual_dir(base, instruct), progress=False)["relative_norms"]["total"]["all"]["relative"]


def families(profile: Profile) -> dict[int, dict[str, Path]]:
    """The family of every training seed. other_family (a whole extra pre-training) for the first, and for every
    seed whose released ancestors have it (cptlib.family.ancestors.released_family)."""
    first = profile.train_seeds[0]
    # Released ancestors cost nothing to resolve; a trained family's other family is a whole pre-training per seed.
    return {s: fam.build_family(profile, s, other_family=s == first or profile.released_ancestors)
            for s in profile.train_seeds}


def part_seeds(profile: Profile) -> list[int]:
    """The seeds the parts beyond the key results run on (the milestones, the N4 map, the ablations, the data shift):
    every training seed whose base_v1 and instruct_v1 meet their own calibration targets — the validity rule
    (cptlib.study.verdicts.misses) leaves the others out of every claim these parts serve, so their runs would be
    shown nowhere — or the first seed alone where `study.every_seed` is false. With no valid seed, the first (its
    numbers are shown, not judged: the claims are not testable). Reads notebook 00's cached evaluations (~1 s)."""
    seeds = list(profile.train_seeds)
    if not profile.study.every_seed or len(seeds) == 1:
        return seeds[:1]
    return valid_seeds(profile, (Member.BASE_V1, Member.INSTRUCT_V1)) or seeds[:1]


def valid_seeds(profile: Profile, needs) -> list[int]:
    """The training seeds at which every member in `needs` meets its own calibration targets (the validity rule;
    a real profile has no targets: every seed), from notebook 00's calibration."""
    return seeds_meeting(calibration(profile, families(profile)), profile.train_seeds, needs)


def seeds_meeting(calibration_table: pd.DataFrame | None, seeds, needs) -> list[int]:
    """The `seeds` at which no member in `needs` misses a calibration target of the validity rule
    (cptlib.study.verdicts.misses reads the table)."""
    from cptlib.study.verdicts import misses

    missed = misses(calibration_table, tuple(seeds))
    return [s for s in seeds if not any((m, s) in missed for m in needs)]


def forgetting(profile: Profile) -> pd.DataFrame:
    """C1, C2, Q2: CPT(instruct_v1), CPT(base_v1) and CPT(base_v1)+Θr(v1) at every milestone (the `part_seeds`) and
    at the final budget (every seed), with instruct_v1 and base_v1 at 0 tokens."""
    rows = []
    along = part_seeds(profile)
    for seed, f in families(profile).items():
        has_base = Member.BASE_V1 in f  # a released instruct model without its base: CPT(instruct_v1) only (C1)
        rows += [{"seed": seed, "tokens": 0, "model": m, "drift": 0.0, "drift_ratio": 0.0, "path": f[m]}
                 for m in (Member.INSTRUCT_V1, Member.BASE_V1) if m in f]
        cpt_i = fam.cpt(profile, f[Member.INSTRUCT_V1], seed)
        first = seed in along  # every milestone; the other seeds at the final budget alone
        # The final budget as trained: cpt.tokens rounded to whole optimizer steps (e.g. 499,712 of 500,000).
        final = read_manifest(cpt_i)["tokens"]
        for tokens, model in milestones(cpt_i).items():
            if first or tokens == final:
                rows.append({"seed": seed, "tokens": tokens, "model": CPT_I, "drift": drift(model),
                             "drift_ratio": float("nan"), "path": model, "tasks": _panel_only(tokens, final)})
        if not has_base:
            continue
        inst_drift = instruct_drift(f[Member.BASE_V1], f[Member.INSTRUCT_V1])
        cpt_b = fam.cpt(profile, f[Member.BASE_V1], seed)
        for tokens, model in milestones(cpt_b).items():
            if first or tokens == final:
                d = drift(model)
                rows.append({"seed": seed, "tokens": tokens, "model": CPT_B, "drift": d,
                             "drift_ratio": d / inst_drift, "path": model, "tasks": _panel_only(tokens, final)})
                rows.append({"seed": seed, "tokens": tokens, "model": REST, "drift": d, "drift_ratio": d / inst_drift,
                             "path": restored(f[Member.BASE_V1], f[Member.INSTRUCT_V1], model), "tasks": _panel_only(tokens, final)})
    return scored(rows, profile, f["data"])


def _panel_only(tokens: int, final: int) -> tuple[str, ...] | None:
    """Intermediate checkpoints are scored on the tasks the figures' panels show (PANEL_TASKS), the final budget
    on every study metric."""
    return PANEL_TASKS if tokens != final else None


def n4_map(profile: Profile) -> pd.DataFrame:
    """N4: restored IF, news accuracy and drift ratio over CPT budgets (milestones) × CPT learning rates, per seed of
    `part_seeds`; CPT(instruct_v1) at each learning rate's final budget for reference."""
    rows = []
    for seed in part_seeds(profile):
        f = fam.build_family(profile, seed, other_family=False)  # these parts need no other family
        inst_drift = instruct_drift(f[Member.BASE_V1], f[Member.INSTRUCT_V1])
        for lr in dict.fromkeys([profile.cpt.lr, *profile.study.n4_lrs]):
            cfg, at = n4_cpt(profile, lr), {"seed": seed, "lr": lr, "cpt_lr": lr == profile.cpt.lr}
            for tokens, model in milestones(fam.cpt(profile, f[Member.BASE_V1], seed, cfg)).items():
                rows.append({**at, "tokens": tokens, "model": REST, "drift_ratio": drift(model) / inst_drift,
                             "path": restored(f[Member.BASE_V1], f[Member.INSTRUCT_V1], model), "tasks": PANEL_TASKS})
            cpt_i = fam.cpt(profile, f[Member.INSTRUCT_V1], seed, cfg)
            rows.append({**at, "tokens": read_manifest(cpt_i)["tokens"], "model": CPT_I,
                         "drift_ratio": (read_manifest(cpt_i).get("drift") or {}).get("total", float("nan")) / inst_drift,
                         "path": cpt_i, "tasks": PANEL_TASKS})
    return scored(rows, profile, f["data"])


def _flops(stage: Path) -> float:
    """Training FLOPs ≈ 6·N·tokens (for SFT, the assistant tokens that carry the loss: a lower bound)."""
    m = read_manifest(stage)
    tokens = m.get("tokens") or m["trained_tokens_per_epoch"] * m["spec"]["train"]["epochs"]
    return 6.0 * m["n_params"] * tokens


def reference_if(forgetting_table: pd.DataFrame, seeds) -> float:
    """IF of instruct_v1 (0 tokens), the mean over `seeds`: the reference of a part run on those seeds (the N4 map's
    80% bound, the data shift's line), so that its points and its reference share their seeds."""
    fg = forgetting_table
    rows = fg[(fg.model == Member.INSTRUCT_V1) & (fg.tokens == 0) & fg.seed.isin(list(seeds))]
    if rows.empty:
        raise ValueError(f"no instruct_v1 row for seeds {sorted(seeds)} in the forgetting table")
    return float(rows.IF.mean())


def recipes(profile: Profile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """C3, C6: the five recipes at the final budget for every seed, and CPT(base_v1) beside them, and what each
    recipe costs after CPT (a real profile: four, without CPT(base_v1)+SFT)."""
    rows, costs = [], []
    with_sft = runs(profile, "sft")  # a real profile: prints why not
    for seed, f in families(profile).items():
        cpt_i, cpt_b = fam.cpt(profile, f[Member.INSTRUCT_V1], seed), fam.cpt(profile, f[Member.BASE_V1], seed)
        rest = restored(f[Member.BASE_V1], f[Member.INSTRUCT_V1], cpt_b)
        # CPT(base_v1) is no recipe for instructions; it is what C3's news comparison is against.
        models = {Member.BASE_V1: f[Member.BASE_V1], Member.INSTRUCT_V1: f[Member.INSTRUCT_V1], CPT_B: cpt_b, CPT_I: cpt_i}
        if with_sft:
            models[SFT] = sft = fam.instruct(profile, cpt_b, f["data"], "v1", seed)
        models[REST] = rest
        if profile.study.peft_recipe:  # the same residual, attached at load time instead of merged
            models[PEFT] = attached(f[Member.BASE_V1], f[Member.INSTRUCT_V1], cpt_b)
        rows += [{"seed": seed, "recipe": k, "path": v} for k, v in models.items()]
        n = read_manifest(cpt_b)["n_params"]
        costs.append({"seed": seed, "recipe": CPT_I, "step after CPT": "none", "flops": 0.0, "wall_seconds": 0.0,
                      "timings": 0})
        if with_sft:
            costs.append({"seed": seed, "recipe": SFT, "step after CPT": "SFT", "flops": _flops(sft),
                          "wall_seconds": read_manifest(sft)["wall_seconds"], "timings": 1})
        # θ_cpt + (θ_instruct − θ_base): one subtraction and one addition per parameter; its time is the median of
        # TIMING_REPEATS timings (milliseconds on the testbed: one timing is noise; calibration log run 22).
        timing = restore_timing(f[Member.BASE_V1], f[Member.INSTRUCT_V1], cpt_b)
        costs.append({"seed": seed, "recipe": REST, "step after CPT": "add Θr", "flops": 2.0 * n,
                      "wall_seconds": timing["median"], "timings": len(timing["seconds"])})
    return scored(rows, profile, f["data"]), pd.DataFrame(costs)


def recipe_costs(costs: pd.DataFrame) -> pd.DataFrame:
    """C6: each recipe's step after CPT, its FLOPs and wall time as the mean over seeds (costs.csv), from
    recipes()' per-seed costs."""
    return costs.groupby(["recipe", "step after CPT"], sort=False)[["flops", "wall_seconds"]].mean().reset_index()


def transfer(profile: Profile) -> pd.DataFrame:
    """C4, N1: residual source {v1, v2, other_family} × target {base_v1, base_v2, CPT(base_v1), CPT(base_v2)},
    with the targets without a residual and the released instruct models, every cell over every seed (issue 48: a
    figure's points and reference lines, and its verdicts, from the same seeds). The other family's residual is
    there for the seeds whose release has it."""
    rows = []
    for seed, f in families(profile).items():
        sources = {"v1": (f[Member.BASE_V1], f[Member.INSTRUCT_V1]), "v2": (f[Member.BASE_V2], f[Member.INSTRUCT_V2])}
        if Member.OTHER_FAMILY in f:  # the other family's own instruct model (the N1 residual)
            sources[Member.OTHER_FAMILY] = (f[Member.OTHER_FAMILY], f[Member.OTHER_INSTRUCT])
        targets = {Member.BASE_V1: ("v1", f[Member.BASE_V1]), Member.BASE_V2: ("v2", f[Member.BASE_V2]),
                   CPT_B: ("v1", fam.cpt(profile, f[Member.BASE_V1], seed)),
                   CPT_B2: ("v2", fam.cpt(profile, f[Member.BASE_V2], seed))}
        rows += [{"seed": seed, "source": src, "target": tgt, "diagonal": src == version,
                  "path": restored(base, inst, target)}
                 for src, (base, inst) in sources.items() for tgt, (version, target) in targets.items()]
        rows += [{"seed": seed, "source": "native", "target": m, "diagonal": True, "path": f[m]}
                 for m in (Member.INSTRUCT_V1, Member.INSTRUCT_V2)]
        # the targets without a residual, the baseline each cell improves on
        rows += [{"seed": seed, "source": "none", "target": t, "diagonal": False, "path": path}
                 for t, (_, path) in targets.items()]
    return scored(rows, profile, f["data"])


def transfer_cells(table: pd.DataFrame, panels: list[str]) -> pd.DataFrame:
    """C4, N1: each residual source × target, mean and 95% interval over seeds + items (transfer.csv), from
    transfer()'s rows without the native models and the bare targets."""
    return stats.summarize(table[~table.source.isin(["native", "none"])], ["source", "target"], panels)


def _family_and_cpt(profile: Profile, seed: int) -> tuple[dict[str, Path], Path]:
    f = fam.build_family(profile, seed, other_family=False)  # a trained family's other family: a whole pre-training
    return f, fam.cpt(profile, f[Member.BASE_V1], seed)


def ablations(profile: Profile) -> pd.DataFrame:
    """Q3, N3, low rank (CPT(base_v1) at the final budget as the target, per seed of `part_seeds`): α sweep, merge
    methods, module subsets, residual ranks. Columns: seed, ablation, setting, value, residual_mb, metrics."""
    rows = []
    for seed in part_seeds(profile):
        f, cpt_b = _family_and_cpt(profile, seed)
        rows += [{"seed": seed, **r} for r in _ablation_rows(profile, f, cpt_b)]
    return scored(rows, profile, f["data"])


def _ablation_rows(profile: Profile, f: dict[str, Path], cpt_b: Path) -> list[dict]:
    base, inst, study = f[Member.BASE_V1], f[Member.INSTRUCT_V1], profile.study
    full_mb = read_manifest(residual_dir(base, inst))["bytes"] / 1e6
    rows = [{"ablation": "alpha", "setting": f"α={a:g}", "value": a, "path": restored(base, inst, cpt_b, alpha=a)}
            for a in study.alphas]
    for method in (m.merge() for m in study.merges):
        rows.append({"ablation": "merge", "setting": method.label(), "value": float("nan"),
                     "path": restored(base, inst, cpt_b, merge=method)})
    rows.append({"ablation": "modules", "setting": "all", "value": float("nan"), "path": restored(base, inst, cpt_b)})
    rows += [{"ablation": "modules", "setting": s, "value": float("nan"), "path": restored(base, inst, cpt_b, modules=s)}
             for s in study.module_subsets]
    for r in study.ranks:
        rows.append({"ablation": "rank", "setting": f"rank {r}", "value": r, "residual_mb":
                     read_manifest(residual_dir(base, inst, r))["bytes"] / 1e6, "adapter_mb": _adapter_mb(base, inst, r),
                     "path": restored(base, inst, cpt_b, rank=r)})
    rows.append({"ablation": "rank", "setting": "full", "value": float("inf"), "residual_mb": full_mb,
                 "adapter_mb": _adapter_mb(base, inst, None), "path": restored(base, inst, cpt_b)})
    return rows + adapter_rows(base, inst, cpt_b, max(study.ranks))


def ablation_summary(ab: pd.DataFrame, panels: list[str]) -> pd.DataFrame:
    """ablations()' settings, each metric's mean over the seeds with its 95% interval (t over seeds + items; over
    items alone with one seed), the setting's value and sizes, which every seed shares, and the evaluations behind
    it (`eval`: their stage names, one per seed, joined by ";") (ablations.csv)."""
    keys = ["ablation", "setting"]
    groups = ab.groupby(keys, sort=False)
    shared = groups[[c for c in ("value", "residual_mb", "adapter_mb") if c in ab]].first()
    shared[stats.EVAL] = groups[stats.EVAL].agg(";".join)
    return stats.summarize(ab, keys, panels).merge(shared.reset_index(), on=keys)


def _adapter_mb(base: Path, inst: Path, rank: int | None, vectors: str = "save", embeddings: str = "lora") -> float:
    return read_manifest(adapter(base, inst, rank, vectors, embeddings))["bytes"] / 1e6


def adapter_rows(base: Path, inst: Path, target: Path, rank: int) -> list[dict]:
    """The rank-r residual as a PEFT LoRA adapter attached to `target` at load time for lm-eval
    (harness.attach_adapter), beside cptlib's merged rank-r residual restricted alike: LoRA holds no norm delta, so the adapter either replaces
    the target's norms with the instruct model's (its default) or keeps the target's; the same with the
    embeddings left out. The "norms: target's" pair is the same model, once merged by cptlib, once attached."""
    def row(setting: str, vectors: str, embeddings: str = "lora") -> dict:
        return {"ablation": "adapter", "setting": setting, "value": rank,
                "adapter_mb": _adapter_mb(base, inst, rank, vectors, embeddings),
                "path": attached(base, inst, target, rank, vectors, embeddings)}

    return [
        {"ablation": "adapter", "setting": f"rank {rank} merged by cptlib, norms: target's", "value": rank,
         "residual_mb": read_manifest(residual_dir(base, inst, rank))["bytes"] / 1e6,
         "path": restored(base, inst, target, rank=rank, modules="no-norms")},
        row(f"rank {rank} PEFT adapter, norms: target's", "drop"),
        row(f"rank {rank} PEFT adapter, norms: instruct's", "save"),
        row(f"rank {rank} PEFT adapter, norms and embeddings: target's", "drop", "drop"),
    ]


def data_shift(profile: Profile) -> pd.DataFrame:
    """N2: CPT of instruct_v1 (and base_v1 + Θr) on each corpus of `study.shift_corpora` with the CPT recipe;
    the shift is base_v1's bits per byte on held-out text of that era (higher = further from what it knows); per seed
    of `part_seeds` (a seed's shift: its own base_v1's)."""
    rows = []
    for seed in part_seeds(profile):
        f = fam.build_family(profile, seed, other_family=False)  # these parts need no other family
        base_scores = testbed_scores({Member.BASE_V1: f[Member.BASE_V1]}, f["data"]).loc[Member.BASE_V1]
        for corpus in profile.study.shift_corpora:
            shift = base_scores["bpb_a" if corpus.startswith("corpus_a") else "bpb_b"]
            cpt_i = fam.continue_lm(profile, f[Member.INSTRUCT_V1], f["data"], corpus, profile.cpt, seed, "cpt")
            cpt_b = fam.continue_lm(profile, f[Member.BASE_V1], f["data"], corpus, profile.cpt, seed, "cpt")
            rows.append({"seed": seed, "corpus": corpus, "shift_bpb": shift, "model": CPT_I, "drift": drift(cpt_i),
                         "path": cpt_i})
            rows.append({"seed": seed, "corpus": corpus, "shift_bpb": shift, "model": REST, "drift": drift(cpt_b),
                         "path": restored(f[Member.BASE_V1], f[Member.INSTRUCT_V1], cpt_b)})
    return scored(rows, profile, f["data"])


def residual_norms(profile: Profile) -> pd.DataFrame:
    """N3: ‖Θr‖/‖θ_base‖ per layer and per module of the v1 residual (first seed). Columns: level, group,
    residual_norm, base_norm, relative."""
    from cptlib.residual import inspect

    f = fam.build_family(profile, profile.train_seeds[0])
    norms = inspect(residual_dir(f[Member.BASE_V1], f[Member.INSTRUCT_V1]), progress=False)["relative_norms"]
    return pd.DataFrame([{"level": level, "group": g, **v} for level in ("layer", "module")
                         for g, v in norms[level].items()])


def family_table(profile: Profile, families_by_seed: dict[int, dict[str, Path]]) -> pd.DataFrame:
    """The family's record: seed, member, parameters, and for trained members steps, tokens or examples, drift
    from the parent and time; for a real profile's members, the checkpoint they resolve to."""
    rows = []
    for seed, f in families_by_seed.items():
        for member in fam.MEMBERS:
            if member in f:
                m = read_manifest(f[member])
                if m["kind"] == "resolved" and "released" in m:  # a released testbed ancestor (cptlib.family.ancestors)
                    r = m["released"]
                    rows.append({"seed": seed, "member": member, "source": m["source"], "n_params": m["n_params"],
                                 "steps": r.get("steps"), "tokens": r.get("tokens"), "sft_examples": r.get("examples"),
                                 "drift_from_parent": (r.get("drift") or {}).get("total"),
                                 "wall_seconds": r.get("wall_seconds")})
                    continue
                if m["kind"] == "resolved":  # a released checkpoint (cptlib.family.released.resolved_member)
                    rows.append({"seed": seed, "member": member, "source": m["source"], "n_params": m["n_params"],
                                 "architecture": ", ".join(m["architecture"] or []),
                                 "snapshot": paths.shown(m["snapshot"])})
                    continue
                rows.append({"seed": seed, "member": member, "n_params": m["n_params"], "steps": m["steps"],
                             "tokens": m.get("tokens"), "sft_examples": m.get("examples"),
                             "drift_from_parent": (m.get("drift") or {}).get("total"), "wall_seconds": m["wall_seconds"]})
    return pd.DataFrame(rows)


def calibration(profile: Profile, families_by_seed: dict[int, dict[str, Path]]) -> pd.DataFrame:
    """Notebook 00's table (metric, model, value, target, met, n, n_seeds): the testbed's calibration targets
    (cptlib.evaluation.calibration) on every ancestor and on CPT(base_v1), CPT(instruct_v1) and CPT(base_v1)+SFT at
    the default budget; for a real profile the members' and CPT models' scores, without targets. The CPT models'
    values are means over every training seed (the report's one aggregation rule). Where the training seeds have
    their own ancestors (a paired release), every seed's are judged: "base_v1 (seed 1)", ...; a shared ancestor is
    one model for all seeds."""
    from cptlib.evaluation import calibration as cal

    seeds = list(families_by_seed)
    family = families_by_seed[seeds[0]]
    members = [m for m in fam.MEMBERS if m in family]
    ids = {cal.ModelId(m): family[m] for m in members}
    for seed in seeds[1:]:  # a paired release: the other seeds' own ancestors
        ids.update({cal.ModelId(m, seed=seed): p for m, p in families_by_seed[seed].items()
                    if m in members and p != family[m]})
    models = {mid.label: path for mid, path in ids.items()}
    cpt = {(name, seed): fam.cpt(profile, f[parent], seed) for seed, f in families_by_seed.items()
           for name, parent in ((cal.CPT_BASE, Member.BASE_V1), (cal.CPT_INSTRUCT, Member.INSTRUCT_V1)) if parent in f}
    suite = suite_for(profile)
    if suite.why_not("calibration targets"):  # released checkpoints: their scores, without targets
        models = {mid.label: p for mid, p in ids.items() if mid.seed is None}
        models.update({name: path for (name, seed), path in cpt.items() if seed == seeds[0]})
        wide = suite.scores(models, family["data"])
        metrics = [m for m in wide.columns if m != "eval" and wide[m].notna().any()]
        return pd.DataFrame([{"metric": m, "model": name, "value": wide.loc[name, m], "target": None, "met": None,
                              "n": None, "n_seeds": 1} for m in metrics for name in models])
    from cptlib.evaluation.evaluate import EvalSettings, evaluate_model

    cpt.update({(cal.CPT_SFT, seed): fam.instruct(profile, path, families_by_seed[seed]["data"], "v1", seed)
                for (name, seed), path in list(cpt.items()) if name == cal.CPT_BASE})  # notebook 02's CPT(base_v1)+SFT
    full = EvalSettings()  # every testbed task: the calibration reads era-A via chat and the era-A news too
    every = {**models, **{cal.ModelId(name, seed=seed).label: path for (name, seed), path in cpt.items()}}
    testbed_scores(every, family["data"], profile.study.eval_processes, full)  # evaluates in parallel; then the cache
    table = pd.concat([evaluate_model(path, family["data"], full, name=name) for name, path in models.items()] +
                      [evaluate_model(path, family["data"], full, name=name) for (name, _), path in cpt.items()])
    # One row per (model, task, metric): the CPT models' values averaged over their seeds.
    table = table.groupby(["model", "task", "metric"], sort=False, as_index=False).agg(
        value=("value", "mean"), stderr=("stderr", "first"), n=("n", "first"))
    residual = {mid.label: instruct_drift(ids[mid.base()], path) for mid, path in ids.items()
                if mid.member in (Member.INSTRUCT_V1, Member.INSTRUCT_V2)}
    # Each seed's CPT drift over its own residual (a shared release: the one residual), then the mean over seeds.
    cpt_b = {seed: read_manifest(path) for (name, seed), path in cpt.items() if name == cal.CPT_BASE}
    own = {seed: instruct_drift(families_by_seed[seed][Member.BASE_V1], families_by_seed[seed][Member.INSTRUCT_V1])
           for seed in cpt_b}
    drift_ratio = statistics.fmean(m["drift"]["total"] / own[seed] for seed, m in cpt_b.items())
    ratios = cal.ratios(residual, drift_ratio, next(iter(cpt_b.values()))["tokens"],
                        read_manifest(family[Member.BASE_V1])["tokens"], *cal.bits_per_byte(table, Member.BASE_V1))
    out = pd.concat([cal.judge(table, *cal.chance_level(family["data"])), ratios], ignore_index=True)
    out["n_seeds"] = [len(seeds) if cal.ModelId.parse(model).role is cal.Role.CPT else 1 for model in out.model]
    return out.astype({"n": "Int64"})  # item counts stay integers beside the ratios' empty n


def calibration_summary(table: pd.DataFrame) -> str:
    """One line under notebook 00's table."""
    if table.met.isna().all():
        return f"No calibration targets for real models: {TESTBED_ONLY['calibration targets']}."
    met = table.met.astype(bool)
    return f"{int(met.sum())} of {len(table)} calibration targets met" + ("." if met.all() else "; missed:")


def all_results(profile: Profile) -> dict[str, pd.DataFrame]:
    """Every table the claims need (cached: instant after notebooks 01–04 ran); a real profile has no
    "shift" table, nor the tables of parts whose members it declares absent (its suite's why_not); the size ladder's
    trends ("scaling") are there where the profile runs notebook 06_sizes."""
    out = {}
    if BENCH_NOTEBOOK in profile.notebooks and not why_not(profile, "benchmarks"):  # notebook 07
        from cptlib.study import benchmarks

        out["benchmarks"] = benchmarks.results(profile)["drops"]
    if BENCH_NOTEBOOK in profile.notebooks and "05_report" not in profile.notebooks:
        return out  # a profile of the benchmarks alone
    out["forgetting"] = forgetting(profile)
    if not why_not(profile, "n4"):
        out["n4"] = n4_map(profile)
    if not why_not(profile, "recipes"):
        out["recipes"], out["costs"] = recipes(profile)
    if not why_not(profile, "transfer"):
        out["transfer"] = transfer(profile)
    if not why_not(profile, "ablations"):
        out["ablations"] = ablations(profile)
    if not why_not(profile, "shift"):
        out["shift"] = data_shift(profile)
    if SIZES_NOTEBOOK in profile.notebooks and not why_not(profile, "sizes"):  # the size ladder's trends (notebook 06)
        from cptlib.study import scaling

        out["scaling"] = scaling.results(profile)["trends"]  # cached once notebook 06 ran
    return out
