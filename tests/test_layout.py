"""The package layout: each folder one stage of the pipeline, importing only the stages below it, and no module
importing one that imports it back (every import counts, also those inside functions; `if TYPE_CHECKING:` ones,
which never run, do not). Run `.venv/bin/pytest tests/test_layout.py -q` after moving code."""
import ast
from pathlib import Path

import pytest

from cptlib.core import paths

PACKAGE = paths.REPO_ROOT / "cptlib"
# Lower first; a module may import its own layer and those before it. The bottom layer is every top-level module
# (and the testbed generator and the residual engine, which import only bottom modules), except the command line.
LAYERS = ["bottom", "training", "family", "evaluation", "study", "cli"]


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        if "tasks" in f.relative_to(PACKAGE).parts:  # lm-eval task code, loaded by lm-eval
            continue
        name = ".".join(f.relative_to(paths.REPO_ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def _layer(module: str) -> str:
    parts = module.split(".")
    if module == "cptlib.cli":
        return "cli"
    return parts[1] if len(parts) >= 2 and parts[1] in LAYERS else "bottom"  # a folder's __init__ is of its layer


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cptlib"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cptlib")}
    return {m for m in found if m in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(f, modules) - {m} for m, f in modules.items()}


def test_no_module_imports_one_that_imports_it_back():
    graph = _graph()
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_each_folder_imports_only_the_stages_below_it():
    wrong = [f"{m} ({_layer(m)}) imports {n} ({_layer(n)})" for m, deps in _graph().items() for n in sorted(deps)
             if n != "cptlib" and LAYERS.index(_layer(n)) > LAYERS.index(_layer(m))]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(_modules()))
def test_every_module_says_first_what_it_holds(module):
    doc = ast.get_docstring(ast.parse(_modules()[module].read_text()))
    assert doc and len(doc.splitlines()[0]) > 20, f"{module}: its docstring's first line should say what it holds"


def test_importing_cptlib_changes_no_environment_variable():
    """No side effect at import: every module of the package imported, os.environ as before (the entry points set
    the project's caches: cptlib.core.paths.use_project_caches)."""
    import subprocess
    import sys

    # The libraries first: torch._dynamo (imported by peft) sets TORCHINDUCTOR_CACHE_DIR itself; only what cptlib's
    # own modules change counts.
    code = ("import importlib, os, pkgutil\n"
            "import torch._dynamo, transformers, peft, datasets, lm_eval, matplotlib.pyplot, pandas, seaborn\n"
            "before = dict(os.environ)\nimport cptlib\n"
            "for m in pkgutil.walk_packages(cptlib.__path__, 'cptlib.'):\n"
            "    if '.tasks' not in m.name and not m.name.endswith('__main__'):\n"
            "        importlib.import_module(m.name)\n"
            "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))\n"
            "print(changed)")
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("HF_HOME", "TORCHINDUCTOR_CACHE_DIR", "NLTK_DATA", "MPLCONFIGDIR")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"importing cptlib changed the environment: {out.stdout}"


def test_the_makefile_exports_the_caches_the_command_sets():
    """`make lab`'s kernels get the caches the `cptlib` command sets (the notebooks' libraries read them)."""
    import re

    makefile = (paths.REPO_ROOT / "Makefile").read_text()
    exported = dict(re.findall(r"^export (\w+) \?= \$\(CURDIR\)/(\S+)$", makefile, flags=re.M))
    expected = {k: str(Path(v).relative_to(paths.REPO_ROOT)) for k, v in paths.project_cache_env().items()}
    assert exported == expected


def test_the_docs_say_the_peft_tied_model_warning_is_expected():
    """Issue 49, 6: attaching an adapter to a tied model warns of missing lm_head.lora_A/B keys, which docs did not
    explain; the quoted words are PEFT's own (peft_model.py), so a PEFT that rewords it fails here."""
    import inspect

    import peft.peft_model

    quoted = "Found missing adapter keys while loading the checkpoint"
    assert quoted in inspect.getsource(peft.peft_model)
    residual_doc = (paths.REPO_ROOT / "docs" / "residual.md").read_text()
    assert f"`{quoted}: [… lm_head.lora_A …, … lm_head.lora_B …]`: expected" in residual_doc


def test_the_readme_names_a_profile_for_its_override_example_and_says_how_to_make_ones_own():
    """Issue 49, 4 and 6: the README's `--set cpt.lr=3e-4` example started 21 evaluations of the default with no word
    of the time; a profile of one's own was not described."""
    readme = " ".join((paths.REPO_ROOT / "README.md").read_text().split())
    assert "`cptlib notebook run 01_forgetting --profile smoke --set cpt.lr=3e-4` (minutes on the smoke profile" in readme
    assert "### A profile of your own" in readme and "add `release: smoke`" in readme
