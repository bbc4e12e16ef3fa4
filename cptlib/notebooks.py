"""Run the study's notebooks with papermill: `cptlib notebook run 01_forgetting --profile smoke`.

The parameters a notebook receives are the profile, resolved (`extends` applied) and validated by
cptlib.config, one top-level key per notebook parameter: the same as `papermill -f params/<profile>.yaml` with
the inheritance done. papermill only warns about a parameter the notebook does not declare; here it is an
error that names the key and the notebook. The executed notebook is written to
`build/<profile>/notebooks/<nb>.partial.ipynb` and renamed to `<nb>.ipynb` only on success, so a failed
notebook never leaves an output that make counts as built; its run time goes to `<nb>.time.json` and every
stage it built or reused (cptlib.stages' log) to `<nb>.stages.jsonl`, which `cptlib cost` reads.
"""
from __future__ import annotations

import difflib
import json
import os
import sys
import time
from pathlib import Path

from cptlib import paths
from cptlib.stages import STAGE_LOG_ENV
from cptlib.config import ConfigError, Profile, load_profile, resolve

NOTEBOOKS = ("00_build", "01_forgetting", "02_recipes", "03_transfer", "04_ablations", "05_report")
KERNEL = "cptlib"


class NotebookError(ValueError):
    """A notebook that cannot run or failed; the message names it and says what to do (a ValueError so
    that the command line prints the message, not a traceback)."""


def notebook_path(name: str) -> Path:
    path = paths.NOTEBOOKS_DIR / f"{Path(name).stem}.ipynb"
    if not path.is_file():
        close = difflib.get_close_matches(Path(name).stem, NOTEBOOKS, n=1)
        raise NotebookError(f"no notebook {path}" + (f" (did you mean {close[0]!r}?)" if close else "")
                            + f"; notebooks: {', '.join(NOTEBOOKS)}")
    return path


def output_dir(profile: str) -> Path:
    return paths.profile_build_dir(profile) / "notebooks"


def profile_parameters(source: str | Path) -> tuple[dict, set[str]]:
    """(every parameter of the validated profile, the top-level keys its file(s) set)."""
    raw, path = resolve(source)
    profile = load_profile(path)
    return profile.model_dump(mode="json"), set(raw)


def declared_parameters(nb: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(nb)))


def check_parameters(nb: Path, keys: set[str]) -> None:
    """Every key must be a parameter of the notebook (papermill would only warn and ignore it)."""
    declared = declared_parameters(nb)
    unknown = sorted(keys - declared)
    if unknown:
        hints = [f"{k!r}" + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, declared, n=1)) else "")
                 for k in unknown]
        raise NotebookError(f"{nb.name}: unknown parameter {', '.join(hints)}; its parameters are "
                            f"{', '.join(sorted(declared))}")


def run(name: str, profile: str | Path, kernel: str = KERNEL) -> Path:
    """Execute one notebook for a profile; returns the executed notebook's path."""
    import papermill

    nb = notebook_path(name)
    try:
        params, file_keys = profile_parameters(profile)
    except ConfigError as err:
        raise NotebookError(str(err)) from None
    check_parameters(nb, file_keys | set(params))
    out_dir = output_dir(params["name"])
    out_dir.mkdir(parents=True, exist_ok=True)
    final, partial = out_dir / nb.name, out_dir / f"{nb.stem}.partial.ipynb"
    log, partial_log = out_dir / f"{nb.stem}.stages.jsonl", out_dir / f"{nb.stem}.stages.partial.jsonl"
    partial_log.unlink(missing_ok=True)
    before = os.environ.get(STAGE_LOG_ENV)
    os.environ[STAGE_LOG_ENV] = str(partial_log)  # the kernel, and the processes it starts, inherit it
    started = time.time()
    try:
        # Cell outputs (training progress bars included) stream to this process' stdout/stderr as they come, so
        # a long notebook shows its progress in the make log instead of only "Kernel is running". (Not also
        # log_output=True: papermill would then log every output a second time.)
        papermill.execute_notebook(str(nb), str(partial), parameters=params, kernel_name=kernel,
                                   cwd=str(paths.NOTEBOOKS_DIR), progress_bar=False,
                                   stdout_file=sys.stdout, stderr_file=sys.stderr)
    except papermill.PapermillExecutionError as err:
        partial.unlink(missing_ok=True)
        partial_log.unlink(missing_ok=True)
        trace = "\n".join(err.traceback[-6:]) if err.traceback else ""
        raise NotebookError(f"{nb.name} failed for profile {params['name']!r} in cell [{err.exec_count}]: "
                            f"{err.ename}: {err.evalue}\n{trace}\n(no executed notebook was kept; open "
                            f"{nb} in JupyterLab, `make lab`, to debug)") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        partial_log.unlink(missing_ok=True)
        raise
    finally:
        if before is None:
            os.environ.pop(STAGE_LOG_ENV, None)
        else:
            os.environ[STAGE_LOG_ENV] = before
    ended = time.time()
    partial_log.touch()  # a notebook that used no stage still has its (empty) log
    os.replace(partial_log, log)
    os.replace(partial, final)
    times = out_dir / f"{nb.stem}.time.json"
    tmp = times.with_name(times.name + ".tmp")
    tmp.write_text(json.dumps({"notebook": nb.stem, "profile": params["name"], "seconds": round(ended - started, 1),
                               "started": round(started, 3), "ended": round(ended, 3)}) + "\n")
    os.replace(tmp, times)
    return final


