"""The package's metadata: dependencies declared once (requirements files read by pyproject)."""

from __future__ import annotations

import email
import os
import re
from pathlib import Path

import tomllib

from tests.conftest import ROOT


def _requirements(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [re.sub(r"\s+", "", line) for line in lines if line.strip() and not line.startswith("#")]


def _normalised(spec: str) -> tuple[str, frozenset[str]]:
    """(name with extras, set of version clauses): the order of clauses is not meaningful."""
    spec = spec.split(";")[0].replace(" ", "")
    name = re.match(r"[A-Za-z0-9_.\-\[\],]+", spec).group(0)
    return name.lower(), frozenset(c for c in spec[len(name) :].split(",") if c)


def test_the_wheel_requires_exactly_the_requirement_files(tmp_path):
    from setuptools.build_meta import prepare_metadata_for_build_wheel

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        info = prepare_metadata_for_build_wheel(str(tmp_path))
    finally:
        os.chdir(cwd)
    meta = email.message_from_string((Path(tmp_path) / info / "METADATA").read_text())
    required = meta.get_all("Requires-Dist")
    runtime = {_normalised(r) for r in required if "extra ==" not in r}
    dev = {_normalised(r) for r in required if 'extra == "dev"' in r}
    docs = {_normalised(r) for r in required if 'extra == "docs"' in r}
    assert runtime == {_normalised(r) for r in _requirements("requirements.txt")}
    assert dev == {_normalised(r) for r in _requirements("requirements-dev.txt")}
    assert docs == {_normalised(r) for r in _requirements("requirements-docs.txt")}
    extras = {
        name: {_normalised(r) for r in required if f'extra == "{name}"' in r}
        for name in ("wandb", "hf", "all")
    }
    assert extras["wandb"] == {_normalised(r) for r in _requirements("requirements-wandb.txt")}
    assert extras["hf"] == {_normalised(r) for r in _requirements("requirements-hf.txt")}
    assert extras["all"] == extras["wandb"] | extras["hf"]
    # a plain install pulls neither wandb nor Hugging Face datasets
    assert not {name for name, _ in runtime} & {"wandb", "datasets"}
    assert meta["Name"] == "window-cascades"
    assert sorted(meta.get_all("Provides-Extra")) == ["all", "dev", "docs", "hf", "wandb"]


def test_the_wheel_ships_the_configs_and_the_job_scripts(tmp_path):
    """`pip install <clone>` carries what the installed command reads: every config under
    configs/ (the quick start by name from any folder, `init`) and the SLURM job scripts."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "outputs", "site", "*.egg-info", "build", "__pycache__", ".*_cache"
        ),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("window_cascades-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # one import name: everything but the metadata lies under window_cascades/
    tops = {n.split("/")[0] for n in names if ".dist-info/" not in n}
    assert tops == {"window_cascades"}, sorted(tops)
    top_level = next((n for n in names if n.endswith(".dist-info/top_level.txt")), None)
    if top_level:
        assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["window_cascades"]
    configs = {
        f"window_cascades/{p.relative_to(ROOT).as_posix()}"
        for p in (ROOT / "configs").rglob("*.yaml")
    }
    assert configs and configs <= names, sorted(configs - names)
    jobs = {
        f"window_cascades/commands/slurm_jobs/{p.name}"
        for p in (ROOT / "scripts/slurm").glob("*.sbatch")
    }
    assert len(jobs) == 2 and jobs <= names
    mapped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    modules = {
        f"{package.replace('.', '/')}/{p.relative_to(ROOT / folder).as_posix()}"
        for package, folder in mapped["package-dir"].items()
        for p in (ROOT / folder).rglob("*.py")
    }
    assert modules and modules <= names, sorted(modules - names)
    assert (
        "window-cascades = window_cascades.commands.window_cascades:main"
        in zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )


def test_ci_checks_the_installed_package_before_the_test_suite():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert lines[-2:] == ["bash scripts/check_install.sh", "bash scripts/test.sh"]
