"""The IFEval constraint kinds the testbed uses: how a prompt asks for each, how a correct response is
produced from a plain draft, and `check`, which scores a response with lm-eval's own IFEval checkers.

Constraints are deterministic transformations of a `Draft` (the plain answer): `render` applies layout
(bullets, paragraphs, highlights, JSON), then wrappers (title, postscript, end phrase, quotes), then
character rules (no commas, case), in that order, so any compatible combination is satisfied at once.
Each kind has "train" phrasings (instruction data) and "heldout" ones (the IFEval evaluation file only).
"""
from __future__ import annotations

import functools
import json
import os
import random
import re
from dataclasses import dataclass, field

from cptlib.testbed import prose

CAPITAL = "change_case:english_capital"
LOWERCASE = "change_case:english_lowercase"
NO_COMMA = "punctuation:no_comma"
END = "startend:end_checker"
QUOTATION = "startend:quotation"
TITLE = "detectable_format:title"
BULLETS = "detectable_format:number_bullet_lists"
HIGHLIGHTS = "detectable_format:number_highlighted_sections"
JSON = "detectable_format:json_format"
KEYWORDS = "keywords:existence"
FORBIDDEN = "keywords:forbidden_words"
POSTSCRIPT = "detectable_content:postscript"
PARAGRAPHS = "length_constraints:number_paragraphs"

PHRASINGS = {  # id -> {"train": [...], "heldout": [...]}; {n}, {phrase}, {marker}, {words} are kwargs
    CAPITAL: {"train": ["Your entire response should be in English, and in all capital letters.",
                        "Write your whole answer in capital letters.", "Answer in all capital letters only.",
                        "Please reply using only uppercase letters."],
              "heldout": ["Make sure every letter of your reply is a capital letter.",
                          "Use CAPITAL LETTERS for the whole response."]},
    LOWERCASE: {"train": ["Your entire response should be in English, and in all lowercase letters. No capital "
                          "letters are allowed.", "Write your answer in lowercase letters only.",
                          "Please do not use any capital letters in your reply.", "Reply entirely in lowercase."],
                "heldout": ["Keep every letter of your answer in lower case.",
                            "Make sure the whole reply is written in small letters, with no capitals."]},
    NO_COMMA: {"train": ["In your entire response, refrain from the use of any commas.",
                         "Do not use any commas in your answer.", "Avoid commas in your reply."],
               "heldout": ["Your reply must not contain a single comma.", "Write without using the comma character."]},
    END: {"train": ["Finish your response with this exact phrase: {phrase}",
                    'End your answer with the words "{phrase}"',
                    'Your reply must end with the phrase "{phrase}" and nothing may follow it.'],
          "heldout": ['Close your reply with exactly "{phrase}"', "The last words of your answer should be: {phrase}"]},
    QUOTATION: {"train": ["Wrap your entire response with double quotation marks.",
                          "Put your whole answer inside double quotes.",
                          "Enclose the reply in double quotation marks."],
                "heldout": ["Your full reply should start and end with a double quote character.",
                            "Place the complete answer between two double quotes."]},
    TITLE: {"train": ["Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.",
                      "Give your answer a title in double angle brackets, like <<my title>>.",
                      "Start with a title inside << and >>."],
            "heldout": ["Include a title written between double angular brackets, for example <<a short note>>.",
                        "Add a heading wrapped in << >>."]},
    BULLETS: {"train": ["Your answer must contain exactly {n} bullet points. Use the markdown bullet points such as:"
                        "\n* This is point 1.", 'Use exactly {n} bullet points, each starting with "* ".',
                        "Answer with a list of exactly {n} bullet points in markdown."],
              "heldout": ["Format the reply as {n} markdown bullet points, no more and no fewer.",
                          "Give precisely {n} points, each on its own line beginning with an asterisk."]},
    HIGHLIGHTS: {"train": ["Highlight at least {n} sections in your answer with markdown, i.e. *highlighted section*.",
                           "Mark at least {n} parts of your reply in italics using *asterisks*.",
                           "Emphasise at least {n} sentences by wrapping them in single asterisks."],
                 "heldout": ["Use markdown to highlight at least {n} sections, like *this*.",
                             "Put at least {n} key sentences between asterisks, for example *a key point*."]},
    JSON: {"train": ["Entire output should be wrapped in JSON format.", "Give your answer as JSON.",
                     "Format the whole reply as a JSON object."],
           "heldout": ["Return the reply as valid JSON only.", "Respond with a JSON object and nothing else."]},
    KEYWORDS: {"train": ["Include the keywords {words} in the response.", "Make sure to use the words {words} in "
                         "your answer.", "Your reply should mention {words}."],
               "heldout": ["Be sure the words {words} appear somewhere in your reply.",
                           "Work the keywords {words} into the answer."]},
    FORBIDDEN: {"train": ["Do not include the keywords {words} in the response.", "Avoid the words {words} in your "
                          "answer.", "Do not use the words {words}."],
                "heldout": ["Your reply must not contain the words {words}.", "Never use {words} in the answer."]},
    POSTSCRIPT: {"train": ["At the end of your response, please explicitly add a postscript starting with {marker}",
                           "Add a postscript at the end that starts with {marker}",
                           "After your answer, write a postscript beginning with {marker}"],
                 "heldout": ["Please end your reply with a postscript that begins with {marker}",
                             "Append a short postscript, beginning with {marker}, after the answer."]},
    PARAGRAPHS: {"train": ["There should be {n} paragraphs. Paragraphs are separated with the markdown divider: ***",
                           "Write {n} paragraphs separated by ***.",
                           "Split your answer into {n} paragraphs, with *** between them."],
                 "heldout": ["Use exactly {n} paragraphs and put the divider *** between paragraphs.",
                             "Your reply needs {n} paragraphs divided by the markdown divider ***."]},
}
KINDS = tuple(PHRASINGS)
# Pairs no response can satisfy at once, or whose layouts collide (a bullet line "* *x*" hides a highlight).
_CLASHES = [{CAPITAL, LOWERCASE}, {BULLETS, PARAGRAPHS}, {BULLETS, HIGHLIGHTS}] + [
    {JSON, k} for k in (TITLE, BULLETS, PARAGRAPHS, HIGHLIGHTS, POSTSCRIPT, END, QUOTATION)]
