"""The members a cascade is calibrated with: distinct files, recorded in its checkpoint by
SHA-256 (``MEMBERS_KEY``), and the ones named again when the checkpoint is used: the
recorded ones (an older checkpoint, which does not embed its members), or any with a notice
(a checkpoint that embeds them, ``window_cascades.lightning_modules.member_specs``)."""

from __future__ import annotations

import sys
from pathlib import Path

from window_cascades.artifacts.cached_logits import file_sha256

MEMBERS_KEY = "cascade_members"
"""The entry of a cascade checkpoint that lists its members (``[{path, sha256}]``, in order)."""


def check_distinct_checkpoints(paths: list[str]) -> list[str | None]:
    """Refuse the same member twice (same file content, by SHA-256): its ensemble with itself
    is the single model at a higher cost.

    Returns:
        the hex SHA-256 of each file, in order (None for a missing file).
    """
    digests: dict[str, str] = {}
    found: list[str | None] = []
    for path in paths:
        if not Path(path).is_file():
            found.append(None)
            continue  # load_member names the missing file
        digest = file_sha256(path)
        if digest in digests:
            raise ValueError(
                f"members {digests[digest]} and {path} are the same checkpoint (SHA-256 "
                f"{digest[:12]}...): give distinct members"
            )
        digests[digest] = path
        found.append(digest)
    return found


def recorded_members(checkpoint: dict) -> list[dict]:
    """The members a cascade checkpoint was calibrated with: ``[{"path", "sha256"}]`` in cascade
    order (``sha256`` None for a checkpoint written before members were recorded)."""
    if MEMBERS_KEY in checkpoint:
        return [dict(m) for m in checkpoint[MEMBERS_KEY]]
    paths = (checkpoint.get("hyper_parameters") or {}).get("members") or []
    return [{"path": str(p), "sha256": None} for p in paths]


def check_same_members(given: list[str], checkpoint: dict, ckpt_path: str) -> None:
    """Refuse ``--model.members`` that are not the members ``ckpt_path`` was calibrated with.

    The cascade checkpoint carries its members' weights and Lightning restores them over the
    named members: other members named here would be silently ignored. Members are compared by
    file content (SHA-256), so moved or renamed copies are accepted; an empty ``given`` takes
    the checkpoint's members.

    Raises:
        FileNotFoundError: a named member file is missing.
        ValueError: naming both lists, when they differ.
    """
    if not given:
        return
    recorded = recorded_members(checkpoint)
    for path in given:
        if not Path(path).is_file():
            raise FileNotFoundError(f"--model.members: member checkpoint not found: {path}")
    if len(given) == len(recorded):
        same = all(
            file_sha256(path) == m["sha256"]
            if m["sha256"]
            else Path(path).resolve() == Path(m["path"]).resolve()
            for path, m in zip(given, recorded, strict=True)
        )
        if same:
            return
    raise ValueError(
        f"--model.members [{', '.join(map(str, given))}] are not the members {ckpt_path} was "
        f"calibrated with ([{', '.join(m['path'] for m in recorded)}], compared by SHA-256): "
        "give those, or leave --model.members out to use the checkpoint's; other members need "
        "a new calibration (test)"
    )


def check_recorded_members_found(checkpoint: dict, ckpt_path: str) -> None:
    """With ``--model.members`` left out, the members ``ckpt_path`` records are used: refuse,
    in one line, when one of their files is no longer where it was.

    Raises:
        FileNotFoundError: naming the checkpoint, the missing file and what to give instead.
    """
    missing = [m["path"] for m in recorded_members(checkpoint) if not Path(m["path"]).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FileNotFoundError(
            f"--ckpt_path {ckpt_path}: its member {missing[0]}{more} is not found (moved?); give "
            "--model.members '[...]' with the member files, in cascade order (copies with the "
            "same SHA-256 are accepted)"
        )


def named_members_notice(
    paths: list[str], digests: list[str | None], specs: list[dict]
) -> list[int]:
    """Members named explicitly over a cascade checkpoint's embedded ones: print one notice
    line (stderr, first process only) when some differ from the recorded ones by SHA-256.

    Args:
        paths: the named member files, in cascade order.
        digests: their SHA-256 (hex).
        specs: the checkpoint's embedded members (``member_specs``), same order and count.

    Returns:
        the positions of the named members that differ (0-based).
    """
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    differing = [
        k
        for k, (digest, spec) in enumerate(zip(digests, specs, strict=True))
        if spec.get("sha256") and digest != spec["sha256"]
    ]
    if differing and getattr(rank_zero_only, "rank", 0) == 0:
        k = differing[0]
        more = f" (and {len(differing) - 1} more)" if len(differing) > 1 else ""
        name = specs[k].get("name") or f"m{k + 1}"
        print(
            f"notice: --model.members: {paths[k]}{more} differs from the member the cascade was "
            f"calibrated with ({name}: SHA-256 {specs[k]['sha256'][:12]}... recorded, "
            f"{str(digests[k])[:12]}... named); using the named file(s), though the fitted "
            "policies were fitted for the recorded one(s)",
            file=sys.stderr,
        )
    return differing
