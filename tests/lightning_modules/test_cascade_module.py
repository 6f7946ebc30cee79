"""Integration: members trained through LightningCLI, cached logits, the online cascade."""

import json

import pytest
import torch

from tests.conftest import QUICKSTART
from window_cascades.artifacts.cached_logits import load_cached_logits
from window_cascades.artifacts.experiment_logits import evaluate_cached_logits
from window_cascades.artifacts.member_meta import load_member_meta
from window_cascades.artifacts.results import read_metrics_csv
from window_cascades.cascade.fitted import CHECKPOINT_KEY, FittedCascade
from window_cascades.cascade.policies import policy_from_dict
from window_cascades.cascade.policy_registry import PolicySettings
from window_cascades.commands.cli import CascadeCLI
from window_cascades.commands.pipeline_steps import cache_logits
from window_cascades.lightning_modules.member_checkpoint import load_member


def test_member_checkpoint_and_cached_logits(tiny_members):
    member = load_member(tiny_members["ckpts"][0])
    assert member.hparams.model_name == "resnet10t"
    # held-out uncertainty metrics were logged during fit, once per epoch
    (log,) = (tiny_members["dir"] / "m0").glob("version_*/metrics.csv")
    header = log.read_text().splitlines()[0].split(",")
    for key in (
        "val/loss",
        "val/acc",
        "val/sc/aurc",
        "val/sc/cov@5",
        "val/cal/ece",
        "train/loss_step",
    ):
        assert key in header, key
    meta = load_member_meta(tiny_members["logits_dir"], "m0")
    assert meta["macs"] > 1e6 and meta["params"] > 1e5
    assert meta["input_shape"] == [1, 32, 32]
    test = load_cached_logits(tiny_members["logits_dir"], "m0", "digits_test")
    ood = load_cached_logits(tiny_members["logits_dir"], "m0", "photo_patches")
    assert test.logits.shape == (450, 10) and test.targets.min() >= 0
    assert ood.targets.eq(-1).all()
    # the cached logits are the member's own outputs on the same images
    from window_cascades.datamodules.digits import DigitsDataModule

    dm = DigitsDataModule(train_limit=256)
    dm.setup()
    x = torch.stack([dm.eval_sets["digits_test"][i][0] for i in range(8)])
    with torch.no_grad():
        # loose enough for logits cached on a GPU, whose TF32 convolutions differ at ~1e-3
        torch.testing.assert_close(member(x), test.logits[:8], rtol=2e-3, atol=2e-2)
    # members differ (seeds differ)
    other = load_cached_logits(tiny_members["logits_dir"], "m1", "digits_test")
    assert not torch.allclose(test.logits, other.logits)


@pytest.fixture(scope="module")
def cascade_run(tiny_members, tmp_path_factory, cascade_test_args):
    results = tmp_path_factory.mktemp("cascade") / "results"
    cli = CascadeCLI(
        args=cascade_test_args(
            tiny_members["data_cfg"], tiny_members["ckpts"], results, "--model.bootstrap=100"
        )
    )
    return cli, results


def test_cascade_writes_tidy_results(cascade_run):
    cli, results = cascade_run
    rows = read_metrics_csv(results / "metrics.csv")
    assert set(rows[0]) == {
        "dataset",
        "role",
        "policy",
        "setting",
        "score",
        "metric",
        "value",
        "ci_low",
        "ci_high",
    }
    # (ECE is biased under resampling: its percentile interval may sit above the value)
    unbiased = [r for r in rows if r["metric"] != "ece"]
    assert all(r["ci_low"] <= r["value"] + 1e-9 <= r["ci_high"] + 2e-9 for r in unbiased)
    assert {r["policy"] for r in rows} == {"single", "ensemble", "single_threshold", "window"}
    assert {r["role"] for r in rows} == {"heldout", "id", "shift", "ood"}
    metrics = {r["metric"] for r in rows}
    for m in (
        "acc",
        "nll",
        "ece",
        "brier",
        "aurc",
        "cov@5",
        "risk@80",
        "auroc",
        "aupr",
        "fpr@95",
        "expected_macs",
        "exit_frac@1",
        "exit_frac@2",
    ):
        assert m in metrics
    for r in rows:
        if r["metric"] != "expected_macs" and r["metric"] != "nll":
            assert 0 <= r["value"] <= 1, r
    summary = json.loads((results / "summary.json").read_text())
    assert summary["metrics"]["digits_test"]["ensemble"]["exit_frac@2"] == 1.0
    for f in ("risk_coverage.png", "macs_vs_risk80.png", "fitted_cascade.json", "cascade.ckpt"):
        assert (results / f).stat().st_size > 0
    logged = cli.trainer.callback_metrics
    assert "id/digits_test/window/aurc" in logged
    assert "ood/photo_patches/window/fpr@95" in logged


