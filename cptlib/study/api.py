"""The notebooks' API: one `Study` per run, one method per experiment, each returning a `Result`.

    study = Study("smoke", {"cpt.lr": 3e-4})   # the profile, validated, as the notebooks' parameters give it
    r = study.recipes()                        # computed (cached stages: instant once trained and evaluated)
    r.table                                    # a DataFrame: what the notebook shows and saves
    r.figure()                                 # the matplotlib Figure, drawn by cptlib.study.figures
    r.save()                                   # figures/<run>/recipes.{csv,md,json,png,pdf}; returns r
    study.benchmarks_scores().reason           # a part this profile does not run: why (experiments.why_not)

A notebook cell is one call, `study.recipes().save()`: the result it returns shows its notes, tables and figure
in JupyterLab and in the executed notebook (`_ipython_display_`), or, where the part does not run, why. Every
result of a Study is computed once (a second call returns the same object); a new Study, e.g. with other
overrides, computes anew. The captions live beside the figure functions (cptlib.study.figures) and here beside
the tables; `save()` writes through plots.save_table and plots.save_figure, as the notebooks did before.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cptlib.config import DRIFT_NOTEBOOK, SIZES_NOTEBOOK, Profile
from cptlib.study import claims, experiments, figures, plots, restored, stats

REPORT_NOTEBOOK = "05_report"


@dataclass(eq=False)
class Result:
    """What one experiment of a Study gives: its table, its figure (if it has one), how to save them, or why it did
    not run. `table` is what the notebook saved before (or showed, where it saved only the figure's data)."""
    profile: Profile
    name: str  # the files' name under figures/<run>/ (<name>.csv, .md, .png ...)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    reason: str | None = None  # set: the part does not run for this profile, and this says why
    table_caption: str | None = None  # set: save() writes the table (<name>.csv, .md, .json) with this caption
    figure_caption: str | None = None  # set: save() writes the figure, with this caption
    draw: Callable[[], tuple] | None = field(default=None, repr=False)  # () -> (Figure, the data it plots)
    figure_writes_data: bool = True  # False: <name>.csv is the table, not written again with the figure
    notes: tuple[str, ...] = ()  # sentences shown above the tables (a summary, a reading)
    shown: tuple[pd.DataFrame, ...] | None = field(default=None, repr=False)  # what a cell shows; None: the table
    writes: Callable[[], object] | None = field(default=None, repr=False)  # a report's writer, called by save()
    _fig: object = field(default=None, init=False, repr=False)

    @property
    def ran(self) -> bool:
        return self.reason is None

    def figure(self):
        """The figure (a matplotlib Figure, drawn once), or None: no figure, or the part did not run."""
        if self._fig is None and self.ran and self.draw is not None:
            self._fig = self.draw()[0]
        return self._fig

    def save(self) -> Result:
        """Write the table and the figure (and a report) where the notebooks write them: figures/<run>/ through
        plots.save_table / plots.save_figure. Does nothing for a part that did not run. Returns the result itself,
        so a cell `study.recipes().save()` shows it."""
        if not self.ran:
            return self
        if self.table_caption is not None:
            plots.save_table(self.table, self.name, self.profile, caption=plots.caption_for(self.profile,
                                                                                          self.table_caption))
        if self.draw is not None:
            fig, data = self.draw()  # drawn anew: save_figure marks the figure with the profile's name
            plots.save_figure(fig, self.name, data, self.profile, plots.caption_for(self.profile, self.figure_caption),
                              write_data=self.figure_writes_data)
            self._fig = fig
        if self.writes is not None:
            self.writes()
        return self

    def not_run_text(self) -> str:
        return experiments.not_run_message(self.profile, self.reason)

    def _ipython_display_(self) -> None:
        from IPython.display import Markdown, display

        if not self.ran:
            display(Markdown(self.not_run_text()))
            return
        for note in self.notes:
            display(Markdown(note))
        for table in (self.table,) if self.shown is None else self.shown:
            display(table)
        if self.figure() is not None:
            display(self.figure())

    def __repr__(self) -> str:
        if not self.ran:
            return f"<{self.name}: {self.not_run_text()}>"
        parts = [*self.notes, *(t.to_string(max_rows=20) for t in ((self.table,) if self.shown is None else self.shown))]
        return f"<{self.name}>\n" + "\n\n".join(parts)


def _once(method):
    """A Study method computed once per Study (the notebook's later cells reuse it; a new Study computes anew)."""
    @functools.wraps(method)
    def wrapper(self: Study) -> Result:
        if method.__name__ not in self._results:
            self._results[method.__name__] = method(self)
        return self._results[method.__name__]
    return wrapper


class Study:
    """The study of one run: the notebooks' three parameters resolved to a validated profile (`.profile`), and one
    method per experiment. In a notebook's kernel it also checks what papermill injected, shows figures inline and
    prints which run this is and where it writes (cptlib.study.notebooks.configure)."""

    FIGURES = ("forgetting", "n4", "recipes", "costs", "transfer", "ablations", "data_shift", "residual_norms",
               "effects", "sizes", "benchmarks", "drift_curves")  # the methods whose result has a figure

    def __init__(self, profile: str | Path = "default", overrides: dict | None = None, run_name: str | None = None):
        from cptlib.study import notebooks

        namespace = _kernel_namespace()
        self.profile = notebooks.configure(str(profile), overrides, run_name, namespace=namespace)
        self.panels = restored.panels(self.profile)  # the accuracies shown side by side
        self.labels = restored.labels(self.profile)  # what each metric is (the testbed's task, or the real one)
        self.second = "era_b" if "era_b" in self.panels else "era_a"  # beside IF in the two-metric panels
        self._results: dict[str, Result] = {}
        if namespace is not None:
            print(notebooks.describe(self.profile))

    def __repr__(self) -> str:
        from cptlib.study import notebooks

        return notebooks.describe(self.profile)

    def _result(self, name: str, **kwargs) -> Result:
        return Result(self.profile, name, **kwargs)

    def _not_run(self, name: str, part: str) -> Result | None:
        reason = experiments.why_not(self.profile, part)
        return Result(self.profile, name, reason=reason) if reason else None

    # Notebook 00: the family and its calibration.
    @_once
    def family(self) -> Result:
        """The model family of every training seed and its training record (family.csv)."""
        table = experiments.family_table(self.profile, self._families)
        return self._result("family", table=table, table_caption="nothing (the family's training record)")

    @_once
    def calibration(self) -> Result:
        """The members' scores against the testbed's calibration targets (calibration.csv), the missed ones first."""
        table = experiments.calibration(self.profile, self._families)  # a real profile: the scores, no targets
        missed = table[table.met == False]  # noqa: E712 (met is None for real models)
        return self._result("calibration", table=table, notes=(experiments.calibration_summary(table),),
                            shown=(missed, table) if len(missed) else (table,), table_caption=(
            "the testbed's calibration targets (docs/paper.md §2); CPT models: mean over every training seed (n_seeds)"))

    @functools.cached_property
    def _families(self):
        return experiments.families(self.profile)

    # Notebook 01: forgetting along CPT, and the N4 map.
    @_once
    def forgetting(self) -> Result:
        """C1, C2, Q2: every model along CPT (the table) and the forgetting figure (forgetting.csv: its data)."""
        curve = experiments.forgetting(self.profile)
        return self._result("forgetting", table=curve, figure_caption=figures.FORGETTING_CAPTION,
                            draw=lambda: figures.forgetting(curve, self.panels, self.labels))

    @_once
    def n4(self) -> Result:
        """N4: CPT budget × learning rate → restored IF, news accuracy and drift ratio (n4_map.png)."""
        if (skip := self._not_run("n4_map", "n4")):
            return skip
        n4 = experiments.n4_map(self.profile)
        instruct_if = experiments.reference_if(self.forgetting().table, n4.seed.unique())
        return self._result("n4_map", table=n4, figure_caption=figures.N4_CAPTION,
                            draw=lambda: figures.n4_map(n4, instruct_if, self.panels, self.labels))

    # Notebook 02: the recipes at the final budget and what they cost.
    @functools.cached_property
    def _recipes(self):
        return experiments.recipes(self.profile)

    @_once
    def recipes(self) -> Result:
        """C3: each recipe's mean and 95% interval over seeds + items (recipes.csv) and its figure."""
        if (skip := self._not_run("recipes", "recipes")):
            return skip
        summary = stats.summarize(self._recipes[0], ["recipe"], self.panels)
        return self._result("recipes", table=summary, table_caption=(
            "C3 (CPT base + residual ≈ instruct, news kept); mean and 95% CI (t over seeds + items)"),
            figure_caption=figures.RECIPES_CAPTION,
            draw=lambda: figures.recipes(summary, self.panels, self.labels, self.profile.cpt.tokens))

    @_once
    def costs(self) -> Result:
        """C6: what each recipe's step after CPT costs, FLOPs and wall time, mean over seeds (costs.csv)."""
        if (skip := self._not_run("costs", "recipes")):
            return skip
        per_seed = self._recipes[1]
        cost = experiments.recipe_costs(per_seed)
        return self._result("costs", table=cost, table_caption=(
            "C6 (adding the residual is far cheaper than SFT); mean over seeds"), figure_caption=figures.COSTS_CAPTION,
            draw=lambda: figures.costs(cost, per_seed.seed.nunique()), figure_writes_data=False)

    # Notebook 03: transfer between versions and families.
    @_once
    def transfer(self) -> Result:
        """C4, N1: every residual source × target, mean and 95% interval (transfer.csv), and the figure."""
        if (skip := self._not_run("transfer", "transfer")):
            return skip
        tr = experiments.transfer(self.profile)
        # The seeds C4 judges (the validity rule), so that the figure and its verdict share them (issue 48).
        kept = experiments.valid_seeds(self.profile, claims.CLAIMS["C4"].needs) or sorted(tr.seed.unique())
        tr = tr[tr.seed.isin(kept)]
        cells = experiments.transfer_cells(tr, self.panels)
        return self._result("transfer", table=cells, table_caption=(
            "C4 (residuals transfer between versions), N1 (not across families); mean and 95% CI (t over seeds + items) "
            f"over seed{'s' if len(kept) > 1 else ''} {', '.join(map(str, kept))}: those C4 judges"),
            figure_caption=figures.TRANSFER_CAPTION, draw=lambda: figures.transfer(cells, tr, self.labels))

    # Notebook 04: ablations, the data shift, where the residual lives.
    @_once
    def ablations(self) -> Result:
        """Q3, N3, α, rank and the PEFT adapter, each setting's mean over the seeds the ablations run on
        (experiments.part_seeds) with its 95% interval (ablations.csv)."""
        if (skip := self._not_run("ablations", "ablations")):
            return skip
        ab = experiments.ablation_summary(experiments.ablations(self.profile), self.panels)
        return self._result("ablations", table=ab, table_caption=(
            "Q3 (merge methods), N3 (module subsets), α, rank and the rank-r PEFT adapter; mean and 95% CI (t over "
            "seeds + items) over the seeds whose ancestors meet their calibration (n_seeds)"),
            figure_caption=figures.ABLATIONS_CAPTION,
            draw=lambda: figures.ablations(ab, self.panels, self.labels, self.second))

    @_once
    def data_shift(self) -> Result:
        """N2: how far the CPT data is from the original, against forgetting (shift.csv) and the figure."""
        if (skip := self._not_run("shift", "shift")):
            return skip
        shift = experiments.data_shift(self.profile)
        instruct_if = experiments.reference_if(self.forgetting().table, shift.seed.unique())
        return self._result("shift", table=shift, table_caption="N2 (data shift drives forgetting)",
                            figure_caption=figures.SHIFT_CAPTION,
                            draw=lambda: figures.shift(shift, instruct_if, self.labels))

    @_once
    def residual_norms(self) -> Result:
        """N3: where in the network the residual lives, per module (the figure; residual_norms.csv its data)."""
        if (skip := self._not_run("residual_norms", "residual_norms")):
            return skip
        norms = experiments.residual_norms(self.profile)
        return self._result("residual_norms", table=norms, figure_caption=figures.RESIDUAL_NORMS_CAPTION,
                            draw=lambda: figures.residual_norms(norms))

    # Notebook 05: the claims, the effects figure and the report.
    @functools.cached_property
    def _assessed(self):
        from cptlib.study import report

        return report.assess(self.profile, experiments.all_results(self.profile))

    @_once
    def claims(self) -> Result:
        """Every claim's verdict, in kind and in size, with its numbers (claims.csv; cptlib.study.claims)."""
        return self._result("claims", table=claims.table(self._assessed[1]),
                            table_caption="C1–C6, Q1–Q3, N1–N4 (docs/paper.md §1)")

    @_once
    def effects(self) -> Result:
        """Every effect a verdict uses with its interval, coloured by its check (the figure effects.png)."""
        from cptlib.study import report

        fx, judged = self._assessed
        rows = report.effect_rows(fx, judged)
        return self._result("effects", table=rows, figure_caption=report.EFFECTS_CAPTION,
                            draw=lambda: (report.claims_figure(rows), rows))

    @_once
    def report(self) -> Result:
        """figures/<run>/REPORT.md and report.html: the claims, every figure with its caption, calibration, run
        times and provenance (save() writes them)."""
        from cptlib.study import notebooks, report

        judged = self._assessed[1]
        return self._report("report", lambda: report.write_report(self.profile, judged,
                                                                  notebooks.run_times(self.profile)))

    def _report(self, name: str, write: Callable[[], dict[str, Path]]) -> Result:
        result = self._result(name)

        def writes():
            written = write()
            result.table = pd.DataFrame({"file": list(written), "path": [str(p) for p in written.values()]})
            result.notes = (f"Written: {', '.join(str(p) for p in written.values())}",)
        result.writes = writes
        result.notes = ("The report is written by save().",)
        return result

    # Notebook 06: the size ladder (Q1, C5).
    @functools.cached_property
    def _ladder(self) -> dict:
        from cptlib.study import scaling

        return scaling.results(self.profile)  # trains and evaluates (cached after)

    @_once
    def ladder_calibration(self) -> Result:
        """base_v1 and instruct_v1 of every size against the targets (ladder_calibration.csv); which sizes the
        primary fits leave out."""
        if (skip := self._not_run("ladder_calibration", "sizes")):
            return skip
        res = self._ladder
        calib = res["calibration"]
        left_out = "; ".join(f"{size} ({'; '.join(why)})" for size, why in res["invalid"].items()) or "none"
        note = (f"{int(calib.met.sum())} of {len(calib)} targets met. Left out of the primary fits: {left_out}. Named, "
                f"not gating (another ancestor seed): {'; '.join(res['other_seeds_missed']) or 'none'}")
        return self._result("ladder_calibration", table=calib, notes=(note,), table_caption=(
            "the ladder's calibration: base_v1 and instruct_v1 of every size (every ancestor seed of the profile's own "
            "size) against the study's targets; a size that misses one is left out of the primary fits"))

    @_once
    def ladder(self) -> Result:
        """Q1: each quantity per size at the default CPT, mean, interval and each seed's value (ladder.csv);
        shown as quantity × size."""
        if (skip := self._not_run("ladder", "sizes")):
            return skip
        per_size = self._ladder["per_size"]
        wide = per_size.pivot_table(index="quantity", columns="size", values="mean", sort=False)[
            list(dict.fromkeys(per_size["size"]))]
        return self._result("ladder", table=per_size, shown=(wide,), table_caption=(
            "Q1: each quantity per size at the default CPT, the mean over the size's seeds with its 95% interval "
            "(crossed seeds × items for accuracies, t over seeds for the geometry) and each seed's value; seeds_vary "
            "says what a seed changes there"))

    @_once
    def scaling(self) -> Result:
        """Q1, C5: each quantity's OLS trend on log10 parameters, and at the paper's sizes (scaling.csv)."""
        if (skip := self._not_run("scaling", "sizes")):
            return skip
        trends = self._ladder["trends"]
        shown = trends[["quantity", "fit_on", "k", "slope", "slope_lo", "slope_hi", "at 8B", "at 8B lo", "at 8B hi"]]
        return self._result("scaling", table=trends, shown=(shown,), table_caption=(
            "Q1, C5: OLS of each quantity's size means on log10 parameters (valid sizes: the primary fit; all sizes "
            "beside): slope per decade with its 95% t interval (k − 2 df), and the line at the paper's sizes with a 95% "
            "prediction interval — an extrapolation four orders of magnitude beyond the data, not a result"))

    @_once
    def sizes(self) -> Result:
        """The size ladder's figure: each quantity against parameters with its trend (sizes.png)."""
        if (skip := self._not_run("sizes", "sizes")):
            return skip
        res = self._ladder
        return self._result("sizes", table=res["per_size"], shown=(), figure_caption=figures.sizes_caption(res["trends"]),
                            draw=lambda: figures.sizes(res["per_size"], res["trends"], res["invalid"]))

    @_once
    def ladder_claims(self) -> Result:
        """C5 and Q1 judged on the ladder's trends (ladder_claims.csv)."""
        if (skip := self._not_run("ladder_claims", "sizes")):
            return skip
        return self._result("ladder_claims", table=self._ladder_table(),
                            table_caption="C5 and Q1 from the size ladder's trends")

    @functools.cached_property
    def _ladder_verdicts(self):
        from cptlib.study import verdicts

        ctx = verdicts.Context(claims.effects({"scaling": self._ladder["trends"]}), main_size=self.profile.model.size)
        return claims.judge(ctx, only=("C5", "Q1"))

    def _ladder_table(self) -> pd.DataFrame:
        return claims.table(self._ladder_verdicts)

    @_once
    def ladder_report(self) -> Result:
        """The size ladder's own REPORT.md and report.html, for a profile of the ladder alone (params/sizes.yaml);
        otherwise notebook 05's report holds C5 and Q1."""
        if (skip := self._not_run("ladder_report", "sizes")):
            return skip
        if self.profile.notebooks != [SIZES_NOTEBOOK]:
            return self._result("ladder_report", reason=f"it runs more notebooks than {SIZES_NOTEBOOK}, so notebook "
                                                        f"{REPORT_NOTEBOOK}'s report holds C5 and Q1")
        from cptlib.study import report

        return self._report("ladder_report", lambda: report.write_ladder_report(self.profile, self._ladder_verdicts,
                                                                                self._ladder))

    # Notebook 07: the paper's benchmarks (C1 and C2 across tasks).
    @functools.cached_property
    def _bench(self) -> dict:
        from cptlib.study import benchmarks

        return benchmarks.results(self.profile)  # evaluates every model (cached after)

    @_once
    def benchmark_scores(self) -> Result:
        """Every model's accuracy on each benchmark, mean and 95% interval (benchmark_scores.csv); shown as model ×
        benchmark."""
        if (skip := self._not_run("benchmark_scores", "benchmarks")):
            return skip
        per_model = self._bench["per_model"]
        wide = per_model.pivot_table(index=["model", "tokens"], columns="label", values="acc", sort=False)
        return self._result("benchmark_scores", table=per_model, shown=(wide,), table_caption=(
            "every model's accuracy on each benchmark (lm-eval's metric: acc_norm for ARC-Easy, HellaSwag, PIQA; acc "
            "for Winogrande, MMLU), mean over its seeds with the 95% crossed seeds + items t-interval"))

    @_once
    def benchmark_drops(self) -> Result:
        """C1 / C2 across tasks: each benchmark's drop over CPT and their average (benchmark_drops.csv)."""
        if (skip := self._not_run("benchmark_drops", "benchmarks")):
            return skip
        return self._result("benchmark_drops", table=self._bench["drops"], table_caption=(
            "C1 / C2 across tasks: accuracy before − after CPT at the final budget per benchmark (paired by item) and "
            "their unweighted average, 95% intervals (t over seeds + items; the average adds the tasks' item variances)"))

    @_once
    def benchmarks(self) -> Result:
        """The benchmarks figure: accuracies along CPT and the drops at the final budget (benchmarks.png)."""
        if (skip := self._not_run("benchmarks", "benchmarks")):
            return skip
        from cptlib.study import report

        res = self._bench
        return self._result("benchmarks", table=res["drops"], shown=(),
                            figure_caption=figures.BENCHMARKS_CAPTION + report.bench_note(self.profile),
                            draw=lambda: figures.benchmarks(res["curve"], res["per_model"], res["drops"]))

    @_once
    def benchmark_claims(self) -> Result:
        """C1 and C2 judged on the benchmarks alone (claims.csv), with their report, for a profile of the benchmarks
        alone; otherwise notebook 05 judges them with the rest."""
        if (skip := self._not_run("claims", "benchmarks")):
            return skip
        if REPORT_NOTEBOOK in self.profile.notebooks:
            return self._result("claims", reason=f"it runs {REPORT_NOTEBOOK}, whose claims table and report judge C1 "
                                                 "and C2 with the benchmarks")
        from cptlib.study import report

        judged = claims.benchmarks_alone(self._bench["drops"])
        result = self._result("claims", table=claims.table(judged), table_caption="C1 and C2 from the paper's benchmarks")
        result.writes = lambda: report.write_bench_report(self.profile, judged, self._bench)
        return result

    # Notebook 08: the claims over the drift (every N4 cell over every seed).
    @functools.cached_property
    def _drift_cells(self) -> pd.DataFrame:
        from cptlib.study import drift

        return drift.cells(self.profile)  # trains the grid's CPTs and SFTs (cached after)

    @_once
    def drift_cells(self) -> Result:
        """Every seed × learning rate × budget × recipe of the N4 grid, scored (drift_cells.csv); shown as the rows
        per model and learning rate."""
        if (skip := self._not_run("drift_cells", "drift")):
            return skip
        table = self._drift_cells
        rows = table.groupby(["model", "lr"], dropna=False).size().rename("rows").to_frame()
        return self._result("drift_cells", table=table, shown=(rows,), table_caption=(
            "issue 30 step 5: every seed × learning rate × budget × recipe of the N4 grid, scored on the panels' tasks"))

    @functools.cached_property
    def _per_cell(self) -> pd.DataFrame:
        from cptlib.study import drift

        return drift.regime(self._drift_cells, drift.validity(self.profile))

    @_once
    def drift_regime(self) -> Result:
        """C1–C3 judged at every cell inside the regime (drift ratio's upper end ≤ 0.5) by the claims' own rules and
        the validity rule (drift_regime.csv); shown in drift_across()."""
        if (skip := self._not_run("drift_regime", "drift")):
            return skip
        return self._result("drift_regime", table=self._per_cell, table_caption=(
            "issue 48 item 4: C1-C3 judged at every cell inside the regime (drift ratio's upper end <= 0.5), "
            "calibration log run 22 §5"))

    @_once
    def drift_across(self) -> Result:
        """Each claim across the regime: reproduced at every cell inside it, partly at some, not at none
        (drift_across.csv)."""
        if (skip := self._not_run("drift_across", "drift")):
            return skip
        from cptlib.study import drift

        return self._result("drift_across", table=drift.across(self._per_cell), table_caption=(
            "each claim across the regime: reproduced at every cell inside it, some (partly), none (not reproduced)"))

    @_once
    def drift_curves(self) -> Result:
        """C1, C2 and C3 as curves over the drift: per N4 cell, each curve's mean and 95% interval (drift_curves.csv),
        the reading written before the numbers, and the figure with the regime's verdicts."""
        if (skip := self._not_run("drift_curves", "drift")):
            return skip
        from cptlib.study import drift

        curves, per_cell = drift.claim_curves(self._drift_cells), self._per_cell
        return self._result("drift_curves", table=curves, notes=("\n\n".join(drift.reading(curves)),), shown=(),
                            table_caption=(
            "the claims over the drift: per N4 cell, each curve's mean over seeds with its 95% interval (crossed "
            "seeds + items, paired), and the cell's drift ratio (t over seeds)"),
            figure_caption=figures.drift_caption(curves), draw=lambda: figures.drift_curves(curves, per_cell))

    @_once
    def drift_report(self) -> Result:
        """The drift study's own REPORT.md and report.html, for a profile of the curves alone (params/drift.yaml)."""
        if (skip := self._not_run("drift_report", "drift")):
            return skip
        if self.profile.notebooks != [DRIFT_NOTEBOOK]:
            return self._result("drift_report", reason=f"it runs more notebooks than {DRIFT_NOTEBOOK}; the curves are "
                                                       "in its figures, the claims in notebook 05's report")
        from cptlib.study import report

        curves = self.drift_curves().table
        return self._report("drift_report", lambda: report.write_drift_report(self.profile, curves, self._per_cell))


def _kernel_namespace() -> dict | None:
    """The notebook's globals when this runs in a Jupyter kernel (what papermill injected is checked there), else
    None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell.user_ns if shell is not None and hasattr(shell, "kernel") else None
