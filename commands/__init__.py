"""The commands: what ``scripts/*.py`` and the SLURM jobs run.

``cli_entry`` checks a command's arguments before Lightning is imported, ``cli`` is the
LightningCLI adapter of the member and cascade commands, ``pipeline_steps`` and ``experiment``
run the pipeline steps (fit, cache logits, evaluate) from ``pipeline_config``, ``offline`` is the
offline evaluator (``scripts/evaluate_logits.py``) and ``readme_table`` rewrites the README's
results table. The top layer: nothing below imports from here.
"""
