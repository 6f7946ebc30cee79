"""The package's metadata: dependencies declared once (requirements files read by pyproject)."""

from __future__ import annotations

import email
import os
import re
from pathlib import Path

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
    assert meta["Name"] == "window-cascades"
    assert sorted(meta.get_all("Provides-Extra")) == ["dev", "docs"]
