"""Profiles: every shipped profile validates; each kind of bad profile gives one clear error."""
import re

import pytest

from cptlib.core import paths
from cptlib.config import ConfigError, load_profile


@pytest.mark.parametrize("name", sorted(p.stem for p in paths.PARAMS_DIR.glob("*.yaml")))
def test_every_shipped_profile_validates(name):
    assert load_profile(name).name == name


def test_extends_merges_section_by_section():
    smoke, default = load_profile("smoke"), load_profile("default")
    assert smoke.cpt.tokens == 8192  # overridden in smoke.yaml
    assert smoke.cpt.lr == default.cpt.lr  # inherited from default.yaml
    assert smoke.world_seed == default.world_seed


def _write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_key_is_named_with_suggestion(tmp_path):
    path = _write(tmp_path, "extends: smoke\ncpt:\n  tokenz: 100\n")
    with pytest.raises(ConfigError, match=re.escape("unknown key 'cpt.tokenz' (did you mean 'cpt.tokens'?)")):
        load_profile(path)


def test_unknown_top_level_key(tmp_path):
    path = _write(tmp_path, "world_sed: 3\n")
    with pytest.raises(ConfigError, match=re.escape("unknown key 'world_sed' (did you mean 'world_seed'?)")) as err:
        load_profile(path)
    assert str(path) in str(err.value)


def test_wrong_type_names_key_and_value(tmp_path):
    path = _write(tmp_path, "cpt:\n  lr: fast\n")
    with pytest.raises(ConfigError, match=r"cpt\.lr: .*got 'fast'"):
        load_profile(path)


def test_missing_profile_lists_known_ones():
    with pytest.raises(ConfigError, match=r"does not exist; known profiles: \[.*'default'.*'smoke'"):
        load_profile("no_such_profile")


def test_missing_parent_profile(tmp_path):
    with pytest.raises(ConfigError, match="no_such_parent.yaml does not exist"):
        load_profile(_write(tmp_path, "extends: no_such_parent\n"))


def test_extends_cycle(tmp_path):
    _write(tmp_path, f"extends: {tmp_path / 'b.yaml'}\n", "a.yaml")
    _write(tmp_path, f"extends: {tmp_path / 'a.yaml'}\n", "b.yaml")
    with pytest.raises(ConfigError, match="'extends' forms a cycle: a -> b -> a"):
        load_profile(tmp_path / "a.yaml")


def test_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_profile(_write(tmp_path, "cpt: [unclosed\n"))


def test_unknown_size_preset(tmp_path):
    with pytest.raises(ConfigError, match="unknown size preset 'huge'"):
        load_profile(_write(tmp_path, "model:\n  size: huge\n"))


def test_milestones_beyond_budget(tmp_path):
    with pytest.raises(ConfigError, match=r"milestones \[999\] are outside \(0, tokens=100\]"):
        load_profile(_write(tmp_path, "cpt:\n  tokens: 100\n  milestones: [50, 999]\n"))


def test_sequences_longer_than_the_model_context(tmp_path):
    with pytest.raises(ConfigError, match=r"\{'sft.max_len': 600\} exceed model.max_len=512; raise model.max_len"):
        load_profile(_write(tmp_path, "extends: default\nsft:\n  max_len: 600\n"))


def test_study_choices_are_the_residual_engines():
    from cptlib.config import MERGE_METHODS, MERGE_SPECS, MODULE_SUBSETS
    from cptlib.residual.merge import FILTER_PRESETS
    from cptlib.residual.methods import METHODS, parameters

    assert MERGE_METHODS is METHODS  # one definition
    assert tuple(FILTER_PRESETS) == MODULE_SUBSETS
    for name, cls in METHODS.items():  # a profile's form of each method is the class's own parameters
        assert set(MERGE_SPECS[name].model_fields) == {"method", *parameters(cls)}


