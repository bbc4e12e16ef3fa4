"""The command line: help for every command, bad input as one line naming what to fix."""
import subprocess
import sys

import pytest

from cptlib import cli


def _cptlib(*args):
    return subprocess.run([sys.executable, "-m", "cptlib.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_loads_no_heavy_library():
    """`cptlib --help` builds every command's parser: the command modules import transformers, lm-eval, datasets
    and pandas only inside the commands (the family's API is lazy: cptlib.family). torch is loaded, by the
    residual engine's command line (its merge methods and dtypes are torch objects)."""
    code = ("import sys; from cptlib import cli; cli.build_parser(); "
            "print(sorted(m for m in ('transformers', 'lm_eval', 'datasets', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_family_api_is_lazy_and_complete():
    import cptlib.family as family
    from cptlib.family import resolve

    assert family.build_family is resolve.build_family and family.MEMBERS == resolve.MEMBERS
    assert set(family._API) | {"MEMBERS"} == set(resolve.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        family.nope


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
