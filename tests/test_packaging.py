"""The install surfaces agree: pyproject.toml's pins, the lock that `make setup` installs, environment.yml; and
`pip install cptlib` (no extra) is enough for the residual engine."""
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from cptlib.core import paths

# What each install gives: `pip install cptlib` the residual engine, [study] the notebooks, [dev] the tests.
EXTRAS = {"study", "dev"}
# The study's packages: none may be needed by `import cptlib.residual` or `cptlib residual ...`.
STUDY_MODULES = ["lm_eval", "datasets", "papermill", "matplotlib", "seaborn", "pandas", "jupyterlab", "nbformat",
                 "nltk", "langdetect", "IPython", "jupyter_client", "PIL", "gguf"]


def _project() -> dict:
    return tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())["project"]


def _all_pins() -> list[str]:
    project = _project()
    return project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]


def _lock() -> dict[str, tuple[str, list[str]]]:
    """requirements.lock: canonical name -> (version, sha256 hashes)."""
    entries = {}
    text = (paths.REPO_ROOT / "requirements.lock").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})*)\s*", line)
        assert match, f"requirements.lock: not `name==version --hash=...`: {line[:120]}"
        entries[canonicalize_name(match[1])] = (match[2], re.findall(r"sha256:([0-9a-f]{64})", match[3]))
    return entries


def test_environment_yml_matches_pyproject():
    project = _project()
    assert set(project["optional-dependencies"]) == EXTRAS
    env = yaml.safe_load((paths.REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(d for d in pip_section if d != "-e .") == sorted(_all_pins())


def test_every_dependency_is_pinned():
    unpinned = [d for d in _all_pins() if "==" not in d]
    assert unpinned == []
    names = [canonicalize_name(Requirement(d).name) for d in _all_pins()]
    assert len(names) == len(set(names)), "a package is pinned twice (in the engine and an extra, or two extras)"


def test_the_lock_has_every_pin_of_pyproject_with_hashes():
    """`make setup` installs requirements.lock with --require-hashes --no-deps: every package the engine, [study]
    and [dev] need must be in it, at pyproject's version (torch as the local CPU wheel 2.13.0+cpu), with a hash.
    A pin changed in pyproject.toml without `make lock` fails here."""
    lock = _lock()
    assert all(hashes for _, hashes in lock.values()), [n for n, (_, h) in lock.items() if not h]
    for pin in map(Requirement, _all_pins()):
        name = canonicalize_name(pin.name)
        assert name in lock, f"{pin} is not in requirements.lock: run `make lock`"
        assert pin.specifier.contains(Version(lock[name][0])), f"{pin}: the lock has {lock[name][0]}; run `make lock`"
    assert lock["torch"][0] == "2.13.0+cpu"


def _core_distributions() -> set[str]:
    """The distributions `pip install cptlib` brings: pyproject's dependencies and theirs, as installed here."""
    wanted, todo = set(), [Requirement(d) for d in _project()["dependencies"]]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # for another platform or Python (its marker), or optional
        key = (name, frozenset(req.extras))
        if key in wanted:
            continue
        wanted.add(key)
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *req.extras)):
                todo.append(sub)
    return {name for name, _ in wanted}


def _core_site(root: Path) -> Path:
    """A site-packages folder that holds only the core distributions: links to their top-level files (packages,
    modules, shared libraries, .dist-info), as a fresh `pip install cptlib` would lay them out."""
    site = root / "site-packages"
    site.mkdir()
    core = _core_distributions()  # numpy (transformers') and accelerate (peft's) too: pinned in [study], used there
    owners: dict[str, set[str]] = {}
    where = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        where[name] = dist
        # RECORD's first column, read as text: dist.files builds a path object per file (torch has ~15,000)
        for line in (dist.read_text("RECORD") or "").splitlines():
            top = line.lstrip('"').split("/", 1)[0].split(",", 1)[0]
            if top and top not in ("..", "__pycache__") and not top.endswith(".pth"):
                owners.setdefault(top, set()).add(name)
    for top, names in owners.items():
        if names & core:
            assert names <= core, f"{top} is shared by the engine's {sorted(names & core)} and {sorted(names - core)}"
            target = Path(where[next(iter(names))].locate_file(top))
            if target.exists():
                (site / top).symlink_to(target)
    return site