def test_window_cascade_uses_the_second_member_only_inside_the_window(
    tiny_members, tmp_path, cascade_test_args
):
    # policies without the full ensemble: the second member must only see passed samples
    CascadeCLI(
        args=cascade_test_args(
            tiny_members["data_cfg"],
            tiny_members["ckpts"],
            tmp_path / "results",
            "--model.policies=[single, window]",
        )
    )
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    window = summary["metrics"]["digits_test"]["window"]
    calls = summary["member_calls"]["digits_test"]
    assert calls[0] == 450
    assert calls[1] == round(window["exit_frac@2"] * 450)
    assert 0 < calls[1] < 450
    macs = [m["macs"] for m in summary["members"]]
    assert window["expected_macs"] == pytest.approx(macs[0] + window["exit_frac@2"] * macs[1])
    fitted = policy_from_dict(summary["policies"]["window"])
    stage = summary["policies"]["window"]["stages"][0]
    assert stage["target"] == "risk@80"  # the quick start's cascade config
    assert fitted.bounds[0, 0] <= stage["tau"] <= fitted.bounds[0, 1]


def test_online_cascade_equals_offline_evaluation_of_cached_logits(tiny_members, cascade_run):
    cli, results = cascade_run
    online = read_metrics_csv(results / "metrics.csv")
    roles = cli.datamodule.roles
    offline, _ = evaluate_cached_logits(
        tiny_members["logits_dir"],
        ["m0", "m1"],
        roles,
        ["single", "ensemble", "single_threshold", "window"],
        "msp",
        PolicySettings("risk@80", width=0.1, pass_fraction=0.2),  # the config's target
    )
    key = lambda r: (r["dataset"], r["policy"], r["metric"])  # noqa: E731
    off = {key(r): r["value"] for r in offline}
    assert set(off) == {key(r) for r in online}
    for r in online:
        assert r["value"] == pytest.approx(off[key(r)], rel=1e-5, abs=1e-6), key(r)


def test_online_and_offline_results_use_one_key_scheme(tiny_members, cascade_run, tmp_path):
    from window_cascades.commands.offline import main

    cli, results = cascade_run
    roles = cli.datamodule.roles
    args = [
        "--logits-dir",
        str(tiny_members["logits_dir"]),
        "--members",
        "m0",
        "m1",
        "--heldout",
        roles.heldout,
        "--id",
        roles.id,
        "--shift",
        *roles.names("shift"),
        "--ood",
        *roles.ood,
        "--out",
        str(tmp_path / "off"),
        "--target",
        "risk@80",  # the quick start's cascade config
        "--quiet",
        "--bootstrap",
        "100",
    ]
    assert main(args) == 0
    # the same resamples online and offline: the same intervals and paired differences
    key = lambda r: (r["dataset"], r["policy"], r["metric"], r.get("baseline"))  # noqa: E731
    for name in ("metrics.csv", "deltas.csv"):
        off = {key(r): r for r in read_metrics_csv(tmp_path / "off" / name)}
        on = read_metrics_csv(results / name)
        assert len(on) == len(off) > 100
        for r in on:
            for field in ("ci_low", "ci_high"):
                assert r[field] == pytest.approx(off[key(r)][field], abs=2e-4), (key(r), field)
    online = json.loads((results / "summary.json").read_text())
    offline = json.loads((tmp_path / "off" / "summary.json").read_text())
    assert (
        set(online["policies"])
        == set(offline["policies"])
        == {"single", "ensemble", "single_threshold", "window"}
    )
    for name in roles.evaluated():  # (the training split is cached, never evaluated)
        assert set(online["metrics"][name]) == set(offline["metrics"][name])
    for name in (
        "risk_coverage.png",
        "macs_vs_risk80.png",
        "metrics.csv",
        "summary.json",
        "deltas.csv",
        "report.md",
    ):
        assert (tmp_path / "off" / name).is_file() and (results / name).is_file()


