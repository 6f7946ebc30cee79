"""The names users pick from on the command line, importable without torch (so a command can
check its arguments before its heavy imports): confidence scores and definition sets."""

SCORES: tuple[str, ...] = ("msp", "entropy", "max_logit", "energy", "mutual_information")
"""Confidence scores (``window_cascades.uncertainty.scores``): maximum softmax probability, negative
entropy, maximum logit, energy (logsumexp), negative mutual information (ensemble disagreement)."""

DEFINITION_NAMES: tuple[str, ...] = ("standard", "paper")
"""Definition sets (``window_cascades.uncertainty.definitions``): this project's tie-aware
definitions, or the paper's reference code's rules."""
