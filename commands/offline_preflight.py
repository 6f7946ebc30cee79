"""What the offline evaluator refuses before torch is imported: every check that needs no data
(the output folder, the input folders, option values), so a mistake costs a fraction of a
second instead of torch's import (2-3 s). Only the policies' own names and parameters are
checked after it: the policy registry that declares them imports torch."""

from __future__ import annotations

import argparse
from pathlib import Path

from window_cascades.artifacts.output_paths import check_output_dir
from window_cascades.artifacts.run_folder import check_output_folder
from window_cascades.commands.offline_plan import dataset_roles, parse_macs
from window_cascades.uncertainty.targets import parse_target
from window_cascades.vocabulary.checks import (
    check_gain_shares,
    check_report_points,
    check_resamples,
)


def check_members(logits_dir: str | Path, members: list[str]) -> None:
    """The logits folder and each member's folder in it exist, and no member is given twice.

    Raises:
        FileNotFoundError: naming the missing folder.
        ValueError: naming the repeated member.
    """
    repeated = sorted({m for m in members if members.count(m) > 1})
    if repeated:
        raise ValueError(
            f"member(s) {repeated} given twice: an ensemble of a model with itself is the single "
            "model at a higher cost; give distinct members"
        )
    if not Path(logits_dir).is_dir():
        raise FileNotFoundError(f"--logits-dir {logits_dir}: no such folder")
    for m in members:
        if not (Path(logits_dir) / m).is_dir():
            raise FileNotFoundError(f"member folder not found: {Path(logits_dir) / m}")


def check_outputs_cache(args: argparse.Namespace) -> None:
    """What ``--outputs-cache`` cannot serve: scores read from each member's logits or features
    with parameters chosen on data, and the headroom (member 1's logits).

    Raises:
        ValueError: naming the option.
    """
    from window_cascades.uncertainty.score_registry import check_state_score

    for score in args.score:
        check_state_score(score, "the outputs cache (--outputs-cache)")
    if args.headroom:
        raise ValueError(
            "--headroom reads member 1's held-out logits, which the outputs cache "
            "(--outputs-cache) does not hold; drop one of them"
        )


def preflight(args: argparse.Namespace) -> None:
    """Check every option that needs no data and claim ``--out`` (the caller releases it:
    ``window_cascades.artifacts.folder_claim.release_output_folder``), in the order the run
    would check them: option values, the output folder, the members' folders.

    Raises:
        ValueError, FileNotFoundError, OutputFolderError: one line naming the option.
    """
    if len(set(args.score)) != len(args.score):
        raise ValueError(f"--score {' '.join(args.score)}: a score is given twice")
    parse_target(args.target)
    dataset_roles(args)
    check_report_points(
        args.risks, args.coverages, args.ood_tpr, args.scod_ratio, args.scod_beta, prefix="--"
    )
    if args.gain_shares is not None:
        check_gain_shares(args.gain_shares)
    check_resamples(args.bootstrap)
    if args.outputs_cache is not None:
        check_outputs_cache(args)
    parse_macs(args.macs)
    check_output_dir(args.out, "--out", [("--logits-dir", args.logits_dir)])
    check_output_folder(args.out, args.overwrite)
    check_members(args.logits_dir, args.members)  # as the loading would, after the folder's
