"""The testbed suite end to end on a tiny random model: the table, the chat-template policy, the cache, the
command line, the real-suite pipeline on a local task, and lm-eval's numbers against transformers directly."""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import subprocess
import sys

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cptlib import cli
from cptlib.core import paths

from cptlib.evaluation import calibration

from cptlib.evaluation import evaluate
from cptlib.evaluation import harness

from cptlib.evaluation import punkt_data

from cptlib.evaluation import real_suite
from cptlib.tokenizer import save_tokenizer, train_tokenizer

SETTINGS = evaluate.EvalSettings(batch_size=4, max_gen_toks=8)
CITIES = [" Velmora", " Quenzo", " Tarrik", " Lumbra"]
NAMES = ["Alvera Tonsk", "Bemo Karlin", "Cira Vandt", "Dovel Marsh"]


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _mc(n, k, prefix=""):
    return [{"id": f"q{i}", "query": f"{prefix}{NAMES[i % 4]} was born in", "choices": CITIES[:k], "gold": i % k}
            for i in range(n)]


@pytest.fixture(scope="module")
def testbed(tmp_path_factory):
    """A tiny model (random weights, the testbed's tokenizer and chat template), a small data directory,
    and a private build directory for the result cache."""
    root = tmp_path_factory.mktemp("testbed")
    texts = [f"{n} was born in{c}. {n} works for Ostra Group." for n in NAMES for c in CITIES] * 20
    tok = train_tokenizer(texts, 400)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
        intermediate_size=64, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    model.save_pretrained(root / "model")
    save_tokenizer(tok, root / "model")
    data = root / "data"
    _write(data / "eval" / "ifeval.jsonl", [
        {"key": k, "prompt": prompt, "instruction_id_list": [i], "kwargs": [kw]} for k, (prompt, i, kw) in enumerate([
            ("Where was Cira Vandt born? Use no commas.", "punctuation:no_comma", {}),
            ("Where was Bemo Karlin born? Wrap it in quotes.", "startend:quotation", {}),
            ("Who is Dovel Marsh?", "keywords:existence", {"keywords": ["city"]}),
        ])
    ])
    _write(data / "eval" / "chat_knowledge.jsonl", [
        {"id": "k0", "prompt": "Where does Alvera Tonsk live now? Quote it.", "answer": "Quenzo",
         "instruction_id_list": ["startend:quotation"], "kwargs": [{}]},
    ])
    _write(data / "eval" / "chat_knowledge_a.jsonl", [
        {"id": "ka0", "prompt": "Where was Cira Vandt born? Quote it.", "answer": "Tarrik",
         "instruction_id_list": ["startend:quotation"], "kwargs": [{}]},
    ])
    _write(data / "eval" / "mc_old.jsonl", _mc(4, 4))
    _write(data / "eval" / "mc_new.jsonl", _mc(3, 4, "December 2023 — "))
    _write(data / "eval" / "mc_new_heldout.jsonl", _mc(3, 4, "December 2023 — By all accounts "))
    _write(data / "eval" / "mc_updated.jsonl", [dict(r, gold=0) for r in _mc(2, 2, "June 2024 — ")])
    _write(data / "eval" / "heldout_a.jsonl", [{"text": "Bemo Karlin was born in Tarrik. He works for Ostra Group."},
                                               {"text": "Cira Vandt works for Ostra Group."}])
    _write(data / "eval" / "heldout_b.jsonl", [{"text": "June 2024 — Dovel Marsh moved to Lumbra."}])
    _write(data / "eval" / "heldout_a_news.jsonl", [{"text": "June 2023 — Cira Vandt moved to Ostra Group."}])
    punkt_data.install_punkt()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paths, "BUILD_DIR", root / "build")
        yield {"model": root / "model", "data": data, "tok": tok, "torch_model": model.eval()}


@pytest.fixture(scope="module")
def result_dir(testbed):
    return evaluate.run_evaluation(testbed["model"], testbed["data"], SETTINGS)


