"""The suite interface (cptlib.evaluation.suite): chosen once from the profile, it owns what is scored, the metrics'
tasks and labels, and which parts of the study run; the study never tests the profile's kind itself."""
import ast

from cptlib.config import load_profile
from cptlib.core import paths
from cptlib.evaluation import suite as S  # the module, not its classes: pytest would collect a class named Test*
from cptlib.evaluation.suite import METRICS, PANELS, REAL_ONLY, TESTBED_ONLY, suite_for
from cptlib.study import claims


def _kind_tests(path) -> list[str]:
    """Each place in a module that tests a profile's kind: `<x>.models is None` / `is not None`, `<x>.models` as a
    condition (`if p.models`, `... if p.models else ...`, `p.models and ...`), or `is_real(...)`."""
    def is_models(node) -> bool:
        node = node.operand if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) else node
        return isinstance(node, ast.Attribute) and node.attr == "models"

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and is_models(node.left) \
                and any(isinstance(c, ast.Constant) and c.value is None for c in node.comparators):
            found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, (ast.If, ast.IfExp, ast.While)) and is_models(node.test):
            found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.BoolOp) and any(is_models(v) for v in node.values):
            found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "is_real":
            found.append(f"{path.name}:{node.lineno}")
    return sorted(found, key=lambda hit: int(hit.rpartition(":")[2]))


# Where a profile's kind may be tested: its definition (the profile validates which sections go with `models:`) and
# the one choice of the family, from which the suite is picked by type.
KIND_HOMES = ("config/schema.py", "family/kind.py")


def test_the_kind_is_chosen_once():
    """Issue 31: testbed versus real is one choice (cptlib.family.kind.family_for); the suite is picked from it by
    type, and nothing else, study, evaluation, family or training, tests the kind itself."""
    root = paths.REPO_ROOT / "cptlib"
    modules = {str(f.relative_to(root)): f for f in sorted(root.rglob("*.py"))}
    assert len(modules) > 50 and set(KIND_HOMES) <= set(modules)
    elsewhere = [hit for name, f in modules.items() if name not in KIND_HOMES for hit in _kind_tests(f)]
    assert not elsewhere, elsewhere
    assert len(_kind_tests(modules["family/kind.py"])) == 1  # family_for; and the detector finds what it is for


def test_the_detector_sees_every_form_of_the_test(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("a = p.models is None\nb = 1 if p.models else 2\nif not p.models:\n    pass\n"
                   "c = p.models and p.models.base_v1\nd = is_real(p)\ne = p.models.base_v1\n")
    assert _kind_tests(src) == ["m.py:1", "m.py:2", "m.py:3", "m.py:5", "m.py:6"]


def test_a_testbed_profile_gets_the_testbed_suite():
    s = suite_for(load_profile("smoke"))
    assert isinstance(s, S.TestbedSuite) and s.kind == "synthetic testbed"
    assert s.metric_tasks() == METRICS and s.panels() == list(PANELS)
    assert set(s.labels()) == set(METRICS)
    assert s.why_not("sft") is None and s.why_not("shift") is None and s.why_not("drift") is None
    assert s.why_not("benchmarks") == REAL_ONLY["benchmarks"]
    assert claims.not_run(s.cannot) == {}
    assert s.scope().startswith("Synthetic testbed")


def test_a_real_profile_gets_the_real_suite_with_its_mapping_and_absent_members():
    profile = load_profile("smollm2_135m")  # an instruct model alone: base_v1 is declared absent
    s = suite_for(profile)
    assert isinstance(s, S.RealSuite) and s.kind == "real models"
    assert s.metric_tasks()["IF"] == tuple(profile.eval.metrics["IF"])
    assert s.panels() == [m for m in PANELS if m in profile.eval.metrics]
    assert "testbed_ifeval" in s.labels()["IF"] and s.labels()["era_b"].endswith("(not measured)")
    assert s.why_not("sft") == TESTBED_ONLY["sft"] and s.why_not("sizes") == TESTBED_ONLY["sizes"]
    assert "base_v1" in s.why_not("n4") and "absent" in s.why_not("drift")
    assert set(claims.not_run(s.cannot)) == {"C5", "Q1", "N2", "C6"}  # each stands on a testbed-only part
    assert "SmolLM2-135M-Instruct" in s.scope()


def test_the_family_of_each_kind_resolves_continues_and_plans_its_own_way():
    """cptlib.family.kind: what differs between the kinds below the evaluation layer, each a method of one object."""
    from cptlib.family.kind import RealFamily, TestbedFamily, family_for

    testbed, real = load_profile("smoke"), load_profile("qwen2_0.5b")
    assert type(family_for(testbed)) is TestbedFamily and type(family_for(real)) is RealFamily
    assert family_for(testbed).plan_source() is None and family_for(real).plan_source() == real.models.base_v1
    family_for(testbed).check_sources()  # nothing to reach: built or released here (tests/test_real.py: SFT refused)
