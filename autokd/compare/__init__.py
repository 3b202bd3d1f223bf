"""Comparing found strategies against hand-tuned baselines: full-length multi-seed runs, statistics, reports."""