def test_table_has_every_metric_with_the_chat_policy_in_each_row(testbed, result_dir):
    table = harness.read_table(result_dir, "tiny")
    chat = {"testbed_ifeval", "testbed_chat_knowledge", "testbed_chat_knowledge_a"}
    expected = {
        "testbed_ifeval": {f"{level}_level_{kind}_acc" for level in ("prompt", "inst") for kind in ("strict", "loose")},
        **{f"testbed_chat_knowledge{e}": {"knowledge_acc", "answer_acc", "format_acc"} for e in ("", "_a")},
        **{f"testbed_mc_{k}": {"acc"} for k in ("old", "new", "new_heldout", "updated")},
        **{f"testbed_ppl_{e}": {"word_perplexity", "byte_perplexity", "bits_per_byte"} for e in ("a", "b", "a_news")},
    }
    assert list(table.columns) == harness.COLUMNS
    assert {t: set(g.metric) for t, g in table.groupby("task")} == expected
    assert (table.chat_template == table.task.isin(chat)).all()
    assert dict(zip(table.task, table.n)) == {"testbed_ifeval": 3, "testbed_chat_knowledge": 1, "testbed_mc_old": 4,
                                              "testbed_chat_knowledge_a": 1, "testbed_mc_new": 3, "testbed_mc_new_heldout": 3,
                                              "testbed_mc_updated": 2, "testbed_ppl_a": 2, "testbed_ppl_b": 1,
                                              "testbed_ppl_a_news": 1}
    assert set(table.model) == {"tiny"} and set(table.version) == {1.0}
    # generation went through the chat template, greedy, capped at max_gen_toks, stopped at eos
    sample = json.loads((result_dir / "testbed_chat.samples.jsonl").read_text().splitlines()[0])
    prompt, gen_kwargs = sample["arguments"][0]
    assert prompt.startswith("<|bos|><|user|>\n") and prompt.endswith("<|end|>\n<|assistant|>\n")
    assert gen_kwargs["max_gen_toks"] == 8 and gen_kwargs["do_sample"] is False and "<|end|>" in gen_kwargs["until"]


def _loglik(model, ids: list[int], n_context: int) -> float:
    """Sum of log p(token | everything before it) over ids[n_context:], straight from transformers."""
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits[0].log_softmax(-1)
    return sum(logp[i - 1, ids[i]].item() for i in range(n_context, len(ids)))


def test_multiple_choice_equals_transformers_on_the_same_items(testbed, result_dir):
    tok, model = testbed["tok"], testbed["torch_model"]
    samples = [json.loads(line) for line in (result_dir / "testbed_plain.samples.jsonl").read_text().splitlines()]
    table = harness.read_table(result_dir, "tiny")
    for task in ("testbed_mc_old", "testbed_mc_new", "testbed_mc_new_heldout", "testbed_mc_updated"):
        correct = []
        for s in (s for s in samples if s["task"] == task):
            doc, lm_eval_lls = s["doc"], [ll for ll, _ in s["filtered_resps"]]
            ctx = tok(doc["query"], add_special_tokens=False).input_ids
            ours = [_loglik(model, ctx + tok(c, add_special_tokens=False).input_ids, len(ctx)) for c in doc["choices"]]
            assert lm_eval_lls == pytest.approx(ours, abs=1e-4)
            correct.append(max(range(len(ours)), key=ours.__getitem__) == doc["gold"])
        acc = table[(table.task == task) & (table.metric == "acc")].value.item()
        assert acc == pytest.approx(sum(correct) / len(correct))


