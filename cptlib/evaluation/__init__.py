"""Evaluation through lm-evaluation-harness: the testbed suite and its task YAMLs (evaluate, tasks/), the real suite
(real_suite) and a real profile's metrics (real_profile), the calibration targets (calibration), IFEval's Punkt
data (punkt_data), and `cptlib eval` (cli)."""
