"""The README's quick-start table is generated from a run and a stale one is caught."""

import pytest

from tests.conftest import ROOT
from tests.regression_case import ARGS, write_case
from window_cascades.commands.offline import main as evaluate_logits
from window_cascades.commands.readme_table import (
    ReadmeTableError,
    find_table,
    render_table,
    replace_table,
    table_differences,
)
from window_cascades.commands.readme_table import (
    main as update_readme,
)

BLOCK = "<!-- quickstart-table datasets: test far -->\n```\nold\n```\n<!-- /quickstart-table -->\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("readme")
    out = tmp / "out"
    assert (
        evaluate_logits(
            [
                "--logits-dir",
                str(write_case(tmp / "logits")),
                *ARGS,
                "--no-plots",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_the_table_is_written_from_the_results_and_checked(results, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nintro\n\n{BLOCK}\nafter\n")
    assert update_readme([str(results), "--readme", str(readme), "--check"]) == 1
    assert update_readme([str(results), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# title\n\nintro\n\n") and text.endswith("\nafter\n")
    datasets, table = find_table(text)
    assert datasets == ["test", "far"]
    assert table.startswith("test (id)") and "\nfar (ood)" in table and "held (" not in table
    assert update_readme([str(results), "--readme", str(readme), "--check"]) == 0
    # a value moved beyond the tolerance, or a policy gone, is stale; within it is not
    first_value = table.splitlines()[1].split()[1]
    moved = float(first_value) + 0.06
    stale = table.replace(first_value, f"{moved:.4f}", 1)
    assert table_differences(stale, table, atol=0.05) == [
        f"single: {first_value} instead of {moved:.4f} (more than 0.05 apart)"
    ]
    close = table.replace(first_value, f"{moved - 0.02:.4f}", 1)
    assert table_differences(close, table, atol=0.05) == []
    fewer = "\n".join(line for line in table.splitlines() if "random" not in line)
    assert table_differences(fewer, table, 0.05)
    readme.write_text(replace_table(text, stale))
    assert update_readme([str(results), "--readme", str(readme), "--check"]) == 1
    assert "README table is stale: single:" in capsys.readouterr().err


def test_missing_block_or_dataset_is_named(results, tmp_path, capsys):
    with pytest.raises(ReadmeTableError, match="no block between"):
        find_table("# no table here\n", "README.md")
    with pytest.raises(ReadmeTableError, match=r"has no dataset\(s\) \['nope'\]"):
        render_table(results, ["test", "nope"])
    readme = tmp_path / "README.md"
    readme.write_text(BLOCK)
    assert update_readme([str(tmp_path / "missing"), "--readme", str(readme)]) == 2
    assert "metrics.csv not found" in capsys.readouterr().err
    assert readme.read_text() == BLOCK  # untouched
    assert update_readme([str(results), "--readme", str(tmp_path / "nope.md")]) == 2
    assert "error: --readme " in capsys.readouterr().err


def test_an_installed_package_defaults_to_the_readme_of_the_current_folder(tmp_path, monkeypatch):
    import window_cascades.commands.readme_table as readme_table

    assert readme_table.default_readme() == ROOT / "README.md"  # the checkout's
    monkeypatch.setattr(readme_table, "CHECKOUT_README", tmp_path / "site-packages" / "README.md")
    monkeypatch.chdir(tmp_path)
    assert readme_table.default_readme() == readme_table.Path("README.md")


def test_the_project_readme_has_the_generated_block():
    datasets, table = find_table((ROOT / "README.md").read_text())
    assert datasets == ["digits_test", "digits_noise", "photo_patches"]
    assert table.startswith("digits_test (id)")
