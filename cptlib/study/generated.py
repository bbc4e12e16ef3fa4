"""The generated blocks of README.md and docs/: every number they state is rendered here from the committed file it
describes (figures/<profile>/*.csv, params/<profile>.yaml, models/<profile>/release.json), never typed by hand.

A block lies in its Markdown file between two comment lines, which the renderer keeps and the reader never sees:

    <!-- generated:results — written by `make docs` from figures/; edit cptlib/study/generated.py, not this block -->
    ...
    <!-- /generated:results -->

    .venv/bin/cptlib docs render     # make docs: rewrite every block from the committed files
    .venv/bin/cptlib docs check      # exit 1 naming each block that differs from what its sources render now

tests/test_docs.py checks the committed tree: a README or doc whose block disagrees with a CSV fails there, and so
does a block edited by hand. After `make reproduce` rewrites a profile's figures, `make docs` brings the blocks
along; commit both together.
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cptlib.core.errors import CptlibError
from cptlib.core.paths import REPO_ROOT


class DocsError(CptlibError):
    """A generated block that cannot be written or read: its markers are missing, or a source file is."""


@dataclass(frozen=True)
class Block:
    file: str                       # the Markdown file, relative to the repository root
    name: str                       # the block's name in its markers
    sources: tuple[str, ...]        # what it is rendered from (globs relative to the root): named in its marker
    render: Callable[[Path], str]   # root -> the block's Markdown (without its marker lines)

    def begin(self) -> str:
        return (f"<!-- generated:{self.name} — written by `make docs` from {', '.join(self.sources)}; edit "
                f"cptlib/study/generated.py, not this block -->")

    def end(self) -> str:
        return f"<!-- /generated:{self.name} -->"


def _csv(root: Path, rel: str) -> "pd.DataFrame":
    import pandas as pd

    path = root / rel
    if not path.is_file():
        raise DocsError(f"{rel} is missing: the generated blocks are rendered from the committed figures; restore it "
                        f"with `git checkout -- {rel}` or write it with the `make reproduce` of its profile")
    return pd.read_csv(path)


def _table(df: "pd.DataFrame") -> str:
    from cptlib.study.plots import markdown

    return markdown(df).rstrip("\n")


def _link(rel: str, text: str | None = None) -> str:
    return f"[{text or rel}]({rel})"


def _profile(root: Path, name: str):
    from cptlib import config

    return config.load_profile(root / "params" / f"{name}.yaml")


# --- README.md ---------------------------------------------------------------------------------------------------

def results(root: Path) -> str:
    """The README's results: the default profile's claims (claims.csv: in kind, in size, why), its calibration
    (calibration.csv), the size ladder's claims (figures/sizes/ladder_claims.csv) and the claims over the drift
    (figures/drift/drift_curves.csv, counted by run 20's reading)."""
    from cptlib.study.drift import READING, hits

    p = _profile(root, "default")
    claims = _csv(root, "figures/default/claims.csv")
    steps = p.cpt.tokens // (p.cpt.batch_size * p.cpt.seq_len)
    head = (f"The default profile: the synthetic testbed, training seeds {', '.join(map(str, p.train_seeds))} (each "
            f"its own release of the ancestors), CPT at lr {p.cpt.lr:g} for {p.cpt.tokens:,} tokens ({steps} "
            f"optimizer steps). Every number, interval and rule: {_link('figures/default/REPORT.md')}.")
    table = claims[["claim", "paper (approx.)", "in kind", "in size", "why"]].rename(
        columns={"paper (approx.)": "the paper (approx.)"})
    cal = _csv(root, "figures/default/calibration.csv")
    missed = cal[~cal.met.astype(bool)]
    cal_line = (f"- **Calibration** ({_link('figures/default/calibration.csv', 'calibration.csv')}): "
                f"{len(cal) - len(missed)} of {len(cal)} targets met"
                + ("" if missed.empty else "; missed: " + "; ".join(
                    f"{r.model} {r.metric} {r.value:.3g} (target {r.target})" for r in missed.itertuples()))
                + ".")
    ladder = _csv(root, "figures/sizes/ladder_claims.csv")
    said = {why: [f"{r.claim} {r._4}" for r in ladder[ladder.why == why].itertuples()] for why in ladder.why.unique()}
    ladder_line = ("- **Size ladder** (`make reproduce PROFILE=sizes`, " + _link("figures/sizes/REPORT.md") + "): "
                   + "; ".join(f"{', '.join(claims)}: {why}" for why, claims in said.items()) + ".")
    curves = _csv(root, "figures/drift/drift_curves.csv")
    per_lr = []
    for lr in sorted(curves.lr.unique()):
        parts = []
        for curve, (says, _rule) in READING.items():
            found, n = hits(curves, curve, lr)
            parts.append(f"{says} at {len(found)} of {n} budgets")
        per_lr.append(f"lr {lr:g}: " + ", ".join(parts))
    drift_line = ("- **Over the drift** (`make reproduce PROFILE=drift`, " + _link("figures/drift/REPORT.md")
                  + ", every budget named there): " + "; ".join(per_lr) + ".")
    return "\n".join([head, "", _table(table), "", cal_line, ladder_line, drift_line])


def real_models(root: Path) -> str:
    """The README's released-model results: each real profile's judged claims (its claims.csv), the rest not run."""
    lines = []
    for name in ("smollm2_135m", "gemma3_270m"):
        p = _profile(root, name)
        claims = _csv(root, f"figures/{name}/claims.csv")
        run = claims[~claims["in kind"].str.startswith("not run")]
        lines.append(f"- `make reproduce PROFILE={name}` ({p.description.split(':')[0].split(' (')[0]}; "
                     + _link(f"figures/{name}/REPORT.md", "report") + "): "
                     + "; ".join(f"**{r.claim} {r._4}** — {r.why}" for r in run.itertuples())
                     + _not_run(len(claims) - len(run)))
    return "\n".join(lines)


def _not_run(n: int) -> str:
    return "" if not n else f"; the other {n} claim{'s are' if n > 1 else ' is'} not run (no such model, or testbed only)."


# --- docs/testbed.md ---------------------------------------------------------------------------------------------

def default_world(root: Path) -> str:
    """The default profile's world as its `world:` section and seed generate it (cptlib.testbed: the world alone is
    built here, in ~0.3 s), and the evaluation files' item counts from the same functions that write them."""
    import pandas as pd

    from collections import Counter

    from cptlib.testbed import evalsets
    from cptlib.testbed.world import build_world

    p = _profile(root, "default")
    w, seed = p.world, p.world_seed
    world = build_world(w, seed)
    era = Counter(f.era for f in world.facts)
    kind = Counter(f.kind for f in world.facts if f.era == "B")
    rel = Counter(f.relation for f in world.facts if f.era == "B" and f.kind == "new_fact")
    mc_old = len(evalsets.mc_old(world, w.n_eval_mc_old, seed))
    mc_new = len(evalsets.mc_new(world, seed))
    updated = len(evalsets.mc_updated(world))
    rows = [
        ("era-A entities", f"{w.n_people:,} people, {w.n_orgs:,} organisations (one product each), {w.n_cities:,} cities"),
        ("era-B events", f"{w.n_news:,} (`news_changed_frac` {w.news_changed_frac:g}, `news_new_person_frac` "
                         f"{w.news_new_person_frac:g}, `n_prizes` {w.n_prizes:,}), each told in {w.news_mentions:,} "
                         f"articles, `news_phrasings: {w.news_phrasings}`"),
        ("facts (`world.json`)", f"{len(world.facts):,}: {era['A']:,} of era A, {era['B']:,} of era B"),
        ("era-B facts by kind", f"{kind['new_entity']:,} about new people, {kind['new_fact']:,} new facts about era-A "
                                f"entities ({', '.join(f'{n:,} {r}' for r, n in sorted(rel.items()))}), "
                                f"{kind['changed']:,} changes of an era-A fact"),
        ("era-A events (`era_a_events`)", f"{w.era_a_events:,}, each in {w.era_a_event_mentions:,} era-A articles"),
        ("instruction conversations", f"{w.n_sft_v1:,} (`sft_v1.jsonl`) / {w.n_sft_v2:,} (`sft_v2.jsonl`)"),
        ("IFEval-format prompts (`eval/ifeval.jsonl`)", f"{w.n_eval_ifeval:,}"),
        ("chat questions (`eval/chat_knowledge.jsonl`)", f"{w.n_eval_knowledge:,}"),
        ("multiple choice (`mc_old` / `mc_new` = `mc_new_heldout` / `mc_updated`)", f"{mc_old:,} / {mc_new:,} / {updated:,}"),
        ("held-out documents per era (`heldout_a`, `heldout_b`, `heldout_a_news`)", f"{w.n_eval_heldout_docs:,}"),
    ]
    return (f"The default profile ({_link('../params/default.yaml', '`params/default.yaml`')}, world seed {seed}):\n\n"
            + _table(pd.DataFrame(rows, columns=["what", "count"])))


# --- docs/ancestors.md -------------------------------------------------------------------------------------------

def released_ancestors(root: Path) -> str:
    """The default release as models/default/release.json and each member's release.json record it: members, bytes,
    and per member its parameters, what it trained on, its drift from its parent and its training's wall time."""
    import pandas as pd

    index_path = root / "models/default/release.json"
    if not index_path.is_file():
        raise DocsError("models/default/release.json is missing: restore it with `git checkout -- models/default`")
    index = json.loads(index_path.read_text())
    rows = []
    for member, m in index["members"].items():
        rec = json.loads((root / "models/default" / member / "release.json").read_text())
        t = rec["trained"]
        trained = (f"{t['examples']:,} SFT examples" if t.get("examples") else
                   f"{t['steps']:,} steps" + (f", {rec.get('storage')} storage" if rec.get("storage") != "float32" else ""))
        drift = (t.get("drift") or {}).get("total")
        rows.append({"member": member, "parent": m["parent"] or "—", "parameters": f"{m['n_params']:,}",
                     "trained": trained, "drift from parent": "—" if drift is None else f"{drift:.3f}",
                     "wall s": f"{m['wall_seconds']:,.0f}"})
    table = pd.DataFrame(rows)
    total = sum(m["wall_seconds"] for m in index["members"].values())
    return (f"`models/default/release.json` ({index['command']}, {index['date']}): {len(rows)} members, "
            f"{index['bytes'] / 1e6:,.1f} MB, {total:,.0f} s of training in all (each member's own `release.json` "
            f"says where and beside what it ran):\n\n" + _table(table))


# --- docs/scale_out.md -------------------------------------------------------------------------------------------

def smollm2_forgetting(root: Path) -> str:
    """SmolLM2's C1 along CPT: figures/smollm2_135m/forgetting.csv as a table."""
    import pandas as pd

    p = _profile(root, "smollm2_135m")
    f = _csv(root, "figures/smollm2_135m/forgetting.csv").sort_values("tokens")
    rows = [{"CPT tokens": "0 (the released model)" if r.tokens == 0 else f"{r.tokens:,}",
             f"IF prompt-level strict [95% CI], {p.eval.limit:,.0f} prompts": f"{r.IF:.3f} [{r.IF_lo:.3f}, {r.IF_hi:.3f}]",
             "held-out news bits/byte": f"{r.bpb_b:.3f}",
             "the testbed's fictional era-A text, bits/byte": f"{r.bpb_a:.3f}"} for r in f.itertuples()]
    return _table(pd.DataFrame(rows)) + f"\n\nIntervals: {f.ci.iloc[0]}; {f.n_seeds.max()} seed(s)."


def benchmark_drops(root: Path) -> str:
    """The paper's benchmarks before → after CPT on both released models (their benchmark_drops.csv)."""
    import pandas as pd

    tables = {name: _csv(root, f"figures/{name}/benchmark_drops.csv") for name in ("smollm2_135m", "gemma3_270m")}
    out = None
    for name, d in tables.items():
        model = f"{d.before.iloc[0]} → {d.model.iloc[0]}"
        cols = pd.DataFrame({"benchmark": d.label,
                             f"{name}: accuracy ({model})": [f"{a:.3f} → {b:.3f}" for a, b in zip(d.before_acc, d.after_acc)],
                             f"{name}: drop [95% CI]": [f"{x:+.3f} [{lo:+.3f}, {hi:+.3f}]" for x, lo, hi in zip(d["drop"], d.lo, d.hi)]})
        out = cols if out is None else out.merge(cols, on="benchmark", how="outer", sort=False)
    n = {name: int(d[d.task != "average"].n.iloc[0]) for name, d in tables.items()}
    return _table(out) + "\n\nItems per benchmark: " + ", ".join(f"{k} {v:,}" for k, v in n.items()) + "."


BLOCKS = (
    Block("README.md", "results", ("figures/default/claims.csv", "figures/default/calibration.csv",
                                   "figures/sizes/ladder_claims.csv", "figures/drift/drift_curves.csv",
                                   "params/default.yaml"), results),
    Block("README.md", "real-models", ("figures/smollm2_135m/claims.csv", "figures/gemma3_270m/claims.csv",
                                       "params/smollm2_135m.yaml", "params/gemma3_270m.yaml"), real_models),
    Block("docs/testbed.md", "default-world", ("params/default.yaml",), default_world),
    Block("docs/ancestors.md", "released", ("models/default/**/release.json",), released_ancestors),
    Block("docs/scale_out.md", "smollm2", ("figures/smollm2_135m/forgetting.csv", "params/smollm2_135m.yaml"),
          smollm2_forgetting),
    Block("docs/scale_out.md", "benchmarks", ("figures/smollm2_135m/benchmark_drops.csv",
                                              "figures/gemma3_270m/benchmark_drops.csv"), benchmark_drops),
)


# --- reading and writing the blocks ------------------------------------------------------------------------------

def _span(text: str, block: Block) -> tuple[int, int]:
    """The character span of the block's body (between its marker lines) in `text`."""
    begin = re.search(rf"^<!-- generated:{re.escape(block.name)} .*-->\n", text, flags=re.M)
    end = re.search(rf"^<!-- /generated:{re.escape(block.name)} -->$", text, flags=re.M)
    if not begin or not end or end.start() < begin.end():
        raise DocsError(f"{block.file} has no block '{block.name}': put the two lines\n{block.begin()}\n{block.end()}\n"
                        f"where it goes, then run `make docs`")
    return begin.start(), end.end()


def rendered(root: Path = REPO_ROOT, block: Block | None = None) -> dict[tuple[str, str], str]:
    """{(file, name): the block as its sources render it now, marker lines included}."""
    return {(b.file, b.name): f"{b.begin()}\n{b.render(root).rstrip()}\n{b.end()}"
            for b in BLOCKS if block is None or b == block}


def check(root: Path = REPO_ROOT) -> list[str]:
    """One message per block whose text in its file differs from what its sources render (a unified diff)."""
    problems = []
    for (file, name), want in rendered(root).items():
        text = (root / file).read_text()
        start, stop = _span(text, next(b for b in BLOCKS if (b.file, b.name) == (file, name)))
        have = text[start:stop]
        if have != want:
            diff = "\n".join(difflib.unified_diff(have.splitlines(), want.splitlines(), "in the file", "rendered now",
                                                  lineterm="", n=0))
            problems.append(f"{file}: block '{name}' is not what its sources render (run `make docs`):\n{diff}")
    return problems


def write(root: Path = REPO_ROOT) -> list[str]:
    """Rewrite every block in place; returns the files that changed."""
    from cptlib.core.files import write_text_atomic

    texts: dict[str, str] = {}
    for (file, name), want in rendered(root).items():
        text = texts.get(file) or (root / file).read_text()
        start, stop = _span(text, next(b for b in BLOCKS if (b.file, b.name) == (file, name)))
        texts[file] = text[:start] + want + text[stop:]
    changed = [f for f, t in texts.items() if (root / f).read_text() != t]
    for f in changed:
        write_text_atomic(root / f, texts[f])
    return changed


def _run(args) -> int:
    if args.action == "render":
        changed = write()
        print("\n".join(f"rewrote {f}" for f in changed) or "every generated block is up to date")
        return 0
    problems = check()
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"{len(BLOCKS)} generated blocks match their sources")
    return 1 if problems else 0


def register(subparsers) -> None:
    p = subparsers.add_parser("docs", help="render the README's and docs' generated blocks from the committed results",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["render", "check"],
                   help="render: rewrite every block (make docs); check: exit 1 naming each block that differs")
    p.set_defaults(func=_run)
