"""The real-model suite without the hub: which datasets the nine tasks read, and a fast, clear failure before
any model is loaded when one is missing."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from cptlib import cli

from cptlib.evaluation import real_suite


@pytest.fixture(scope="module")
def required():
    tm = real_suite.index(tuple(real_suite.REAL_TASKS))
    return real_suite.required_datasets(tuple(real_suite.REAL_TASKS), tm)


def test_the_nine_tasks_read_these_hub_datasets(required):
    by_path = {}
    for (path, name), _ in required.items():
        by_path.setdefault(path, set()).add(name)
    assert {p: len(n) for p, n in by_path.items()} == {
        "google/IFEval": 1, "cais/mmlu": 57, "TIGER-Lab/MMLU-Pro": 1, "openai/gsm8k": 1,
        "allenai/winogrande": 1, "Rowan/hellaswag": 1, "allenai/ai2_arc": 1, "baber/piqa": 1,
        "truthfulqa/truthful_qa": 1,
    }
    assert required[("allenai/ai2_arc", "ARC-Easy")] == "arc_easy"
    assert required[("truthfulqa/truthful_qa", "multiple_choice")] == "truthfulqa_mc2"
    assert required[("cais/mmlu", "anatomy")] == "mmlu_anatomy"


def test_unknown_task_is_an_error_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown real-suite task\(s\) \['mmlu_redux'\]; known: \['arc_easy'"):
        real_suite.index(("mmlu_redux",))


def test_missing_dataset_fails_in_seconds_before_the_model_is_touched(tmp_path, monkeypatch):
    """The model directory does not even exist: the dataset error must come first."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(FileNotFoundError) as err:
        real_suite.run_real_suite(tmp_path / "no_model", real_suite.RealSuiteSettings(tasks=("arc_easy", "gsm8k")))
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert "lm-eval task 'arc_easy' needs the dataset 'allenai/ai2_arc' (config 'ARC-Easy')" in message
    assert "datasets.load_dataset('allenai/ai2_arc', 'ARC-Easy')" in message and "HF_HOME" in message


def test_cli_reports_the_missing_dataset_as_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["eval", "--suite", "real", "--model", str(tmp_path), "--out", str(tmp_path / "r.json"), "--tasks", "piqa"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith("cptlib eval: error: lm-eval task 'piqa' needs the dataset 'baber/piqa'")


def test_hub_probe_needs_an_http_answer(monkeypatch):
    """Any HTTP status counts as reachable (a local server answering 501 to HEAD); a closed port does not."""
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    assert real_suite.hub_reachable()
    server.server_close()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")  # now closed
    assert not real_suite.hub_reachable(timeout=2)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not real_suite.hub_reachable()


def test_an_evaluations_key_names_its_tasks_data_by_content_not_by_where_the_checkout_lies(tmp_path):
    """The real suite's key (run_real_suite's spec["include"]): the same task definitions over the same data in two
    folders give one key, so a study resumed from another checkout or build folder reuses its evaluations (hours for
    the real pair); a changed data file gives another."""
    from cptlib.evaluation.real_suite import include_key

    def tasks(root: Path, rows: str) -> Path:
        (root / "tasks").mkdir(parents=True)
        (root / "data.jsonl").write_text(rows)
        (root / "template.yaml").write_text("output_type: generate_until\n")
        (root / "tasks" / "mine.yaml").write_text(f"task: mine\ninclude: {root / 'template.yaml'}\n"
                                                  f"dataset_kwargs:\n  data_files:\n    test: {root / 'data.jsonl'}\n")
        return root / "tasks"

    a, b = tasks(tmp_path / "a", '{"q": 1}\n'), tasks(tmp_path / "elsewhere" / "b", '{"q": 1}\n')
    assert include_key([a]) == include_key([b])
    assert str(tmp_path) not in str(include_key([a]))
    assert include_key([a]) != include_key([tasks(tmp_path / "c", '{"q": 2}\n')])
