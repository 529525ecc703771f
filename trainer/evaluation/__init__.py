"""Evaluation tooling, torch-free (numpy, OpenCV, the runtime): metrics, plots, and `unveil temporal-eval`."""