def test_perplexity_equals_transformers_with_eos_before_each_document(testbed, result_dir):
    """bits/byte = -sum(ll) / (bytes * ln 2); word perplexity = exp(-sum(ll) / words), over the documents."""
    tok, model = testbed["tok"], testbed["torch_model"]
    texts = [json.loads(x)["text"] for x in (testbed["data"] / "eval" / "heldout_a.jsonl").read_text().splitlines()]
    ll = sum(_loglik(model, [tok.eos_token_id, *tok(t, add_special_tokens=False).input_ids], 1) for t in texts)
    n_bytes = sum(len(t.encode()) for t in texts)
    n_words = sum(len(re.split(r"\s+", t)) for t in texts)
    table = harness.read_table(result_dir, "tiny").query("task == 'testbed_ppl_a'").set_index("metric").value
    assert table["bits_per_byte"] == pytest.approx(-ll / n_bytes / math.log(2), rel=1e-5)
    assert table["word_perplexity"] == pytest.approx(math.exp(-ll / n_words), rel=1e-5)


def _record_inference_mode(monkeypatch) -> list[bool]:
    """Whether inference mode was on when each model was loaded for an evaluation (it covers the whole build)."""
    seen, load = [], harness.load_hflm

    def load_and_look(*args, **kwargs):
        seen.append(torch.is_inference_mode_enabled())
        return load(*args, **kwargs)

    monkeypatch.setattr(harness, "load_hflm", load_and_look)
    return seen


def test_inference_mode_gives_the_same_answers_and_scores_as_no_grad(testbed, result_dir, tmp_path, monkeypatch):
    """The evaluation runs under torch.inference_mode (a speed-up); with it switched off, as lm-eval alone runs
    (no_grad), every generated answer, log-likelihood and score is the same, to the last bit."""
    seen = _record_inference_mode(monkeypatch)
    monkeypatch.setattr(torch, "inference_mode", contextlib.nullcontext)
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    plain = evaluate.run_evaluation(testbed["model"], testbed["data"], SETTINGS)
    assert seen == [False] and plain != result_dir
    for name in ("testbed_chat.samples.jsonl", "testbed_plain.samples.jsonl"):
        ours, theirs = ([{k: s[k] for k in ("task", "doc_id", "resps", "filtered_resps")}
                         for s in map(json.loads, (d / name).read_text().splitlines())] for d in (result_dir, plain))
        assert ours == theirs
    assert harness.read_table(result_dir, "tiny").equals(harness.read_table(plain, "tiny"))


def test_the_evaluation_runs_in_inference_mode(testbed, tmp_path, monkeypatch):
    seen = _record_inference_mode(monkeypatch)
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path / "build")
    evaluate.run_evaluation(testbed["model"], testbed["data"], evaluate.EvalSettings(batch_size=4, max_gen_toks=4, limit=1))
    assert seen == [True]


def test_a_second_run_is_served_from_the_cache(testbed, result_dir, monkeypatch):
    monkeypatch.setattr(harness, "load_hflm", lambda *a, **k: pytest.fail("the model was loaded again"))
    assert evaluate.run_evaluation(testbed["model"], testbed["data"], SETTINGS) == result_dir


def test_cache_key_follows_model_content_data_and_settings(testbed, tmp_path):
    spec = evaluate.evaluation_spec(testbed["model"], testbed["data"], SETTINGS)
    assert evaluate.evaluation_spec(testbed["model"], testbed["data"], SETTINGS) == spec
    assert evaluate.evaluation_spec(testbed["model"], testbed["data"], evaluate.EvalSettings(max_gen_toks=9)) != spec
    moved = tmp_path / "renamed_copy"  # same content elsewhere: same key
    moved.mkdir()
    for f in testbed["model"].iterdir():
        (moved / f.name).write_bytes(f.read_bytes())
    assert evaluate.evaluation_spec(moved, testbed["data"], SETTINGS) == spec
    (moved / "generation_config.json").write_text('{"max_new_tokens": 3}')
    assert evaluate.evaluation_spec(moved, testbed["data"], SETTINGS)["model_sha256"] != spec["model_sha256"]