PAIRS = [(a, b) for i, a in enumerate(KINDS) for b in KINDS[i + 1:] if {a, b} not in _CLASHES]
END_PHRASES = {"train": ["Any other questions?", "Is there anything else I can help with?",
                         "Let me know if you have additional questions.", "Hope this helps.", "That is all for now.",
                         "Thank you for asking."],
               "heldout": ["Have a nice day.", "I hope that answers your question.", "Talk to you soon."]}
# Plain sentences appended, in order, while a case-constrained reply does not reliably read as English to
# langdetect. In capitals langdetect sees little more than each word's first letter (it skips the inner
# n-grams of all-caps words), so these were picked for the letters their words start with.
PADDING = ["I think that this is what you wanted to know.", "This is all the information that I have on the matter.",
           "There is nothing more that I can add to this."]


@dataclass
class Draft:
    """A plain response: `items` are the sentences that bullets, paragraphs and highlights apply to."""

    items: list[str]
    intro: str = ""
    closing: list[str] = field(default_factory=list)  # keyword sentences, padding
    title: str = "A short answer"
    postscript: str = "I hope this was useful."
    tempting: list[str] = field(default_factory=list)  # words a natural reply would use (forbidden-word bait)


def applies(kind: str, draft: Draft) -> bool:
    n = len(draft.items)
    return {BULLETS: 2 <= n <= 6, PARAGRAPHS: n >= 2}.get(kind, True)


def sample_kwargs(kind: str, draft: Draft, split: str, rng: random.Random) -> dict:
    """kwargs for one constraint; a keywords constraint also adds a closing sentence that uses them.
    Forbidden words are chosen later, from the rendered reply (`forbid`)."""
    n = len(draft.items)
    if kind == BULLETS:
        return {"num_bullets": n}
    if kind == PARAGRAPHS:
        return {"num_paragraphs": rng.randint(2, min(4, n))}
    if kind == HIGHLIGHTS:
        return {"num_highlights": rng.randint(1, min(3, n))}
    if kind == POSTSCRIPT:
        return {"postscript_marker": rng.choice(["P.S.", "P.P.S"])}
    if kind == END:
        # Invented phrases teach copying the requested phrase, not a fixed list; no commas, so that the
        # phrase can be combined with punctuation:no_comma.
        invented = prose.sentence(rng).replace(",", "")
        return {"end_phrase": rng.choice(END_PHRASES[split]) if rng.random() < 0.6 else invented}
    if kind == KEYWORDS:
        words = rng.sample(prose.NOUNS, rng.randint(1, 2))
        draft.closing.append(prose.sentence(rng, tuple(words)))
        return {"keywords": words}
    return {}


