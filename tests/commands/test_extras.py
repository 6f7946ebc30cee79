"""wandb and Hugging Face datasets as extras: a run that needs a missing one, or a wandb run
that would stop at wandb's login prompt, is refused before any work in one line."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import QUICKSTART
from window_cascades.commands import extras
from window_cascades.commands.extras import (
    MissingExtraError,
    check_wandb_login,
    missing_extra_message,
    require_extra,
)
from window_cascades.commands.pipeline_command import main as pipeline

WANDB_EXTRA = "pip install 'window-cascades[wandb]' (or [all])"


@pytest.fixture
def without(monkeypatch):
    """Make the named modules look uninstalled (to find_spec)."""

    def hide(*names: str) -> None:
        real = importlib.util.find_spec
        monkeypatch.setattr(
            extras.importlib.util,
            "find_spec",
            lambda name, *a: None if name in names else real(name, *a),
        )

    return hide


def test_a_missing_extra_is_one_line_naming_it(without):
    without("wandb", "datasets")
    with pytest.raises(MissingExtraError) as err:
        require_extra("wandb")
    assert str(err.value).endswith(WANDB_EXTRA)
    with pytest.raises(MissingExtraError, match=r"window-cascades\[hf\]"):
        require_extra("datasets")


@pytest.mark.parametrize(
    "err",
    [
        ModuleNotFoundError("No module named 'wandb'", name="wandb"),
        ModuleNotFoundError("No module named 'wandb.sdk'", name="wandb.sdk"),
        # Lightning's WandbLogger without wandb
        ModuleNotFoundError("Requirement 'wandb>=0.12.10' not met. HINT: Try running ..."),
    ],
)
def test_an_import_error_deep_in_a_run_names_the_extra(err):
    assert missing_extra_message(err).endswith(WANDB_EXTRA)


def test_other_errors_are_not_taken_for_a_missing_extra():
    assert missing_extra_message(ModuleNotFoundError("x", name="timm")) is None
    assert missing_extra_message(ValueError("wandb")) is None


def test_the_pipeline_with_wandb_missing_stops_before_any_work(
    without, tmp_path, monkeypatch, capsys
):
    without("wandb")
    monkeypatch.chdir(tmp_path)
    config = str(QUICKSTART / "pipeline.yaml")
    assert pipeline(["--config", config, "--logger", "wandb", "--out", "o"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: logging to wandb") and err[0].endswith(WANDB_EXTRA)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def logged_out(tmp_path, monkeypatch):
    """No wandb credentials and no mode: an empty home, no key, no netrc."""
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_DISABLED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "home" / ".config" / "wandb"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_wandb_without_a_login_is_refused_before_any_work(logged_out, capsys):
    with pytest.raises(ValueError) as err:
        check_wandb_login("--logger wandb")
    message = str(err.value)
    assert message.startswith("--logger wandb: not logged in to wandb")
    assert "wandb login" in message and "WANDB_MODE=offline" in message
    config = str(QUICKSTART / "pipeline.yaml")
    assert pipeline(["--config", config, "--logger", "wandb", "--out", "o"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")
    assert not (logged_out.parent / "o").exists()


@pytest.mark.parametrize(
    "how",
    ["api key", "netrc", "offline mode", "wandb offline", "disabled"],
)
def test_a_login_or_an_offline_mode_lets_it_run(logged_out, monkeypatch, how):
    if how == "api key":
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    elif how == "netrc":
        (logged_out / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password k\n")
        (logged_out / ".netrc").chmod(0o600)
    elif how == "offline mode":
        monkeypatch.setenv("WANDB_MODE", "offline")
    elif how == "wandb offline":  # what `wandb offline` writes
        settings = logged_out / ".config" / "wandb"
        settings.mkdir(parents=True)
        (settings / "settings").write_text("[default]\nmode = offline\n")
    else:
        monkeypatch.setenv("WANDB_DISABLED", "true")
    check_wandb_login()
