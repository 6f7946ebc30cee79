"""The LightningCLI commands and the pipeline: input errors are one line, exit 2, and what can be
checked without Lightning is checked before it is imported."""

import os
import subprocess
import sys

import pytest

from tests.conftest import QUICKSTART, ROOT
from window_cascades.commands.cli_entry import CASCADE, MEMBER, condense
from window_cascades.commands.precheck import init_arguments

MEMBER_CFG = str(QUICKSTART / "member.yaml")
CASCADE_CFG = str(QUICKSTART / "cascade.yaml")
PIPELINE_CFG = str(QUICKSTART / "pipeline.yaml")


def command(script: str, *args: str, importtime: bool = False, cwd=ROOT):
    flags = ["-X", "importtime"] if importtime else []
    env = {**os.environ}
    env.pop("WINDOW_CASCADES_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, *flags, str(ROOT / "scripts" / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "broken.yaml").write_text("trainer:\n  max_epochs: 2\n bad: [\n")
    (tmp / "list.yaml").write_text("- a\n- b\n")
    (tmp / "typo.yaml").write_text("trainer:\n  max_epochs: 1\nmodle:\n  lr: 0.1\n")
    (tmp / "nested_typo.yaml").write_text("model:\n  learning_rate: 0.1\n")
    stages = f"member_config: {MEMBER_CFG}\ncascade_config: {CASCADE_CFG}\n"
    (tmp / "pipeline_field.yaml").write_text(f"out: x\nseeds: [0]\nseed: 1\n{stages}")
    (tmp / "pipeline_no_out.yaml").write_text(f"seeds: [0]\n{stages}")
    (tmp / "pipeline_seeds.yaml").write_text(f"out: x\nseeds: [1, 1]\n{stages}")
    (tmp / "pipeline_logger.yaml").write_text(f"out: x\nseeds: [0]\nlogger: tb\n{stages}")
    (tmp / "pipeline_args.yaml").write_text(f"out: x\nseeds: [0]\nmember_args: 5\n{stages}")
    (tmp / "pipeline_typo.yaml").write_text(
        f"out: {tmp}/out\nseeds: [0, 1]\nmember_config: {MEMBER_CFG}\n"
        f"cascade_config: {CASCADE_CFG}\ncascade_args: ['--calibration.widht=0.2']\n"
    )
    return tmp


# (script, args, what the one error line must say); {tmp} is the folder of bad files
BEFORE_IMPORTS = [
    ("train_member.py", ["fitt"], "unknown subcommand 'fitt' (did you mean 'fit'?)"),
    ("train_member.py", ["--config", MEMBER_CFG], "give a subcommand first"),
    ("evaluate_cascade.py", ["fit", "--config", CASCADE_CFG], "expected one of test"),
    ("train_member.py", ["fit", "--config", "{tmp}/missing.yaml"], "missing.yaml: file not found"),
    (
        "train_member.py",
        ["fit", "--config", "{tmp}/broken.yaml"],
        "broken.yaml: invalid YAML, line 3, column 2",
    ),
    ("train_member.py", ["fit", "--config", "{tmp}/list.yaml"], "expected a mapping of keys"),
    (
        "train_member.py",
        ["fit", "--config", "{tmp}/typo.yaml"],
        "typo.yaml: unknown key 'modle' (did you mean 'model'?)",
    ),
    (
        "train_member.py",
        ["fit", "--config", "{tmp}/nested_typo.yaml"],
        "unknown key 'model.learning_rate'",
    ),
    (
        "train_member.py",
        ["fit", "--config", MEMBER_CFG, "--model.lrr", "0.1"],
        "--model.lrr: unknown key 'model.lrr' (did you mean 'model.lr'?)",
    ),
    (
        "train_member.py",
        ["fit", "--config", MEMBER_CFG, "--trainr.max_epochs=1"],
        "unknown key 'trainr' (did you mean 'trainer'?)",
    ),
    (
        "train_member.py",
        ["predict", "--config", MEMBER_CFG, "--cache.logits-dir", "x"],
        "unknown key 'cache.logits-dir' (did you mean 'cache.logits_dir'?)",
    ),
    (
        "train_member.py",
        ["fit", "--config", MEMBER_CFG, "--data", "{tmp}/broken.yaml"],
        "--data {tmp}/broken.yaml: invalid YAML",
    ),
    (
        "evaluate_cascade.py",
        ["test", "--config", CASCADE_CFG, "--results.dirr", "x"],
        "unknown key 'results.dirr' (did you mean 'results.dir'?)",
    ),
    (
        "evaluate_cascade.py",
        ["test", "--config", CASCADE_CFG, "--calibration.with=0.2"],
        "did you mean 'calibration.width'?",
    ),
    ("run_pipeline.py", ["--config", "{tmp}/broken.yaml"], "broken.yaml: invalid YAML"),
    (
        "run_pipeline.py",
        ["--config", "{tmp}/pipeline_typo.yaml"],
        "unknown key 'calibration.widht' (did you mean 'calibration.width'?)",
    ),
    ("run_pipeline.py", ["--config", "{tmp}/pipeline_field.yaml"], "unknown field(s) ['seed']"),
    ("run_pipeline.py", ["--config", "{tmp}/pipeline_no_out.yaml"], "missing field 'out'"),
    ("run_pipeline.py", ["--config", "{tmp}/pipeline_seeds.yaml"], "list of distinct integers"),
    ("run_pipeline.py", ["--config", "{tmp}/pipeline_logger.yaml"], "logger must be 'csv' or"),
    ("run_pipeline.py", ["--config", "{tmp}/pipeline_args.yaml"], "member_args must be a list"),
    ("run_pipeline.py", ["--config", "{tmp}/nowhere.yaml"], "pipeline config not found"),
    (
        "run_pipeline.py",
        ["--config", PIPELINE_CFG, "--member-arg=--model.lrr=1"],
        "unknown key 'model.lrr'",
    ),
    (
        "run_pipeline.py",
        ["--config", PIPELINE_CFG, "--step", "member"],
        "--step member needs --member I",
    ),
]


@pytest.mark.parametrize("script, args, message", BEFORE_IMPORTS)
def test_input_errors_before_lightning_is_imported(bad_files, script, args, message):
    args = [a.replace("{tmp}", str(bad_files)) for a in args]
    proc = command(script, *args, importtime=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = error_lines(proc)
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and message.replace("{tmp}", str(bad_files)) in errors[0], lines
    assert len(lines) <= 4, lines  # the message (and for argparse, its short usage)
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {"lightning", "torch", "timm"} & loaded, "checked after the heavy imports"


def test_traceback_on_request(bad_files):
    proc = command("train_member.py", "fit", "--config", f"{bad_files}/broken.yaml", "--traceback")
    assert proc.returncode != 0 and "Traceback (most recent call last)" in proc.stderr


TWO = "--model.members=[{tmp}/a.ckpt, {tmp}/b.ckpt]"  # a cascade needs 2 members
AFTER_IMPORTS = [
    (
        "train_member.py",
        ["fit", "--config", MEMBER_CFG, "--trainer.max_epochs", "many"],
        "--trainer.max_epochs many: expected int",
    ),
    (
        "train_member.py",
        ["fit", "--config", MEMBER_CFG, "--data.init_args.batch_size", "x"],
        "--data.batch_size x: expected int",
    ),
    (
        "train_member.py",
        ["fit", "--config", MEMBER_CFG, "--model.model_name", "resnet_nope"],
        "timm has no model 'resnet_nope'",
    ),
    (
        "train_member.py",
        ["predict", "--config", MEMBER_CFG, "--ckpt_path", "{tmp}/none.ckpt"],
        "member checkpoint not found",
    ),
    ("evaluate_cascade.py", ["test", "--config", CASCADE_CFG, TWO], "member checkpoint not found"),
    (
        "evaluate_cascade.py",
        ["test", "--config", CASCADE_CFG, TWO, "--model.bootstrap", "5"],
        "bootstrap 5: expected 0 (off) or at least 10 resamples",
    ),
]


@pytest.mark.slow  # a process per case: the fast loop leaves it to the full suite
@pytest.mark.parametrize("script, args, message", AFTER_IMPORTS)
def test_input_errors_found_by_the_full_parser_or_the_run_are_one_line(
    bad_files, script, args, message, tmp_path
):
    args = [a.replace("{tmp}", str(bad_files)) for a in args]
    proc = command(script, *args, "--trainer.default_root_dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr
    assert "Given value" not in proc.stderr


def test_condensed_parser_messages_name_key_value_and_type():
    union = (
        'Parser key "trainer.max_epochs":\n  Does not validate against any of the Union subtypes\n'
        "  Subtypes: [<class 'int'>, <class 'NoneType'>]\n  Errors:\n"
        "    - Expected a <class 'int'>\n    - Expected a <class 'NoneType'>\n"
        "  Given value type: <class 'str'>\n  Given value: many"
    )
    assert condense(union) == "--trainer.max_epochs many: expected int"
    assert condense("unrecognized arguments:\n  --x") == "unrecognized arguments: --x"


def test_the_precheck_knows_the_same_keys_as_the_parsers(tiny_members):
    """The keys read from the source (not imported) are the parsers' keys, so the early check
    can neither refuse a key the command accepts nor go stale when a class changes."""
    import inspect

    from window_cascades.commands.cli import CascadeCLI, MemberCLI

    members = "[{}, {}]".format(*tiny_members["ckpts"])
    cascade_args = [f"--data={tiny_members['data_cfg']}", f"--model.members={members}"]
    clis = ((MEMBER, MemberCLI, ["--config", MEMBER_CFG]), (CASCADE, CascadeCLI, cascade_args))
    for spec, cli_class, args in clis:
        cli = cli_class(args=args, run=False)
        dests = {a.dest for a in cli.parser._actions}
        top = {d.split(".")[0] for d in dests} - {"help", "print_shtab"}
        assert top == spec.top_keys("fit") - {"ckpt_path", "weights_only"}, spec.script
        for group in (*spec.class_keys, *spec.fixed_keys):
            parsed = {d.split(".", 1)[1] for d in dests if d.startswith(f"{group}.")}
            assert parsed == spec.group_keys(group), (spec.script, group)
    from window_cascades.lightning_modules.member import MemberModule

    params = list(inspect.signature(MemberModule.__init__).parameters)[1:]
    assert init_arguments(ROOT / "lightning_modules" / "member.py", "MemberModule") == params


def test_offline_evaluator_checks_its_arguments_before_torch_is_imported():
    proc = command(
        "evaluate_logits.py",
        "--logits-dir",
        "x",
        "--members",
        "a",
        "--heldout",
        "h",
        "--id",
        "i",
        "--out",
        "o",
        "--score",
        "bogus",
        importtime=True,
    )
    assert proc.returncode == 2 and "invalid choice: 'bogus'" in proc.stderr
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "torch" not in loaded


# through the installed command: the same checks, and the program named as the user typed it
THROUGH_COMMAND = [
    (["member", "fitt"], "error: window-cascades member: unknown subcommand 'fitt' (did you mean"),
    (["member", "--config", MEMBER_CFG], "error: window-cascades member: give a subcommand first"),
    (
        ["cascade", "fit", "--config", CASCADE_CFG],
        "error: window-cascades cascade: unknown subcommand 'fit'",
    ),
    (
        ["member", "fit", "--config", MEMBER_CFG, "--model.lrr", "0.1"],
        "error: --model.lrr: unknown key 'model.lrr' (did you mean 'model.lr'?)",
    ),
    (["pipeline", "--config", "{tmp}/pipeline_typo.yaml"], "unknown key 'calibration.widht'"),
    (["pipeline", "--config", "{tmp}/nowhere.yaml"], "pipeline config not found"),
    (
        ["pipeline", "--step", "everything"],
        "window-cascades pipeline: error: argument --step: invalid choice: 'everything'",
    ),
    (
        [
            "evaluate-logits",
            "--logits-dir",
            "x",
            "--members",
            "a",
            "--heldout",
            "h",
            "--id",
            "i",
            "--out",
            "o",
            "--score",
            "bogus",
        ],
        "window-cascades evaluate-logits: error: argument --scores/--score: invalid choice: "
        "'bogus'",
    ),
    (["submit", "{tmp}/pipeline_no_out.yaml"], "error: {tmp}/pipeline_no_out.yaml: missing field"),
    (["submit", PIPELINE_CFG, "--nodes", "x"], "window-cascades submit: error: argument --nodes"),
    (["init", "nope"], "window-cascades init: error: no shipped experiment 'nope'"),
]


@pytest.mark.parametrize("args, message", THROUGH_COMMAND)
def test_the_command_names_its_subcommand_in_one_line_errors(bad_files, tmp_path, args, message):
    args = [a.replace("{tmp}", str(bad_files)) for a in args]
    env = {**os.environ}
    env.pop("WINDOW_CASCADES_TRACEBACK", None)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "window_cascades", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = error_lines(proc)
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and message.replace("{tmp}", str(bad_files)) in errors[0], lines
    # the message; before it at most argparse's usage (longer: the program name is longer)
    if errors[0] == lines[-1]:
        assert all(line.startswith(("usage:", " ")) for line in lines[:-1]), lines
    else:
        assert lines == [errors[0], "(add --traceback for the full traceback)"], lines
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {"lightning", "torch", "timm"} & loaded, "checked after the heavy imports"
    assert list(tmp_path.iterdir()) == []


def test_scripts_keep_their_own_names_and_the_full_parser_names_the_command(tmp_path):
    assert (
        "error: train_member.py: unknown subcommand 'fitt'"
        in command("train_member.py", "fitt").stderr
    )
    env = {**os.environ}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "window_cascades.commands.window_cascades",
            "member",
            "fit",
            "--config",
            MEMBER_CFG,
            "--trainer.max_epochs",
            "many",
            "--trainer.default_root_dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: --trainer.max_epochs many: expected int"], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "usage:" not in proc.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "window_cascades", "member", "fit", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.stdout.startswith("usage: window-cascades member [options] fit"), shown.stdout[
        :300
    ]