def test_a_new_merge_method_is_one_registered_class(monkeypatch):
    """The engine's registry is what the engine, the command line and a profile offer: a toy method, one class
    registered and nothing else written, merges, is a command-line option with its range, and a profile's choice."""
    import argparse
    import dataclasses
    from typing import ClassVar

    import torch

    from cptlib import config
    from cptlib.residual import cli, methods

    monkeypatch.setattr(methods, "METHODS", dict(methods.METHODS))

    @methods.register
    @dataclasses.dataclass(frozen=True)
    class Scaled(methods.Merge):
        name: ClassVar[str] = "scaled"
        scale: float = methods.param(1.0, "factor on the summed task vectors", gt=0)

        def __call__(self, name, taus):
            return sum(taus) * self.scale

        def label(self) -> str:
            return f"scaled x{self.scale:g}"

    assert torch.equal(methods.MergeMethod("scaled", scale=3)("w", [torch.ones(2), torch.ones(2)]), torch.full((2,), 6.0))
    with pytest.raises(ValueError, match=r"merge method 'scaled': scale 0: must be > 0"):
        methods.MergeMethod("scaled", scale=0)

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["residual", "apply", "--target", "t", "--residual", "r", "--out", "o",
                              "--method", "scaled", "--scale", "2"])
    assert cli._apply_options(args)["method"] == Scaled(scale=2.0)
    assert cli._method_parameters()["scale"][3] == ["scaled"]  # its option's help names the method

    # A profile's choices are made from the registry when cptlib.config is imported: here, made again.
    monkeypatch.setattr(config.schema, "MERGE_METHODS", methods.METHODS)  # where MergeSpec looks it up
    spec = config._merge_spec(Scaled).model_validate({"method": "scaled", "scale": 2})
    assert spec.merge() == Scaled(scale=2.0) and spec.merge().label() == "scaled x2"
    with pytest.raises(ValueError, match=r"greater than 0"):
        config._merge_spec(Scaled).model_validate({"method": "scaled", "scale": 0})


def test_unknown_key_in_a_list_of_sections_is_named(tmp_path):
    path = _write(tmp_path, "extends: smoke\nstudy:\n  merges:\n    - method: ties\n      densty: 0.2\n")
    with pytest.raises(ConfigError, match=re.escape("unknown key 'study.merges.0.densty' (did you mean 'study.merges.0.density'?)")):
        load_profile(path)


@pytest.mark.parametrize("merge, message", [
    ("{method: magic}", "study.merges.0: 'magic' is not one of 'task_arithmetic', 'ties', 'dare', 'breadcrumbs'"),
    ("{method: dare, density: 0.5}", "unknown key 'study.merges.0.density' (merge method 'dare' takes drop_rate, seed)"),
    ("{method: ties, density: 1.5}", "study.merges.0.density: Input should be less than or equal to 1 (got 1.5)"),
    ("{method: breadcrumbs, density: 0.9, gamma: 0.2}", "study.merges.0: merge method 'breadcrumbs': gamma 0.2 + "
                                                        "density 0.9 exceeds 1"),
    ("{method: ties, density: true}", "density: expected a number, got True"),
    ("ties", "study.merges.0: expected a section (e.g. `method: ties` and its keys), got 'ties'"),
])
def test_a_bad_merge_entry_is_one_line_naming_it(tmp_path, merge, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_profile(_write(tmp_path, f"extends: smoke\nstudy:\n  merges: [{merge}]\n"))
    assert "\n" not in str(err.value)


def test_merges_take_each_methods_own_parameters():
    merges = load_profile("default").study.merges
    assert [m.merge().params() for m in merges] == [
        {"name": "task_arithmetic"}, {"name": "ties", "density": 0.2}, {"name": "dare", "drop_rate": 0.9, "seed": 0},
        {"name": "breadcrumbs", "density": 0.9, "gamma": 0.01}]
    assert [m.merge().label() for m in merges] == ["task arithmetic", "TIES d=0.2", "DARE p=0.9", "breadcrumbs d=0.9 γ=0.01"]


_REAL = """extends: smoke
models: {base_v1: a, instruct_v1: b, base_v2: c, instruct_v2: d}
cpt_data: {source: some/news}
eval: {suite: real}
"""


def test_real_profile_sections_parse(tmp_path):
    profile = load_profile(_write(tmp_path, _REAL))
    assert profile.models.base_v2 == "c" and profile.models.other_family is None
    assert profile.cpt_data.text_field == "text" and profile.eval.tasks[0] == "ifeval"
    assert load_profile("smoke").models is None  # the testbed profiles stay testbed profiles


def test_real_profile_needs_a_corpus(tmp_path):
    text = _REAL.replace("cpt_data: {source: some/news}\n", "")
    with pytest.raises(ConfigError, match="a real profile \\(models: set\\) needs cpt_data"):
        load_profile(_write(tmp_path, text))


def test_a_testbed_profile_with_a_cpt_corpus_is_refused_not_ignored(tmp_path):
    """The testbed continues pre-training on its own era-B news: a cpt_data folder there was silently ignored."""
    with pytest.raises(ConfigError, match="cpt_data is the CPT corpus of a real profile.*remove cpt_data, or set models"):
        load_profile(_write(tmp_path, "extends: smoke\ncpt_data: {source: my/news}\n"))


def test_unknown_key_in_an_optional_section(tmp_path):
    text = _REAL.replace("base_v2: c", "base_v3: c")
    with pytest.raises(ConfigError, match=re.escape("unknown key 'models.base_v3' (did you mean 'models.base_v2'?)")):
        load_profile(_write(tmp_path, text))


def test_several_processes_need_a_parallel_strategy(tmp_path):
    with pytest.raises(ConfigError, match="strategy 'single' runs one process, but nproc=2; choose 'ddp' or 'fsdp'"):
        load_profile(_write(tmp_path, "extends: smoke\nruntime: {nproc: 2}\n"))


@pytest.mark.parametrize("text,message", [
    ("study:\n  alphas: [.nan]\n", r"study.alphas.0: Input should be a finite number \(got nan\)"),
    ("cpt:\n  lr: .inf\n", r"cpt.lr: Input should be a finite number \(got inf\)"),
    ("train_seeds: [0, 0]\n", r"train_seeds \[0, 0\]: each seed once, none negative"),
    ("train_seeds: [-1]\n", r"train_seeds \[-1\]: each seed once, none negative"),
    ("cpt:\n  tokens: true\n", r"tokens: expected a number, got True \(YAML reads true/false as booleans\)"),
    ("runtime:\n  compile: 1\n", r"compile: expected true or false, got 1"),
])
def test_non_finite_repeated_negative_and_boolean_values_are_errors(tmp_path, text, message):
    """The [reliability] issue's bad inputs: each one error naming the key, where it used to be accepted."""
    with pytest.raises(ConfigError, match=message):
        load_profile(_write(tmp_path, "extends: smoke\n" + text))


def test_an_empty_profile_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"p.yaml is empty: a profile sets its keys, or starts with `extends: default`"):
        load_profile(_write(tmp_path, ""))


