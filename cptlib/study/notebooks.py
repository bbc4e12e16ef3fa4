"""Run the study's notebooks with papermill: `cptlib notebook run 01_forgetting --profile smoke`.

Every notebook has the same three parameters: `profile` (a params/<name>.yaml name or a YAML path), `overrides`
(changes to it, {"cpt.lr": 3e-4}) and `run_name` (where a run with overrides writes; default: the profile's name
plus a hash of the overrides). The setup cell resolves them with cptlib.config (`extends` applied, every value
validated), so papermill called directly (`papermill nb.ipynb out.ipynb -p profile smoke`) and JupyterLab see the
same profile as `cptlib notebook run`, and a run with changed parameters never writes into a shipped profile's
folders. (`papermill -f params/smoke.yaml` would inject the profile's keys as variables: that is refused with a
message, since it cannot apply `extends`.) The executed notebook is written to
`build/<run>/notebooks/<nb>.partial-<pid>.ipynb` and renamed to `<nb>.ipynb` only on success, so a failed notebook
never leaves an output that make counts as built; its run time goes to `<nb>.time.json` and every stage it built
or reused (cptlib.core.stages' log) to `<nb>.stages.jsonl`, which `cptlib cost` reads.
"""
from __future__ import annotations

import difflib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from cptlib.core import paths
from cptlib.core.errors import InputError
from cptlib.core.files import atomic_file, write_text_atomic
from cptlib.core.shutdown import skip_final_collection
from cptlib.core.stages import STAGE_LOG_ENV
from cptlib.config import EXTRA_NOTEBOOKS, STUDY_NOTEBOOKS, ConfigError, Profile, load_with_overrides

NOTEBOOKS = (*STUDY_NOTEBOOKS, *EXTRA_NOTEBOOKS)  # a profile runs those its `notebooks:` lists (make reproduce)
KERNEL = "cptlib"
PARAMETERS = ("profile", "overrides", "run_name")
PARAMETERS_SOURCE = """\
# Parameters (the same in every notebook; papermill: -p profile smoke, or `cptlib notebook run <nb> --profile smoke`).
# profile:   a shipped profile, params/<name>.yaml (default, smoke, ...), or the path of a YAML file
# overrides: changes to it, e.g. {"cpt.lr": 3e-4, "train_seeds": [0]}; validated like the profile file
# run_name:  the folder a run with overrides writes to (build/<run_name>/, figures/<run_name>/); None = the
#            profile's name + a hash of the overrides, so a changed run never overwrites a shipped profile's figures
profile = "default"
overrides = {}
run_name = None"""


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # a terminal colour or cursor code


class NotebookError(InputError):
    """A notebook that cannot run or failed; the message names it and says what to do."""


def notebook_path(name: str) -> Path:
    path = paths.NOTEBOOKS_DIR / f"{Path(name).stem}.ipynb"
    if not path.is_file():
        close = difflib.get_close_matches(Path(name).stem, NOTEBOOKS, n=1)
        raise NotebookError(f"no notebook {path}" + (f" (did you mean {close[0]!r}?)" if close else "")
                            + f"; notebooks: {', '.join(NOTEBOOKS)}")
    return path


def output_dir(profile: str) -> Path:
    return paths.profile_build_dir(profile) / "notebooks"


def _papermill():
    """papermill, imported without `rfc3987_syntax`. papermill imports nbformat, nbformat jsonschema, and jsonschema
    tries that package for its `iri` format checker, which compiles ~35 Lark grammars when it is imported: 1.9 s of
    every `cptlib notebook run` on this CPU (python-jsonschema/jsonschema#1428). No notebook schema uses the `iri`
    formats, and a missing optional checker is what jsonschema expects (it skips that format). Other processes, and
    one that imported the package already, are not affected."""
    sys.modules.setdefault("rfc3987_syntax", None)  # None in sys.modules: an import of it raises ImportError
    import papermill

    return papermill


