"""One source for every number (issue 48): the README's and docs' generated blocks are what the committed CSVs,
profiles and release render (cptlib.study.generated), and every relative link of the README and docs leads to a
file. The reports against their tables: tests/test_redraw.py."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cptlib.core import paths
from cptlib.study import generated

ROOT = paths.REPO_ROOT


def test_every_generated_block_is_what_its_committed_sources_render():
    """Fails when a CSV, a profile or the release changed and `make docs` was not run, or a block was edited by
    hand; the message is a diff per block and names `make docs`."""
    problems = generated.check(ROOT)
    assert not problems, "\n\n".join(problems)


def _copy_sources(tmp: Path) -> Path:
    """What the blocks read and where they are written, copied into a scratch root."""
    for block in generated.BLOCKS:
        for pattern in (block.file, *block.sources):
            for src in ROOT.glob(pattern):
                dst = tmp / src.relative_to(ROOT)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    for extended in ROOT.glob("params/*.yaml"):  # a profile's `extends:` chain
        shutil.copy2(extended, tmp / "params" / extended.name)
    return tmp


def test_a_verdict_changed_in_claims_csv_is_caught_in_the_readme_and_rewritten_by_make_docs(tmp_path):
    """The example the check catches: C1's verdict in figures/default/claims.csv changes (as a rerun with other
    numbers would write it: "partly") while the README still says the committed one."""
    root = _copy_sources(tmp_path)
    claims = root / "figures/default/claims.csv"
    table = pd.read_csv(claims)
    before = table.loc[table.claim == "C1", "in kind"].item()
    assert before != "partly"
    table.loc[table.claim == "C1", "in kind"] = "partly"
    table.to_csv(claims, index=False)
    problems = generated.check(root)
    assert len(problems) == 1 and problems[0].startswith("README.md: block 'results' is not what its sources render "
                                                         "(run `make docs`)")
    changed = [line for line in problems[0].splitlines() if line.startswith(("-|", "+|"))]
    assert len(changed) == 2 and before in changed[0] and "partly" in changed[1]
    assert generated.write(root) == ["README.md"] and generated.check(root) == []


def test_a_number_typed_by_hand_into_a_block_is_caught(tmp_path):
    """The README's generated block says C6's ratio as claims.csv has it; a hand edit (rounding it) fails."""
    import re

    root = _copy_sources(tmp_path)
    readme = root / "README.md"
    text = readme.read_text()
    ratio = re.search(r"([\d,]+)× less wall time", text).group(1)
    rounded = f"{round(int(ratio.replace(',', '')), -2) + 100:,}"
    readme.write_text(text.replace(f"{ratio}× less wall time", f"{rounded}× less wall time"))
    (problem,) = generated.check(root)
    assert "-" in problem and f"{rounded}×" in problem and f"{ratio}×" in problem


def test_a_calibration_count_follows_its_csv(tmp_path):
    """The README's calibration line counts calibration.csv: one more missed target is one fewer met, and named."""
    root = _copy_sources(tmp_path)
    path = root / "figures/default/calibration.csv"
    cal = pd.read_csv(path)
    met = int(cal.met.sum())
    cal.loc[(cal.model == "base_v1") & (cal.metric == "era-A accuracy"), "met"] = False
    cal.to_csv(path, index=False)
    block = generated.results(root)
    assert f"{met - 1} of {len(cal)} targets met" in block and "base_v1 era-A accuracy 0.97 (target >= 0.95)" in block


def test_a_file_without_its_markers_is_one_error_naming_the_lines_to_add(tmp_path):
    root = _copy_sources(tmp_path)
    testbed = root / "docs/testbed.md"
    testbed.write_text(re.sub(r"<!-- generated:default-world.*?<!-- /generated:default-world -->\n?", "",
                              testbed.read_text(), flags=re.S))
    with pytest.raises(generated.DocsError, match=r"docs/testbed.md has no block 'default-world': put the two lines"):
        generated.check(root)


def test_the_world_sizes_in_docs_follow_the_profile(tmp_path):
    """docs/testbed.md's counts are the profile's world: 140 organisations in params/default.yaml today (the doc said
    120 when it was typed by hand); another value is rendered as such."""
    root = _copy_sources(tmp_path)
    assert "140 organisations" in generated.default_world(root)
    profile = root / "params/default.yaml"
    profile.write_text(profile.read_text().replace("n_orgs: 140", "n_orgs: 150"))
    assert "150 organisations" in generated.default_world(root)


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # code blocks hold commands, not links
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("doc", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))])
def test_every_relative_link_leads_to_a_file_and_every_anchor_to_a_heading(doc):
    path = ROOT / doc
    bad = []
    for link in _links(path):
        if re.match(r"[a-z]+:", link):
            continue  # a web address
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        if not file.exists():
            bad.append(link)
        elif anchor and file.suffix == ".md":
            slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                     for h in re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)}
            if anchor not in slugs:
                bad.append(link)
    assert not bad, f"{doc}: links that lead nowhere: {bad}"
