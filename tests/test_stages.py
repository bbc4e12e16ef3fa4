"""Content-addressed stages: reuse when finished, nothing counts as finished after a failure."""
import pytest

from cptlib import stages


@pytest.fixture(autouse=True)
def _build_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(stages.paths, "BUILD_DIR", tmp_path)


def test_key_depends_on_spec_only():
    assert stages.stage_key("lm", {"a": 1, "b": [2]}) == stages.stage_key("lm", {"b": [2], "a": 1})
    assert stages.stage_key("lm", {"a": 1}) != stages.stage_key("lm", {"a": 2})
    assert stages.stage_key("lm", {"a": 1}) != stages.stage_key("sft", {"a": 1})


def test_finished_stage_is_reused_without_running():
    calls = []

    def build(work):
        calls.append(work)
        (work / "out.txt").write_text("x")
        return {"answer": 42}

    first = stages.run_stage("demo", {"n": 1}, build)
    second = stages.run_stage("demo", {"n": 1}, build)
    assert first == second and len(calls) == 1
    manifest = stages.read_manifest(first)
    assert manifest["answer"] == 42 and manifest["spec"] == {"n": 1}
    assert {"code_version", "libraries"} <= set(manifest["provenance"])
    assert (first / "out.txt").read_text() == "x"


def test_failed_stage_leaves_nothing_finished_and_keeps_work_for_resume():
    def fail(work):
        (work / "checkpoint").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        stages.run_stage("demo", {"n": 2}, fail)
    final = stages.stage_dir("demo", {"n": 2})
    assert not final.exists() and not stages.is_finished(final)
    partial = final.with_name(final.name + ".partial")
    assert (partial / "checkpoint").read_text() == "half"

    def resume(work):
        return {"resumed_from": (work / "checkpoint").read_text()}

    done = stages.run_stage("demo", {"n": 2}, resume)
    assert done == final and stages.read_manifest(done)["resumed_from"] == "half"
    assert not partial.exists()