def forbid(response: str, draft: Draft, rng: random.Random) -> dict:
    """1-2 words absent from the reply, preferring words another phrasing of it would have used."""

    def absent(word: str) -> bool:
        return not re.search(r"\b" + word + r"\b", response, flags=re.IGNORECASE)

    bait = [w for w in dict.fromkeys(draft.tempting) if absent(w)]
    pool = bait or [w for w in rng.sample(prose.NOUNS, 20) if absent(w)]
    return {"forbidden_words": rng.sample(pool, min(len(pool), rng.randint(1, 2)))}


def render(draft: Draft, ids: list[str], kwargs: list[dict]) -> str:
    """The response that satisfies every constraint in `ids` (a compatible set) for this draft."""
    kw = dict(zip(ids, kwargs))
    items = list(draft.items)
    if HIGHLIGHTS in kw:
        items = [f"*{x}*" if i < kw[HIGHLIGHTS]["num_highlights"] else x for i, x in enumerate(items)]
    lead = [draft.intro] if draft.intro else []
    if BULLETS in kw:
        body = "\n".join(lead + [f"* {x}" for x in items])
    elif PARAGRAPHS in kw:
        n = kw[PARAGRAPHS]["num_paragraphs"]
        cuts = [round(i * len(items) / n) for i in range(n + 1)]
        body = "\n***\n".join(" ".join((lead if a == 0 else []) + items[a:b]) for a, b in zip(cuts, cuts[1:]))
    else:
        body = " ".join(lead + items)
    if draft.closing:
        body += ("\n" if BULLETS in kw else " ") + " ".join(draft.closing)
    if JSON in kw:
        body = json.dumps({"answer": body})
    if TITLE in kw:
        body = f"<<{draft.title}>>\n{body}"
    if POSTSCRIPT in kw:
        marker = "P.S." if kw[POSTSCRIPT]["postscript_marker"] == "P.S." else "P.P.S."
        body += f"\n\n{marker} {draft.postscript}"
    if END in kw:
        body += "\n" + kw[END]["end_phrase"]
    if QUOTATION in kw:  # on its own line before a bullet list, or the first bullet would not count
        body = f'"\n{body}"' if BULLETS in kw and body.startswith("*") else f'"{body}"'
    if NO_COMMA in kw:
        body = body.replace(",", "")
    return body.upper() if CAPITAL in kw else body.lower() if LOWERCASE in kw else body


def describe(kind: str, kwargs: dict, split: str, rng: random.Random) -> str:
    words = " and ".join(f'"{w}"' for w in kwargs.get("keywords", kwargs.get("forbidden_words", [])))
    return rng.choice(PHRASINGS[kind][split]).format(
        n=kwargs.get("num_bullets", kwargs.get("num_paragraphs", kwargs.get("num_highlights"))),
        phrase=kwargs.get("end_phrase"), marker=kwargs.get("postscript_marker"), words=words)


@functools.lru_cache(maxsize=1)
def _langdetect_factory():
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    # Sorted profile order: the language index order must not depend on the file system.
    names = sorted(os.listdir(PROFILES_DIRECTORY))
    factory.load_json_profile([open(os.path.join(PROFILES_DIRECTORY, n), encoding="utf-8").read() for n in names])
    return factory


def reads_as_english(text: str, seeds: int = 8) -> bool:
    """True when langdetect calls `text` English in every one of its random trials under `seeds` seeds.

    lm-eval's case checkers run an unseeded langdetect: 7 random trials, English must win most of them. A
    reply that loses even an occasional trial (short, with several invented names) fails there now and
    then, so it is padded instead. A text whose trials English wins with probability r passes this gate
    with probability r**(7*seeds); one that passes fails lm-eval's check with probability ~1e-5 at most.
    """
    for seed in range(seeds):
        detector = _langdetect_factory().create()
        detector.seed = seed
        detector.append(text)
        # One lost trial of seven shows as p(en) <= 6/7; 0.99 allows only rounding.
        if next((p.prob for p in detector.get_probabilities() if p.lang == "en"), 0.0) < 0.99:
            return False
    return True


def check(response: str, instruction_id_list: list[str], kwargs: list[dict]) -> list[bool]:
    """Per-constraint pass/fail by lm-eval's IFEval code path (as in its `test_instruction_following_strict`)."""
    from lm_eval.tasks.ifeval import instructions_registry  # slow import (lm_eval), only when checking

    results = []
    for instruction_id, kw in zip(instruction_id_list, kwargs, strict=True):
        instruction = instructions_registry.INSTRUCTION_DICT[instruction_id](instruction_id)
        instruction.build_description(**{k: v for k, v in kw.items() if v})
        results.append(bool(response.strip() and instruction.check_following(response)))
    return results
