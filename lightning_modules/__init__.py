"""Lightning modules: ensemble members (training) and the cascade (evaluation).

The names below are imported on first use, so ``window_cascades.commands.cli_entry`` can check a
command's arguments before Lightning is imported.
"""

import importlib

_LAZY = {
    "CascadeModule": "window_cascades.lightning_modules.cascade_module",
    "MemberModule": "window_cascades.lightning_modules.member",
    "load_member": "window_cascades.lightning_modules.member_checkpoint",
}

__all__ = ["CascadeModule", "MemberModule", "load_member"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lightning_modules' has no attribute {name!r}")