def test_cascade_checkpoint_carries_the_window(
    tiny_members, cascade_run, tmp_path, cascade_test_args
):
    cli, results = cascade_run
    from window_cascades.lightning_modules.cascade_module import CascadeModule

    ckpt = torch.load(results / "cascade.ckpt", map_location="cpu", weights_only=True)
    saved = FittedCascade.from_dict(ckpt[CHECKPOINT_KEY])
    for name, policy in cli.model.fitted.policies.items():
        assert saved.policies[name].to_dict() == policy.to_dict()
    assert not any("policy" in k for k in ckpt["state_dict"])  # one home: the fitted value
    # a run restored from the checkpoint keeps the window and gives the same results
    again = tmp_path / "again"
    CascadeCLI(
        args=cascade_test_args(
            tiny_members["data_cfg"],
            tiny_members["ckpts"],
            again,
            f"--ckpt_path={results / 'cascade.ckpt'}",
        )
    )
    # not recalibrated: the run's fitted_cascade.json is the checkpoint's fitted cascade
    assert json.loads((again / "fitted_cascade.json").read_text()) == ckpt[CHECKPOINT_KEY]
    first = {
        (r["dataset"], r["policy"], r["metric"]): r["value"]
        for r in read_metrics_csv(results / "metrics.csv")
    }
    for r in read_metrics_csv(again / "metrics.csv"):
        assert r["value"] == pytest.approx(first[(r["dataset"], r["policy"], r["metric"])])
    assert isinstance(cli.model, CascadeModule)


@pytest.mark.parametrize(
    "definitions, target",
    [("standard", "cov@5"), ("paper", "risk@80")],
)
def test_three_stage_online_cascade_with_every_policy_equals_offline(
    tiny_members, tmp_path, definitions, target, cascade_test_args
):
    """M = 3 (m0, m1, and m2 = m0 with a perturbed classifier), every policy, temperature
    scaling, both definition sets."""
    import shutil

    policies = [
        "single",
        "ensemble",
        "single_threshold",
        "window",
        "window_adjusted",
        "random",
        "budget_window",
        "budget_window_adjusted",
    ]
    ckpt = torch.load(tiny_members["ckpts"][0], map_location="cpu", weights_only=True)
    gen = torch.Generator().manual_seed(2)
    for key in [k for k in ckpt["state_dict"] if k.endswith("fc.weight")]:
        w = ckpt["state_dict"][key]
        ckpt["state_dict"][key] = w + 0.3 * w.std() * torch.randn(w.shape, generator=gen)
    third = tmp_path / "m2.ckpt"
    torch.save(ckpt, third)
    logits = shutil.copytree(tiny_members["logits_dir"], tmp_path / "logits")
    cache_logits(QUICKSTART / "member.yaml", third, logits, "m2", tiny_members["data_cfg"])
    ckpts = [*tiny_members["ckpts"], str(third)]
    cli = CascadeCLI(
        args=cascade_test_args(
            tiny_members["data_cfg"],
            ckpts,
            tmp_path / "results",
            f"--model.policies=[{', '.join(policies)}]",
            f"--model.definitions={definitions}",
            f"--calibration.target={target}",
            "--calibration.temperature_scaling=true",
        )
    )
    online = read_metrics_csv(tmp_path / "results" / "metrics.csv")
    offline, fitted = evaluate_cached_logits(
        logits,
        ["m0", "m1", "m2"],
        cli.datamodule.roles,
        policies,
        "msp",
        PolicySettings(target, definitions=definitions),
        temperature_scaling=True,
        metric_settings=cli.model.settings,
    )
    assert fitted["window"].bounds.shape == (2, 2)
    key = lambda r: (r["dataset"], r["policy"], r["metric"])  # noqa: E731
    off = {key(r): r["value"] for r in offline}
    assert set(off) == {key(r) for r in online}
    for r in online:
        assert r["value"] == pytest.approx(off[key(r)], rel=1e-4, abs=1e-5), key(r)
    window = json.loads((tmp_path / "results" / "fitted_cascade.json").read_text())
    assert window["definitions"] == definitions
    assert len(window["temperatures"]["members"]) == 3


