"""cptlib.core.pool: stages built side by side in single-threaded loky workers equal those built in-process; the
workers are reused, restarted when the context changed, and do not run the caller's script again."""
import os

import pytest
import torch
from _pool_jobs import chatty, fail, train_tiny, whoami
from safetensors.torch import load_file

from cptlib.core import paths, pool, stages


@pytest.fixture(autouse=True)
def no_idle_workers_left():
    """Workers a test's builds leave idle (cptlib.core.pool keeps them for the next build) end with the test."""
    yield
    pool.close_idle()


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    monkeypatch.setenv("CPTLIB_BUILD_DIR", str(tmp_path / "build"))  # the workers read it when they start
    return tmp_path / "build"


@pytest.fixture
def every_core(monkeypatch):
    """This process trains with the default threads (every core), also in a pytest-xdist worker, where conftest.py
    sets one; the worker's thread count is put back afterwards."""
    monkeypatch.delenv(pool.THREADS_ENV, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_stages_built_in_workers_equal_the_in_process_build_bit_for_bit(tiny_corpus, build_dir, every_core):
    here = train_tiny(tiny_corpus, "here")  # this process: every core (2 threads on the CI machine)
    calls = [(train_tiny, (tiny_corpus, "w1")), (train_tiny, (tiny_corpus, "w2")), (train_tiny, (tiny_corpus, "w1"))]
    assert pool.build(calls, processes=2) == 2  # the repeated call builds once
    assert pool.build(calls, processes=2) == 0 and pool.pending(calls) == []  # all cached now
    ref = load_file(here / "model.safetensors")
    for name in ("w1", "w2"):
        out = stages.stage_dir("pooltest", {"name": name})
        assert stages.read_manifest(out)["threads"] == 1
        got = load_file(out / "model.safetensors")
        assert got.keys() == ref.keys() and all(torch.equal(got[k], ref[k]) for k in ref), name
    assert stages.read_manifest(here)["threads"] == torch.get_num_threads() == (os.cpu_count() or 1)


@pytest.mark.slow
def test_a_failing_call_is_reported_with_its_message_after_the_others_finish(tiny_corpus, build_dir):
    calls = [(fail, ("bad",)), (train_tiny, (tiny_corpus, "good"))]
    with pytest.raises(RuntimeError, match=r"(?s)1 of 2 stages failed:\n_pool_jobs.fail failed:.*ValueError: job bad "
                                           r"cannot run"):
        pool.build(calls, processes=2)
    assert stages.is_finished(stages.stage_dir("pooltest", {"name": "good"}))
    assert not stages.is_finished(stages.stage_dir("pooltest", {"name": "bad"}))


def _pids(names):
    return {stages.read_manifest(stages.stage_dir("pooltest", {"name": n}))["pid"] for n in names}


def test_workers_are_reused_by_the_next_build_and_restarted_when_the_environment_changed(build_dir, monkeypatch):
    assert pool.build([(whoami, (n,)) for n in ("a1", "a2", "a3")], processes=2) == 3
    first = _pids(["a1", "a2", "a3"])
    assert len(first) == 2 and os.getpid() not in first
    assert pool.build([(whoami, (n,)) for n in ("b1", "b2")], processes=2) == 2
    assert _pids(["b1", "b2"]) <= first  # the same two processes: no second start-up
    monkeypatch.setenv("CPTLIB_POOL_TEST", "another context")  # a worker reads its environment when it starts
    assert pool.build([(whoami, (n,)) for n in ("c1", "c2")], processes=2) == 2
    second = _pids(["c1", "c2"])
    assert not second & first and not any(_alive(p) for p in first)  # the old workers ended
    pool.close_idle()
    assert not any(_alive(p) for p in second)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_build_with_a_failure_keeps_no_worker(build_dir):
    with pytest.raises(RuntimeError, match="1 of 2 stages failed"):
        pool.build([(whoami, ("ok",)), (fail, ("bad",))], processes=2)
    assert not _alive(_pids(["ok"]).pop())  # its worker ended with the build (the next build starts new ones)


def test_a_script_without_a_main_guard_builds_in_workers_once(tmp_path):
    """The standard library's spawn start runs the caller's script again in every worker: a script that builds at
    its top level (no `if __name__ == "__main__":`) then fails while bootstrapping. loky's workers do not run it."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(paths.REPO_ROOT / 'tests')!r})\n"
                      "from _pool_jobs import whoami\nfrom cptlib.core import pool\n"
                      "print('script ran', flush=True)\n"
                      "print(pool.build([(whoami, (n,)) for n in ('s1', 's2')], processes=2))\n")
    env = {**os.environ, "CPTLIB_BUILD_DIR": str(tmp_path / "build")}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.count("script ran") == 1, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.rstrip().endswith("2") and "building 2 stages in 2 processes" in proc.stdout


def test_workers_print_to_stdout_warn_to_stderr_and_draw_no_bar_after_quiet_library_bars(build_dir, monkeypatch,
                                                                                         capfd):
    """A notebook's workers printed everything to stderr (a Trainer's loss lines became red stderr outputs) and drew
    every library's bar there too: ~100 stderr outputs per cold smoke run. Under the kernel's quiet_library_bars()
    they print to stdout, still warn on stderr, and draw no bar."""
    from cptlib.core import progress

    monkeypatch.setenv(progress.ENV, "1")  # what quiet_library_bars() sets in the kernel, inherited by its workers
    assert pool.build([(chatty, (n,)) for n in ("a", "b")], processes=2) == 2
    pool.close_idle()  # the workers have exited: all they wrote is in
    out, err = capfd.readouterr()
    assert "chatty a prints to stdout" in out and "chatty b prints to stdout" in out, (out, err)
    assert "chatty a prints" not in err and "UserWarning: chatty a warns" in err and "UserWarning: chatty b warns" in err
    assert "bar of" not in out + err and "%|" not in out + err, (out, err)
