import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from window_cascades.artifacts.cached_logits import load_cached_logits, save_cached_logits
from window_cascades.artifacts.logits_rows import open_logits_rows


def _logits(n=300, c=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=gen) * 3, torch.randint(-1, c, (n,), generator=gen)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_blocks_equal_the_whole_read_in_every_stored_dtype(tmp_path, dtype):
    logits, targets = _logits()
    (tmp_path / "m0").mkdir()
    save_file(
        {"logits": logits.to(dtype), "targets": targets}, str(tmp_path / "m0" / "test.safetensors")
    )
    whole = load_cached_logits(tmp_path, "m0", "test")
    rows = open_logits_rows(tmp_path, "m0", "test")
    assert (rows.num_rows, rows.num_classes) == (300, 7)
    assert torch.equal(rows.targets, whole.targets)
    blocks = torch.cat([rows.read(a, a + 64) for a in range(0, 300, 64)])
    assert blocks.dtype == whole.logits.dtype
    assert torch.equal(blocks, whole.logits)


def test_npy_blocks_and_targets_equal_the_whole_read(tmp_path):
    logits, targets = _logits()
    (tmp_path / "m0").mkdir()
    np.save(tmp_path / "m0" / "test.npy", logits.half().numpy())
    np.save(tmp_path / "m0" / "test.targets.npy", targets.numpy())
    whole = load_cached_logits(tmp_path, "m0", "test")
    rows = open_logits_rows(tmp_path, "m0", "test")
    assert rows.in_memory is None  # read by offset, not loaded
    assert torch.equal(torch.cat([rows.read(0, 100), rows.read(100, 300)]), whole.logits)
    assert torch.equal(rows.targets, whole.targets)


def test_npz_is_served_from_memory(tmp_path):
    logits, targets = _logits()
    (tmp_path / "m0").mkdir()
    np.savez_compressed(tmp_path / "m0" / "test.npz", logits=logits.numpy(), targets=targets)
    rows = open_logits_rows(tmp_path, "m0", "test")
    assert torch.equal(rows.read(10, 20), logits[10:20])


def test_a_non_finite_value_is_named_by_its_row_in_the_file(tmp_path):
    logits, targets = _logits()
    logits[203, 2] = float("nan")
    (tmp_path / "m0").mkdir()
    save_file({"logits": logits, "targets": targets}, str(tmp_path / "m0" / "test.safetensors"))
    rows = open_logits_rows(tmp_path, "m0", "test")
    rows.read(0, 200)
    with pytest.raises(ValueError, match=r"test\.safetensors: logits contain NaN/Inf.*row 203"):
        rows.read(200, 300)


def test_integer_logits_and_truncated_files_are_refused_naming_the_file(tmp_path):
    logits, targets = _logits()
    (tmp_path / "m0").mkdir()
    path = tmp_path / "m0" / "test.safetensors"
    save_file({"logits": logits.long(), "targets": targets}, str(path))
    with pytest.raises(ValueError, match=r"test\.safetensors: 'logits' must be floating point"):
        open_logits_rows(tmp_path, "m0", "test")
    save_file({"logits": logits, "targets": targets}, str(path))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"test\.safetensors: .*truncated"):
        open_logits_rows(tmp_path, "m0", "test")
    path.write_bytes(b"\xff" * 16)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        open_logits_rows(tmp_path, "m0", "test")


def test_targets_out_of_range_and_another_caching_run_are_refused(tmp_path):
    logits, targets = _logits()
    targets[5] = 7
    (tmp_path / "m0").mkdir()
    save_file({"logits": logits, "targets": targets}, str(tmp_path / "m0" / "test.safetensors"))
    with pytest.raises(ValueError, match=r"targets must be -1 \(unlabelled\) or in \[0, 6\]"):
        open_logits_rows(tmp_path, "m0", "test")
    targets[5] = 1
    save_cached_logits(tmp_path, "m0", "test", logits, targets, generation="run-a")
    (tmp_path / "m0" / "meta.json").write_text(json.dumps({"generation": "run-b"}))
    with pytest.raises(ValueError, match="mix two runs"):
        open_logits_rows(tmp_path, "m0", "test", generation="run-b", meta_read=True)
    assert open_logits_rows(tmp_path, "m0", "test", "run-a", True).generation == "run-a"
