"""The command line: help for every command, bad input as one line naming what to fix."""
import subprocess
import sys

import pytest

from cptlib import cli, family, family_cli


def _cptlib(*args):
    return subprocess.run([sys.executable, "-m", "cptlib.cli", *args], capture_output=True, text=True, timeout=120)


def test_member_names_agree():
    assert family_cli.MEMBERS == family.MEMBERS


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
