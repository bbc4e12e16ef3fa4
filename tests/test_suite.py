"""The suite interface (cptlib.evaluation.suite): chosen once from the profile, it owns what is scored, the metrics'
tasks and labels, and which parts of the study run; the study never tests the profile's kind itself."""
import ast

from cptlib.config import load_profile
from cptlib.core import paths
from cptlib.evaluation import suite as S  # the module, not its classes: pytest would collect a class named Test*
from cptlib.evaluation.suite import METRICS, PANELS, REAL_ONLY, TESTBED_ONLY, suite_for


def _kind_tests(path) -> list[str]:
    """Each place in a module that tests a profile's kind: `<x>.models is None` / `is not None`, or `is_real(...)`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "models" \
                and any(isinstance(c, ast.Constant) and c.value is None for c in node.comparators):
            found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "is_real":
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_the_study_never_tests_the_profile_kind():
    """Every branch on testbed versus real lives in the suite (or, below the study, in the family's resolver)."""
    study = sorted((paths.REPO_ROOT / "cptlib" / "study").glob("*.py"))
    assert study and not [hit for f in study for hit in _kind_tests(f)]
    # The detector finds what it is for: the suite's own choice.
    assert _kind_tests(paths.REPO_ROOT / "cptlib" / "evaluation" / "suite.py")


def test_a_testbed_profile_gets_the_testbed_suite():
    s = suite_for(load_profile("smoke"))
    assert isinstance(s, S.TestbedSuite) and s.kind == "synthetic testbed"
    assert s.metric_tasks() == METRICS and s.panels() == list(PANELS)
    assert set(s.labels()) == set(METRICS)
    assert s.why_not("sft") is None and s.why_not("shift") is None and s.why_not("drift") is None
    assert s.why_not("benchmarks") == REAL_ONLY["benchmarks"]
    assert s.claims_not_run() == {}
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
    assert set(s.claims_not_run()) == {"C5", "Q1", "N2", "C6"}
    assert "SmolLM2-135M-Instruct" in s.scope()
