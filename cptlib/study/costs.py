"""The measured cost model of a profile's run: `cptlib cost --profile default` (or `make cost`).

Each notebook run by `cptlib notebook run` leaves `build/<profile>/notebooks/<nb>.time.json` (its wall time) and
`<nb>.stages.jsonl` (every stage it built or reused, with start and end; cptlib.core.stages writes the lines, also
from the evaluation processes a notebook starts). The cost model splits each notebook's wall time into what
ran: at every moment the innermost running stage owns the time (parallel evaluations share it), and what no
stage covers is the notebook's own work (kernel start-up, imports, hashing models, tables, figures). The parts
therefore sum to the measured wall time exactly. `cpu_s` adds the stages' own durations, so with evaluations
in two processes it is up to twice their wall time. A stage the run found cached costs nothing here; the
seconds its build once took are shown beside it (`cached_build_s`, counted in the first notebook that uses it;
its CPU seconds, not wall: what a cold run on a quiet machine would pay, at most).
"""
from __future__ import annotations

import argparse
import json

from cptlib.core import paths
from cptlib.core.errors import MissingInputError

# What each stage kind is, for the summary.
CATEGORY = {"testbed": "data", "tokenizer": "data", "cptdata": "data",
            "pretrain": "training", "sft": "training", "lm": "training",
            "resolved": "weights", "converted": "weights", "residual": "weights", "restored": "weights",
            "adapter": "weights", "attached": "weights", "timing": "weights",
            "eval": "evaluation"}
NOTEBOOK_WORK = "notebook"  # time in a notebook that no stage covers


def run_name(profile: str) -> str:
    """A profile's run name: the name itself, or for a YAML path (as `cptlib notebook run` takes) its profile's name."""
    if str(profile).endswith((".yaml", ".yml")):
        from cptlib.config import load_profile

        return load_profile(profile).name
    return profile


def _read(profile: str) -> list[tuple[dict, list[dict]]]:
    profile = run_name(profile)
    out_dir = paths.profile_build_dir(profile) / "notebooks"
    runs = []
    for times in sorted(out_dir.glob("*.time.json")):
        record = json.loads(times.read_text())
        log = out_dir / f"{record['notebook']}.stages.jsonl"
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else None
        runs.append((record, lines))
    if not runs:
        raise MissingInputError(f"no notebook of profile {profile!r} has run yet ({out_dir} has no *.time.json): "
                                f"run `make reproduce PROFILE={profile}` first")
    return runs


def _label(line: dict) -> str:
    return line["kind"] + (f":{line['role']}" if line.get("role") else "")


def _owners(lines: list[dict], start: float, end: float) -> dict[str, float]:
    """Seconds of [start, end] owned by each stage label (innermost running stage) and by the notebook itself."""
    built = [ln for ln in lines if ln["event"] == "built"]
    cuts = sorted({start, end, *(max(start, min(end, t)) for ln in built for t in (ln["start"], ln["end"]))})
    owned: dict[str, float] = {}
    for a, b in zip(cuts, cuts[1:]):
        running = [ln for ln in built if ln["start"] <= a and ln["end"] >= b]
        label = _label(max(running, key=lambda ln: ln["start"])) if running else NOTEBOOK_WORK
        owned[label] = owned.get(label, 0.0) + (b - a)
    return owned


def cost_table(profile: str):
    """One row per (notebook, stage kind:role): stages built and reused, tokens trained, items evaluated,
    the wall seconds they own, their CPU seconds, and what the cached ones once cost."""
    import pandas as pd

    rows, seen = [], set()
    for record, lines in _read(profile):
        nb = record["notebook"]
        if lines is None or "started" not in record:
            rows.append(dict(notebook=nb, category="unlogged", stage="(run before stage logs existed)",
                             wall_s=record["seconds"]))
            continue
        owned = _owners(lines, record["started"], record["ended"])
        first: dict[str, dict] = {}
        for ln in lines:  # a stage built in this notebook and read again later counts once, as built
            if ln["key"] not in first or ln["event"] == "built":
                first[ln["key"]] = ln
        by_label: dict[str, list[dict]] = {}
        earlier = {k for k, ln in first.items() if ln["event"] != "built" and k in seen}
        seen |= set(first)
        for ln in first.values():
            by_label.setdefault(_label(ln), []).append(ln)
        for label in sorted(set(by_label) | set(owned), key=lambda s: (s == NOTEBOOK_WORK, s)):
            group = by_label.get(label, [])
            built = [ln for ln in group if ln["event"] == "built"]
            reused = [ln for ln in group if ln["event"] != "built"]
            category = CATEGORY.get(label.split(":")[0], NOTEBOOK_WORK)
            rows.append(dict(
                notebook=nb, category=category, stage=label, built=len(built), reused=len(reused),
                tokens=sum(ln.get("tokens") or 0 for ln in built) if category == "training" else 0,
                rows=sum(ln.get("rows") or 0 for ln in built),
                wall_s=owned.get(label, 0.0), cpu_s=sum(ln["seconds"] for ln in built),
                cached_build_s=sum(ln.get("build_seconds") or 0 for ln in reused if ln["key"] not in earlier)))
    table = pd.DataFrame(rows, columns=["notebook", "category", "stage", "built", "reused", "tokens", "rows",
                                        "wall_s", "cpu_s", "cached_build_s"]).fillna(0)
    for col in ("built", "reused", "tokens", "rows"):
        table[col] = table[col].astype(int)
    return table


def summary(table):
    """Wall seconds per notebook and category, with the total; what a cold run of the cached stages adds."""
    wide = table.pivot_table(index="notebook", columns="category", values="wall_s", aggfunc="sum", fill_value=0.0)
    wide["total"] = wide.sum(axis=1)
    wide["cached_build_s"] = table.groupby("notebook")["cached_build_s"].sum()
    wide.loc["all"] = wide.sum()
    return wide.round(1)


def render(profile: str, markdown: bool = False) -> str:
    table = cost_table(profile)
    summ = summary(table)
    fmt = (lambda df: df.to_markdown()) if markdown else (lambda df: df.to_string())
    detail = table.copy()
    for col in ("wall_s", "cpu_s", "cached_build_s"):
        detail[col] = detail[col].round(1)
    return (f"Cost model of the last run of profile {run_name(profile)!r} (seconds; wall_s sums to each notebook's wall time)\n\n"
            f"{fmt(summ)}\n\nBy stage (built in this run / found cached):\n\n{fmt(detail.set_index(['notebook', 'stage']))}\n")


def register(subparsers) -> None:
    p = subparsers.add_parser("cost", help="the measured cost model of a profile's last run (per notebook and stage)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="default",
                   help="profile whose build/<profile>/notebooks/ to read: a name, or the YAML path the notebooks ran with")
    p.add_argument("--markdown", action="store_true", help="tables as Markdown (for docs/)")
    p.set_defaults(func=lambda a: print(render(a.profile, a.markdown)))
