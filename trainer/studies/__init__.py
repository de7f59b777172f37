"""Comparing training runs: the trials of each study, run as trainer processes, and their results."""
