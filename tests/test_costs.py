"""The cost model (`cptlib cost`): each notebook's wall time split among the stages that ran, summing exactly."""
import json

import pytest

from cptlib.core import paths

from cptlib.study import costs


def _line(kind, key, event, start, end, **fields):
    return json.dumps({"kind": kind, "key": key, "event": event, "start": start, "end": end, "seconds": end - start,
                       "build_seconds": fields.pop("build_seconds", end - start), **fields})


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path)
    out = tmp_path / "p" / "notebooks"
    out.mkdir(parents=True)
    (out / "00_build.time.json").write_text(json.dumps({"notebook": "00_build", "seconds": 100.0, "started": 0.0,
                                                        "ended": 100.0}))
    lines = [  # training 10-40 with a nested weights stage 20-25; two evaluations in parallel 50-70 and 55-80
        _line("lm", "a", "built", 10, 40, role="cpt", tokens=1000),
        _line("restored", "b", "built", 20, 25),
        _line("eval", "c", "built", 50, 70, rows=5),
        _line("eval", "d", "built", 55, 80, rows=5),
        _line("eval", "c", "reused", 81, 81.1),  # read back after the parallel run: counted once, as built
        _line("pretrain", "e", "reused", 90, 90.1, build_seconds=500.0, role="base_v1", tokens=9),
    ]
    (out / "00_build.stages.jsonl").write_text("\n".join(lines) + "\n")
    (out / "01_forgetting.time.json").write_text(json.dumps({"notebook": "01_forgetting", "seconds": 10.0,
                                                             "started": 200.0, "ended": 210.0}))
    (out / "01_forgetting.stages.jsonl").write_text(_line("pretrain", "e", "reused", 201, 201.1, role="base_v1") + "\n")
    return "p"


def test_wall_time_is_split_among_stages_and_sums_to_the_notebook(run):
    table = costs.cost_table(run)
    nb = table[table.notebook == "00_build"].set_index("stage")
    assert nb.wall_s.sum() == pytest.approx(100.0)
    assert nb.loc["lm:cpt", "wall_s"] == pytest.approx(25.0) and nb.loc["restored", "wall_s"] == pytest.approx(5.0)
    assert nb.loc["eval", "wall_s"] == pytest.approx(30.0) and nb.loc["eval", "cpu_s"] == pytest.approx(45.0)
    assert nb.loc["eval", ["built", "reused", "rows"]].tolist() == [2, 0, 10]
    assert nb.loc["lm:cpt", "tokens"] == 1000 and nb.loc["notebook", "wall_s"] == pytest.approx(40.0)
    assert nb.loc["pretrain:base_v1", ["reused", "cached_build_s", "tokens"]].tolist() == [1, 500.0, 0]
    later = table[table.notebook == "01_forgetting"].set_index("stage")
    assert later.loc["pretrain:base_v1", ["reused", "cached_build_s"]].tolist() == [1, 0]  # its cost is counted where it was first used
    summary = costs.summary(table)
    assert summary.loc["all", "total"] == pytest.approx(110.0) and summary.loc["00_build", "training"] == pytest.approx(25.0)
    assert "Cost model" in costs.render(run) and "| notebook" in costs.render(run, markdown=True)


def test_no_run_yet_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"run `make reproduce PROFILE=nothing` first"):
        costs.cost_table("nothing")


def test_a_profile_given_as_its_yaml_path_reads_that_profiles_run(run, tmp_path):
    """`cptlib notebook run` takes a YAML path; `cptlib cost` takes the same path for the same run."""
    path = tmp_path / "yamls" / f"{run}.yaml"
    path.parent.mkdir()
    path.write_text("extends: smoke\n")
    assert costs.cost_table(str(path)).equals(costs.cost_table(run))
    assert f"profile {run!r}" in costs.render(str(path))


def test_every_stage_kind_the_package_builds_has_a_category():
    """A new kind of stage would otherwise count as the notebook's own work in the cost model."""
    import re

    kinds = {m for f in (paths.REPO_ROOT / "cptlib").rglob("*.py")
             for m in re.findall(r'run_stage\(\s*"([a-z_]+)"', f.read_text())}
    assert kinds and kinds <= set(costs.CATEGORY), sorted(kinds - set(costs.CATEGORY))


def test_adding_the_residual_is_timed_20_times_as_restored_does_it_and_cached(tmp_path, monkeypatch):
    """C6's denominator (calibration log run 22): the median of 20 timings of the same step `restored` runs, cached
    as a stage so that a rerun of the report shows the same numbers."""
    import statistics

    import torch

    from cptlib.core import stages
    from cptlib.study.restored import TIMING_REPEATS, restore_timing, restored
    from residual_helpers import read_model, write_model

    monkeypatch.setattr(stages.paths, "BUILD_DIR", tmp_path / "build")
    g = torch.Generator().manual_seed(0)
    base, inst, cpt = (write_model(tmp_path / n, {"w": torch.randn(64, 64, generator=g)}) for n in ("b", "i", "c"))
    timing = restore_timing(base, inst, cpt)
    assert len(timing["seconds"]) == TIMING_REPEATS == 20 and all(s > 0 for s in timing["seconds"])
    assert timing["median"] == statistics.median(timing["seconds"])
    assert restore_timing(base, inst, cpt) == timing  # cached: the same timings, not new ones
    stage = stages.stage_dir("timing", {**{k: v for k, v in timing["spec"].items()}})
    assert not [p for p in stage.iterdir() if p.is_dir()]  # the scratch models are gone
    expected = read_model(base)["w"] * -1 + read_model(inst)["w"] + read_model(cpt)["w"]
    assert torch.allclose(read_model(restored(base, inst, cpt))["w"], expected, atol=1e-6)
