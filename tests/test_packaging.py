"""The install surfaces agree: environment.yml pins exactly pyproject.toml's packages."""
import tomllib
from pathlib import Path

import pytest
import yaml

from cptlib.core import paths


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((paths.REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip_section) - {"-e ."} == wanted


def test_every_dependency_is_pinned():
    project = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())["project"]
    unpinned = [d for d in project["dependencies"] if "==" not in d]
    assert unpinned == []


def test_make_names_a_missing_profile_before_any_notebook_rule(tmp_path):
    """`make reproduce PROFILE=nonexistent` (or `smoke.yaml`) used to end in make's own "No rule to make target
    build/…/00_build.ipynb"; now one line names the profile and the known ones, and nothing is built."""
    import subprocess

    for name, hint in (("nonexistent", ""), ("smoke.yaml", "; PROFILE is the name without .yaml: PROFILE=smoke")):
        proc = subprocess.run(["make", "-C", str(paths.REPO_ROOT), "reproduce", f"PROFILE={name}",
                               f"CPTLIB_BUILD_DIR={tmp_path / 'build'}"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        assert (f"profile file params/{name}.yaml does not exist (PROFILE={name}){hint}; known profiles: default"
                in proc.stderr), proc.stderr
        assert not (tmp_path / "build").exists()


def test_make_names_a_profile_chain_that_forms_a_cycle_in_one_line(tmp_path):
    """A profile that extends itself through another used to crash make (exit 139, its recursive chain); now
    cptlib.config resolves the chain for make as for the CLI, and make stops with its message."""
    import subprocess

    a, b = paths.PARAMS_DIR / "zz_cycle_a.yaml", paths.PARAMS_DIR / "zz_cycle_b.yaml"
    try:
        a.write_text("extends: zz_cycle_b\n")
        b.write_text("extends: zz_cycle_a\n")
        proc = subprocess.run(["make", "-C", str(paths.REPO_ROOT), "reproduce", "PROFILE=zz_cycle_a",
                               f"CPTLIB_BUILD_DIR={tmp_path / 'build'}"], capture_output=True, text=True, timeout=60)
    finally:
        a.unlink(missing_ok=True)
        b.unlink(missing_ok=True)
    assert proc.returncode == 2
    assert "'extends' forms a cycle: zz_cycle_a -> zz_cycle_b -> zz_cycle_a" in proc.stderr, proc.stderr
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("setting, message", [
    ("PROFILE=", 'PROFILE="" must be one profile name'),
    ("PROFILE=a b", 'PROFILE="a b" must be one profile name'),
    ("CPTLIB_BUILD_DIR={tmp}/with space/build", "contains a space, which make cannot use in a target"),
])
def test_make_refuses_an_empty_profile_or_a_build_folder_with_a_space_in_one_line(setting, message, tmp_path):
    """Before: "No rule to make target 'build//…'" and "mixed implicit and normal rules"."""
    import subprocess

    proc = subprocess.run(["make", "-C", str(paths.REPO_ROOT), "reproduce", setting.format(tmp=tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("***") == 1, proc.stderr
    assert not (tmp_path / "with space").exists()


def test_a_new_unrelated_profile_leaves_the_others_notebooks_up_to_date():
    """A notebook depends on its profile's extends chain (smoke -> default), not on every params file."""
    import subprocess

    proc = subprocess.run(["make", "-C", str(paths.REPO_ROOT), "-p", "-n", "help", "PROFILE=smoke"],
                          capture_output=True, text=True, timeout=60)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PROFILE_FILES :="))
    assert line.split(":=")[1].split() == ["params/smoke.yaml", "params/default.yaml"]
