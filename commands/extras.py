"""Optional packages: wandb and Hugging Face ``datasets`` are extras of the package, installed
only by those who use them (``pip install 'window-cascades[wandb]'``, ``[hf]``, ``[all]``).

A run that needs one and finds it missing stops with one line naming the extra
(``require_extra`` before any work, ``missing_extra_message`` for the error of an import
deep inside a run). A wandb run that would stop at wandb's login prompt (no API key, no
``~/.netrc`` entry, no offline mode) is refused before anything trains
(``check_wandb_login``). Only the standard library is imported here.
"""

from __future__ import annotations

import configparser
import importlib.util
import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit

#: importable module -> (the extra that installs it, what needs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "wandb": ("wandb", "logging to wandb (--logger wandb, a WandbLogger)"),
    "datasets": ("hf", "a Hugging Face dataset (format: hf)"),
}
#: wandb modes in which nothing is sent, so no login is needed
OFFLINE_MODES = ("offline", "disabled", "dryrun")


class MissingExtraError(ValueError):
    """A run needs an optional package that is not installed (the message names the extra)."""


def extra_message(module: str) -> str:
    """The one line telling how to install ``module``'s extra."""
    extra, what = EXTRAS[module]
    return (
        f"{what} needs the {module} package, an optional extra: "
        f"pip install 'window-cascades[{extra}]' (or [all])"
    )


def require_extra(module: str) -> None:
    """Refuse, before any work, a run needing ``module`` (a key of ``EXTRAS``) when it is
    not installed.

    Raises:
        MissingExtraError: naming the extra to install.
    """
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(extra_message(module))


def missing_extra_message(err: BaseException) -> str | None:
    """The one line for an ``ImportError`` of an extra's package (raised inside a run, e.g. by
    Lightning's ``WandbLogger``); None for any other error."""
    if not isinstance(err, ImportError):
        return None
    name = (getattr(err, "name", None) or "").split(".")[0]
    if name in EXTRAS:
        return extra_message(name)
    text = str(err)
    for module in EXTRAS:  # Lightning: "Requirement 'wandb>=0.12.10' not met ..."
        if f"'{module}" in text or f"`{module}`" in text:
            return extra_message(module)
    return None


def wandb_mode() -> str | None:
    """wandb's mode as set for this run: ``$WANDB_MODE`` (``WANDB_DISABLED=true``: disabled),
    else ``wandb offline``/``wandb disabled``'s setting (``./wandb/settings``, then
    ``$WANDB_CONFIG_DIR/settings`` or ``~/.config/wandb/settings``); None when unset."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1"):
        return "disabled"
    config_dir = Path(os.environ.get("WANDB_CONFIG_DIR", Path.home() / ".config" / "wandb"))
    for path in (Path("wandb") / "settings", config_dir / "settings"):
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        if parser.has_option("default", "mode"):
            return parser.get("default", "mode")
    return None


def wandb_logged_in() -> bool:
    """Whether wandb finds credentials without asking: ``$WANDB_API_KEY``,
    ``$WANDB_IDENTITY_TOKEN_FILE``, or a ``.netrc`` entry (``$NETRC`` or ``~/.netrc``, what
    ``wandb login`` writes) for the host of ``$WANDB_BASE_URL`` (default api.wandb.ai)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).netloc
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc")).expanduser()
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def check_wandb_login(option: str = "--logger wandb") -> None:
    """Refuse, before any work, a wandb run that would stop at wandb's login prompt (or its
    ``UsageError`` in a batch job): wandb installed, online, and no credentials.

    Raises:
        MissingExtraError: wandb is not installed.
        ValueError: not logged in (the message says how to log in or run offline).
    """
    require_extra("wandb")
    mode = wandb_mode()
    if mode in OFFLINE_MODES or wandb_logged_in():
        return
    raise ValueError(
        f"{option}: not logged in to wandb (no WANDB_API_KEY, no ~/.netrc entry for "
        f"{urlsplit(os.environ.get('WANDB_BASE_URL', 'https://api.wandb.ai')).netloc}); run "
        "'wandb login', or set WANDB_MODE=offline and sync later (wandb sync)"
    )
