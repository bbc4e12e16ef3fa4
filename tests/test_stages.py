"""Content-addressed stages: reuse when finished, nothing counts as finished after a failure."""
import pytest

from cptlib.core import files, stages


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


def test_a_resumed_stage_records_the_time_of_every_attempt():
    """[reliability] 8: a stage killed late and resumed used to record only the last attempt's seconds."""
    import os
    import time

    def killed(work):
        (work / "checkpoint").write_text("step 8")
        os.utime(work / "checkpoint", (time.time() + 17, time.time() + 17))  # its last write: 17 s into the attempt
        raise KeyboardInterrupt  # as a kill would stop it (nothing after this runs)

    with pytest.raises(KeyboardInterrupt):
        stages.run_stage("demo", {"n": 3}, killed)
    done = stages.run_stage("demo", {"n": 3}, lambda work: {})
    manifest = stages.read_manifest(done)
    first, last = manifest["attempts"]
    assert 16.5 < first["seconds"] < 18 and first["estimated"].startswith("until its last write")
    assert manifest["wall_seconds"] == manifest["stage_seconds"] == pytest.approx(first["seconds"] + last["seconds"], abs=0.02)
    assert not (done / stages.ATTEMPTS).exists()


def test_the_stage_log_records_builds_and_reuses(tmp_path, monkeypatch):
    import json

    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(stages.STAGE_LOG_ENV, str(log))
    stages.run_stage("demo", {"n": 4}, lambda work: {"tokens": 7, "role": "cpt"})
    stages.run_stage("demo", {"n": 4}, lambda work: pytest.fail("rebuilt"))
    built, reused = [json.loads(line) for line in log.read_text().splitlines()]
    assert (built["event"], built["kind"], built["tokens"], built["role"]) == ("built", "demo", 7, "cpt")
    assert reused["event"] == "reused" and reused["key"] == built["key"]
    assert reused["build_seconds"] == stages.read_manifest(stages.stage_dir("demo", {"n": 4}))["stage_seconds"]
    assert built["end"] >= built["start"]


def test_clean_partial_removes_what_failed_runs_left_and_keeps_finished_stages(capsys):
    stages.run_stage("demo", {"n": 5}, lambda work: {})
    def fail(work):
        (work / "half").write_text("x" * 1000)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        stages.run_stage("demo", {"n": 6}, fail)
    partial = stages.stage_dir("demo", {"n": 6}).with_name(stages.stage_dir("demo", {"n": 6}).name + ".partial")
    assert partial.is_dir()
    assert [p for p, _ in stages.clean_partial(dry_run=True)] and partial.is_dir()
    removed = dict(stages.clean_partial())
    assert removed[partial] >= 1000 and not partial.exists()  # the half-written file (and the attempts record)
    assert stages.is_finished(stages.stage_dir("demo", {"n": 5}))
    assert not list(stages.paths.stages_dir().glob("*.lock")) and stages.clean_partial() == []


def test_a_full_disk_names_the_stage_and_is_one_line_at_the_command_line(monkeypatch, capsys):
    """A write that fails for lack of space (here the OSError the kernel gives, raised by the build; a full tmpfs
    gives the same one, see the [user-path] cases) is re-raised naming the stage folder, and `cptlib` prints one
    line with that folder, its free space and the fix."""
    import errno

    from cptlib import cli
    from safetensors import SafetensorError

    def full(work):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as err:
        stages.run_stage("demo", {"n": 9}, full)
    assert err.value.errno == errno.ENOSPC and err.value.filename.endswith(".partial")
    assert not stages.is_finished(stages.stage_dir("demo", {"n": 9}))
    wrapped = SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space '
                              'left on device" })')
    with pytest.raises(OSError, match="No space"):
        stages.run_stage("demo", {"n": 10}, lambda work: (_ for _ in ()).throw(wrapped))

    def command(args):
        return stages.run_stage("demo", {"n": 11}, full)

    monkeypatch.setattr(stages, "_clean_partial", command)
    assert cli.main(["clean-partial"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "the disk is full writing" in lines[0] and "bytes, free on its disk" in lines[0]
    assert "demo-" in lines[0] and "CPTLIB_BUILD_DIR" in lines[0]


def test_a_full_disk_says_how_many_bytes_are_free(monkeypatch, tmp_path):
    """'0 MB free' said nothing on a nearly full disk (measured: `residual restore` onto a 1 MB tmpfs)."""
    import errno
    import shutil
    from collections import namedtuple

    from cptlib import cli

    monkeypatch.setattr(shutil, "disk_usage", lambda path: namedtuple("usage", "total used free")(10**6, 567_872, 432_128))
    message = cli.disk_full_message(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out")))
    assert message.startswith(f"the disk is full writing {tmp_path / 'out'} (0.4 MB, 432,128 bytes, free on its disk); ")


def test_an_interrupted_command_is_one_line_and_exit_130(monkeypatch, capsys):
    from cptlib import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "_clean_partial", interrupted)
    monkeypatch.delenv(cli.RESUME_ENV, raising=False)  # `make test` exports it
    assert cli.main(["clean-partial"]) == 130
    assert capsys.readouterr().err.strip() == ("cptlib clean-partial: interrupted; finished stages are kept, and the "
                                               "same command resumes from them")
    monkeypatch.setenv(cli.RESUME_ENV, "make smoke")  # under make: the command the user typed
    assert cli.main(["clean-partial"]) == 130
    assert capsys.readouterr().err.strip() == ("cptlib clean-partial: interrupted; finished stages are kept, and "
                                               "`make smoke` resumes from them")


def test_a_stage_another_process_builds_is_waited_for_with_one_line(capsys):
    """The lock's holder writes its pid; a second builder says whom it waits for, then reuses the result."""
    import fcntl
    import threading

    final = stages.stage_dir("demo", {"n": 12})
    final.parent.mkdir(parents=True, exist_ok=True)
    holder = open(final.with_name(final.name + ".lock"), "a+")
    fcntl.flock(holder, fcntl.LOCK_EX)
    holder.write("4242")
    holder.flush()

    def finish():
        work = final.with_name(final.name + ".partial")
        work.mkdir()
        files.write_json_atomic(work / stages.MANIFEST, {"kind": "demo", "key": final.name.split("-")[1]})
        work.rename(final)
        fcntl.flock(holder, fcntl.LOCK_UN)

    timer = threading.Timer(0.5, finish)
    timer.start()
    calls = []
    assert stages.run_stage("demo", {"n": 12}, lambda work: calls.append(work) or {}) == final
    timer.join()
    holder.close()
    assert calls == []  # built by the other "process", not again
    err = capsys.readouterr().err
    assert f"waiting for {final.name}, which process 4242 is building" in err
