"""Provenance: a study run rewriting the committed figures does not make its code version "-dirty"."""
import subprocess

from cptlib.core import paths, provenance


def test_changed_figures_leave_the_code_version_clean_and_changed_code_does_not(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "figures").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "figures" / "table.csv").write_text("a\n1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "c")
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    clean = provenance.code_version()
    assert len(clean) == 12 and not clean.endswith("-dirty")
    (tmp_path / "figures" / "table.csv").write_text("a\n2\n")  # what make reproduce does to figures/<profile>/
    assert provenance.code_version() == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.code_version() == clean + "-dirty"


def test_shown_paths_are_the_same_in_every_clone(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    assert paths.shown(paths.REPO_ROOT / "models" / "default" / "base_v1") == "./models/default/base_v1"
    assert paths.shown(tmp_path / "build" / "stages" / "converted-1") == "<build>/stages/converted-1"
    assert paths.shown(tmp_path / "elsewhere") == str((tmp_path / "elsewhere").resolve())


def test_each_committed_figures_folder_holds_one_runs_figures_only():
    """Every figure of a committed figures/<profile>/ holds numbers of the same run: a figure an older design
    wrote and the current notebooks no longer write is not left behind (figures/default kept a sizes figure of an
    older code version for weeks, and its REPORT.md embedded it). A figure drawn again from its committed table
    (cptlib.study.redraw) counts by the code version of its numbers, `data_code_version`."""
    import json
    import subprocess

    from cptlib.core import paths

    listed = subprocess.run(["git", "ls-files", "figures/*/*.json"], cwd=paths.REPO_ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    versions: dict[str, set[str]] = {}
    for name in listed:
        record = json.loads((paths.REPO_ROOT / name).read_text())
        if "code_version" in record:  # a figure's provenance (tables have none)
            numbers = record.get("data_code_version") or record["code_version"]
            versions.setdefault(name.split("/")[1], set()).add(numbers)
    assert versions and {p: v for p, v in versions.items() if len(v) > 1} == {}
