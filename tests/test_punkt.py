"""The offline English Punkt model: format, sentence splits, and lm-eval's IFEval checkers on top of it."""
from __future__ import annotations

import pytest
from nltk.data import FileSystemPathPointer
from nltk.tokenize.punkt import PunktSentenceTokenizer, load_punkt_params

import cptlib  # noqa: F401  (sets NLTK_DATA to the project's data directory)
from cptlib.evaluation import punkt_data


@pytest.fixture(scope="module")
def project_punkt():
    """The project's own set-up step, as the study runs it (idempotent)."""
    punkt_data.install_punkt()
    return punkt_data.check_punkt()


def test_files_hold_exactly_the_bundled_english_model(tmp_path, monkeypatch):
    import nltk
    from punkt.data import load_module

    monkeypatch.setattr(nltk.data, "path", [*nltk.data.path, str(tmp_path)])  # nltk reads only its data paths

    model = load_module("english")
    params = load_punkt_params(FileSystemPathPointer(str(punkt_data.install_punkt(tmp_path))))
    assert params.abbrev_types == set(model.ABBREV_TYPES)
    assert params.collocations == set(model.COLLOCATIONS)
    assert params.sent_starters == set(model.SENT_STARTERS)
    assert dict(params.ortho_context) == model.ORTHO_CONTEXT
    assert {"dr", "u.s", "mr", "inc", "p.m", "a.m"} <= params.abbrev_types


def test_install_is_idempotent_and_rewrites_a_stale_model(tmp_path):
    out = punkt_data.install_punkt(tmp_path)
    before = {f: (out / f).stat().st_mtime_ns for f in punkt_data.PUNKT_FILES}
    punkt_data.install_punkt(tmp_path)
    assert {f: (out / f).stat().st_mtime_ns for f in punkt_data.PUNKT_FILES} == before
    (out / "sent_starters.txt").unlink()  # half-deleted model: rebuilt, not trusted
    punkt_data.install_punkt(tmp_path)
    assert (out / "sent_starters.txt").read_text().splitlines()[:2] == ["according", "although"]


def test_check_names_the_setup_command_when_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"python -m cptlib\.evaluation\.punkt_data"):
        punkt_data.check_punkt(tmp_path)


# Hand-worked with the English model's tables:
# - "Dr.", "Mr.", "Inc.", "U.S.", "p.m.", "a.m." are in abbrev_types, so their period is not a boundary
#   when a lower-case word follows ("on", "economy", "in");
# - "Please" after "a.m.": `please` has ortho flag 32 (seen lower-case mid-sentence, never capitalised
#   there), so the orthographic heuristic calls the capitalised form a sentence start: break;
# - a period followed by a closing quote ends the sentence with the quote ('"Stop."').
TRICKY = [
    (
        "Dr. Smith went to Washington. He arrived at 5 p.m. on Monday.",
        ["Dr. Smith went to Washington.", "He arrived at 5 p.m. on Monday."],
    ),
    (
        "The U.S. economy grew. Mr. Jones works for Acme Inc. in New York.",
        ["The U.S. economy grew.", "Mr. Jones works for Acme Inc. in New York."],
    ),
    ("The meeting is at 10 a.m. Please be on time.", ["The meeting is at 10 a.m.", "Please be on time."]),
    ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
]


@pytest.mark.parametrize("text,expected", TRICKY)
def test_nltk_splits_like_the_original_punkt_model(project_punkt, text, expected):
    import nltk
    import punkt

    nltk_tok = nltk.data.load("nltk:tokenizers/punkt/english.pickle")  # the call lm-eval's IFEval makes
    assert nltk_tok.tokenize(text) == expected
    assert punkt.sent_tokenize(text) == expected  # the reference implementation on the same model
    direct = PunktSentenceTokenizer()
    direct._params = load_punkt_params(FileSystemPathPointer(str(project_punkt)))
    assert direct.tokenize(text) == expected


def _check(instruction_id: str, response: str, **kwargs) -> bool:
    from lm_eval.tasks.ifeval import instructions_registry

    checker = instructions_registry.INSTRUCTION_DICT[instruction_id](instruction_id)
    checker.build_description(**kwargs)
    return checker.check_following(response)


def test_number_sentences_checker_counts_with_punkt(project_punkt):
    """'Dr. Smith arrived. He sat down.' is 2 sentences (a naive split at '. ' would say 3)."""
    args = {"num_sentences": 3, "relation": "less than"}
    assert _check("length_constraints:number_sentences", "Dr. Smith arrived. He sat down.", **args)
    assert not _check("length_constraints:number_sentences", "Dr. Smith arrived. He sat. He left.", **args)


def test_capital_word_frequency_checker_tokenizes_with_punkt(project_punkt):
    """word_tokenize('NEW CEO named. IT is big.') -> NEW CEO named . IT is big . : 3 all-caps words."""
    args = {"capital_frequency": 3, "capital_relation": "at least"}
    assert _check("change_case:capital_word_frequency", "NEW CEO named. IT is big.", **args)
    assert not _check("change_case:capital_word_frequency", "NEW CEO named. It is big.", **args)


def test_check_puts_the_model_on_nltks_path_before_nltk_is_imported(project_punkt, tmp_path):
    """NLTK_DATA set elsewhere by the user, nltk not yet imported: the check must still make nltk find it."""
    import os
    import subprocess
    import sys

    code = ("import cptlib, sys; from cptlib.evaluation.punkt_data import check_punkt; check_punkt(); "
            "assert 'nltk' not in sys.modules; import nltk; print(nltk.data.find('tokenizers/punkt_tab/english/'))")
    env = {**os.environ, "NLTK_DATA": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(project_punkt)