def test_the_task_caps_generation_not_the_checkpoints_generation_config(testbed, result_dir, tmp_path):
    """transformers lets a checkpoint's `generation_config.max_new_tokens` override the `max_length` by which
    lm-eval caps a generation; the testbed's checkpoints carry 128 while its chat tasks ask for 192. The task's cap
    must win: the same weights with a checkpoint cap of 3 tokens give the replies of the uncapped run (cap 8),
    and the key records the cap that was ignored."""
    capped = tmp_path / "capped"
    capped.mkdir()
    for f in testbed["model"].iterdir():
        (capped / f.name).write_bytes(f.read_bytes())
    config = json.loads((capped / "generation_config.json").read_text())
    (capped / "generation_config.json").write_text(json.dumps({**config, "max_new_tokens": 3}))

    def replies(result):
        return [json.loads(line)["resps"][0][0] for line in (result / "testbed_chat.samples.jsonl").read_text().splitlines()]

    reference = replies(result_dir)
    assert max(len(testbed["tok"](r)["input_ids"]) for r in reference) > 3  # a 3-token cap would cut them
    assert replies(evaluate.run_evaluation(capped, testbed["data"], SETTINGS)) == reference
    assert harness.checkpoint_cap(capped) == {"ignored_max_new_tokens": 3} and harness.checkpoint_cap(testbed["model"]) == {}
    assert evaluate.evaluation_spec(capped, testbed["data"], SETTINGS)["ignored_max_new_tokens"] == 3


def test_tidy_rows_from_lm_eval_results():
    """Hand-made lm-eval output: stderr 'N/A' becomes NaN, a non-default filter stays in the metric name."""
    results = {"configs": {"t": {}}, "n-samples": {"t": {"original": 5, "effective": 3}}, "versions": {"t": 2.0},
               "results": {"t": {"alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.25, "bits_per_byte,none": 1.5,
                                 "bits_per_byte_stderr,none": "N/A", "exact_match,strict-match": 1.0,
                                 "exact_match_stderr,strict-match": 0.0}}}
    rows = harness.tidy(results, chat_template=False)
    assert [(r["metric"], r["value"], r["n"], r["version"]) for r in rows] == [
        ("acc", 0.5, 3, 2.0), ("bits_per_byte", 1.5, 3, 2.0), ("exact_match,strict-match", 1.0, 3, 2.0)]
    assert [r["stderr"] for r in rows][::2] == [0.25, 0.0] and math.isnan(rows[1]["stderr"])


def test_cli_writes_the_table_and_lm_eval_output_beside_it(testbed, result_dir, tmp_path, capsys):
    out = tmp_path / "res" / "results.json"
    argv = ["eval", "--model", str(testbed["model"]), "--data", str(testbed["data"]), "--out", str(out),
            "--batch-size", "4", "--max-gen-toks", "8", "--name", "tiny"]
    assert cli.main(argv) == 0
    written = json.loads(out.read_text())
    assert written["cache_dir"] == str(result_dir) and len(written["rows"]) == 23  # 4 IFEval + 2 x 3 chat knowledge + 4 MC + 3 x 3 perplexity
    assert {r["model"] for r in written["rows"]} == {"tiny"}
    assert (tmp_path / "res" / "results.lm_eval" / "testbed_chat.samples.jsonl").is_file()
    assert "testbed_mc_old" in capsys.readouterr().out


