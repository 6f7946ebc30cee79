"""Lightning modules: ensemble members (training) and the cascade (evaluation)."""

from lightning_modules.cascade_module import CascadeModule
from lightning_modules.member import MemberModule, load_member

__all__ = ["CascadeModule", "MemberModule", "load_member"]
