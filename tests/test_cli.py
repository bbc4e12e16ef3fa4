"""The command line: help for every command, bad input as one line naming what to fix."""
import subprocess
import sys

import pytest

from cptlib import cli


def _cptlib(*args):
    return subprocess.run([sys.executable, "-m", "cptlib.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_loads_no_heavy_library():
    """Every command's parser is built without torch, transformers, lm-eval, datasets or pandas: the command modules
    import them only inside the commands (the family's and the residual engine's APIs are lazy: cptlib.family,
    cptlib.residual; the residual parser's choices are cptlib.residual.options). `cptlib residual --help` took
    ~1.9 s for torch before."""
    code = ("import sys; from cptlib import cli; cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'lm_eval', 'datasets', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_top_level_help_imports_no_command_module():
    """`cptlib --help` (and a typo'd command) lists the commands from cli.COMMANDS without importing their modules,
    so neither torch nor anything heavier is loaded (measured: 0.05-0.08 s, against ~2 s before; docs/costs.md)."""
    code = ("import sys\nfrom cptlib import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'transformers', 'lm_eval', 'cptlib.residual', 'cptlib.family.cli') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("[]"), out.stdout + out.stderr
    assert "clean-partial" in out.stdout and "residual" in out.stdout


def test_the_help_table_is_what_each_module_registers():
    """cli.COMMANDS holds each command's help line for the fast `--help`: it must be the module's own."""
    import argparse

    for command, (module, help_line) in cli.COMMANDS.items():
        sub = argparse.ArgumentParser().add_subparsers()
        __import__(module, fromlist=["register"]).register(sub)
        registered = {a.dest: a.help for a in sub._choices_actions}
        assert registered.get(command) == help_line, (command, registered)
    full = cli.build_parser()._subparsers._group_actions[0]
    assert list(full.choices) == list(cli.COMMANDS)


def test_the_family_api_is_lazy_and_complete():
    import cptlib.family as family
    from cptlib.family import resolve

    assert family.build_family is resolve.build_family and family.MEMBERS == resolve.MEMBERS
    assert set(family._API) | {"MEMBERS"} == set(resolve.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        family.nope


def test_the_residual_api_is_lazy_and_each_name_is_its_modules():
    """`import cptlib.residual` loads no torch; each public name is the object of the module that defines it."""
    code = ("import sys, cptlib.residual as r; print('torch' in sys.modules); r.Residual; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr
    import importlib

    import cptlib.residual as residual

    for name, module in residual._API.items():
        assert getattr(residual, name) is getattr(importlib.import_module(f"cptlib.residual.{module}"), name), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        residual.nope


@pytest.mark.parametrize("command", ["build", "cpt", "residual"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: cptlib" in capsys.readouterr().out


def test_unknown_profile_is_one_line_error():
    result = _cptlib("build", "--profile", "no_such_profile")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "cptlib build: error:" in result.stderr and "known profiles" in result.stderr


def _parser_running(func):
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--debug", action="store_true")
    parser.set_defaults(func=func, command="demo")
    return lambda argv: parser


def test_only_project_errors_become_one_line(monkeypatch, capsys):
    """A CptlibError is the user's to fix: one line, exit 2. Any other exception is a bug and keeps its traceback,
    even a ValueError raised deep inside a library."""
    from cptlib.core.errors import InputError

    def refuse(args):
        raise InputError("--rank 0: must be >= 1")

    monkeypatch.setattr(cli, "build_parser", _parser_running(refuse))
    assert cli.main([]) == 2
    assert capsys.readouterr().err == "cptlib demo: error: --rank 0: must be >= 1\n"

    def bug(args):
        return int("not a number")

    monkeypatch.setattr(cli, "build_parser", _parser_running(bug))
    with pytest.raises(ValueError, match="invalid literal"):
        cli.main([])


@pytest.mark.parametrize("how", ["--debug", "CPTLIB_DEBUG"])
def test_debug_shows_the_traceback_behind_the_line(how, tmp_path):
    args = ["residual", "apply", "--target", str(tmp_path / "no_model"), "--residual", str(tmp_path / "no_residual"),
            "--out", str(tmp_path / "out")]
    plain = _cptlib(*args)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    import os

    env = dict(os.environ, CPTLIB_DEBUG="1") if how == "CPTLIB_DEBUG" else None
    cmd = [sys.executable, "-m", "cptlib.cli", *(["--debug"] if how == "--debug" else []), *args]
    debug = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "cptlib.core.errors.MissingInputError" in debug.stderr
    assert not (tmp_path / "out").exists()


def test_a_build_dir_that_is_a_file_is_one_line_and_creates_nothing(tmp_path):
    """CPTLIB_BUILD_DIR=<a file> was a NotADirectoryError traceback from the first folder a command made."""
    import os

    afile = tmp_path / "not_a_folder"
    afile.write_text("x")
    env = {**os.environ, "CPTLIB_BUILD_DIR": str(afile)}
    proc = subprocess.run([sys.executable, "-m", "cptlib.cli", "notebook", "run", "00_build", "--profile", "smoke"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"cptlib notebook: error: CPTLIB_BUILD_DIR={afile} is a file, not a folder; "
                                        "point it at a folder (it is created if missing), or unset it to build in build/"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_folder"] and afile.read_text() == "x"


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_a_bad_thread_count_is_one_line_before_any_work(tmp_path, value):
    """CPTLIB_TORCH_THREADS=abc was ignored by commands that train nothing and an int() traceback in those that do,
    after a half-built stage."""
    import os

    env = {**os.environ, "CPTLIB_TORCH_THREADS": value, "CPTLIB_BUILD_DIR": str(tmp_path / "build")}
    proc = subprocess.run([sys.executable, "-m", "cptlib.cli", "build", "--profile", "smoke", "--data-only"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"cptlib build: error: CPTLIB_TORCH_THREADS={value!r}: set it to a positive "
                                        "whole number of torch threads per process (e.g. 1), or unset it to use the "
                                        "machine's cores"]
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("run_name", ["smoke", "../escape"])
def test_a_run_that_would_write_into_a_shipped_profile_or_outside_is_one_line_and_writes_nothing(run_name, tmp_path):
    """Issue 49, 3: `--run-name smoke` with an override overwrote figures/smoke/; `../escape` wrote escape/ beside
    the build folder."""
    import os

    env = {**os.environ, "CPTLIB_BUILD_DIR": str(tmp_path / "build"), "CPTLIB_FIGURES_DIR": str(tmp_path / "figures")}
    proc = subprocess.run([sys.executable, "-m", "cptlib.cli", "notebook", "run", "05_report", "--profile", "smoke",
                           "--set", "cpt.lr=3e-4", "--run-name", run_name], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"cptlib notebook: error: run name {run_name!r} ")
    assert list(tmp_path.iterdir()) == []


def test_a_build_folder_that_cannot_be_written_is_one_line(tmp_path):
    """Issue 49, 5: a read-only CPTLIB_BUILD_DIR was an OSError traceback, rc 1 (/sys: no folder may be made there)."""
    import os

    env = {**os.environ, "CPTLIB_BUILD_DIR": "/sys/cptlib-build"}
    proc = subprocess.run([sys.executable, "-m", "cptlib.cli", "build", "--profile", "smoke", "--data-only"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "cptlib build: error: cannot write /sys/cptlib-build: Operation not permitted; make it writable, or point the "
        "command elsewhere (its --out, CPTLIB_BUILD_DIR for stages, HF_HOME for the Hugging Face cache): finished "
        "stages are kept"]
    assert not os.path.exists("/sys/cptlib-build")


def test_a_read_only_cache_behind_a_librarys_own_error_is_one_line(monkeypatch, capsys):
    """A read-only HF_HOME surfaces as a library's error raised from the file system's (datasets, huggingface_hub);
    the file system's refusal is named. Any other exception with a cause stays a bug, with its traceback."""
    import errno

    def read_only_cache(args):
        try:
            raise OSError(errno.EROFS, "Read-only file system", "/ro/huggingface/datasets")
        except OSError as err:
            raise RuntimeError("could not prepare the dataset") from err

    monkeypatch.setattr(cli, "build_parser", _parser_running(read_only_cache))
    assert cli.main([]) == 2
    assert capsys.readouterr().err == (
        "cptlib demo: error: cannot write /ro/huggingface/datasets: Read-only file system; make it writable, or point "
        "the command elsewhere (its --out, CPTLIB_BUILD_DIR for stages, HF_HOME for the Hugging Face cache): finished "
        "stages are kept\n")

    def missing_file_bug(args):
        try:
            open("/nonexistent/cptlib/file")
        except OSError as err:
            raise RuntimeError("a bug") from err

    monkeypatch.setattr(cli, "build_parser", _parser_running(missing_file_bug))
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main([])


@pytest.mark.parametrize("value, debug", [("false", False), ("False", False), ("no", False), ("off", False), ("0", False),
                                          ("", False), ("1", True), ("true", True), ("yes", True)])
def test_cptlib_debug_false_means_off(value, debug, monkeypatch):
    """Issue 49, 6: CPTLIB_DEBUG=false turned debug on (any value but "" and "0" did)."""
    monkeypatch.setenv("CPTLIB_DEBUG", value)
    assert cli.build_parser(["build"]).parse_args(["build"]).debug is debug


@pytest.mark.parametrize("seed", ["-1", "x"])
def test_a_negative_seed_is_refused_by_the_option_not_sent_to_train_seeds(seed):
    """`cptlib build --seed -1` suggested adding -1 to train_seeds, which validation forbids."""
    proc = _cptlib("build", "--profile", "smoke", "--seed", seed)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == ("cptlib build: error: argument --seed: must be a whole number >= 0 (a "
                                            f"training seed, e.g. --seed 0), got {seed!r}")