def declared_parameters(nb: Path) -> set[str]:
    """The notebook's parameters, as papermill reads them; a file that is not a notebook is one error naming it."""
    try:
        json.loads(Path(nb).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise NotebookError(f"{nb}: not a notebook (invalid JSON: {err}); restore it with `git checkout -- "
                            f"{paths.shown(Path(nb))}`, or save it again from JupyterLab") from None
    return set(_papermill().inspect_notebook(str(nb)))


def check_parameters(nb: Path) -> None:
    """A notebook declares exactly PARAMETERS (papermill would only warn about a parameter it does not have)."""
    declared = declared_parameters(nb)
    if declared != set(PARAMETERS):
        raise NotebookError(f"{nb.name}: its parameters are {', '.join(sorted(declared)) or 'none'}, expected "
                            f"{', '.join(PARAMETERS)}; run `cptlib notebook sync` to rewrite its parameters cell")


def configure(profile: str, overrides: dict | None = None, run_name: str | None = None,
              namespace: dict | None = None) -> Profile:
    """The setup cell's call: the notebook's parameters resolved to a validated profile. `namespace` (the
    notebook's globals) is checked for a profile's keys injected by `papermill -f params/<p>.yaml`."""
    namespace = namespace or {}
    # A profile file's sections arrive as dicts, its top-level values (train_seeds: [1, 2], world_seed: 3) as lists
    # and numbers; a string is injected only under a name no section has (a loop variable `model` is not one).
    injected = sorted(k for k in set(namespace) & ({"extends"} | set(Profile.model_fields))
                      if isinstance(namespace[k], (dict, list, int, float))
                      or (isinstance(namespace[k], str) and k in ("extends", "name", "description")))
    if injected:
        raise NotebookError(f"this notebook received the profile keys {', '.join(injected)} as parameters (papermill "
                            "-f params/<profile>.yaml?). Its parameters are profile, overrides and run_name: run "
                            "`papermill <nb> <out> -p profile <name>` or `cptlib notebook run <nb> --profile <name>`")
    unknown = sorted(_papermill_parameters(namespace) - set(PARAMETERS) - {"extends"} - set(Profile.model_fields))
    if unknown:
        close = {name: difflib.get_close_matches(name, PARAMETERS, n=1) for name in unknown}
        hints = [f"{name!r}" + (f" (did you mean {close[name][0]!r}?)" if close[name] else "") for name in unknown]
        raise NotebookError(f"this notebook received the parameter {', '.join(hints)}, which it does not have (papermill "
                            f"only warns, and the run would go on with profile {profile!r}); its parameters are "
                            f"{', '.join(PARAMETERS)}: e.g. `papermill <nb> <out> -p profile smoke`")
    if not isinstance(overrides or {}, dict):
        raise NotebookError(f"overrides must be a dict such as {{'cpt.lr': 3e-4}}, got {overrides!r}")
    try:
        cfg = load_with_overrides(profile, overrides, run_name)
    except ConfigError as err:
        raise NotebookError(str(err)) from None
    if namespace:  # the notebook's kernel: its exit, which the runner waits for, skips the last collection
        skip_final_collection()
        _kernel_setup()
    return cfg


def _papermill_parameters(namespace: dict) -> set[str]:
    """The names papermill's injected cell assigned, read from the kernel's input history (`In`): that cell starts
    with papermill's "# Parameters" line, which the notebook's own parameters cell does not have alone."""
    import ast

    for source in reversed(namespace.get("In") or []):
        if isinstance(source, str) and source.startswith("# Parameters\n"):
            try:
                body = ast.parse(source).body
            except SyntaxError:
                return set()
            assigned = [t for stmt in body if isinstance(stmt, ast.Assign) for t in stmt.targets]
            return {t.id for t in assigned if isinstance(t, ast.Name)}
    return set()


def _kernel_setup() -> None:
    """In a Jupyter kernel: a figure a cell returns is shown inline (JupyterLab and the executed notebook), and the
    libraries' progress bars are off (cptlib.core.progress: they would be red stderr text, not widgets)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "kernel"):
        from cptlib.core.progress import quiet_library_bars
        from cptlib.study.plots import show_inline

        show_inline(shell)
        quiet_library_bars()


def check_kernel(kernel: str) -> None:
    """The Jupyter kernel must be registered (papermill's NoSuchKernel is a bare traceback)."""
    from jupyter_client.kernelspec import KernelSpecManager

    known = KernelSpecManager().find_kernel_specs()
    if kernel not in known:
        hint = " (`make setup` registers the project's kernel, cptlib)" if kernel == KERNEL else ""
        raise NotebookError(f"no Jupyter kernel named {kernel!r}{hint}; registered kernels: {', '.join(sorted(known))}")


_KERNELS: list = []  # the kernel managers of the notebook this process runs now (an interrupt ends their processes)


def _kernel_manager_class():
    """jupyter_client's kernel manager, recording each kernel it starts in _KERNELS, and talking to it over local
    sockets (ZeroMQ's ipc transport) named for this kernel alone. Over TCP, ipykernel warns on every start that the
    traffic is unencrypted; over ipc with jupyter_client's shared default name, two kernels started at once could
    pick the same socket files (two concurrent runs of one notebook failed so), hence a name of its own, short
    (a Unix socket's path is limited to ~100 bytes) and in the temporary folder."""
    import tempfile
    import uuid

    from jupyter_client.manager import AsyncKernelManager

    class TrackedKernelManager(AsyncKernelManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.transport = "ipc"
            self.ip = os.path.join(tempfile.gettempdir(), f"cptlib-kernel-{os.getpid()}-{uuid.uuid4().hex[:12]}")
            _KERNELS.append(self)

    return TrackedKernelManager


@contextmanager
def _interrupt_ends_the_kernel():
    """Ctrl-C while a notebook runs kills the kernel's process group at once (the kernel and the stage workers it
    started: jupyter_client starts a kernel as a session leader), and the run then stops as interrupted, once papermill
    has seen the kernel die. A KeyboardInterrupt raised inside papermill's asyncio loop instead could leave the kernel
    and its workers running: once, in a loaded `make test`, an interrupted run had not ended 120 s later. Yields the
    list of signals received (empty unless interrupted)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # only the main thread can handle signals
        yield received
        return

    def quiet(record: logging.LogRecord) -> bool:  # a logging filter that drops every record
        return False

    def handler(signum, frame):
        received.append(signum)
        groups = {getattr(km.provisioner, "pgid", None) for km in _KERNELS if km.provisioner is not None} - {None}
        if not groups:  # no kernel yet: interrupted as usual
            raise KeyboardInterrupt
        logging.getLogger("papermill").addFilter(quiet)  # its "Kernel died while waiting for execute reply": ours
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)
        logging.getLogger("papermill").removeFilter(quiet)
        _KERNELS.clear()


def _cell_error(err, nb: Path, cfg: Profile) -> NotebookError:
    """The error for a cell that raised: the notebook, the cell, the exception and its last traceback lines."""
    # IPython colours its tracebacks with terminal escape codes, which would be noise in a log file.
    trace = ANSI_ESCAPE.sub("", "\n".join(err.traceback[-6:])) if err.traceback else ""
    return NotebookError(f"{nb.name} failed for profile {cfg.name!r} in cell [{err.exec_count}]: "
                         f"{err.ename}: {ANSI_ESCAPE.sub('', str(err.evalue))}\n{trace}\n(no executed notebook was kept; open "
                         f"{nb} in JupyterLab, `make lab`, to debug)")


def run(name: str, profile: str | Path, kernel: str = KERNEL, overrides: dict | None = None,
        run_name: str | None = None) -> Path:
    """Execute one notebook for a profile; returns the executed notebook's path."""
    nb = notebook_path(name)
    source = str(Path(profile).resolve()) if str(profile).endswith((".yaml", ".yml")) else str(profile)
    params = {"profile": source, "overrides": dict(overrides or {}), "run_name": run_name}
    cfg = configure(**params)
    from cptlib.family.kind import family_for

    family_for(cfg).check_sources()  # a real profile whose checkpoints are unreachable: now, not in the notebook's third cell
    check_parameters(nb)
    check_kernel(kernel)
    papermill = _papermill()  # late: the checks above fail fast without it (and without torch)

    out_dir = output_dir(cfg.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Per process: two runs of one notebook at once each keep their own partial files (the last to finish writes
    # the executed notebook and its stage log, each complete), instead of deleting each other's log.
    final, partial = out_dir / nb.name, out_dir / f"{nb.stem}.partial-{os.getpid()}.ipynb"
    log, partial_log = out_dir / f"{nb.stem}.stages.jsonl", out_dir / f"{nb.stem}.stages.partial-{os.getpid()}.jsonl"
    partial_log.unlink(missing_ok=True)
    before = os.environ.get(STAGE_LOG_ENV)
    os.environ[STAGE_LOG_ENV] = str(partial_log)  # the kernel, and the processes it starts, inherit it
    started = time.time()
    interrupted: list[int] = []
    try:
        # Cell outputs (training progress bars included) stream to this process' stdout/stderr as they come, so
        # a long notebook shows its progress in the make log instead of only "Kernel is running". (Not also
        # log_output=True: papermill would then log every output a second time.)
        with _interrupt_ends_the_kernel() as interrupted:
            papermill.execute_notebook(str(nb), str(partial), parameters=params, kernel_name=kernel,
                                       cwd=str(paths.NOTEBOOKS_DIR), progress_bar=False,
                                       stdout_file=sys.stdout, stderr_file=sys.stderr,
                                       kernel_manager_class=_kernel_manager_class())
    except BaseException as err:  # nothing of a failed or interrupted run is kept
        partial.unlink(missing_ok=True)
        partial_log.unlink(missing_ok=True)
        if interrupted:  # the kernel was killed on purpose: papermill's "kernel died" is the interrupt
            raise KeyboardInterrupt from None
        if isinstance(err, papermill.PapermillExecutionError):
            raise _cell_error(err, nb, cfg) from None
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
    write_text_atomic(times, json.dumps({"notebook": nb.stem, "profile": cfg.name, "seconds": round(ended - started, 1),
                                         "started": round(started, 3), "ended": round(ended, 3)}) + "\n")
    return final


def run_times(profile: Profile | str) -> dict[str, float]:
    """Seconds each notebook took in its last successful run for the profile."""
    name = profile if isinstance(profile, str) else profile.name
    return {json.loads(p.read_text())["notebook"]: json.loads(p.read_text())["seconds"]
            for p in sorted(output_dir(name).glob("*.time.json"))}


def setup_source() -> str:
    """The cell after the parameters: the study of this run (cptlib.study.api), every later cell one call of it."""
    return "from cptlib.study import Study\n\nstudy = Study(profile, overrides, run_name)"


def describe(cfg: Profile) -> str:
    """One line for the executed notebook: which run this is and where its outputs go."""
    from cptlib.study.plots import figures_dir

    return f"profile {cfg.name!r}: {cfg.description.strip()}\noutputs: {output_dir(cfg.name).parent}, figures: {figures_dir(cfg)}"


def sync(names=NOTEBOOKS) -> list[str]:
    """Rewrite each notebook's parameters cell and setup cell from PARAMETERS_SOURCE and setup_source(); returns
    the names of the notebooks that changed."""
    import nbformat

    changed = []
    for name in names:
        path = notebook_path(name)
        nb = nbformat.read(path, as_version=4)
        i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        new = [PARAMETERS_SOURCE, setup_source()]
        if [nb.cells[i].source, nb.cells[i + 1].source] != new:
            nb.cells[i].source, nb.cells[i + 1].source = new
            with atomic_file(path) as tmp:
                nbformat.write(nb, tmp)
            changed.append(name)
    return changed


def register(subparsers) -> None:
    p = subparsers.add_parser("notebook", help="run the study's notebooks (papermill) for a profile")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = sub.add_parser("run", help="execute one notebook into build/<profile>/notebooks/")
    r.add_argument("notebook", help=f"one of {', '.join(NOTEBOOKS)}")
    r.add_argument("--profile", default="default", help="params/<name>.yaml or a YAML path (default: default)")
    r.add_argument("--kernel", default=KERNEL, help="Jupyter kernel (default: cptlib, registered by make setup)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=YAML",
                   help="override a profile value, e.g. --set cpt.lr=3e-4 (repeatable); the run writes to its own folders")
    r.add_argument("--run-name", help="name of those folders (default: <profile>-<hash of the overrides>)")
    r.set_defaults(func=lambda a: print(run(a.notebook, a.profile, a.kernel, parse_overrides(a.overrides), a.run_name)))
    c = sub.add_parser("check", help="check a profile and that every notebook has the parameters profile, overrides, run_name")
    c.add_argument("--profile", default="default")
    c.set_defaults(func=_check)
    s = sub.add_parser("sync", help="rewrite the notebooks' parameters and setup cells (the same in every notebook)")
    s.set_defaults(func=lambda a: print("updated: " + (", ".join(sync()) or "nothing")))
    d = sub.add_parser("redraw", help="draw a profile's figures (and a one-notebook profile's report) again from the "
                                      "tables committed beside them, training and evaluating nothing (make redraw)")
    d.add_argument("--profile", default="default", help="params/<name>.yaml (default: default)")
    d.add_argument("--figure", dest="figures", action="append", default=[], metavar="NAME",
                   help="a figure to draw (repeatable; default: every one cptlib.study.redraw can draw from its table)")
    d.set_defaults(func=_redraw)


def parse_overrides(items: list[str]) -> dict:
    """["cpt.lr=3e-4", "train_seeds=[0]"] -> {"cpt.lr": 0.0003, "train_seeds": [0]} (values read as YAML)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise NotebookError(f"--set {item!r}: expected KEY=VALUE, e.g. --set cpt.lr=3e-4")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", parsed.strip()):
            parsed = float(parsed)  # YAML 1.1 reads 3e-4 (no dot) as a string
        key = key.strip()
        if key in out and out[key] != parsed:  # the last would win unnoticed
            raise NotebookError(f"--set {key} is given twice ({out[key]!r}, then {parsed!r}); give it once")
        out[key] = parsed
    return out


def _redraw(args) -> int:
    from cptlib.study.redraw import main

    return main(args.profile, args.figures or None)


def _check(args) -> None:
    cfg = configure(args.profile)
    for name in NOTEBOOKS:
        check_parameters(notebook_path(name))
    print(f"{cfg.name}: a valid profile; {', '.join(NOTEBOOKS)} each take {', '.join(PARAMETERS)}")