def test_predict_applies_the_calibrated_cascade_with_its_thresholds(
    tiny_members, cascade_run, tmp_path
):
    import csv

    cli, results = cascade_run
    window = json.loads((results / "fitted_cascade.json").read_text())
    point = window["operating_points"]["window"]
    assert point["target"] == "risk@80" and point["ood_tpr"] == 0.95
    out = tmp_path / "predictions.csv"
    members = "[{}, {}]".format(*tiny_members["ckpts"])
    CascadeCLI(
        args=[
            "predict",
            f"--config={QUICKSTART / 'predict.yaml'}",
            f"--data={tiny_members['data_cfg']}",
            f"--model.members={members}",
            f"--ckpt_path={results / 'cascade.ckpt'}",
            f"--predictions.path={out}",
        ]
    )
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "dataset",
        "index",
        "prediction",
        "confidence",
        "decision",
        "accepted",
        "ood",
        "exit_stage",
    ]
    test_rows = [r for r in rows if r["dataset"] == "digits_test"]
    assert [int(r["index"]) for r in test_rows] == list(range(450))
    # the same early exit as the test run, and the flags are the fitted thresholds
    summary = json.loads((results / "summary.json").read_text())
    passed = sum(r["exit_stage"] == "2" for r in test_rows) / 450
    assert passed == pytest.approx(summary["metrics"]["digits_test"]["window"]["exit_frac@2"])
    for r in test_rows:  # one outcome per sample, OOD first (the thresholds in either order)
        conf = float(r["confidence"])
        expected = "ood" if conf < point["ood"] else "reject"
        expected = "accept" if expected == "reject" and conf >= point["accept"] else expected
        assert r["decision"] == expected
        assert r["accepted"] == str(int(expected == "accept"))
        assert r["ood"] == str(int(expected == "ood"))
    labels = [int(r["prediction"]) for r in test_rows]
    assert len(set(labels)) > 5


def test_named_members_override_the_checkpoints_and_it_travels_alone(
    tiny_members, cascade_run, tmp_path, monkeypatch, capsys
):
    """The checkpoint records its members (path, SHA-256) and embeds them: with no members
    named it predicts from any folder, alone; the same members named (moved elsewhere) give
    the same predictions; other members named (here the two swapped) override the embedded
    ones with one notice line."""
    import shutil

    from window_cascades.commands.cli_entry import CASCADE, run_command
    from window_cascades.lightning_modules.cascade_members import MEMBERS_KEY

    _, results = cascade_run
    ckpt = torch.load(results / "cascade.ckpt", map_location="cpu", weights_only=True)
    assert [m["path"] for m in ckpt[MEMBERS_KEY]] == tiny_members["ckpts"]
    assert all(len(m["sha256"]) == 64 for m in ckpt[MEMBERS_KEY])
    specs = ckpt["hyper_parameters"]["member_specs"]
    assert [s["name"] for s in specs] == ["m0", "m1"]
    assert [s["sha256"] for s in specs] == [m["sha256"] for m in ckpt[MEMBERS_KEY]]

    def predict(out, *members: str, ckpt_path=results / "cascade.ckpt") -> list[str]:
        run_args = [
            "predict",
            f"--config={QUICKSTART / 'predict.yaml'}",
            f"--data={tiny_members['data_cfg']}",
            f"--ckpt_path={ckpt_path}",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
            f"--predictions.path={out}",
        ]
        if members:
            run_args.append(f"--model.members=[{', '.join(members)}]")
        assert run_command(CASCADE, run_args) == 0
        return out.read_text().splitlines()

    implicit = predict(tmp_path / "implicit.csv")
    ckpts = tiny_members["ckpts"]
    moved = [shutil.copy(p, tmp_path / f"copy{i}.ckpt") for i, p in enumerate(ckpts)]
    assert predict(tmp_path / "named.csv", *map(str, moved)) == implicit
    assert "notice:" not in capsys.readouterr().err
    swapped = predict(tmp_path / "swapped.csv", *reversed(ckpts))
    notices = [line for line in capsys.readouterr().err.splitlines() if "notice:" in line]
    assert len(notices) == 1 and f"--model.members: {ckpts[1]} (and 1 more) differs" in notices[0]
    assert swapped != implicit
    # alone in an empty folder, no member file reachable under its recorded path
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(results / "cascade.ckpt", alone / "cascade.ckpt")
    monkeypatch.chdir(alone)
    hidden = [shutil.move(p, f"{p}.hidden") for p in ckpts]
    try:
        assert predict(tmp_path / "alone.csv", ckpt_path="cascade.ckpt") == implicit
    finally:
        for path, hidden_path in zip(ckpts, hidden, strict=True):
            shutil.move(hidden_path, path)