def test_invalid_yaml_is_one_line_naming_the_file_the_place_and_tabs(tmp_path):
    """PyYAML's message is five lines with a caret; a tab-indented profile (a common slip) says what to do."""
    bad = tmp_path / "tabbed.yaml"
    bad.write_text("extends: smoke\ncpt:\n\tlr: 1e-3\n")
    with pytest.raises(ConfigError) as err:
        load_profile(bad)
    assert str(err.value) == (f"{bad}: line 3, column 1: not valid YAML: found character '\\t' that cannot start any "
                              "token (YAML indents with spaces, not tabs)")


def test_a_shipped_profiles_file_name_given_from_another_folder_names_the_profile(tmp_path, monkeypatch):
    """`--profile smoke.yaml` run outside the repository root is a path that does not exist there."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_profile("smoke.yaml")
    assert str(err.value).startswith(f"profile file {tmp_path / 'smoke.yaml'} does not exist (a path is read from the "
                                     "current folder; the shipped profile is `smoke`, without .yaml); known profiles: ")


NAME_RULE = ("is a folder under build/ and figures/{why}: use letters, digits, '.', '_' and '-', starting with a letter "
             "or digit, no '..' (e.g. mine-lr3e-4)")


def test_a_run_with_overrides_named_as_its_own_profile_is_refused():
    """Issue 49, 3: `--set cpt.lr=3e-4 --run-name smoke` skipped the refusal (the name was the profile's own) and
    overwrote figures/smoke/ with lr 3e-4 while make went on trusting the rest."""
    from cptlib.config import load_with_overrides

    for profile in ("smoke", "default"):
        with pytest.raises(ConfigError) as err:
            load_with_overrides(profile, {"cpt.lr": 3e-4}, run_name=profile)
        assert str(err.value) == (f"run name {profile!r} is the profile's own name: a run with overrides must not write "
                                  f"into the profile's folders (build/{profile}/, figures/{profile}/); choose another "
                                  f"run_name, or none for {profile}-<hash of the overrides>")
    assert load_with_overrides("smoke", run_name="smoke").name == "smoke"  # no overrides: the profile itself


@pytest.mark.parametrize("name, why", [("../escape", ""), ("a/b", ""), ("/abs/x", ""), ("", ""), (".hidden", ""),
                                       ("x..y", ""), ("my run", ""),
                                       ("stages", " (build/stages/ holds every profile's stages)")])
def test_a_run_name_that_is_not_one_plain_folder_is_refused(name, why):
    """`--run-name ../escape` wrote escape/ in the repository root; `stages` would have mixed a run's notebooks into
    the content-addressed stages."""
    from cptlib.config import load_with_overrides

    with pytest.raises(ConfigError) as err:
        load_with_overrides("smoke", {"cpt.lr": 3e-4}, run_name=name)
    assert str(err.value) == f"run name {name!r} " + NAME_RULE.format(why=why)


def test_a_profile_whose_own_name_is_not_a_plain_folder_is_refused(tmp_path):
    path = _write(tmp_path, "extends: smoke\nname: ../../x\n", name="up.yaml")
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert str(err.value) == f"{path}: name: profile name '../../x' " + NAME_RULE.format(why="")


def test_extends_a_yaml_file_is_read_beside_the_profile_not_in_the_working_folder(tmp_path, monkeypatch):
    """`extends: smoke.yaml` in params/mine.yaml said "profile file smoke.yaml does not exist" unless run from params/."""
    (tmp_path / "base.yaml").write_text("extends: smoke\ncpt: {lr: 2.0e-3}\n")
    child = _write(tmp_path, "extends: base.yaml\ntrain_seeds: [0]\n", name="child.yaml")
    monkeypatch.chdir(paths.REPO_ROOT)
    assert load_profile(child).cpt.lr == 2e-3 and load_profile(child).cpt.tokens == load_profile("smoke").cpt.tokens


def test_a_key_given_twice_is_refused_naming_the_line(tmp_path):
    """A second `cpt:` section appended to a copied profile silently dropped the first one's keys (PyYAML keeps the
    last); the same key twice inside a section too."""
    path = _write(tmp_path, "extends: smoke\ncpt: {lr: 1.0e-3}\ntrain_seeds: [0]\ncpt:\n  tokens: 4096\n")
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert str(err.value) == (f"{path}: line 4, column 1: not valid YAML: key 'cpt' is given twice in one section (YAML "
                              "would keep only the last): merge them into one")
    inner = _write(tmp_path, "extends: smoke\ncpt:\n  lr: 1.0e-3\n  lr: 2.0e-3\n", name="inner.yaml")
    with pytest.raises(ConfigError, match=r"line 4, column 3: not valid YAML: key 'lr' is given twice"):
        load_profile(inner)


def test_a_profile_saved_as_yml_is_named_with_the_rename():
    path = paths.PARAMS_DIR / "zz_saved_as.yml"
    try:
        path.write_text("extends: smoke\n")
        with pytest.raises(ConfigError) as err:
            load_profile("zz_saved_as")
    finally:
        path.unlink(missing_ok=True)
    assert str(err.value).startswith(f"profile file {paths.PARAMS_DIR / 'zz_saved_as.yaml'} does not exist "
                                     "(zz_saved_as.yml is there: a profile's file ends in .yaml; rename it "
                                     "zz_saved_as.yaml); known profiles: ['default'")


def test_a_restored_models_key_writes_its_merge_as_before_methods_were_classes():
    """The restored stages' keys hold a merge as the profile schema dumped it before issue 47 (method, density,
    drop_rate, gamma, each at its old default where the method has none): no cached restored model is made again.
    bench/stage_keys.py checks the keys themselves."""
    from cptlib.residual.methods import MergeMethod
    from cptlib.study.restored import merge_key

    old = [{"method": "task_arithmetic", "density": 1.0, "drop_rate": 0.0, "gamma": 0.0},
           {"method": "ties", "density": 0.2, "drop_rate": 0.0, "gamma": 0.0},
           {"method": "dare", "density": 1.0, "drop_rate": 0.9, "gamma": 0.0},
           {"method": "breadcrumbs", "density": 0.9, "drop_rate": 0.0, "gamma": 0.01}]
    assert [merge_key(m.merge()) for m in load_profile("default").study.merges] == old
    assert merge_key(MergeMethod("ties", density=1)) == merge_key(MergeMethod("ties"))  # 1 and 1.0: one key
    assert merge_key(MergeMethod("dare", drop_rate=0.9, seed=3)) == {**old[2], "seed": 3}  # a parameter set anew
