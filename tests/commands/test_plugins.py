"""Plugins (``window_cascades.commands.plugins``): files and modules loaded once, under names of
their own, each failure one line; installed plugins from the entry-point group; ``--plugin``
read before any parser, and kept for what the command starts (SLURM jobs, DDP re-runs)."""

from __future__ import annotations

import shlex
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from window_cascades.commands import plugins
from window_cascades.commands.plugins import (
    ENTRY_POINT_GROUP,
    PluginError,
    forwarded_plugins,
    load_entry_point_plugins,
    load_plugin,
    plugin_module_name,
    split_plugin_arguments,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_file_is_imported_once_under_a_name_of_its_own(tmp_path):
    a = write(tmp_path / "a" / "policies.py", "import itertools\nCOUNT = next(iter([1]))\n")
    b = write(tmp_path / "b" / "policies.py", "VALUE = 'b'\n")
    first, again = load_plugin(a), load_plugin(str(a))
    assert first is again  # once per process, however it is named
    other = load_plugin(b)
    assert other is not first and other.VALUE == "b"
    assert first.__name__ == plugin_module_name(a) != plugin_module_name(b)
    assert sys.modules[first.__name__] is first
    assert "policies" not in sys.modules  # no installed module is shadowed


def test_a_module_is_imported_by_name(tmp_path, monkeypatch):
    write(tmp_path / "my_plugin_pkg" / "__init__.py", "")
    write(tmp_path / "my_plugin_pkg" / "extra.py", "NAME = 'extra'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_plugin("my_plugin_pkg.extra").NAME == "extra"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("missing.py", r"^--plugin missing.py: no such file \(.*missing.py\)"),
        ("folder/", r"^--plugin folder/: a folder"),
        ("no_such_plugin_module", r"^--plugin no_such_plugin_module: no module named "),
        ("not-a-module", r"^--plugin not-a-module: not a module name nor a .py file"),
        (
            "raises.py",
            r"^--plugin raises.py: importing it raised KeyError: 'width' \(raises.py:3\)$",
        ),
        ("imports.py", r"^--plugin imports.py: importing it raised ModuleNotFoundError: No module"),
    ],
)
def test_a_plugin_that_cannot_be_loaded_is_one_line_naming_it(spec, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    write(tmp_path / "raises.py", "import math\n\nsettings = {}['width']\n")
    write(tmp_path / "imports.py", "import a_package_nobody_installed\n")
    with pytest.raises(PluginError, match=message) as err:
        load_plugin(spec)
    assert "\n" not in str(err.value)
    for failed in ("raises.py", "imports.py"):  # no half-imported module is left behind
        assert plugin_module_name(tmp_path / failed) not in sys.modules


def test_plugin_arguments_are_taken_out_before_a_bare_double_dash():
    argv = ["--plugin", "a.py", "fit", "--plugin=mod.x", "--x", "1", "--", "--plugin", "b.py"]
    assert split_plugin_arguments(argv) == (
        ["a.py", "mod.x"],
        ["fit", "--x", "1", "--", "--plugin", "b.py"],
    )
    with pytest.raises(PluginError, match="^--plugin: expected a .py file or a module name"):
        split_plugin_arguments(["--plugin", "--target", "cov@5"])


def test_forwarded_file_plugins_are_absolute_and_modules_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert forwarded_plugins(["p/my.py", "my_package.policies"]) == [
        f"--plugin={tmp_path / 'p' / 'my.py'}",
        "--plugin=my_package.policies",
    ]


@pytest.fixture
def entry_points(monkeypatch):
    """The installed plugins replaced by the entries a test sets (and loaded afresh)."""
    found: list[EntryPoint] = []
    monkeypatch.setattr(plugins, "_ENTRY_POINTS_LOADED", False)
    monkeypatch.setattr(
        "importlib.metadata.entry_points",
        lambda group: [e for e in found if e.group == group],
    )
    return found


def test_installed_plugins_load_once_module_or_function(entry_points, tmp_path, monkeypatch):
    write(tmp_path / "installed_plugin_mod.py", "LOADED = True\n")
    write(
        tmp_path / "installed_plugin_fn.py",
        "CALLS = []\n\ndef register():\n    CALLS.append(1)\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_points += [
        EntryPoint("mod", "installed_plugin_mod", ENTRY_POINT_GROUP),
        EntryPoint("fn", "installed_plugin_fn:register", ENTRY_POINT_GROUP),
        EntryPoint("other", "not_ours", "console_scripts"),
    ]
    loaded = load_entry_point_plugins()
    assert [m.__name__ for m in loaded] == ["installed_plugin_mod", "installed_plugin_fn"]
    assert loaded[1].CALLS == [1]
    assert load_entry_point_plugins() == []  # once per process


def test_an_installed_plugin_that_raises_names_its_entry_point(entry_points, tmp_path, monkeypatch):
    write(tmp_path / "broken_installed_plugin.py", "raise RuntimeError('needs a GPU')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_points.append(EntryPoint("broken", "broken_installed_plugin", ENTRY_POINT_GROUP))
    with pytest.raises(
        PluginError, match=r"^entry point broken = broken_installed_plugin \(group "
    ):
        load_entry_point_plugins()


def test_the_dispatcher_loads_plugins_before_or_after_the_subcommand(tmp_path, capsys):
    from window_cascades.commands.window_cascades import main

    plugin = write(tmp_path / "dispatched.py", "raise ValueError('bad plugin')\n")
    for argv in (
        ["--plugin", str(plugin), "readme-table", "x"],
        ["readme-table", f"--plugin={plugin}", "x"],
    ):
        assert main(argv) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"error: --plugin {plugin}: importing it raised ValueError: bad plugin "
            "(dispatched.py:1)"
        ]


def test_submit_passes_the_plugins_to_both_jobs(tmp_path, monkeypatch, capsys):
    from window_cascades.commands.slurm_submit import main

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "mine" / "policies.py", "NAME = 'mine'\n")
    argv = ["quickstart", "--plugin", "mine/policies.py", "--dry-run", "--", "--overwrite"]
    assert main(argv) == 0
    jobs = [shlex.split(line) for line in capsys.readouterr().out.splitlines()]
    assert len(jobs) == 2
    for job in jobs:
        pipeline = job[job.index("quickstart") + 1 :]
        assert pipeline[:2] == [f"--plugin={tmp_path / 'mine' / 'policies.py'}", "--overwrite"]
    assert main(["quickstart", "--plugin", "nothing.py", "--dry-run"]) == 2
    assert "error: --plugin nothing.py: no such file" in capsys.readouterr().err


def test_a_command_keeps_sys_argv_as_it_came(tmp_path, monkeypatch):
    """Lightning's DDP launch re-runs sys.argv: the plugins must still be in it."""
    from window_cascades.commands import cli_entry

    plugin = write(tmp_path / "kept.py", "NAME = 'kept'\n")
    given = ["train_member.py", "fit", "--plugin", str(plugin), "--config", "missing.yaml"]
    monkeypatch.setattr(sys, "argv", list(given))
    assert cli_entry.run_command(cli_entry.MEMBER) == 2  # the config is missing
    assert sys.argv == given
