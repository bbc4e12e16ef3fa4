"""make as a new user meets it (issue 49): an interrupted set-up, a profile's own errors, an executed notebook that is
not whole, `make clean` pointed at the wrong folder. Each make here stops before any notebook or set-up step runs."""
import json
import os
import subprocess
import time

import pytest

from cptlib.config import ConfigError, load_profile
from cptlib.core import paths


def _make(*args, timeout=60):
    return subprocess.run(["make", "-C", str(paths.REPO_ROOT), *args], capture_output=True, text=True, timeout=timeout)


def _half_built_venv(root, stamp=False):
    """A .venv as an interrupted `make setup` leaves it: an interpreter that cannot import the project's packages."""
    (root / "bin").mkdir(parents=True)
    python = root / "bin" / "python"
    python.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'yaml'\" >&2\nexit 1\n")
    python.chmod(0o755)
    if stamp:
        (root / ".setup-done").touch()
    return root


def test_an_interrupted_set_up_leaves_help_and_clean_working_and_setup_starts_again(tmp_path):
    """Ctrl-C during the first `make setup` left .venv/bin/python without yaml: every target, `make help` and `make
    setup` included, said "Makefile:132: *** multiple target patterns. Stop." until `rm -rf .venv`."""
    venv = _half_built_venv(tmp_path / "venv")
    (tmp_path / "build").mkdir()
    helped = _make("help", f"VENV={venv}")
    assert helped.returncode == 0 and "make reproduce" in helped.stdout and not helped.stderr, helped.stderr
    cleaned = _make("clean", f"VENV={venv}", f"CPTLIB_BUILD_DIR={tmp_path / 'build'}")
    assert cleaned.returncode == 0 and not (tmp_path / "build").exists(), cleaned.stderr
    planned = _make("-n", "reproduce", "PROFILE=smoke", f"VENV={venv}")
    assert planned.returncode == 0, planned.stderr
    assert f"\ntest -f {venv}/.setup-done || rm -rf {venv}\n" in planned.stdout, planned.stdout
    # The set-up starts from an empty .venv (PYTHON=false: it stops right after, at `python -m venv`).
    redone = _make("setup", f"VENV={venv}", "PYTHON=false")
    assert redone.returncode == 2 and not venv.exists(), redone.stderr


def test_a_finished_set_up_whose_venv_broke_is_one_line_naming_the_fix(tmp_path):
    venv = _half_built_venv(tmp_path / "venv", stamp=True)
    proc = _make("reproduce", "PROFILE=smoke", f"VENV={venv}", f"CPTLIB_BUILD_DIR={tmp_path / 'build'}")
    assert proc.returncode == 2 and proc.stderr.count("***") == 1, proc.stderr
    assert (f"make: {venv}/bin/python failed (exit 1) reading PROFILE=smoke: the .venv is broken; rebuild it with "
            f"`rm -rf {venv} && make setup`.  Stop.") in proc.stderr
    assert not (tmp_path / "build").exists() and _make("help", f"VENV={venv}").returncode == 0


BAD_PROFILES = {
    "a_typo": "cpt: {lrr: 3.0e-4}",
    "words_for_a_number": "cpt: {tokens: lots}",
    "a_negative_lr": "cpt: {lr: -1.0e-3}",
    "decreasing_milestones": "cpt: {milestones: [4096, 1024]}",
    "no_seeds": "train_seeds: []",
    "an_unknown_size": "model: {size: huge}",
    "a_zero_batch": "cpt: {batch_size: 0}",
    "nan": "cpt: {lr: .nan}",
}


@pytest.mark.parametrize("case", sorted(BAD_PROFILES))
def test_make_shows_the_profiles_own_error(case, tmp_path):
    """make said only "Makefile:141: *** target pattern contains no '%'. Stop." (the error became the notebook list);
    now the line `cptlib notebook check` gives, and nothing is built."""
    params = paths.PARAMS_DIR / f"zz_bad_{case}.yaml"
    try:
        params.write_text(f"extends: smoke\n{BAD_PROFILES[case]}\n")
        with pytest.raises(ConfigError) as err:
            load_profile(params.stem)
        started = time.monotonic()
        proc = _make("reproduce", f"PROFILE={params.stem}", f"CPTLIB_BUILD_DIR={tmp_path / 'build'}")
        seconds = time.monotonic() - started
    finally:
        params.unlink(missing_ok=True)
    assert proc.returncode == 2 and proc.stderr.count("***") == 1, proc.stderr
    assert f"*** make: PROFILE={params.stem}: {err.value}.  Stop." in proc.stderr
    assert not (tmp_path / "build").exists() and seconds < 30