def test_predict_refuses_an_uncalibrated_cascade(tiny_members, tmp_path):
    members = "[{}, {}]".format(*tiny_members["ckpts"])
    with pytest.raises(ValueError, match="predict needs a calibrated cascade"):
        CascadeCLI(
            args=[
                "predict",
                f"--config={QUICKSTART / 'predict.yaml'}",
                f"--data={tiny_members['data_cfg']}",
                f"--model.members={members}",
                f"--predictions.path={tmp_path / 'p.csv'}",
                f"--trainer.default_root_dir={tmp_path}",
            ]
        )
    assert not (tmp_path / "p.csv").exists()


def test_decide_and_the_streaming_cascade_give_the_same_decisions(cascade_run):
    """The two documented ways to apply a calibrated cascade in your own code agree
    (docs/howto/deploy.md)."""
    from window_cascades.cascade.streaming import StreamingCascade
    from window_cascades.lightning_modules.cascade_module import CascadeModule

    cli, results = cascade_run
    cascade = CascadeModule.load_from_checkpoint(
        results / "cascade.ckpt", map_location="cpu", weights_only=True
    ).eval()
    loader = cli.datamodule.test_dataloader()[list(cli.datamodule.roles).index("digits_noise")]
    batches = [x for x, _, _ in loader]
    decided = [cascade.decide(x, policy="window") for x in batches]
    stream = StreamingCascade(
        list(cascade.members),
        cascade.fitted.policies["window"],
        cascade.score,
        batch_size=64,
        temperatures=cascade.fitted.temperatures,
    )
    for x in batches:
        stream.push(x)
    result = stream.finish()
    exit_stage = torch.cat([d["exit_stage"] for d in decided])
    assert torch.equal(result.exit_stage, exit_stage) and bool((exit_stage == 2).any())
    assert torch.equal(result.probs.argmax(-1), torch.cat([d["prediction"] for d in decided]))
    assert stream.calls[1] == int((exit_stage == 2).sum())


def test_predict_only_the_named_new_images_each_row_with_its_file(
    tiny_members, cascade_run, tmp_path
):
    """``--predictions.datasets`` predicts only the new images (not the held-out and ID sets
    of the data config), and images read by the IDX-style datamodule keep their file paths."""
    import csv

    import numpy as np
    import yaml

    from tests.datamodules.test_file_images import picture

    _, results = cascade_run
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    rng = np.random.default_rng(3)
    for k in range(5):
        picture(rng, k).save(incoming / f"new_{k}.png")
    cfg = yaml.safe_load(tiny_members["data_cfg"].read_text())
    new = {"name": "incoming", "role": "ood", "source": "path", "format": "image_folder"}
    cfg["init_args"]["datasets"].append({**new, "path": str(incoming)})
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump(cfg))

    def predict(out, names: str) -> None:
        CascadeCLI(
            args=[
                "predict",
                f"--config={QUICKSTART / 'predict.yaml'}",
                f"--data={data}",
                f"--ckpt_path={results / 'cascade.ckpt'}",
                f"--trainer.default_root_dir={tmp_path / 'run'}",
                f"--predictions.path={out}",
                f"--predictions.datasets={names}",
            ]
        )

    predict(tmp_path / "p.csv", "[incoming]")
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["dataset"] for r in rows] == ["incoming"] * 5
    assert [r["path"] for r in rows] == [str(incoming / f"new_{k}.png") for k in range(5)]
    assert [r["index"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert all(r["status"] == "ok" and r["prediction"] != "" for r in rows)
    with pytest.raises(ValueError, match=r"--predictions\.datasets \['nope'\]: unknown \['nope'\]"):
        predict(tmp_path / "q.csv", "[nope]")
    assert not (tmp_path / "q.csv").exists()


def test_a_feature_score_is_refused_online_with_where_to_evaluate_it():
    from window_cascades.lightning_modules.cascade_module import CascadeModule

    with pytest.raises(ValueError, match="evaluate-logits --scores knn --train NAME"):
        CascadeModule(members=["never_read.ckpt"], score="knn")
    # the scores of probabilities and logits (gen included) stay accepted
    from window_cascades.lightning_modules.cascade_module import online_score

    assert [online_score(s) for s in ("msp", "energy", "gen")] == ["msp", "energy", "gen"]