@pytest.mark.parametrize("extra,message", [
    ([], "--suite testbed needs --data DATA_DIR"),
    (["--data", "/nonexistent"], r"testbed evaluation data not found: \['/nonexistent/eval/ifeval.jsonl'"),
])
def test_cli_errors_say_what_to_do(testbed, tmp_path, capsys, extra, message):
    assert cli.main(["eval", "--model", str(testbed["model"]), "--out", str(tmp_path / "r.json"), *extra]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_calibration_of_a_family_evaluates_each_content_once(testbed, result_dir, monkeypatch):
    monkeypatch.setattr(harness, "load_hflm", lambda *a, **k: pytest.fail("the same content was evaluated twice"))
    names = ["base_v1", "instruct_v1", "base_v2", "instruct_v2", "cpt_base_v1"]
    table = calibration.calibration_table({n: testbed["model"] for n in names}, testbed["data"], SETTINGS)
    # IF, era-A (chat for instruct_v1), era-B, era-B via chat; instruct_v2 no era-A; cpt era-B and its held-out phrasing
    assert len(table) == 4 + 4 + 4 + 3 + 2
    values = harness.read_table(result_dir, "m").set_index(["task", "metric"]).value
    era_b = table[(table.model == "cpt_base_v1")].iloc[0]
    assert (era_b.metric, era_b.value, era_b.met) == ("era-B accuracy", values["testbed_mc_new", "acc"],
                                                      values["testbed_mc_new", "acc"] >= 0.9)


def test_real_suite_pipeline_on_a_local_task(testbed, tmp_path, monkeypatch):
    """The real-suite code path (dataset check, per-task shots and chat policy, cache) on a task whose dataset
    is a local folder, as a cached hub dataset would be."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _write(tmp_path / "ds" / "test.jsonl", _mc(4, 4))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "local_mc.yaml").write_text(
        f"task: local_mc\ndataset_path: {tmp_path / 'ds'}\ntest_split: test\nfewshot_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: query\ndoc_to_choice: choices\ndoc_to_target: gold\n"
        "target_delimiter: ''\nmetric_list:\n  - metric: acc\nmetadata:\n  version: 3.0\n")
    settings = real_suite.RealSuiteSettings(tasks=("local_mc",), shots={"local_mc": 1}, limit=3, batch_size=4,
                                            chat_template_tasks=(), dtype="float32")
    out = real_suite.run_real_suite(testbed["model"], settings, include_path=[tmp_path / "tasks"])
    table = harness.read_table(out, "tiny")
    assert table[["task", "metric", "n", "chat_template", "version"]].values.tolist() == [
        ["local_mc", "acc", 3, False, 3.0]]
    context, _ = json.loads((out / "local_mc.samples.jsonl").read_text().splitlines()[0])["arguments"][0]
    assert context.count("was born in") == 2  # one shot, then the question


def test_a_group_is_scored_as_lm_eval_aggregates_it_and_its_items_are_its_leaves(testbed, tmp_path, monkeypatch):
    """Issue 31: a group (mmlu in params/qwen2_0.5b.yaml) was re-aggregated from its leaves by a name pattern, and
    its interval asked for per-item samples of the group, which lm-eval writes only per leaf. Now the table holds
    lm-eval's own group row and the group's items are its leaves' (mean = the group's item-weighted value)."""
    from cptlib.evaluation.real_profile import metric_value

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "tasks").mkdir()
    for leaf, n in (("leaf_a", 3), ("leaf_b", 5)):
        _write(tmp_path / leaf / "test.jsonl", _mc(n, 4, prefix=f"{leaf} "))
        (tmp_path / "tasks" / f"{leaf}.yaml").write_text(
            f"task: {leaf}\ndataset_path: {tmp_path / leaf}\ntest_split: test\noutput_type: multiple_choice\n"
            "doc_to_text: query\ndoc_to_choice: choices\ndoc_to_target: gold\ntarget_delimiter: ''\n"
            "metric_list:\n  - metric: acc\nmetadata:\n  version: 1.0\n")
    (tmp_path / "tasks" / "both.yaml").write_text(
        "group: both\ntask: [leaf_a, leaf_b]\naggregate_metric_list:\n  - metric: acc\n    weight_by_size: true\n"
        "metadata:\n  version: 1.0\n")
    settings = real_suite.RealSuiteSettings(tasks=("both",), shots={"both": 0}, batch_size=4, chat_template_tasks=(),
                                            dtype="float32")
    out = real_suite.run_real_suite(testbed["model"], settings, include_path=[tmp_path / "tasks"])
    table = harness.read_table(out, "tiny").set_index("task")
    a, b = table.loc["leaf_a"], table.loc["leaf_b"]
    assert (a.n, b.n, table.loc["both"].n) == (3, 5, 8)
    assert table.loc["both"].value == pytest.approx((3 * a.value + 5 * b.value) / 8)
    assert metric_value(table.reset_index(), "both", "acc") == table.loc["both"].value
    items = harness.item_scores(out, "both", "acc")
    assert len(items) == 8 and sum(items) / 8 == pytest.approx(table.loc["both"].value)
    assert items == harness.item_scores(out, "leaf_a", "acc") + harness.item_scores(out, "leaf_b", "acc")


def test_a_corrupt_checkpoint_or_a_missing_tokenizer_is_one_error_naming_the_file(testbed, tmp_path, capsys):
    """The [reliability] cases: a truncated safetensors file used to be a 37-line traceback that did not name it; a
    folder without a tokenizer said "build the testbed first", which is not the fix."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(testbed["model"], broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    args = ["eval", "--model", str(broken), "--data", str(testbed["data"]), "--out", str(tmp_path / "r.json")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert f"{weights}: corrupt safetensors file" in err and len(err.strip().splitlines()) == 1
    shutil.copytree(testbed["model"], tmp_path / "notok")
    (tmp_path / "notok" / "tokenizer.json").unlink()
    assert cli.main([*args[:2], str(tmp_path / "notok"), *args[3:]]) == 2
    assert "no tokenizer.json in" in capsys.readouterr().err and not (tmp_path / "r.json").exists()


