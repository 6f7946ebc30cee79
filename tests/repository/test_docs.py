"""The documentation site's sources: complete, self-contained, and built by CI.

The strict build itself (``bash scripts/build_docs.sh``, run by ``.ci/run``) checks links,
references and docstrings; these checks need no docs tools installed.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import tomllib

from tests.conftest import ROOT


def _public_modules() -> set[str]:
    """``window_cascades``, its own modules (``window_cascades.api``) and every module of its
    packages (the folders pyproject.toml maps under it) whose name, and every parent's, does not
    start with ``_``."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {"window_cascades"}
    found |= {
        f"window_cascades.{p.stem}"
        for p in (ROOT / "window_cascades").glob("*.py")
        if not p.stem.startswith("_")
    }
    for package, folder in mapping["package-dir"].items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            if not any(p.startswith("_") for p in parts):
                found.add(".".join((package, *parts)))
    return found


def test_the_api_reference_documents_every_public_module():
    documented = set()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        documented |= set(re.findall(r"^::: ([\w.]+)", page.read_text(), re.M))
    assert _public_modules() - documented == set()
    assert documented - _public_modules() == set()  # no page documents a module that is gone


def test_every_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert {p for p in pages if p != "README.md" and p not in nav} == set()


def test_no_file_points_to_the_shared_design_notes():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    hits = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".md", ".py", ".sh", ".yaml", ".yml", ".toml", ".txt"}:
            continue
        if path.resolve() == (ROOT / "tests" / "repository" / "test_docs.py").resolve():
            continue
        text = path.read_text(errors="replace")
        if re.search(r"DESIGN\.md|\bBENCHMARK\.md", text):
            hits.append(name)
    assert hits == []


def test_ci_builds_the_site_then_runs_the_readme_test_command():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert lines[-1] == "bash scripts/test.sh"  # the README's test command
    assert "bash scripts/test.sh" in (ROOT / "README.md").read_text()
    assert any(line.startswith("bash scripts/build_docs.sh") for line in lines[:-1])


def test_the_policy_table_is_generated_from_the_registry_when_the_site_is_built():
    """The policies page holds the directive, not a copy; the built page has every registered
    policy's row, a policy registered just now included."""
    import importlib.util
    from types import SimpleNamespace

    pytest.importorskip("mkdocs")  # the hook runs inside a MkDocs build (requirements-docs)
    from window_cascades.cascade.policy_registry import (
        policy_entries,
        register_policy,
        unregister_policy,
    )

    source = (ROOT / "docs" / "concepts" / "policies.md").read_text()
    assert "<!-- registry: policies -->" in source
    assert "| policy | what it passes on" not in source  # no hand copy to go stale
    spec = importlib.util.spec_from_file_location("hook", ROOT / "docs/hooks/committed_results.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = SimpleNamespace(file=SimpleNamespace(src_uri="concepts/policies.md"))
    register_policy("just_registered", "a policy registered by this test")(lambda i, s: None)
    try:
        built = hook.on_page_markdown(source, page, None, None)
    finally:
        unregister_policy("just_registered")
    assert "<!-- registry: policies -->" not in built
    for entry in [*policy_entries().values(), SimpleNamespace(name="just_registered")]:
        assert f"| `{entry.name}` |" in built, entry.name
