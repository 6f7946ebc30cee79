"""Files the pipeline writes and reads: cached logits, fitted_cascade.json, metrics.csv, plots.

Every writer goes through a temporary file and an atomic rename, so an interrupted or failed
run never leaves a half-written file in place of a good one.
"""
