"""Named datasets with explicit roles, as given in a config.

Roles: ``heldout`` (the held-out split, labelled), ``id`` (in-distribution test set), ``shift``
(a corrupted copy of the test set, labelled), ``ood`` (out-of-distribution, unlabelled:
targets are -1), and, read by feature scores only, ``train`` (the members' training split,
``source: train``, unaugmented) and ``ood_val`` (an OOD validation set). Roles come from the
config, never from dataloader order.
"""

from __future__ import annotations

from dataclasses import dataclass

from window_cascades.vocabulary.roles import ROLES, DatasetRoles

SOURCES: tuple[str, ...] = (
    "heldout",
    "test",
    "train",
    "photo_patches",
    "uniform_noise",
    "digits",
    "path",
)


@dataclass(frozen=True)
class DatasetSpec:
    """One evaluation dataset.

    Attributes:
        name: unique name, used in file names and metric keys.
        role: one of ``ROLES``.
        source: where the images come from: ``heldout``, ``test`` or ``train`` split (the
            training images unaugmented, capped by ``train_limit`` as for training), an OOD
            generator (``photo_patches``, ``uniform_noise``, ``digits``), or ``path``: files
            in ``format`` at ``path`` (any format of ``window_cascades.datamodules.image_sources``).
        corruption: optional corruption applied to the source (see ``corruptions``).
        severity: corruption severity, 1-5.
        size: number of images for generated OOD sources.
        path: The files of a ``path`` source (a folder or file).
        format: Their format (one of ``image_sources.FORMATS``).
        split: The split to read, for formats with splits.
        labels: The labels file, for the ``idx`` format.
    """

    name: str
    role: str
    source: str
    corruption: str | None = None
    severity: int = 3
    size: int = 500
    path: str | None = None
    format: str | None = None
    split: str | None = None
    labels: str | None = None


def check_spec_fields(entry: dict, where: str) -> None:
    """Refuse a field of the wrong type (``severity: 3.5`` or ``size: 12.7`` would otherwise be
    truncated to an integer, ``name: 1`` would name files by a number): ``name``, ``role``,
    ``source`` strings; ``severity`` and ``size`` integers (``size`` >= 1); ``corruption``,
    ``path``, ``format``, ``split``, ``labels`` strings or null.

    Args:
        entry: One ``datasets`` entry of a config.
        where: The entry as the error names it.

    Raises:
        ValueError: naming ``where`` (the entry) and the field.
    """
    for key in ("name", "role", "source"):
        if not isinstance(entry[key], str) or not entry[key]:
            raise ValueError(
                f"{where}: field {key!r} must be a non-empty string, got {entry[key]!r}"
            )
    for key in ("corruption", "path", "format", "split", "labels"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise ValueError(f"{where}: field {key!r} must be a string, got {entry[key]!r}")
    for key, low in (("severity", 1), ("size", 1)):
        value = entry.get(key)
        if key in entry and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ValueError(f"{where}: field {key!r} must be an integer >= {low}, got {value!r}")


def parse_dataset_specs(entries: list[dict]) -> list[DatasetSpec]:
    """Validate the ``datasets`` entries of a config and return them as specs.

    Args:
        entries: The config's ``datasets`` list.

    Returns:
        One spec per entry, in order.

    Raises:
        ValueError: naming the entry and field, for an unknown role, source or field, a
            duplicate name, or a list without exactly one ``heldout`` and one ``id`` dataset.
    """
    from window_cascades.datamodules.corruptions import CORRUPTIONS

    specs: list[DatasetSpec] = []
    seen: set[str] = set()
    fields = set(DatasetSpec.__dataclass_fields__)
    for i, entry in enumerate(entries):
        where = f"datasets[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping with name, role, source; got {entry!r}")
        unknown = set(entry) - fields
        if unknown:
            raise ValueError(
                f"{where}: unknown field(s) {sorted(unknown)}; expected {sorted(fields)}"
            )
        for key in ("name", "role", "source"):
            if key not in entry:
                raise ValueError(f"{where}: missing field {key!r}")
        check_spec_fields(entry, f"{where} ({entry['name']!r})")
        spec = DatasetSpec(**entry)
        if spec.role not in ROLES:
            raise ValueError(
                f"{where} ({spec.name!r}): role {spec.role!r} is not one of {list(ROLES)}"
            )
        if spec.source not in SOURCES:
            raise ValueError(
                f"{where} ({spec.name!r}): source {spec.source!r} is not one of {list(SOURCES)}"
            )
        if spec.source == "path" and not (spec.path and spec.format):
            raise ValueError(f"{where} ({spec.name!r}): source 'path' needs 'path' and 'format'")
        if spec.corruption is not None and spec.corruption not in CORRUPTIONS:
            raise ValueError(
                f"{where} ({spec.name!r}): corruption {spec.corruption!r} is not one of "
                f"{sorted(CORRUPTIONS)}"
            )
        if not 1 <= spec.severity <= 5:
            raise ValueError(f"{where} ({spec.name!r}): severity must be 1-5, got {spec.severity}")
        if spec.name in seen:
            raise ValueError(f"{where}: two datasets are named {spec.name!r}; names must be unique")
        seen.add(spec.name)
        specs.append(spec)
    try:
        DatasetRoles({s.name: s.role for s in specs})
    except ValueError as err:
        raise ValueError(f"datasets: {err}") from None
    return specs
