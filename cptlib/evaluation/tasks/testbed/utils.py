"""Scoring for the testbed's lm-eval tasks; lm-eval loads this file through the `!function` tags in the YAMLs.

Instruction following is scored by lm-eval's own IFEval code, unchanged. The document checks run when a task
is built, before any generation, so that bad data fails in seconds rather than after the generation work. Loading
this file does nothing else: lm-eval's IFEval code is imported when a task first needs it (_ifeval).
"""
from __future__ import annotations

import functools
import re


@functools.cache
def _ifeval():
    """lm-eval's IFEval modules (instructions_registry, utils), imported once the project's Punkt model is in place
    (imported without it, lm-eval's IFEval module tries to download NLTK's punkt_tab), with langdetect seeded: lm-eval's
    case checkers ask langdetect whether a reply is English, and langdetect draws random trials, so a fixed seed makes
    a score a function of the reply alone (the cached results are reproducible)."""
    import langdetect

    from cptlib.evaluation.punkt_data import check_punkt

    check_punkt()
    langdetect.DetectorFactory.seed = 0
    from lm_eval.tasks.ifeval import instructions_registry, utils

    return instructions_registry, utils


def process_ifeval(doc, results):
    """lm-eval's IFEval scoring of one reply."""
    return _ifeval()[1].process_results(doc, results)


def agg_inst_level_acc(items):
    """lm-eval's IFEval instruction-level accuracy over the items."""
    return _ifeval()[1].agg_inst_level_acc(items)


def _check_instructions(dataset, task: str):
    """Every instruction id is known to lm-eval and accepts its kwargs (as the scorer will pass them)."""
    instructions = _ifeval()[0].INSTRUCTION_DICT
    for doc in dataset:
        ids, kwargs = doc["instruction_id_list"], doc["kwargs"]
        where = f"{task} item {doc.get('key', doc.get('id'))!r}"
        if len(ids) != len(kwargs):
            raise ValueError(f"{where}: {len(ids)} instruction ids but {len(kwargs)} kwargs dicts")
        for instruction_id, kw in zip(ids, kwargs):
            if instruction_id not in instructions:
                raise ValueError(f"{where}: unknown IFEval instruction id {instruction_id!r}")
            # The datasets json loader gives every kwargs dict every key seen in the file (None where unset);
            # lm-eval's scorer drops falsy values the same way.
            try:
                instructions[instruction_id](instruction_id).build_description(**{k: v for k, v in kw.items() if v})
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}: bad kwargs for {instruction_id!r}: {err}") from None
    return dataset


def check_ifeval_docs(dataset):
    return _check_instructions(dataset, "testbed_ifeval")


def check_knowledge_docs(dataset):
    for doc in dataset:
        if not doc["instruction_id_list"]:
            # Without a format constraint, plain text continuation of the question could pass the probe.
            raise ValueError(f"testbed_chat_knowledge item {doc['id']!r} has no instruction: "
                             f"it would not test the chat interface")
        if not doc["answer"].strip():
            raise ValueError(f"testbed_chat_knowledge item {doc['id']!r} has an empty answer")
    return _check_instructions(dataset, "testbed_chat_knowledge")


def answer_present(answer: str, response: str) -> bool:
    """The answer as a whole word or phrase, in any case (constraints such as all-caps change the case)."""
    pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, answer.split())) + r"(?!\w)"
    return re.search(pattern, response, flags=re.IGNORECASE) is not None


def process_knowledge(doc, results):
    ifeval = _ifeval()[1]
    response = results[0]
    inp = ifeval.InputExample(
        key=0, instruction_id_list=doc["instruction_id_list"], prompt=doc["prompt"], kwargs=doc["kwargs"]
    )
    format_ok = ifeval.test_instruction_following_strict(inp, response).follow_all_instructions
    answer_ok = answer_present(doc["answer"], response)
    return {"knowledge_acc": format_ok and answer_ok, "answer_acc": answer_ok, "format_acc": format_ok}
