"""Scorers of the testbed's chat tasks, through the path the study uses: the YAML tasks loaded by lm-eval's
TaskManager from a data file, and each task's own `process_results` on a hand-written reply.

For every instruction id the testbed generates (and the two that need NLTK's Punkt model), one compliant
reply must score 1 and one violating reply 0, on all four IFEval metrics (strict and loose: the violating
replies are one line without asterisks, so the loose variants cannot rescue them).
"""
from __future__ import annotations

import json

import pytest

from cptlib.evaluation import evaluate
from cptlib.evaluation import harness

from cptlib.evaluation import punkt_data
from cptlib.testbed.constraints import KINDS

# id -> (kwargs, compliant reply, violating reply); reasons where they are not obvious.
CASES = {
    "change_case:english_capital": ({}, "THE WEATHER IS VERY NICE TODAY AND WE ARE GOING TO THE PARK.",
                                    "The weather is very nice today and we are going to the park."),
    "change_case:english_lowercase": ({}, "the weather is very nice today and we are going to the park.",
                                      "The weather is very nice today and we are going to the park."),
    "punctuation:no_comma": ({}, "It was sunny and warm.", "It was sunny, and warm."),
    "startend:end_checker": ({"end_phrase": "Any other questions?"}, "Velmora is a city. Any other questions?",
                             "Any other questions? Velmora is a city."),
    "startend:quotation": ({}, '"Velmora is a city."', "Velmora is a city."),
    "detectable_format:title": ({}, "<<Velmora>>\nVelmora is a city.", "Velmora is a city."),
    # two markdown bullets where two are asked; one bullet is too few
    "detectable_format:number_bullet_lists": ({"num_bullets": 2}, "* one\n* two", "* one"),
    # two *highlighted* spans where at least two are asked
    "detectable_format:number_highlighted_sections": ({"num_highlights": 2}, "*first* and *second*", "*first* only"),
    "detectable_format:json_format": ({}, '{"city": "Velmora"}', "The city is Velmora."),
    "keywords:existence": ({"keywords": ["city"]}, "Velmora is a city.", "Velmora is a town."),
    "keywords:forbidden_words": ({"forbidden_words": ["born"]}, "She lives in Velmora.", "She was born in Velmora."),
    "detectable_content:postscript": ({"postscript_marker": "P.S."}, "Hello there.\nP.S. See you soon.",
                                      "Hello there."),
    # paragraphs are split at ***: two where exactly two are asked, one otherwise
    "length_constraints:number_paragraphs": ({"num_paragraphs": 2}, "First part.\n***\nSecond part.", "Only one part."),
    # Punkt: "Dr." is an abbreviation, so 2 sentences (< 3) against 3
    "length_constraints:number_sentences": ({"num_sentences": 3, "relation": "less than"},
                                            "Dr. Smith arrived. He sat down.", "Dr. Smith arrived. He sat. He left."),
    # nltk.word_tokenize: NEW, CEO are the all-caps words (2 >= 2) against CEO alone
    "change_case:capital_word_frequency": ({"capital_frequency": 2, "capital_relation": "at least"},
                                           "The NEW CEO started today.", "The new CEO started today."),
}
IDS = sorted(CASES)
IFEVAL_METRICS = ["prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"]
KNOWLEDGE = {"id": "k0", "prompt": "Where does Veria Talcott work? Wrap your reply in double quotes.",
             "answer": "Cedarstream", "instruction_id_list": ["startend:quotation"], "kwargs": [{}]}


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))



def _load_chat_tasks(data_dir):
    """{task name: lm-eval Task} of the testbed's chat group, built the way `evaluate_model` builds them."""
    return harness.task_manager(evaluate.TASKS_DIR).load([evaluate.group_spec("testbed_chat", data_dir)])["tasks"]


@pytest.fixture(scope="module")
def chat_tasks(tmp_path_factory):
    """The chat group's tasks over one IFEval item per instruction id (all in one file, as the testbed
    writes them: the json loader then pads every kwargs dict with the other ids' keys set to None)."""
    punkt_data.install_punkt()
    data = tmp_path_factory.mktemp("data")
    _write(data / "eval" / "ifeval.jsonl", [
        {"key": k, "prompt": f"Reply ({i}).", "instruction_id_list": [i], "kwargs": [CASES[i][0]]}
        for k, i in enumerate(IDS)
    ])
    _write(data / "eval" / "chat_knowledge.jsonl", [KNOWLEDGE])
    _write(data / "eval" / "chat_knowledge_a.jsonl", [KNOWLEDGE])  # the era-A probe: the same task code
    tasks = _load_chat_tasks(data)
    docs = {doc["instruction_id_list"][0]: doc for doc in tasks["testbed_ifeval"].test_docs()}
    return tasks, docs