def test_a_model_with_non_finite_weights_is_refused_not_scored(testbed, tmp_path, capsys):
    """[reliability] 2: a NaN model (a residual applied with α = 1e400) used to get plausible scores, exit 0."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(testbed["model"], tmp_path / "nan")
    weights = load_file(tmp_path / "nan" / "model.safetensors")
    name = sorted(weights)[-1]
    weights[name].view(-1)[0] = float("nan")
    save_file(weights, tmp_path / "nan" / "model.safetensors", metadata={"format": "pt"})
    args = ["eval", "--model", str(tmp_path / "nan"), "--data", str(testbed["data"]), "--out", str(tmp_path / "r.json")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert re.search(r"nan: weight \S+ is not finite \(NaN or inf\); this checkpoint is broken", err), err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("limit", ["0", "-1", "ten"])
def test_limit_is_a_whole_number_of_at_least_one(limit, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "--model", "m", "--out", "r.json", "--limit", limit])
    assert exit_info.value.code == 2
    assert "argument --limit: expected a whole number >= 1" in capsys.readouterr().err


def test_per_item_scores_average_to_the_table(testbed, result_dir):
    """The report's intervals read lm-eval's per-item scores: their mean is lm-eval's aggregate, item by item."""
    table = harness.read_table(result_dir, "tiny").set_index(["task", "metric"]).value
    for task, metric in [("testbed_ifeval", "prompt_level_strict_acc"), ("testbed_mc_old", "acc"),
                         ("testbed_mc_new", "acc"), ("testbed_chat_knowledge", "knowledge_acc")]:
        items = harness.item_scores(result_dir, task, metric)
        assert len(items) == dict(testbed_ifeval=3, testbed_mc_old=4, testbed_mc_new=3, testbed_chat_knowledge=1)[task]
        assert set(items) <= {0.0, 1.0}
        assert sum(items) / len(items) == pytest.approx(table[task, metric])
    with pytest.raises(KeyError, match="no per-item metric 'bits'"):
        harness.item_scores(result_dir, "testbed_mc_old", "bits")


def test_ifeval_by_constraints_splits_the_table_value_by_prompt(testbed, result_dir, tmp_path):
    """bench/sft_mix_pilot.py's breakdown: per number of constraints, over the items lm-eval scored."""
    table = harness.read_table(result_dir, "tiny").set_index(["task", "metric"]).value
    by_n, by_kind = evaluate.ifeval_by_constraints(result_dir, testbed["data"])
    assert list(by_n) == [1] and by_n[1][0] == 3 and by_kind == {}  # the fixture's prompts carry one constraint each
    assert by_n[1][1] == pytest.approx(table["testbed_ifeval", "prompt_level_strict_acc"])
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "ifeval.jsonl").write_text((testbed["data"] / "eval" / "ifeval.jsonl").read_text() * 2)
    with pytest.raises(ValueError, match="holds 3 IFEval items, .* has 6: not its evaluation"):
        evaluate.ifeval_by_constraints(result_dir, tmp_path)


