"""MkDocs hook: pages built from what the repository holds, never from hand-copied numbers.

Three directives, each an HTML comment on a line of its own in a page's Markdown (so the page
still reads on GitHub, where the comment is invisible):

``<!-- include: benchmarks/notmnist/tables.md -->``
    the committed Markdown file, inlined (its top-level headings demoted by one level);
``<!-- include-csv: benchmarks/streaming/cpu_32px.csv -->``
    the committed CSV file as a Markdown table (``max_rows=N`` keeps the first N rows and
    says how many there are);
``<!-- registry: metrics -->`` / ``<!-- registry: policies -->`` / ``<!-- registry: scores -->``
    the metric registry (name, direction, roles, definition) or the policy table, generated
    from ``cascade/`` as the offline evaluator's ``--list-policies`` prints it;
``<!-- registry: quickstart-table -->``
    the README's quick-start table (generated from a run by ``scripts/update_readme_table.py``
    and checked by the quick-start test), in a code block.

``<!-- registry: errors -->``
    the errors reference's cases (``docs/errors.yaml``), one section per command and one per
    error, each with its anchor (the case's id), the command, the line it prints and what to
    do; ``tests/repository/test_error_messages.py`` checks every printed line against a run;
``<!-- registry: bibtex -->``
    the BibTeX of the paper and of the software, from ``CITATION.cff``;
``<!-- registry: version -->``
    the package's version (``window_cascades.__version__``), also inside a line of text; every
    page's footer shows it too.

Every committed plot under ``benchmarks/`` is added to the site at the same path
(``benchmarks/notmnist/macs_vs_cov2.png``), so a page links it relative to itself. A file that a
directive names and the repository lacks stops the build (``PluginError``).
"""

from __future__ import annotations

import calendar
import csv
import io
import re
import sys
from pathlib import Path

import yaml
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
# the figures a page draws while the site is built (markdown-exec blocks: ``from
# method_figure import main``) are scripts in docs/figures/, put on sys.path by on_config (MkDocs
# restores sys.path after loading a hook)
FIGURES = str(ROOT / "docs" / "figures")
# the unit of each metric whose value is not a fraction in [0, 1]
UNITS = {
    "nll": "nats",
    "expected_macs": "MACs per sample (member evaluations when no MACs are known)",
    "op_threshold": "the confidence score's own scale",
}
VERSION = re.compile(r"<!-- registry: version -->")  # also inside a line of text
DIRECTIVE = re.compile(
    r"^<!-- (include|include-csv|registry): (\S+)(?: max_rows=(\d+))? -->$", re.M
)


def _repo_file(rel: str, page: str) -> Path:
    path = (ROOT / rel).resolve()
    if ROOT not in path.parents or not path.is_file():
        raise PluginError(f"{page}: {rel!r} is not a committed file of the repository")
    return path


def _markdown(path: Path) -> str:
    text = path.read_text()
    # the included file's sections sit under the page's own heading
    return re.sub(r"^(#{1,5}) ", r"#\1 ", text, flags=re.M)


def _cell(value: str) -> str:
    return value.replace("|", "\\|")


def _csv_table(path: Path, max_rows: int | None) -> str:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    if not rows:
        raise PluginError(f"{path.relative_to(ROOT)}: empty CSV file")
    header, body = rows[0], rows[1:]
    shown = body if max_rows is None else body[:max_rows]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + " --- |" * len(header))
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in shown]
    if len(shown) < len(body):
        lines.append("")
        lines.append(f"*The first {len(shown)} of {len(body)} rows of `{path.relative_to(ROOT)}`.*")
    return "\n".join(lines)