ENGINE_CHECK = textwrap.dedent("""
    import contextlib, io, json, sys
    from pathlib import Path

    site, repo, work, study = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
    sys.path[:0] = [site, repo, repo + "/tests"]
    import importlib.util
    installed = [m for m in study if importlib.util.find_spec(m) is not None]
    assert not installed, f"the core site-packages holds study packages: {installed}"

    import cptlib, cptlib.residual, cptlib.residual.cli, cptlib.residual.peft_adapter
    from cptlib.cli import main
    from cptlib.config import load_profile

    load_profile("default")
    for argv in (["--help"], ["residual", "--help"], ["residual", "extract", "--help"]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main(argv)
            except SystemExit as exit:
                assert exit.code == 0, (argv, exit.code)
        assert "usage: cptlib" in out.getvalue(), argv

    from residual_helpers import llama_family
    models = llama_family(work / "models", tied=False)
    run = lambda *a: main([*a, "--no-progress"])
    assert run("residual", "extract", "--base", str(models["base"]), "--instruct", str(models["instruct"]),
               "--out", str(work / "r")) == 0
    assert run("residual", "apply", "--residual", str(work / "r"), "--target", str(models["cpt"]),
               "--out", str(work / "restored")) == 0
    assert run("residual", "extract", "--base", str(models["base"]), "--instruct", str(models["instruct"]),
               "--out", str(work / "adapter"), "--rank", "2", "--format", "peft") == 0
    assert run("residual", "inspect", str(work / "r")) == 0
    leaked = sorted({m.split(".")[0] for m in sys.modules} & set(study))
    assert not leaked, leaked
    print("engine ok")
""")


def test_the_engine_runs_with_no_study_package_installed(tmp_path):
    """`pip install cptlib` (no extra): `import cptlib.residual`, the profiles and `cptlib residual extract / apply /
    inspect` (a PEFT adapter too) work in an interpreter that sees only the engine's distributions (pyproject's
    dependencies and theirs): lm-eval, datasets, papermill, pandas, matplotlib, seaborn, Jupyter... are absent, as
    in a fresh install. A study import in the engine, even a lazy one on these paths, fails here."""
    site = _core_site(tmp_path)
    for module in STUDY_MODULES:
        assert not (site / module).exists(), module
    (tmp_path / "work").mkdir()
    proc = subprocess.run([sys.executable, "-S", "-c", ENGINE_CHECK, str(site), str(paths.REPO_ROOT),
                           str(tmp_path / "work"), json.dumps(STUDY_MODULES)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})  # -S: no site-packages
    assert proc.returncode == 0 and "engine ok" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-5000:]


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


def test_before_the_first_set_up_make_names_a_missing_profile_instead_of_setting_up(tmp_path):
    """A fresh clone (no .venv: VENV points at a folder that does not exist) used to run the ~80 s set-up before the
    missing profile's message; now make stops at once, and nothing is installed or built."""
    import subprocess

    venv = tmp_path / "no-venv"
    proc = subprocess.run(["make", "-C", str(paths.REPO_ROOT), "reproduce", "PROFILE=typo", f"VENV={venv}",
                           f"CPTLIB_BUILD_DIR={tmp_path / 'build'}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and not venv.exists() and not (tmp_path / "build").exists()
    assert "profile file params/typo.yaml does not exist (PROFILE=typo); known profiles: default" in proc.stderr


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

    proc = subprocess.run(["make", "-C", str(paths.REPO_ROOT), "-p", "-n", "reproduce", "PROFILE=smoke"],
                          capture_output=True, text=True, timeout=60)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PROFILE_FILES :="))
    assert line.split(":=")[1].split() == ["params/smoke.yaml", "params/default.yaml"]
