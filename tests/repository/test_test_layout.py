"""The tests mirror the source: ``tests/<package>/test_<module>.py`` tests
``<package>/<module>.py``; end-to-end runs live in ``tests/end_to_end/``, checks of the
repository itself in ``tests/repository/``; shared fixtures and helpers at the top of
``tests/``."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT

TESTS = ROOT / "tests"
OWN_FOLDERS = {"end_to_end", "repository", "data", "__pycache__"}


def _package_folders() -> dict[str, str]:
    """Import name -> folder of every package the wheel installs (pyproject's package-dir)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"window_cascades": "window_cascades"}
    folders.update(
        {name: folder for name, folder in setuptools["package-dir"].items() if name.count(".") == 1}
    )
    return folders


def test_every_test_file_of_a_package_names_a_module_of_it():
    packages = {folder for folder in _package_folders().values()}
    stale = []
    for path in sorted(TESTS.rglob("test_*.py")):
        relative = path.relative_to(TESTS)
        if len(relative.parts) == 1 or relative.parts[0] in OWN_FOLDERS:
            continue
        assert relative.parts[0] in packages, f"tests/{relative}: not a package of the library"
        module = ROOT.joinpath(*relative.parts[:-1], path.name.removeprefix("test_"))
        if not module.is_file():
            stale.append(f"tests/{relative} (no {module.relative_to(ROOT)})")
    assert not stale, "test files whose module is gone or renamed:\n" + "\n".join(stale)


def test_test_files_live_in_their_package_folder():
    loose = [p.name for p in TESTS.glob("test_*.py")]
    assert not loose, f"test files at the top of tests/ (move them beside their module): {loose}"
    for folder in TESTS.iterdir():
        if folder.is_dir() and folder.name not in OWN_FOLDERS:
            assert folder.name in set(_package_folders().values()), folder


def test_coverage_measures_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["coverage"]["run"]
    mapped = {f for f in _package_folders().values() if any((ROOT / f).rglob("*.py"))}
    assert set(config["source"]) == mapped