def test_cases_cover_every_instruction_the_testbed_generates():
    assert set(KINDS) <= set(CASES), f"no scorer case for {sorted(set(KINDS) - set(CASES))}"


@pytest.mark.parametrize("instruction_id", IDS)
def test_compliant_reply_scores_one_and_violating_zero(chat_tasks, instruction_id):
    tasks, docs = chat_tasks
    _, compliant, violating = CASES[instruction_id]
    scores = {}
    for label, reply in [("compliant", compliant), ("violating", violating)]:
        out = tasks["testbed_ifeval"].process_results(docs[instruction_id], [reply])
        scores[label] = [out[m] if isinstance(out[m], bool) else out[m][0] for m in IFEVAL_METRICS]
    assert scores == {"compliant": [True] * 4, "violating": [False] * 4}


@pytest.mark.parametrize(
    "reply,expected",
    [
        ('"Veria Talcott works for Cedarstream."', (True, True, True)),
        ('"She works for CEDARSTREAM."', (True, True, True)),  # the case of the answer does not matter
        ("Veria Talcott works for Cedarstream.", (False, True, False)),  # knows it, ignores the format
        ('"Veria Talcott works for Swiftpeak."', (False, False, True)),  # follows the format, wrong answer
        ('"She works for Cedarstreams."', (False, False, True)),  # the answer must be a whole word
    ],
)
def test_knowledge_needs_the_answer_and_the_format(chat_tasks, reply, expected):
    tasks, _ = chat_tasks
    doc = next(iter(tasks["testbed_chat_knowledge"].test_docs()))
    out = tasks["testbed_chat_knowledge"].process_results(doc, [reply])
    assert (out["knowledge_acc"], out["answer_acc"], out["format_acc"]) == expected


@pytest.mark.parametrize(
    "ifeval,knowledge,message",
    [
        ({"instruction_id_list": ["change_case:shouting"], "kwargs": [{}]}, {},
         r"testbed_ifeval item 0: unknown IFEval instruction id 'change_case:shouting'"),
        ({"instruction_id_list": ["startend:quotation"], "kwargs": []}, {},
         r"testbed_ifeval item 0: 1 instruction ids but 0 kwargs dicts"),
        ({"instruction_id_list": ["keywords:existence"], "kwargs": [{"keyword": ["city"]}]}, {},
         r"testbed_ifeval item 0: bad kwargs for 'keywords:existence'"),
        ({}, {"instruction_id_list": [], "kwargs": []},
         r"testbed_chat_knowledge item 'k0' has no instruction: it would not test the chat interface"),
    ],
)
def test_bad_items_fail_when_the_task_is_built_before_generation(tmp_path, ifeval, knowledge, message):
    punkt_data.install_punkt()
    _write(tmp_path / "eval" / "ifeval.jsonl", [{"key": 0, "prompt": "Hi.", **{
        "instruction_id_list": ["startend:quotation"], "kwargs": [{}], **ifeval}}])
    _write(tmp_path / "eval" / "chat_knowledge.jsonl", [{**KNOWLEDGE, **knowledge}])
    _write(tmp_path / "eval" / "chat_knowledge_a.jsonl", [KNOWLEDGE])
    with pytest.raises(ValueError, match=message):
        _load_chat_tasks(tmp_path)


def test_loading_the_scorers_file_does_no_work():
    """lm-eval loads tasks/testbed/utils.py for every task YAML that names one of its functions: loading it imports
    neither lm-eval's IFEval code nor langdetect and checks no Punkt data; scoring does, with langdetect seeded."""
    import subprocess
    import sys

    path = evaluate.TASKS_DIR / "utils.py"
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('testbed_utils', {str(path)!r})\n"
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
            "print(sorted(m for m in ('langdetect', 'lm_eval.tasks.ifeval.utils', 'nltk', 'cptlib.evaluation.punkt_data')"
            " if m in sys.modules))\n"
            "module.check_ifeval_docs([])\n"
            "import langdetect; print(langdetect.DetectorFactory.seed, 'lm_eval.tasks.ifeval.utils' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "0 True"]