def run_times(profile: Profile | str) -> dict[str, float]:
    """Seconds each notebook took in its last successful run for the profile."""
    name = profile if isinstance(profile, str) else profile.name
    return {json.loads(p.read_text())["notebook"]: json.loads(p.read_text())["seconds"]
            for p in sorted(output_dir(name).glob("*.time.json"))}


def parameters_source(profile: str = "default") -> str:
    """The parameters cell: every top-level key of the profile (resolved, validated) as a plain literal."""
    import pprint

    params, _ = profile_parameters(profile)
    lines = [f"# Parameters: the {profile!r} profile (params/{profile}.yaml, resolved). papermill replaces them with",
             "# another profile's; edit them here to explore in JupyterLab. Plain values only."]
    lines += [f"{k} = {pprint.pformat(v, width=110, sort_dicts=False)}" for k, v in params.items()]
    return "\n".join(lines)


def setup_source() -> str:
    """The cell after the parameters: imports and the validated profile built from the parameters."""
    keys = ", ".join(f"{k}={k}" for k in Profile.model_fields)
    return "\n".join([
        "import numpy as np",
        "import pandas as pd",
        "from cptlib import config, derived, notebooks, plots, report, stats",
        "from cptlib import study as experiments  # `study` is a parameter (the profile's study section)",
        "from cptlib import family as fam",
        "",
        f"cfg = config.from_dict(dict({keys}))",
        "PANELS = derived.panels(cfg)  # the accuracies shown side by side (a real profile: those eval.metrics maps)",
        "LABELS = derived.labels(cfg)  # what each metric is: the testbed's task, or the real lm-eval task behind it",
        "SECOND = 'era_b' if 'era_b' in PANELS else 'era_a'  # beside IF in the two-metric panels: the news if measured",
    ])


def sync(names=NOTEBOOKS) -> list[str]:
    """Rewrite each notebook's parameters cell (and the setup cell) from params/default.yaml; returns the
    names of the notebooks that changed. Run after editing the default profile or the config schema."""
    import nbformat

    changed = []
    for name in names:
        path = notebook_path(name)
        nb = nbformat.read(path, as_version=4)
        i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        new = [parameters_source(), setup_source()]
        if [nb.cells[i].source, nb.cells[i + 1].source] != new:
            nb.cells[i].source, nb.cells[i + 1].source = new
            tmp = path.with_name(path.name + ".tmp")
            nbformat.write(nb, tmp)
            os.replace(tmp, path)
            changed.append(name)
    return changed


def register(subparsers) -> None:
    p = subparsers.add_parser("notebook", help="run the study's notebooks (papermill) for a profile")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = sub.add_parser("run", help="execute one notebook into build/<profile>/notebooks/")
    r.add_argument("notebook", help=f"one of {', '.join(NOTEBOOKS)}")
    r.add_argument("--profile", default="default", help="params/<name>.yaml or a YAML path (default: default)")
    r.add_argument("--kernel", default=KERNEL, help="Jupyter kernel (default: cptlib, registered by make setup)")
    r.set_defaults(func=lambda a: print(run(a.notebook, a.profile, a.kernel)))
    c = sub.add_parser("check", help="check that every key of a profile is a parameter of every notebook")
    c.add_argument("--profile", default="default")
    c.set_defaults(func=_check)
    s = sub.add_parser("sync", help="rewrite the notebooks' parameters cells from params/default.yaml")
    s.set_defaults(func=lambda a: print("updated: " + (", ".join(sync()) or "nothing")))


def _check(args) -> None:
    params, keys = profile_parameters(args.profile)
    for name in NOTEBOOKS:
        check_parameters(notebook_path(name), keys | set(params))
    print(f"{args.profile}: every key is a parameter of {', '.join(NOTEBOOKS)}")
