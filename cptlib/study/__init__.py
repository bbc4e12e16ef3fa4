"""The study: the experiments of notebooks 01-04 (experiments), restored models and their scores (restored), 95%
intervals (stats), figures (plots), claims and report (report), the notebooks' runner (notebooks) and the cost
model of a run (costs)."""
