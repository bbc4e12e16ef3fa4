"""cptlib.pool: stages built side by side in spawned single-threaded workers equal those built in-process."""
import os

import pytest
import torch
from _pool_jobs import fail, train_tiny
from safetensors.torch import load_file

from cptlib import paths, pool, stages


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
