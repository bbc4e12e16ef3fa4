"""The study: the experiments of notebooks 01-04 (experiments), restored models and their scores (restored), 95%
intervals (stats), figures (plots), claims and report (report), the notebooks' runner (notebooks), their API (api:
`from cptlib.study import Study`) and the cost model of a run (costs)."""


def __getattr__(name: str):
    """`Study` is imported on first use: the command line imports cptlib.study.notebooks without pandas or torch."""
    if name == "Study":
        from cptlib.study.api import Study

        return Study
    raise AttributeError(f"module 'cptlib.study' has no attribute {name!r}")