def _executed(out, names):
    """Executed notebooks newer than everything they depend on, each after the one before it."""
    out.mkdir(parents=True)
    now = time.time()
    for i, name in enumerate(names):
        (out / f"{name}.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        os.utime(out / f"{name}.ipynb", (now + i, now + i))


def test_a_truncated_executed_notebook_is_not_taken_as_built(tmp_path):
    names = load_profile("smoke").notebooks
    out = tmp_path / "build" / "smoke" / "notebooks"
    _executed(out, names)
    built = _make("-n", "reproduce", "PROFILE=smoke", f"CPTLIB_BUILD_DIR={tmp_path / 'build'}")
    assert built.returncode == 0 and "cptlib notebook run" not in built.stdout, built.stdout + built.stderr
    stamp = (out / "01_forgetting.ipynb").stat().st_mtime
    (out / "01_forgetting.ipynb").write_text('{"cells": [{"cell_type": "code", "sou')
    os.utime(out / "01_forgetting.ipynb", (stamp, stamp))
    rerun = _make("-n", "reproduce", "PROFILE=smoke", f"CPTLIB_BUILD_DIR={tmp_path / 'build'}")
    runs = [line.split()[4] for line in rerun.stdout.splitlines() if "cptlib notebook run" in line]
    assert runs == names[1:], rerun.stdout + rerun.stderr


@pytest.mark.parametrize("where, why", [(".", "holds this clone"), ("..", "holds this clone"),
                                        ("{home}", "is a home folder or a git clone"),
                                        ("{git}", "is a home folder or a git clone")])
def test_make_clean_refuses_a_build_folder_that_is_the_clone_a_home_or_a_repository(where, why, tmp_path):
    """`make clean CPTLIB_BUILD_DIR=.` ran `rm -rf .`: the whole clone. Run on a copy of the Makefile in a folder of
    its own, so that a failing guard removes nothing but the test's folders."""
    import shutil

    clone, home, git = tmp_path / "outer" / "clone", tmp_path / "home", tmp_path / "repo"
    clone.mkdir(parents=True)
    shutil.copy(paths.REPO_ROOT / "Makefile", clone / "Makefile")
    for keep in (home / "keep", git / ".git"):
        keep.mkdir(parents=True)
    folder = where.format(home=home, git=git)
    proc = subprocess.run(["make", "-C", str(clone), "clean", f"CPTLIB_BUILD_DIR={folder}"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "HOME": str(home)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[0] == (f"make clean: CPTLIB_BUILD_DIR={folder} {why}, not a build folder; point "
                                           "CPTLIB_BUILD_DIR at the folder cptlib builds in (default build/)")
    assert (clone / "Makefile").is_file() and (home / "keep").is_dir() and (git / ".git").is_dir()


@pytest.mark.parametrize("profile", ["params/smoke", "../x", "/abs/mine"])
def test_a_profile_given_as_a_path_is_one_line_before_anything_runs(profile, tmp_path):
    """PROFILE=params/smoke put the executed notebooks at build/params/smoke/, which `cptlib notebook run` never
    writes: every make ran every notebook again."""
    proc = _make("reproduce", f"PROFILE={profile}", f"CPTLIB_BUILD_DIR={tmp_path / 'build'}")
    assert proc.returncode == 2 and proc.stderr.count("***") == 1, proc.stderr
    assert (f"*** PROFILE={profile} is a path; PROFILE is the name of a file in params/ (PROFILE=smoke for "
            "params/smoke.yaml): copy your profile there, or run it with `.venv/bin/cptlib notebook run <notebook> "
            "--profile <file.yaml>`.  Stop.") in proc.stderr
    assert not (tmp_path / "build").exists()


def test_make_names_a_profile_saved_as_yml(tmp_path):
    path = paths.PARAMS_DIR / "zz_saved_as_yml.yml"
    try:
        path.write_text("extends: smoke\n")
        proc = _make("reproduce", "PROFILE=zz_saved_as_yml", f"CPTLIB_BUILD_DIR={tmp_path / 'build'}")
    finally:
        path.unlink(missing_ok=True)
    assert proc.returncode == 2
    assert ("make: profile file params/zz_saved_as_yml.yaml does not exist (PROFILE=zz_saved_as_yml); "
            "params/zz_saved_as_yml.yml is there: a profile's file ends in .yaml: rename it "
            "params/zz_saved_as_yml.yaml; known profiles: default") in proc.stderr, proc.stderr
    assert not (tmp_path / "build").exists()
