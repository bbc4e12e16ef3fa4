"""cptlib: continued pre-training vs instruction tuning, and the instruction residual (arXiv 2410.10739).

Importing cptlib changes nothing outside it: no environment variable, no library setting. The entry points (the
`cptlib` command, the notebooks' kernel, the test suite, the bench scripts) point the libraries' caches into the
project with `cptlib.core.paths.use_project_caches()`.
"""

__version__ = "0.1.0"
