"""The install surfaces agree: environment.yml pins exactly pyproject.toml's packages."""
import tomllib

import yaml

from cptlib import paths


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
