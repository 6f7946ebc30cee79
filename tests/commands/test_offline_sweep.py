import os
import sys

import pytest

from tests.artifacts.test_outputs_cache import _argv, _write_members
from window_cascades.commands import offline_sweep
from window_cascades.commands.offline import main
from window_cascades.commands.offline_sweep import available_memory


def test_logits_near_the_available_memory_get_a_note_naming_the_cache(
    tmp_path, capsys, monkeypatch
):
    _write_members(tmp_path / "logits")
    monkeypatch.setattr(offline_sweep, "available_memory", lambda: 1000)
    assert main(_argv(tmp_path / "logits", tmp_path / "a")) == 0
    assert "of memory is available; --outputs-cache evaluates them" in capsys.readouterr().err
    monkeypatch.setattr(offline_sweep, "available_memory", lambda: 10**12)
    assert main(_argv(tmp_path / "logits", tmp_path / "b")) == 0
    assert "--outputs-cache" not in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/meminfo")
def test_available_memory_is_read_from_the_system():
    assert 0 < available_memory() < os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
