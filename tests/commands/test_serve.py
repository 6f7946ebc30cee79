"""``window-cascades serve`` before any process starts: without the [serve] extra one line
says which to install; a checkpoint, policy, member, limit or token it cannot use is one line,
``error: ...``, exit status 2, and nothing is started or written."""

from __future__ import annotations

import importlib.util
import shutil

import pytest
import torch

from tests.lightning_modules.test_cascade_data_input import older_checkpoint, write_cascade
from window_cascades.commands import serve
from window_cascades.commands.window_cascades import main as window_cascades


@pytest.fixture
def cascade(tmp_path) -> str:
    return write_cascade(tmp_path)


def errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_without_the_extra_one_line_names_it(cascade, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "litserve" else real(name, *a)
    )
    assert window_cascades(["serve", "--ckpt_path", cascade]) == 2
    assert errors(capsys) == [
        "error: serve needs the [serve] extra: pip install 'window-cascades[serve]' "
        "(litserve is not installed)"
    ]


def test_what_cannot_be_served_is_one_line_and_starts_nothing(tmp_path, cascade, capsys):
    pytest.importorskip("litserve", reason="the [serve] extra is not installed")
    ckpt = torch.load(cascade, weights_only=True)
    torch.save({**ckpt, "fitted_cascade": None}, tmp_path / "uncalibrated.ckpt")
    (tmp_path / "token").write_text("two words\n")
    (tmp_path / "m0.ckpt").rename(tmp_path / "moved.ckpt")
    cases = [  # (arguments after --ckpt_path CASCADE, or a --ckpt_path of their own; the line)
        (["--host", "10.0.0.7"], "--host 10.0.0.7: expected 127.0.0.1 (or localhost"),
        (["--port", "80"], "--port 80: expected a port from 1024 to 65535"),
        (["--policy", "budget_window"], "policy 'budget_window' was not fitted; the cascade has"),
        (["--members", "nowhere.ckpt", "b.ckpt"], "--members: member checkpoint not found: nowh"),
        (["--members", str(tmp_path / "m1.ckpt")], "--members: 1 member(s) given, but"),
        (["--formats", "png,gif"], "--formats png,gif: expected one or more of png, jpeg"),
        (["--token_file", str(tmp_path / "token")], "expected one token (no spaces) in the file"),
        (["--ckpt_path", str(tmp_path / "uncalibrated.ckpt")], "needs a calibrated cascade"),
        (["--ckpt_path", str(tmp_path / "token")], "not a readable cascade checkpoint"),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    for extra, expected in cases:
        args = extra if extra[0] == "--ckpt_path" else ["--ckpt_path", cascade, *extra]
        assert serve.main(args, "window-cascades serve") == 2, extra
        lines = errors(capsys)
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_older_checkpoint_needs_its_member_files(tmp_path, cascade, capsys):
    pytest.importorskip("litserve", reason="the [serve] extra is not installed")
    older = older_checkpoint(cascade, tmp_path / "older.ckpt")
    settings, ready, _ = serve.serve_settings(
        serve.build_parser().parse_args(["--ckpt_path", older, "--port", "8123"])
    )
    assert settings.member_names == ["m0", "m1"] and settings.preparation.size == 32
    assert ready.endswith("on http://127.0.0.1:8123")
    shutil.move(tmp_path / "m0.ckpt", tmp_path / "gone.ckpt")
    assert serve.main(["--ckpt_path", older], "window-cascades serve") == 2
    assert "is not found (moved?)" in errors(capsys)[0]


def test_the_settings_come_from_the_checkpoint_alone(cascade, monkeypatch):
    pytest.importorskip("litserve", reason="the [serve] extra is not installed")
    monkeypatch.setenv(serve.TOKEN_ENV, "s3cret")
    args = serve.build_parser().parse_args(
        [
            "--ckpt_path",
            cascade,
            "--host",
            "localhost",
            "--policy",
            "ensemble",
            "--max_pixels",
            "100",
        ]
    )
    settings, ready, kwargs = serve.serve_settings(args)
    prep = settings.preparation
    assert (prep.size, prep.crop_pct, prep.mean, prep.std, prep.mode) == (
        32,
        1.0,
        (0.5,),
        (0.5,),
        "L",
    )
    assert prep.max_pixels == 100 and settings.token == "s3cret" and settings.members == []
    assert settings.info["members"][0]["model"] == "resnet10t"
    assert len(settings.info["members"][1]["sha256"]) == 64
    assert ready == (
        f"serving {cascade} (2 members: m0, m1; policy ensemble, stage scheduler) on "
        "http://127.0.0.1:8000"
    )
    assert kwargs == {"accelerator": "auto", "devices": 1, "timeout": 30.0}
    assert serve.default_threads() >= 1
