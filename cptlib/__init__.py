"""cptlib: continued pre-training vs instruction tuning, and the instruction residual (arXiv 2410.10739)."""
from cptlib.core.paths import use_project_caches

use_project_caches()

__version__ = "0.1.0"
