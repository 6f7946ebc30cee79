"""Window-based early-exit cascades of deep ensembles (Xia & Bouganis, ICCV 2023).

The one import name of the project. Its packages: ``window_cascades.vocabulary``,
``window_cascades.uncertainty``, ``window_cascades.cascade``, ``window_cascades.artifacts``,
``window_cascades.datamodules``, ``window_cascades.lightning_modules`` and
``window_cascades.commands``; the shipped configs are ``window_cascades.configs``.
"""

__version__ = "0.2.0"
