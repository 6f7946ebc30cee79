"""The offline evaluator refuses, before torch is imported, everything that needs no data: a
mistake costs a fraction of a second, not torch's import."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from window_cascades.commands.offline_preflight import check_members

# (extra arguments, what the one error line says); {tmp}: the test's folder, where logits/m0 and
# logits/m1 exist and out/ holds an earlier run
REFUSED = [
    ([], "holds an earlier run (metrics.csv); pass --overwrite to replace it"),
    (["--overwrite", "--out", "{tmp}/logits/inside"], "--out {tmp}/logits/inside"),
    (["--overwrite", "--score", "msp", "msp"], "--score msp msp: a score is given twice"),
    (["--overwrite", "--target", "cov@five"], "target 'cov@five' is not understood"),
    (["--overwrite", "--risks", "5"], "--risks 5.0: expected a fraction in (0, 1)"),
    (["--overwrite", "--gain-shares", "1.5"], "--gain-shares 1.5: a share of the ensemble's gain"),
    (["--overwrite", "--bootstrap", "5"], "bootstrap 5: expected 0 (off) or at least 10"),
    (["--overwrite", "--macs", "m0"], "--macs 'm0': expected MEMBER=MACS"),
    (["--overwrite", "--id", "held"], "dataset 'held' is given twice"),
    (["--overwrite", "--members", "m0", "m9"], "member folder not found: {tmp}/logits/m9"),
]


@pytest.mark.parametrize("extra, message", REFUSED)
def test_refusals_that_need_no_data_come_before_torch(tmp_path, extra, message):
    for member in ("m0", "m1"):
        (tmp_path / "logits" / member).mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metrics.csv").write_text("dataset\n")
    args = ["--logits-dir", f"{tmp_path}/logits", "--members", "m0", "m1", "--heldout", "held"]
    args += ["--id", "test", "--out", f"{tmp_path}/out"]
    args += [a.replace("{tmp}", str(tmp_path)) for a in extra]
    cmd = [sys.executable, "-X", "importtime", str(ROOT / "scripts" / "evaluate_logits.py")]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and message.replace("{tmp}", str(tmp_path)) in lines[0]
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "window_cascades.commands.offline_preflight" in loaded  # the parse saw the imports
    assert "torch" not in loaded, "refused after torch's import"
    assert not (tmp_path / ".out.lock").exists()  # the claim ends with the refusal


def test_a_member_named_twice_is_refused_by_name(tmp_path):
    (tmp_path / "m0").mkdir()
    with pytest.raises(ValueError, match=r"member\(s\) \['m0'\] given twice"):
        check_members(tmp_path, ["m0", "m0"])
    with pytest.raises(FileNotFoundError, match="no such folder"):
        check_members(tmp_path / "nowhere", ["m0"])
