"""Window-based early-exit cascades of deep ensembles (Xia & Bouganis, ICCV 2023).

The one import name of the project. Its public Python API, importable from here
(``window_cascades.evaluate``, ...), is ``window_cascades.api``:
[`Logits`][window_cascades.api.Logits], [`load_logits`][window_cascades.api.load_logits],
[`evaluate`][window_cascades.api.evaluate], [`fit_cascade`][window_cascades.api.fit_cascade],
[`save_fitted`][window_cascades.api.save_fitted],
[`load_fitted`][window_cascades.api.load_fitted],
[`load_cascade`][window_cascades.api.load_cascade], [`decide`][window_cascades.api.decide],
[`register_policy`][window_cascades.api.register_policy],
[`register_metric`][window_cascades.api.register_metric],
[`register_score`][window_cascades.api.register_score],
[`register_statistic`][window_cascades.api.register_statistic] and
[`load_plugins`][window_cascades.api.load_plugins]. They are loaded on first use: ``import
window_cascades`` imports no torch, so the commands (which import this package first) check
their arguments before the heavy imports.

Its packages, each importable under its own name: ``window_cascades.vocabulary``,
``window_cascades.uncertainty``, ``window_cascades.cascade``, ``window_cascades.artifacts``,
``window_cascades.datamodules``, ``window_cascades.lightning_modules`` and
``window_cascades.commands``; the shipped configs are ``window_cascades.configs``.
"""

import importlib

__version__ = "0.2.0"

__all__ = [
    "__version__",
    "Logits",
    "LogitsFolder",
    "Evaluation",
    "load_logits",
    "evaluate",
    "fit_cascade",
    "save_fitted",
    "load_fitted",
    "load_cascade",
    "decide",
    "register_policy",
    "register_metric",
    "register_score",
    "register_statistic",
    "load_plugins",
]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("window_cascades.api"), name)
    raise AttributeError(f"module 'window_cascades' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
