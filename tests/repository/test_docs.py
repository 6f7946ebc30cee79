"""The documentation site's sources: complete, self-contained, and built by CI.

The strict build itself (``bash scripts/build_docs.sh``, run by ``.ci/run``) checks links,
references and docstrings; these checks need no docs tools installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sys

import pytest
import tomllib
import yaml

from tests.conftest import ROOT

PROSE = ["README.md", "BENCHMARKS.md", "CHANGELOG.md", "CONTRIBUTING.md"]
"""The prose the project publishes beside docs/ (every Markdown file of docs/ too)."""
LIBRARY = [
    "window_cascades",
    "vocabulary",
    "uncertainty",
    "cascade",
    "artifacts",
    "datamodules",
    "lightning_modules",
    "commands",
]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tracked(*suffixes: str) -> list:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / n for n in names if n.endswith(suffixes) and (ROOT / n).is_file()]


def _prose_files() -> list:
    return [ROOT / n for n in PROSE] + sorted((ROOT / "docs").rglob("*.md"))


def _outside_code_blocks(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


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
    for page in (ROOT / "docs" / "api").rglob("*.md"):
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


def test_the_checked_public_api_documents_every_parameter():
    """scripts/check_docstrings.py (also run by the documentation build) on its scope: the
    public API and the modules a user imports beside it."""
    check = _script("check_docstrings")
    assert check.problems() == []
    checked = set(check.checked_modules())
    assert {"window_cascades.api", "window_cascades.cascade.policy_registry"} <= checked
    assert "window_cascades.datamodules.contract" in checked  # a package's every module


def test_the_docstring_check_finds_a_missing_or_merged_parameter(tmp_path):
    check = _script("check_docstrings")
    source = tmp_path / "planted.py"
    source.write_text(
        "def fpr(id_conf, ood_conf, tpr):\n"
        '    """OOD acceptance.\n\n    Args:\n        id_conf: ID scores; ood_conf: OOD scores.\n'
        '        tpr: the rate.\n    """\n\n'
        "def quiet(x):\n    pass\n\n"
        "def _private(y):\n    pass\n"
    )
    assert check.module_problems("planted", source) == [
        "planted.fpr: no Args entry for ood_conf",
        "planted.quiet: no docstring",
    ]


def test_no_sphinx_role_in_the_library_docstrings():
    """Sphinx roles (``x``) show as raw text on the API pages; cross-references are
    mkdocstrings' ([`x`][])."""
    role = re.compile(r":(?:py:)?(?:func|meth|class|attr|mod|data|obj|exc|const):`")
    hits = [
        f"{p.relative_to(ROOT)}:{k}"
        for folder in LIBRARY
        for p in sorted((ROOT / folder).rglob("*.py"))
        for k, line in enumerate(p.read_text().splitlines(), 1)
        if role.search(line)
    ]
    assert hits == []


def test_no_line_of_text_starts_with_a_comparison():
    """A wrapped line that starts with '>' (as in '>= 0.95') is a block quote in Markdown: the
    '>' vanishes and the meaning changes (docstrings render as Markdown on the API pages)."""
    hits = []
    for folder in LIBRARY:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for k, line in enumerate(path.read_text().splitlines(), 1):
                if re.match(r"\s+>(?!>>)", line):
                    hits.append(f"{path.relative_to(ROOT)}:{k}")
    for path in _prose_files():
        for k, line in enumerate(_outside_code_blocks(path.read_text()).splitlines(), 1):
            if re.match(r"\s*>=", line):
                hits.append(f"{path.relative_to(ROOT)}:{k}")
    assert hits == []


# what the repository's text never says about how it was made: the project speaks of itself
HOW_IT_WAS_MADE = {
    "an issue number": r"\bissues? #?\d+\b|\(#\d+\)",
    "a path beside the repository": r"\.\./shared\b|(?<![\w./-])/work/",
    "a machine by how it was obtained": (
        r"\bdevice (?:tool|machine)\b|\bborrow|\blent (?:to|a|one)\b"
    ),
    "who or what wrote it": r"\b(?:AI )?assistants?\b|\bthe brief\b",
}
PROSE_ONLY = {"a work session": r"\bsessions?\b(?!=)"}  # pytest's sessions are code


def _how_it_was_made(text: str, patterns: dict) -> list[str]:
    return [what for what, pattern in patterns.items() if re.search(pattern, text, re.I)]


def test_the_project_speaks_of_itself():
    """Docs, README, BENCHMARKS, CHANGELOG, CONTRIBUTING and every tracked file's text (code,
    comments, configs) name machines by what they are and cite no issue numbers, sessions or
    paths outside the repository."""
    hits = []
    for path in _prose_files():
        text = _outside_code_blocks(path.read_text())
        for what in _how_it_was_made(text, {**HOW_IT_WAS_MADE, **PROSE_ONLY}):
            hits.append(f"{path.relative_to(ROOT)}: {what}")
    this = (ROOT / "tests" / "repository" / "test_docs.py").resolve()
    for path in _tracked(".py", ".sh", ".yaml", ".yml", ".toml", ".cfg", ".txt", ".sbatch"):
        if path.resolve() == this:
            continue
        for what in _how_it_was_made(path.read_text(errors="replace"), HOW_IT_WAS_MADE):
            hits.append(f"{path.relative_to(ROOT)}: {what}")
    assert hits == []