def test_an_attached_peft_adapter_scores_what_the_merged_model_scores(testbed, result_dir, tmp_path):
    """lm-eval's `HFLM(pretrained=target, peft=adapter)` (an adapter directory with cptlib's attach record) gives
    the scores of cptlib's merge of the same residual, norms left to the target on both sides. Tied embeddings:
    the adapter's output-layer half (PEFT's ensure_weight_tying) is what makes them agree."""
    from cptlib.residual import ModuleFilter, restore
    from cptlib.residual.peft_adapter import extract_peft

    def perturbed(name, seed):
        model = LlamaForCausalLM(testbed["torch_model"].config)
        model.load_state_dict(testbed["torch_model"].state_dict())
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
        model.save_pretrained(tmp_path / name)
        save_tokenizer(testbed["tok"], tmp_path / name)
        return tmp_path / name

    base, inst, target = testbed["model"], perturbed("instruct", 1), perturbed("target", 2)
    merged = restore(base, inst, target, tmp_path / "merged", module_filter=ModuleFilter(exclude=("*norm*",)),
                     progress=False)
    adapter = extract_peft(base, inst, tmp_path / "adapter", vectors="drop", progress=False)
    (adapter / harness.ATTACH_FILE).write_text(json.dumps({"target": str(target)}))
    assert harness.model_content_hash(adapter) != harness.model_content_hash(merged)
    tables = [harness.read_table(evaluate.run_evaluation(m, testbed["data"], SETTINGS), "x") for m in (merged, adapter)]
    a, b = (t.set_index(["task", "metric"]).value for t in tables)
    # Unmerged LoRA sums in another order than the merged weight: equal to float rounding, relative to each metric
    # (a word perplexity is in the millions: measured 1.9e-6 relative at most).
    assert a.index.equals(b.index) and ((a - b).abs() <= 1e-5 * a.abs() + 1e-6).all(), (a, b)
    samples = [json.loads(next((d / "testbed_chat.samples.jsonl").open()))["resps"]
               for d in (evaluate.run_evaluation(m, testbed["data"], SETTINGS) for m in (merged, adapter))]
    assert samples[0] == samples[1]  # the same greedy answer


def _readme_lm_eval_commands() -> list[str]:
    text = (paths.REPO_ROOT / "docs" / "evaluation.md").read_text()  # the block moved there from the README (issue 48)
    return text.split("<!-- lm-eval commands")[1].split("```bash\n", 1)[1].split("```", 1)[0].splitlines()