def version() -> str:
    """The package's version, as pyproject.toml reads it (``window_cascades.__version__``)."""
    source = (ROOT / "window_cascades" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', source, re.M).group(1)


def _bibtex_names(authors: list[dict]) -> str:
    return " and ".join(
        f"{a['family-names']}, {a['given-names']}" if "family-names" in a else f"{{{a['name']}}}"
        for a in authors
    )


def bibtex() -> str:
    """BibTeX entries of the paper (``preferred-citation``) and of the software, from
    ``CITATION.cff``."""
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    paper = cff["preferred-citation"]
    title = " ".join(paper["title"].split())
    lines = [
        "```bibtex",
        "@InProceedings{Xia_2023_ICCV,",
        f"  author    = {{{_bibtex_names(paper['authors'])}}},",
        f"  title     = {{{title}}},",
        f"  booktitle = {{{paper['collection-title']}}},",
        f"  month     = {{{calendar.month_name[paper['month']]}}},"
        f"  year      = {{{paper['year']}}},",
        f"  url       = {{{paper['url']}}}",
        "}",
        "",
        f"@Software{{window_cascades_{cff['version'].replace('.', '_')},",
        f"  author    = {{{_bibtex_names(cff['authors'])}}},",
        f"  title     = {{{cff['title']}}},",
        f"  version   = {{{cff['version']}}},",
        f"  url       = {{{cff['repository-code']}}},",
        f"  license   = {{{cff['license']}}}",
        "}",
        "```",
    ]
    return "\n".join(lines)


def errors_page() -> str:
    """The errors reference's sections (``scripts/error_messages.py`` renders the catalogue)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "error_messages", ROOT / "scripts" / "error_messages.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render_page(module.load_catalogue())


def _registry(name: str, page: str) -> str:
    if name == "errors":
        return errors_page()
    if name == "bibtex":
        return bibtex()
    if name == "version":
        return version()
    import window_cascades.cascade  # noqa: F401  (registers the built-in metrics and policies)
    from window_cascades.cascade.metric_registry import metric_entries
    from window_cascades.cascade.policy_registry import policy_table

    if name == "policies":
        return policy_table()
    if name == "scores":
        from window_cascades.uncertainty.score_registry import score_table

        return score_table()
    if name == "quickstart-table":
        from window_cascades.commands.readme_table import find_table

        datasets, table = find_table((ROOT / "README.md").read_text())
        return "```\n" + table.strip("\n") + "\n```"
    if name == "metrics":
        lines = [
            "| metric | better | unit | dataset roles | definition |",
            "| --- | --- | --- | --- | --- |",
        ]
        for e in metric_entries().values():
            better = "higher" if e.higher_is_better else "lower"
            roles = ", ".join(f"`{r}`" for r in e.roles)
            unit = UNITS.get(e.name, "fraction in [0, 1]")
            lines.append(f"| `{e.name}` | {better} | {unit} | {roles} | {_cell(e.description)} |")
        return "\n".join(lines)
    raise PluginError(
        f"{page}: unknown registry {name!r} (metrics, policies, scores, quickstart-table, errors, "
        "bibtex, version)"
    )


def on_config(config):
    # `python -m mkdocs` from the top of a clone puts that folder first on sys.path, where
    # window_cascades/ holds only the API's own modules: the package's others (cascade, ...)
    # install under it. The site runs the package as installed (editable or not), so the
    # clone's top leaves sys.path before anything imports it.
    top = str(ROOT)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != top]
    if FIGURES not in sys.path:
        sys.path.insert(0, FIGURES)
    config["copyright"] = f"window-cascades {version()} · MIT licence"
    return config


def on_page_markdown(markdown, page, config, files):
    where = page.file.src_uri

    def expand(m: re.Match) -> str:
        kind, arg, max_rows = m.group(1), m.group(2), m.group(3)
        if kind == "registry":
            return _registry(arg, where)
        path = _repo_file(arg, where)
        if kind == "include":
            return _markdown(path)
        return _csv_table(path, int(max_rows) if max_rows else None)

    markdown = DIRECTIVE.sub(expand, markdown)
    return VERSION.sub(version(), markdown)


def on_files(files, config):
    for png in sorted((ROOT / "benchmarks").rglob("*.png")):
        rel = png.relative_to(ROOT).as_posix()
        files.append(
            File(
                rel,
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files
