import pytest
import torch
from safetensors.torch import save_file

from window_cascades.artifacts.logits_rows import LogitsRows, open_logits_rows
from window_cascades.artifacts.outputs_cache import compute_outputs, dataset_outputs
from window_cascades.cascade.prepared_experiment import dataset_prefix_outputs
from window_cascades.commands.offline import main

SETS = {"heldout": 400, "test": 500, "shift": 300, "ood": 350}


def _write_members(folder, members=3, classes=10, seed=0, dtype=torch.float16):
    gen = torch.Generator().manual_seed(seed)
    targets = {
        name: torch.randint(classes, (n,), generator=gen) if name != "ood" else torch.full((n,), -1)
        for name, n in SETS.items()
    }
    for m in range(members):
        (folder / f"m{m}").mkdir(parents=True, exist_ok=True)
        for name, n in SETS.items():
            logits = torch.randn(n, classes, generator=gen) * 2
            hit = (targets[name] >= 0) & (torch.rand(n, generator=gen) < 0.7 + 0.05 * m)
            logits[hit, targets[name][hit]] += 4
            path = folder / f"m{m}" / f"{name}.safetensors"
            save_file({"logits": logits.to(dtype), "targets": targets[name]}, str(path))


def _argv(folder, out, *extra, members=("m0", "m1", "m2")):
    return [
        *("--logits-dir", str(folder), "--members", *members, "--heldout", "heldout"),
        *("--id", "test", "--shift", "shift", "--ood", "ood", "--out", str(out)),
        *("--macs", "m0=1e9", "m1=2e9", "m2=3e9", "--quiet", "--no-plots", "--overwrite"),
        *extra,
    ]


def _outputs(out):
    return {name: (out / name).read_bytes() for name in ("metrics.csv", "summary.json")} | (
        {"deltas.csv": (out / "deltas.csv").read_bytes()} if (out / "deltas.csv").exists() else {}
    )


@pytest.mark.parametrize(
    "extra",
    [
        ("--bootstrap", "30"),
        ("--orders", "all", "--score", "msp", "energy", "--temperature-scaling"),
    ],
)
def test_results_from_the_cache_equal_those_from_the_logits(tmp_path, extra):
    _write_members(tmp_path / "logits")
    assert main(_argv(tmp_path / "logits", tmp_path / "a", *extra)) == 0
    cache = tmp_path / "cache"
    argv = _argv(tmp_path / "logits", tmp_path / "b", "--outputs-cache", str(cache), *extra)
    assert main(argv) == 0
    assert _outputs(tmp_path / "a") == _outputs(tmp_path / "b")
    files = sorted(cache.rglob("*.safetensors"))
    assert {f.parent.name for f in files} == set(SETS)  # every evaluated dataset, one file each
    # a second run reads the cache and no logits, with the same results
    stamps = {f: f.stat().st_mtime_ns for f in files}

    def no_logits(*_):
        raise AssertionError("logits read although the cache holds the outputs")

    original = LogitsRows.read
    LogitsRows.read = no_logits
    try:
        argv = _argv(tmp_path / "logits", tmp_path / "c", "--outputs-cache", str(cache), *extra)
        assert main(argv) == 0
    finally:
        LogitsRows.read = original
    assert _outputs(tmp_path / "a") == _outputs(tmp_path / "c")
    assert {f: f.stat().st_mtime_ns for f in files} == stamps


def test_blocks_of_rows_give_the_in_memory_outputs(tmp_path):
    _write_members(tmp_path)
    files = [open_logits_rows(tmp_path, f"m{m}", "test") for m in range(3)]
    logits = [f.read(0, f.num_rows) for f in files]
    for score in ("msp", "mutual_information"):
        expected = dataset_prefix_outputs(logits, files[0].targets, score, rows=64)
        got, identical = compute_outputs(files, score, rows=64)
        assert not identical
        for e, g in zip(expected, got, strict=True):
            for name in ("confidence", "exit_stage", "top_prob", "correct", "target_prob"):
                assert torch.equal(getattr(e, name), getattr(g, name)), (score, name)
            assert torch.equal(e.sum_sq, g.sum_sq)


def test_changed_logits_are_never_read_from_a_stale_cache(tmp_path):
    _write_members(tmp_path / "logits")
    cache = tmp_path / "cache"
    first = dataset_outputs(tmp_path / "logits", ["m0", "m1"], "test", "msp", cache)
    assert not first.reused
    again = dataset_outputs(tmp_path / "logits", ["m0", "m1"], "test", "msp", cache)
    assert again.reused and again.path == first.path
    _write_members(tmp_path / "logits", seed=1)  # cached again: other values
    changed = dataset_outputs(tmp_path / "logits", ["m0", "m1"], "test", "msp", cache)
    assert not changed.reused and changed.path != first.path
    assert not torch.equal(changed.outputs[0].confidence, first.outputs[0].confidence)
    # a damaged file is computed again, not an error
    changed.path.write_bytes(changed.path.read_bytes()[:100])
    repaired = dataset_outputs(tmp_path / "logits", ["m0", "m1"], "test", "msp", cache)
    assert not repaired.reused
    assert torch.equal(repaired.outputs[1].confidence, changed.outputs[1].confidence)


def test_identical_members_are_refused_on_the_heldout_split(tmp_path, capsys):
    _write_members(tmp_path / "logits", members=2)
    for name in SETS:
        (tmp_path / "logits" / "m1" / f"{name}.safetensors").write_bytes(
            (tmp_path / "logits" / "m0" / f"{name}.safetensors").read_bytes()
        )
    argv = _argv(tmp_path / "logits", tmp_path / "o", "--outputs-cache", members=("m0", "m1"))
    assert main([a for a in argv if a != "m2=3e9"]) == 2
    assert "'m0' and 'm1' have identical logits on 'heldout'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--headroom",), "--headroom reads member 1's held-out logits"),
        (("--score", "gen"), "--score gen: its parameters or standardisation are chosen"),
    ],
)
def test_what_reads_logits_is_refused_with_the_cache(tmp_path, capsys, extra, message):
    _write_members(tmp_path / "logits")
    argv = _argv(tmp_path / "logits", tmp_path / "o", "--outputs-cache", *extra)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "outputs cache (--outputs-cache)" in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "logits" / ".outputs").exists()
