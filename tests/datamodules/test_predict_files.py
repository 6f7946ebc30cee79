"""What ``--predictions.inputs`` lists, and what it leaves out or flags: files that are not
images, links to files outside the folder, list entries outside the current folder."""

from __future__ import annotations

import pytest
from PIL import Image

from window_cascades.datamodules.predict_files import input_files, scan_inputs


def image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path)
    return path


def test_a_folder_counts_what_it_leaves_out(tmp_path):
    folder = tmp_path / "in"
    image(folder / "a.png")
    image(folder / "sub" / "b.jpg")
    (folder / "notes.txt").write_text("x")
    (folder / "more.txt").write_text("y")
    (folder / "scan.eps").write_bytes(b"%!PS")
    (folder / "README").write_text("z")
    secret = image(tmp_path / "elsewhere" / "secret.png")
    (folder / "link.png").symlink_to(secret)
    (folder / "inside.png").symlink_to(folder / "a.png")  # a link within the folder: kept
    scan = scan_inputs(folder)
    assert [p.relative_to(folder).as_posix() for p in scan.files] == [
        "a.png",
        "inside.png",
        "sub/b.jpg",
    ]
    assert dict(scan.skipped) == {".txt": 2, ".eps": 1, "(none)": 1}
    assert scan.outside_links == [folder / "link.png"]
    assert scan.summary() == (
        "skipped 4 files that are not images (.txt: 2, .eps: 1, (none): 1) and 1 link to files "
        f"outside {folder}"
    )
    assert input_files(folder) == scan.files


def test_a_folder_of_nothing_but_skipped_files_says_what_it_skipped(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no images .* \(skipped 1 file that is not an image"):
        scan_inputs(tmp_path)


def test_list_entries_outside_the_current_folder_are_predicted_and_counted(tmp_path, monkeypatch):
    work = tmp_path / "work"
    image(work / "here.png")
    image(tmp_path / "up.png")
    (work / "list.txt").write_text("here.png\n../up.png\n")
    monkeypatch.chdir(work)
    scan = scan_inputs("list.txt")
    assert [str(p) for p in scan.files] == ["here.png", "../up.png"]
    assert [str(p) for p in scan.outside_listed] == ["../up.png"]
    assert scan.summary() == ("1 listed path outside the current folder (e.g. ../up.png) predicted")
    assert scan_inputs("here.png").summary() == ""
