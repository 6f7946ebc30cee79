"""The errors reference quotes what the commands print: every case of ``docs/errors.yaml`` is
run (in-process, in an empty folder) and must exit with status 2 and exactly its quoted
``error:`` line; the page shows every case under its own anchor, with that line."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import ROOT


def _load():
    spec = importlib.util.spec_from_file_location(
        "error_messages", ROOT / "scripts" / "error_messages.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ERRORS = _load()
CASES = ERRORS.load_catalogue()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_the_command_prints_the_quoted_message(case, tmp_path):
    status, line = ERRORS.printed_line(case, tmp_path.resolve())
    assert status == 2, f"{case['id']}: exit status {status}"
    assert line == case["printed"], (
        f"{case['id']}: the command now prints\n  {line}\nbut docs/errors.yaml quotes\n  "
        f"{case['printed']}\n(python scripts/error_messages.py --update writes the new line)"
    )


def test_every_case_has_its_own_section_quoting_the_message():
    page = ERRORS.render_page(CASES)
    for case in CASES:
        assert f"{{#{case['id']}}}" in page
        assert "\n" + ERRORS._shown(case["printed"]) + "\n" in page
    assert len({c["id"] for c in CASES}) == len(CASES)
    assert "<!-- registry: errors -->" in (ROOT / "docs" / "errors.md").read_text()


def test_the_catalogue_refuses_a_case_it_cannot_show(tmp_path):
    bad = tmp_path / "errors.yaml"
    bad.write_text("- id: Bad_Id\n  command: x\n  title: t\n  argv: []\n  printed: p\n  fix: f\n")
    with pytest.raises(ValueError, match="lower-case words"):
        ERRORS.load_catalogue(bad)
    bad.write_text("- id: a\n  command: x\n  title: t\n  argv: []\n  fix: f\n")
    with pytest.raises(ValueError, match=r"missing fields \['printed'\]"):
        ERRORS.load_catalogue(bad)
