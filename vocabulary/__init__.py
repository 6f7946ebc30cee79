"""Words every layer shares, with no behaviour of their own: the dataset roles (``roles``), and
the checks of option values that need no data (``checks``).

The bottom layer with ``uncertainty``: it imports nothing of the project, so ``datamodules``
and ``cascade`` can both use it without importing each other.
"""
