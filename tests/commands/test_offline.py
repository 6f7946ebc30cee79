"""The offline evaluator command on cached logits: outputs, sweeps, errors."""

import json

import pytest

from window_cascades.artifacts.results import read_metrics_csv
from window_cascades.commands.offline import main


def base_args(tiny_members, out):
    return [
        "--logits-dir",
        str(tiny_members["logits_dir"]),
        "--members",
        "m0",
        "m1",
        "--heldout",
        "digits_heldout",
        "--id",
        "digits_test",
        "--shift",
        "digits_noise",
        "digits_blur",
        "--ood",
        "photo_patches",
        "uniform_noise",
        "--out",
        str(out),
        "--quiet",
    ]


def test_sweep_writes_one_row_set_per_setting(tiny_members, tmp_path):
    args = base_args(tiny_members, tmp_path) + [
        "--policies",
        "single,ensemble,single_threshold,window,window_adjusted,random",
        "--width",
        "0.05",
        "0.1",
        "0.2",
        "--target",
        "risk@80",
        "--score",
        "energy",
        "--coverages",
        "0.8",
        "0.9",
    ]
    assert main(args) == 0
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    settings = {(r["policy"], r["setting"]) for r in rows}
    assert {s for p, s in settings if p == "window"} == {
        "risk@80,w=0.05",
        "risk@80,w=0.1",
        "risk@80,w=0.2",
    }
    assert len({s for p, s in settings if p == "single"}) == 1
    metrics = {(r["role"], r["metric"]) for r in rows}
    for m in (
        "acc",
        "nll",
        "ece",
        "brier",
        "aurc",
        "cov@5",
        "risk@80",
        "risk@90",
        "expected_macs",
        "exit_frac@1",
        "exit_frac@2",
    ):
        assert ("id", m) in metrics and ("shift", m) in metrics
    for m in ("auroc", "aupr", "fpr@95", "scod_aurc", "scod_risk@80", "expected_macs"):
        assert ("ood", m) in metrics
    assert {r["score"] for r in rows} == {"energy"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "window[risk@80,w=0.2]" in summary["policies"]
    # wider windows pass more samples on
    cost = {
        r["setting"]: r["value"]
        for r in rows
        if r["policy"] == "window"
        and r["dataset"] == "digits_test"
        and r["metric"] == "expected_macs"
    }
    assert cost["risk@80,w=0.05"] < cost["risk@80,w=0.1"] < cost["risk@80,w=0.2"]


def test_several_scores_in_one_call_with_the_plots_of_the_online_run(tiny_members, tmp_path):
    args = base_args(tiny_members, tmp_path) + ["--score", "msp", "energy"]
    assert main(args) == 0
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    assert {r["score"] for r in rows} == {"msp", "energy"}
    # each score on its own gives the same rows as in the combined call
    alone = tmp_path / "energy_alone"
    assert main(base_args(tiny_members, alone) + ["--score", "energy"]) == 0
    energy = [r for r in rows if r["score"] == "energy"]
    assert energy == read_metrics_csv(alone / "metrics.csv")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["score"] == ["msp", "energy"]
    assert {"window[msp]", "window[energy]", "single[msp]"} <= set(summary["policies"])
    assert summary["policies"]["window[energy]"] != summary["policies"]["window[msp]"]
    assert "window[energy]" in summary["metrics"]["digits_test"]
    for name in ("risk_coverage.png", "macs_vs_cov5.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert sorted(p.name for p in alone.iterdir()) == [
        ".run_files.json",  # the run's list of its files
        "macs_vs_cov5.png",
        "metrics.csv",
        "reliability.png",
        "report.md",
        "risk_coverage.png",
        "summary.json",
        "tradeoff.png",
    ]
    report = (alone / "report.md").read_text()
    assert "![risk_coverage.png](risk_coverage.png)" in report and "No intervals" in report
    assert main(base_args(tiny_members, tmp_path / "dup") + ["--score", "msp", "msp"]) == 2


def test_paper_definitions_and_temperature_scaling_run(tiny_members, tmp_path):
    args = base_args(tiny_members, tmp_path) + [
        "--definitions",
        "paper",
        "--target",
        "risk@80",
        "--temperature-scaling",
    ]
    assert main(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["definitions"] == "paper"
    assert len(summary["temperatures"]["members"]) == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--shift", "digits_test"], "given twice"),
        (["--policies", "single,oracle"], "unknown policy 'oracle'"),
        (["--width", "0.7"], r"\(0, 0.5\]"),
        (["--ood", "missing_set"], "missing_set.safetensors"),
        (["--members", "m0", "m0"], r"member\(s\) \['m0'\] given twice"),
        (["--target", "cov@1"], r"'digits_heldout' has \d+ samples.*cov@1 needs at least 1000"),
    ],
)
def test_bad_input_exits_with_a_clear_message(tiny_members, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(base_args(tiny_members, out) + extra) == 2
    import re

    assert re.search(message, capsys.readouterr().err)
    assert not (out / "metrics.csv").exists()


def test_truncated_logits_file_is_named(tiny_members, tmp_path, capsys):
    import shutil

    logits = tmp_path / "logits"
    shutil.copytree(tiny_members["logits_dir"], logits)
    victim = logits / "m1" / "digits_blur.safetensors"
    victim.write_bytes(victim.read_bytes()[:100])
    args = base_args(tiny_members, tmp_path / "out")
    args[args.index("--logits-dir") + 1] = str(logits)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "m1/digits_blur.safetensors" in err and "not a readable safetensors file" in err


def _copy_logits(tiny_members, tmp_path):
    import shutil

    logits = tmp_path / "logits"
    shutil.copytree(tiny_members["logits_dir"], logits)
    return logits


def _args_on(logits, tiny_members, out):
    args = base_args(tiny_members, out)
    args[args.index("--logits-dir") + 1] = str(logits)
    return args


def test_identical_members_under_two_names_are_refused(tiny_members, tmp_path, capsys):
    import shutil

    logits = _copy_logits(tiny_members, tmp_path)
    shutil.rmtree(logits / "m1")
    shutil.copytree(logits / "m0", logits / "m1")
    out = tmp_path / "out"
    assert main(_args_on(logits, tiny_members, out)) == 2
    assert "members 'm0' and 'm1' have identical held-out logits" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("macs", [0, -5, "many", True])
def test_member_macs_must_be_positive_numbers(tiny_members, tmp_path, capsys, macs):
    logits = _copy_logits(tiny_members, tmp_path)
    meta = json.loads((logits / "m1" / "meta.json").read_text())
    (logits / "m1" / "meta.json").write_text(json.dumps({**meta, "macs": macs}))
    out = tmp_path / "out"
    assert main(_args_on(logits, tiny_members, out)) == 2
    err = capsys.readouterr().err
    assert "m1/meta.json" in err and "'macs' must be a positive number" in err
    assert not (out / "metrics.csv").exists() and not (out / "summary.json").exists()


@pytest.mark.parametrize("role", ["--id", "--shift", "--heldout"])
def test_unlabelled_set_in_a_labelled_role_is_named(tiny_members, tmp_path, capsys, role):
    args = base_args(tiny_members, tmp_path / "out")
    args.remove("photo_patches")  # the OOD set, now given in a labelled role
    if role == "--shift":
        args += ["--shift", "photo_patches"]
    else:
        args[args.index(role) + 1] = "photo_patches"
        args += ["--shift", "digits_test"] if role == "--id" else ["--shift", "digits_heldout"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "dataset 'photo_patches' has role" in err and "unlabelled (target -1)" in err


def test_policies_that_fit_the_same_band_are_named_in_the_table():
    from window_cascades.artifacts.results import format_table, identical_policies

    rows = [
        {
            "dataset": d,
            "role": r,
            "policy": p,
            "setting": "",
            "score": "msp",
            "metric": m,
            "value": v,
        }
        for d, r in (("t", "id"), ("o", "ood"))
        for p, v in (("single", 0.1), ("single_threshold", 0.2), ("window", 0.2))
        for m in ("acc", "expected_macs")
    ]
    assert identical_policies(rows) == [["single_threshold", "window"]]
    assert "note: single_threshold and window give identical results" in format_table(rows)
    rows[-1]["value"] = 0.3  # window differs on one value: no longer the same
    assert identical_policies(rows) == []


def test_every_member_order_with_bootstrap_and_its_spread(tiny_members, tmp_path):
    """--orders all: both orders of the pair, each as a run of its own order would give it,
    with paired differences per order and the spread across orders in orders.csv."""
    both = tmp_path / "both"
    assert main(base_args(tiny_members, both) + ["--orders", "all", "--bootstrap", "50"]) == 0
    rows = read_metrics_csv(both / "metrics.csv")
    assert {r["members"] for r in rows} == {"m0>m1", "m1>m0"}
    for order in (["m0", "m1"], ["m1", "m0"]):
        alone = tmp_path / "_".join(order)
        args = base_args(tiny_members, alone) + ["--bootstrap", "50"]
        args[args.index("m0") : args.index("m0") + 2] = order
        assert main(args) == 0
        key = lambda r: (r["dataset"], r["policy"], r["setting"], r["metric"])  # noqa: E731
        mine = {key(r): r for r in rows if r["members"] == ">".join(order)}
        theirs = read_metrics_csv(alone / "metrics.csv")
        assert len(mine) == len(theirs)
        for r in theirs:  # same values and, on the same resamples, the same intervals
            for f in ("value", "ci_low", "ci_high"):
                assert mine[key(r)][f] == pytest.approx(r[f], abs=1e-12), (key(r), f)
    deltas = read_metrics_csv(both / "deltas.csv")
    assert {d["members"] for d in deltas} == {"m0>m1", "m1>m0"}
    spread = read_metrics_csv(both / "orders.csv")
    acc = next(
        s
        for s in spread
        if (s["dataset"], s["policy"], s["metric"]) == ("digits_test", "single", "acc")
    )
    singles = [
        r["value"]
        for r in rows
        if (r["dataset"], r["policy"], r["metric"]) == ("digits_test", "single", "acc")
    ]
    assert acc["orders"] == "2" and float(acc["mean"]) == pytest.approx(sum(singles) / 2)
    assert float(acc["min"]) == min(singles) and float(acc["max"]) == max(singles)
    summary = json.loads((both / "summary.json").read_text())
    assert summary["orders"] == ["m0>m1", "m1>m0"]
    assert {"window[m0>m1]", "window[m1>m0]"} <= set(summary["policies"])
    assert "Across member orders" in (both / "report.md").read_text()


def test_orders_need_two_distinct_members(tiny_members, tmp_path, capsys):
    args = base_args(tiny_members, tmp_path / "o") + ["--orders", "pairs"]
    args.remove("m1")
    assert main(args) == 2
    assert "--orders pairs needs at least 2 members, got 1" in capsys.readouterr().err


@pytest.fixture(scope="module")
def feature_folder(tmp_path_factory):
    from tests.feature_case import write_feature_case

    return write_feature_case(tmp_path_factory.mktemp("features") / "logits")


def feature_args(folder, out, *extra):
    from tests.feature_case import ARGS

    return ["--logits-dir", str(folder), *ARGS, "--out", str(out), "--quiet", *extra]


def test_feature_scores_write_rows_per_score_dataset_and_policy_with_intervals(
    feature_folder, tmp_path
):
    scores = "msp,energy,gen,react,vim,knn,mds,rmds"
    out = tmp_path / "out"
    args = ["--train", "train", "--scores", scores, "--target", "fpr@95", "--bootstrap", "20"]
    assert main(feature_args(feature_folder, out, *args, "--policies", "single,window")) == 0
    rows = read_metrics_csv(out / "metrics.csv")
    found = {(r["score"], r["dataset"], r["policy"]) for r in rows}
    assert found == {
        (s, d, p)
        for s in scores.split(",")
        for d in ("held", "test", "far")
        for p in ("single", "window")
    }
    fpr = [r for r in rows if r["metric"] == "fpr@95" and r["dataset"] == "far"]
    assert len(fpr) == 16 and all(r["ci_low"] <= r["value"] <= r["ci_high"] for r in fpr)
    summary = json.loads((out / "summary.json").read_text())
    choice = summary["score_parameters"]["knn"]["orders"]["given"]["members"]["m0"]
    assert choice["rule"] == "heldout" and choice["criterion"] == "aurc"


def test_a_parameter_sweep_reuses_the_cached_features_and_statistics(feature_folder, tmp_path):
    args = ["--train", "train", "--scores", "vim", "--score-param", "vim.dim=4"]
    assert main(feature_args(feature_folder, tmp_path / "a", *args)) == 0
    stats = feature_folder / "m0" / "stats" / "vim.safetensors"
    written = stats.stat().st_mtime_ns
    args[-1] = "vim.dim=4,8,16"
    assert main(feature_args(feature_folder, tmp_path / "b", *args)) == 0
    assert stats.stat().st_mtime_ns == written  # fitted once, read by the sweep
    labels = {r["score"] for r in read_metrics_csv(tmp_path / "b" / "metrics.csv")}
    assert labels == {"vim(dim=4)", "vim(dim=8)", "vim(dim=16)"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scores", "knn"], "--scores knn: it fits statistics of the training split"),
        (["--train", "train", "--scores", "knn", "--score-param", "knn.k=0"], "knn.k=0"),
        (["--train", "train", "--scores", "knn", "--score-param", "vim.dim=4"], "vim"),
        (["--train", "train", "--scores", "knn", "--ood-val", "far"], "'far' is given twice"),
    ],
)
def test_bad_feature_score_input_exits_with_a_clear_message(
    feature_folder, tmp_path, capsys, extra, message
):
    out = tmp_path / "out"
    assert main(feature_args(feature_folder, out, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (out / "metrics.csv").exists()


def test_an_unknown_score_is_named_with_every_registered_one(feature_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(feature_args(feature_folder, tmp_path / "out", "--scores", "msp,nosuch"))
    assert stop.value.code == 2
    assert "invalid choice: 'nosuch' (choose from msp, " in capsys.readouterr().err


def test_feature_scores_without_cached_features_say_how_to_cache_them(tmp_path, capsys):
    import shutil

    from tests.feature_case import write_feature_case

    folder = write_feature_case(tmp_path / "logits")
    shutil.rmtree(folder / "m1" / "features")
    assert main(feature_args(folder, tmp_path / "out", "--scores", "ash")) == 2
    assert "--cache.features true" in capsys.readouterr().err


def test_an_ood_validation_set_equal_to_a_test_set_is_refused(tmp_path, capsys):
    """Parameters are never chosen on a test set, not even on a copy of one."""
    import shutil

    from tests.feature_case import write_feature_case

    folder = write_feature_case(tmp_path / "logits")
    for member in ("m0", "m1"):
        for sub in ("", "features/"):
            src = folder / member / f"{sub}far.safetensors"
            shutil.copy(src, src.with_name("far_copy.safetensors"))
    args = ["--train", "train", "--scores", "knn", "--ood-val", "far_copy"]
    assert main(feature_args(folder, tmp_path / "out", *args)) == 2
    assert "--ood-val far_copy: its logits are those of 'far'" in capsys.readouterr().err


def test_the_quick_start_members_evaluate_feature_scores(tiny_members, tmp_path):
    """The members the quick start trains and caches (features and training split included):
    every feature score family next to the logit scores, rows per score, dataset and policy."""
    scores = "msp,energy,gen,react,vim,knn,mds,rmds"
    args = base_args(tiny_members, tmp_path / "out") + [
        "--train", "digits_train", "--scores", scores, "--policies", "single,ensemble,window",
        "--target", "fpr@95", "--bootstrap", "20",
    ]  # fmt: skip
    assert main(args) == 0
    rows = read_metrics_csv(tmp_path / "out" / "metrics.csv")
    assert {r["score"] for r in rows} == set(scores.split(","))
    assert {r["dataset"] for r in rows} == {
        "digits_heldout", "digits_test", "digits_noise", "digits_blur", "photo_patches",
        "uniform_noise",
    }  # fmt: skip
    auroc = [r for r in rows if r["metric"] == "auroc" and r["policy"] == "window"]
    assert len(auroc) == 8 * 2 and all(r["ci_low"] <= r["value"] <= r["ci_high"] for r in auroc)