def test_the_readmes_lm_eval_commands_give_cptlibs_numbers_and_answers_on_a_released_ancestor(testbed, tmp_path):
    """The lm-eval commands block (docs/evaluation.md, the README's until issue 48), run as written (4 items per
    task), on a released ancestor as committed: every metric equals cptlib's and every generated answer is the same
    text. models/smoke/ stands in for models/default/ (same
    release format): its instruct_v1 answers run to the task's 192 tokens, so an answer cut at a generation cap the
    checkpoint carried (128 before the re-release without one) would differ here."""
    limit = 4
    lines = _readme_lm_eval_commands()
    assert lines[0].startswith("REPO=") and lines[1].startswith("cd build/stages/testbed-"), lines[:2]
    script = "\n".join(lines[2:]).replace("models/default/", "models/smoke/")
    repo = tmp_path / "repo"  # the clone as the block sees it, with lm-eval writing where the test reads
    (repo / ".venv" / "bin").mkdir(parents=True)
    for name in ("models", "cptlib"):
        (repo / name).symlink_to(paths.REPO_ROOT / name)
    (repo / ".venv" / "bin" / "python").symlink_to(sys.executable)
    out = tmp_path / "lm_eval"
    wrapper = repo / ".venv" / "bin" / "lm-eval"
    wrapper.write_text(f'#!/bin/bash\nn=$(ls {out} 2>/dev/null | wc -l)\nexec {sys.executable} -m lm_eval "$@" '
                       f'--limit {limit} --log_samples --output_path {out}/$n\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "REPO": str(repo), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=testbed["data"], env=env, text=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ancestor = paths.MODELS_DIR / "smoke" / "instruct_v1"
    assert "max_new_tokens" not in json.loads((ancestor / "generation_config.json").read_text())  # no cap released
    mine = evaluate.run_evaluation(ancestor, testbed["data"], evaluate.EvalSettings(limit=limit))
    ours = harness.read_table(mine, "x").set_index(["task", "metric"]).value
    answers = {(s["task"], s["doc_id"]): s["resps"] for f in mine.glob("*.samples.jsonl")
               for s in map(json.loads, f.read_text().splitlines())}
    compared, generated = 0, []
    for results in out.rglob("results_*.json"):
        for task, r in json.loads(results.read_text())["results"].items():
            for metric, value in r.items():
                key = (task, metric.split(",")[0])
                if metric.endswith(",none") and key in ours.index:  # the tasks, not the groups' aggregates
                    assert math.isclose(value, ours[key], abs_tol=1e-6), (key, value, ours[key])
                    compared += 1
    for samples in out.rglob("samples_*.jsonl"):
        task = re.fullmatch(r"samples_(.+)_\d{4}-\d\d-\d\dT.*\.jsonl", samples.name).group(1)
        for s in map(json.loads, samples.read_text().splitlines()):
            if isinstance(answers[(task, s["doc_id"])][0][0], str):  # a generated answer (lm-eval logs scores as text)
                assert s["resps"] == answers[(task, s["doc_id"])], (task, s["doc_id"])
                generated.append(len(s["resps"][0][0]))
    assert compared >= 20 and len(generated) >= 5, (compared, generated)
    assert max(generated) > 128  # an answer the checkpoint's cap would have cut


def test_an_adapters_hash_does_not_depend_on_where_its_base_lay(testbed, tmp_path):
    """PEFT writes the base's absolute path into adapter_config.json; the same adapter made in another clone (another
    folder) must be the same evaluation, not a new stage."""
    import shutil

    from cptlib.residual.peft_adapter import extract_peft

    model = LlamaForCausalLM(testbed["torch_model"].config)
    model.load_state_dict(testbed["torch_model"].state_dict())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    model.save_pretrained(tmp_path / "instruct")
    save_tokenizer(testbed["tok"], tmp_path / "instruct")
    elsewhere = shutil.copytree(testbed["model"], tmp_path / "other_clone" / "base")
    adapters = [extract_peft(b, tmp_path / "instruct", tmp_path / name, rank=2, progress=False)
                for b, name in ((testbed["model"], "a1"), (elsewhere, "a2"))]
    configs = [json.loads((a / "adapter_config.json").read_text()) for a in adapters]
    assert configs[0]["base_model_name_or_path"] != configs[1]["base_model_name_or_path"]
    for a in adapters:
        (a / harness.ATTACH_FILE).write_text(json.dumps({"target": str(testbed["model"])}))
    assert harness.model_content_hash(adapters[0]) == harness.model_content_hash(adapters[1])


def test_an_adapters_hash_does_not_depend_on_the_order_peft_wrote_its_modules(tmp_path):
    """PEFT keeps target_modules as a set and writes it in the process's hash order (PYTHONHASHSEED)."""
    config = {"peft_type": "LORA", "r": 2, "target_modules": ["q_proj", "v_proj", "up_proj"]}
    (tmp_path / "a.json").write_text(json.dumps(config))
    (tmp_path / "b.json").write_text(json.dumps({**config, "target_modules": ["up_proj", "q_proj", "v_proj"]}))
    assert harness._adapter_config_hash(tmp_path / "a.json") == harness._adapter_config_hash(tmp_path / "b.json")
