"""Instruction data and probes for a *real* base model (`WorldConfig.instructions: in_context`).

    convs = sft(world, 1000, "v1", seed=0)               # the SFT set: answers are in the prompt, or open writing
    items = ifeval_items(world, 300, seed=0)         # held-out IFEval-format prompts of the same task kinds
    chat = chat_items(world, 300, seed=0)            # era-B facts asked in chat, in a wording no training file has

The testbed's own instruction data drills questions about era-A facts, which its tiny models learned in
pre-training. A real base (Gemma 3 270M) never read the fictional world, and drilling answers it cannot know
teaches a model to invent them (Gekhman et al., EMNLP 2024). So here every question comes with a note that holds
its answer, or the task is open writing; only the format constraints and the turn-taking are learned.
The constraints, their phrasings and the train / held-out split of constraint pairs are the testbed's
(cptlib.testbed.constraints, cptlib.testbed.instructions).
"""
from __future__ import annotations

import random

from cptlib.core.errors import InputError
from cptlib.testbed import constraints as C
from cptlib.testbed import instructions as I
from cptlib.testbed.world import World

# How the note and the task are put together: {note}, {task}. The held-out wrappers appear in the IF probe only.
WRAPPERS = {
    "train": ["Read the note below, then answer.\n\n{note}\n\n{task}", "{task}\n\nUse this text:\n{note}",
              "Here is some information: {note}\n\n{task}", "Note: {note}\n\n{task}"],
    "heldout": ["Based only on the following passage, respond.\nPassage: {note}\n\n{task}",
                "{task} The facts you need are these. {note}"],
}
TASK_WEIGHTS = {"qa": 45, "profile": 25, "write": 30}  # share of each task kind, in percent


def note(world: World, subject: str, rng: random.Random) -> str:
    """The subject's facts in plain sentences, in a random order, with up to two facts about someone else (so the
    answer has to be found, not just copied whole)."""
    sentences = [I.answer(f, rng)[0] for f in world.stable(subject)]
    others = [s for s in world.entities["person"] + world.entities["org"] if s != subject]
    for other in rng.sample(others, rng.randint(0, 2)):
        sentences.append(I.answer(rng.choice(world.stable(other)), rng)[0])
    rng.shuffle(sentences)
    return " ".join(sentences)


def task(world: World, split: str, rng: random.Random) -> tuple[str, C.Draft]:
    """One task and its plain reply: a question or a profile about a note's subject, or open writing."""
    kind = rng.choices(list(TASK_WEIGHTS), weights=list(TASK_WEIGHTS.values()))[0]
    if kind == "write":
        return I.write_task(split, rng)
    subject = rng.choice(world.entities["person"] + world.entities["org"])
    if kind == "qa":
        prompt, draft = I.qa_task(world, rng.choice(world.stable(subject)), split, rng)
    else:
        prompt, draft = I.profile_task(world, subject, split, rng)
    return rng.choice(WRAPPERS[split]).format(note=note(world, subject, rng), task=prompt), draft


def sft(world: World, n: int, version: str, seed: int, kinds: tuple[str, ...] = C.KINDS) -> list[dict]:
    """`n` conversations ({"messages", "instruction_id_list", "kwargs"}) for instruct_<version>, in the training
    phrasings, with 0, 1 or 2 constraints (shares 0.2, 0.55, 0.25, the testbed's v1 mix) from the training pairs."""
    rng = random.Random(f"{seed}-sft-in-context-{version}")
    train_pairs, _ = I.split_pairs(seed, kinds)
    out = []
    while len(out) < n:
        prompt, draft = task(world, "train", rng)
        ids = I.pick_constraints(draft, rng.choices(range(3), weights=I.MIX["v1"][0])[0], train_pairs, rng, kinds)
        made = None if ids is None else I.constrain(prompt, draft, ids, "train", rng)
        if made is None:
            continue
        user, response, kwargs = made
        system = [{"role": "system", "content": rng.choice(I.SYSTEM[:2])}] if rng.random() < 0.5 else []
        messages = system + [{"role": "user", "content": user}, {"role": "assistant", "content": response}]
        out.append({"messages": messages, "instruction_id_list": ids, "kwargs": kwargs})
    return out


def ifeval_items(world: World, n: int, seed: int, exclude: set[str] = frozenset(),
                 kinds: tuple[str, ...] = C.KINDS) -> list[tuple[dict, str]]:
    """(lm-eval IFEval record, a compliant reference reply): the SFT tasks in held-out task, wrapper and constraint
    phrasings; 60% of the prompts carry a constraint pair never trained on (as cptlib.testbed.evalsets.ifeval_items)."""
    rng = random.Random(f"{seed}-eval-ifeval-in-context")
    _, heldout_pairs = I.split_pairs(seed, kinds)
    items = I.ifeval_records(n, rng, lambda r: task(world, "heldout", r), heldout_pairs, "heldout", kinds, exclude)
    if items is None:
        raise InputError(f"cannot make {n} distinct IFEval prompts; lower world.n_eval_ifeval")
    return items


def chat_items(world: World, n: int, seed: int, relations: tuple[str, ...],
               kinds: tuple[str, ...] = C.KINDS) -> list[tuple[dict, str]]:
    """(chat question about an era-B fact, with no note, in a held-out question wording and one format constraint;
    an ideal reply): the news asked through the instruction interface, in words no training file holds (the SFT set
    uses the training wordings, the CPT corpus states facts and never asks). Facts and formats are cycled so that
    each fact is asked in each format before any is asked twice in one."""
    rng = random.Random(f"{seed}-eval-chat-in-context")
    facts = [f for f in world.era("B") if f.relation in relations]
    if not facts:
        raise InputError(f"no era-B fact of {list(relations)}; set world.news_chat_relations to relations era B has")
    formats = I.knowledge_formats(kinds)
    items: list[tuple[dict, str]] = []
    prompts: set[str] = set()
    for attempt in range(50 * n):
        if len(items) == n:
            break
        fact, fmt = facts[attempt % len(facts)], formats[(attempt // len(facts)) % len(formats)]
        question, draft = I.qa_task(world, fact, "heldout", rng, extra=False)
        made = I.constrain(question, draft, [fmt], "train", rng)
        if made is None or made[0] in prompts:
            continue
        user, response, kwargs = made
        prompts.add(user)
        items.append(({"id": f"know-{len(items)}", "prompt": user, "answer": fact.value, "instruction_id_list": [fmt],
                       "kwargs": kwargs}, response))
    if len(items) < n:
        raise InputError(f"cannot make {n} distinct chat questions about era B; lower world.n_eval_knowledge")
    return items
