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

Every committed plot under ``benchmarks/`` is added to the site at the same path
(``benchmarks/notmnist/macs_vs_cov2.png``), so a page links it relative to itself. A file that a
directive names and the repository lacks stops the build (``PluginError``), and so does a
public module that no page of ``docs/api/`` documents with ``::: module``: the API reference
covers every public module or the strict build fails.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import tomllib
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
# the unit of each metric whose value is not a fraction in [0, 1]
UNITS = {
    "nll": "nats",
    "expected_macs": "MACs per sample (member evaluations when no MACs are known)",
    "op_threshold": "the confidence score's own scale",
}
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


def _registry(name: str, page: str) -> str:
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
        f"{page}: unknown registry {name!r} (metrics, policies, scores, quickstart-table)"
    )


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

    return DIRECTIVE.sub(expand, markdown)


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


def public_modules() -> list[str]:
    """``window_cascades`` and every module of its packages (the folders pyproject.toml maps
    under it) whose name, and every parent's, does not start with ``_``."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = ["window_cascades"]
    for package, folder in setuptools["package-dir"].items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if any(p.startswith("_") for p in parts):
                continue
            found.append(".".join((package, *parts)))
    return found


def on_pre_build(config):
    api = Path(config["docs_dir"]) / "api"
    documented = set()
    for page in api.glob("*.md"):
        documented |= set(re.findall(r"^::: ([\w.]+)", page.read_text(), re.M))
    missing = [m for m in public_modules() if m not in documented]
    if missing:
        raise PluginError(
            "modules missing from the API reference (add '::: module' to docs/api/): "
            + ", ".join(missing)
        )