def test_the_words_check_finds_what_it_refuses():
    planted = {
        "as issue 23 asked": "an issue number",
        "fixed in (#41)": "an issue number",
        "data in ../shared/data/notmnist": "a path beside the repository",
        "--logits-dir /work/notmnist_work/logits": "a path beside the repository",
        "on the device tool's H100": "a machine by how it was obtained",
        "no GPU was lent to this run": "a machine by how it was obtained",
    }
    for text, what in planted.items():
        assert what in _how_it_was_made(text, HOW_IT_WAS_MADE), text
    assert _how_it_was_made("in this session", PROSE_ONLY) == ["a work session"]
    assert _how_it_was_made('session="in-memory"', PROSE_ONLY) == []
    assert _how_it_was_made("on 1 NVIDIA H100 80GB, 2-core AMD EPYC", HOW_IT_WAS_MADE) == []


def test_the_notmnist_page_says_where_the_data_comes_from():
    page = (ROOT / "docs" / "benchmarks" / "notmnist.md").read_text()
    for needed in (
        "github.com/davidflanagan/notMNIST-to-MNIST",
        "MIT licence",
        "permission of the dataset's author",
        "data/notmnist/",
        "t10k-images-idx3-ubyte.gz",
        "--data-dir",
    ):
        assert needed in page, needed
    config = yaml.safe_load((ROOT / "configs" / "notmnist" / "data.yaml").read_text())
    assert config["init_args"]["images"] == "data/notmnist/t10k-images-idx3-ubyte.gz"


def test_the_citation_is_the_package_version_and_the_paper():
    from window_cascades import __version__

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["version"] == __version__
    paper = cff["preferred-citation"]
    assert paper["year"] == 2023 and "arxiv.org/abs/2303.08010" in paper["url"]
    assert [a["family-names"] for a in paper["authors"]] == ["Xia", "Bouganis"]
    assert "registry: bibtex" in (ROOT / "docs" / "cite.md").read_text()


def test_every_tutorial_section_exists_in_its_script():
    """The tutorials quote examples/*.py by section (--8<-- "file:section"): each section has
    its start and end markers, so no page quietly shows nothing."""
    quoted = set()
    for page in sorted((ROOT / "docs" / "tutorials").glob("*.md")):
        quoted |= set(re.findall(r'--8<-- "(examples/[\w./]+):(\w+)"', page.read_text()))
    assert quoted
    for path, section in sorted(quoted):
        text = (ROOT / path).read_text()
        assert f"# --8<-- [start:{section}]" in text and f"# --8<-- [end:{section}]" in text


def test_the_vendored_assets_are_the_recorded_files():
    """KaTeX and the iframe-worker shim are served by the site (no CDN); their checksums are
    those scripts/vendor_docs_assets.sh recorded."""
    lines = (ROOT / "docs" / "assets" / "VENDORED.txt").read_text().splitlines()
    recorded = dict(reversed(line.split()) for line in lines if re.match(r"^[0-9a-f]{64} ", line))
    assert "katex/katex.min.js" in recorded and "javascripts/iframe-worker-shim.js" in recorded
    for name, digest in recorded.items():
        data = (ROOT / "docs" / "assets" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
    config = yaml.safe_load(re.sub(r"!!python/\S+", "", (ROOT / "mkdocs.yml").read_text()))
    assert config["extra"]["polyfills"] == ["assets/javascripts/iframe-worker-shim.js"]
    assert config["theme"]["font"] is False and config["use_directory_urls"] is False


@pytest.mark.parametrize("tool", ["markdown-exec", "ruff", "mkdocstrings"])
def test_the_docs_extra_has_what_the_build_runs(tool):
    """The tutorials run through markdown-exec, ruff lays out the API's signatures."""
    lines = (ROOT / "requirements-docs.txt").read_text().splitlines()
    assert any(line.startswith(tool) for line in lines)


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


def test_the_site_runs_the_installed_package_when_built_from_the_clone(monkeypatch):
    """`python -m mkdocs build` from the clone puts its top first on sys.path, where
    window_cascades/ lacks the packages installed under it (cascade, ...): with a non-editable
    install the build failed with "No module named 'window_cascades.cascade'". The hook takes
    the clone's top off sys.path when the build starts."""
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("hook", ROOT / "docs/hooks/committed_results.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", ["", str(ROOT), "/elsewhere", *sys.path])
    config = hook.on_config({})
    assert "" not in sys.path and str(ROOT) not in sys.path
    assert "/elsewhere" in sys.path and sys.path[0] == hook.FIGURES
    assert config["copyright"].startswith("window-cascades ")


def test_every_formula_of_the_pages_parses_with_the_served_katex(tmp_path):
    """The formulas of the pages (inline and display math) render with the KaTeX the site
    serves: a TeX error would show as red source text in a reader's browser. Needs node (not a
    project dependency): skipped without it."""
    import json
    import shutil

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    formulas = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = _outside_code_blocks(page.read_text())
        for m in re.finditer(r"\\\[(.*?)\\\]|\\\((.*?)\\\)", text, re.S):
            formulas.append([page.name, m.group(1) is not None, m.group(1) or m.group(2)])
    assert len(formulas) > 50
    script = tmp_path / "parse.js"
    script.write_text(
        "const katex = require(process.argv[2]);\n"
        "const formulas = JSON.parse(require('fs').readFileSync(process.argv[3], 'utf8'));\n"
        "for (const [page, display, tex] of formulas) {\n"
        "  try { katex.renderToString(tex, {displayMode: display, throwOnError: true}); }\n"
        "  catch (err) { console.log(page + ': ' + err.message); }\n"
        "}\n"
    )
    data = tmp_path / "formulas.json"
    data.write_text(json.dumps(formulas))
    katex = ROOT / "docs" / "assets" / "katex" / "katex.min.js"
    proc = subprocess.run(
        [node, str(script), str(katex), str(data)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr
