"""Dataset roles: which evaluation dataset is the held-out split, the ID test set, a shifted
copy or an OOD set. One validated value that every driver uses.

Roles come from the configuration (a data config's ``datasets`` or the offline evaluator's
``--heldout/--id/--shift/--ood``), never from dataloader order:

- ``heldout``: the held-out split (labelled); calibration fits the policies (and the
  temperatures) on it;
- ``id``: the in-distribution test set (labelled);
- ``shift``: a shifted (e.g. corrupted) labelled set;
- ``ood``: an out-of-distribution set (unlabelled: targets are -1);
- ``train``: the members' training split, unaugmented (at most one): feature scores fit their
  statistics on it (class means, covariances, the KNN bank); never evaluated;
- ``ood_val``: an OOD validation set (unlabelled): a score's parameters may be chosen on it
  (``--score-selection``); never evaluated, and never a test set.

The first four are the evaluated roles (``EVALUATED_ROLES``): every metric row is of one of
them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

ROLES: tuple[str, ...] = ("heldout", "id", "shift", "ood", "train", "ood_val")
"""The dataset roles, in the order results list them (``train`` and ``ood_val`` are read by
scores, never evaluated)."""
EVALUATED_ROLES: tuple[str, ...] = ("heldout", "id", "shift", "ood")
LABELLED_ROLES: tuple[str, ...] = ("heldout", "id", "shift")
"""The roles whose samples all carry a label."""
PREDICT_ROLE = "predict"
"""The role of new, unlabelled images a calibrated cascade is applied to (``predict`` over a
folder or a file list, [`DatasetRoles.for_prediction`][]); never evaluated."""


class DatasetRoles(Mapping[str, str]):
    """An ordered, validated mapping dataset name -> role.

    Exactly one ``heldout`` and one ``id`` dataset, at most one ``train``; every role one of
    ``ROLES``; names unique (a mapping cannot repeat a key; ``from_pairs`` refuses a
    repeated name).

    Args:
        roles: dataset name -> role, in the order the datasets are configured.

    Raises:
        ValueError: naming the dataset and role that are wrong.
    """

    def __init__(self, roles: Mapping[str, str]):
        self._roles = dict(roles)
        for name, role in self._roles.items():
            if role not in ROLES:
                raise ValueError(f"dataset {name!r}: role {role!r} is not one of {list(ROLES)}")
        for role in ("heldout", "id"):
            count = sum(r == role for r in self._roles.values())
            if count != 1:
                raise ValueError(f"roles: expected exactly one {role!r} dataset, found {count}")
        trains = self.names("train")
        if len(trains) > 1:
            raise ValueError(f"roles: at most one 'train' dataset, found {trains}")

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> DatasetRoles:
        """Build from (name, role) pairs, refusing a name given twice.

        Args:
            pairs: (dataset name, role) pairs, in the order the datasets are configured.
        """
        roles: dict[str, str] = {}
        for name, role in pairs:
            if name in roles:
                raise ValueError(f"dataset {name!r} is given twice (as {roles[name]} and {role})")
            roles[name] = role
        return cls(roles)

    @classmethod
    def for_prediction(cls, names: list[str]) -> DatasetRoles:
        """Roles of a ``predict``-only datamodule: every dataset new images
        ([`PREDICT_ROLE`][]), with no held-out or ID set (nothing is calibrated or evaluated).

        Args:
            names: the names of the datasets of new images.
        """
        roles = cls.__new__(cls)
        roles._roles = dict.fromkeys(names, PREDICT_ROLE)
        return roles

    def __getitem__(self, name: str) -> str:
        return self._roles[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._roles)

    def __len__(self) -> int:
        return len(self._roles)

    def __repr__(self) -> str:
        return f"DatasetRoles({self._roles!r})"

    def names(self, role: str) -> list[str]:
        """Names of the datasets with ``role``, in configured order.

        Args:
            role: one of [`ROLES`][] (or ``predict``).
        """
        return [n for n, r in self._roles.items() if r == role]

    @property
    def heldout(self) -> str:
        """Name of the held-out split (what the policies and temperatures are fitted on)."""
        return self.names("heldout")[0]

    @property
    def id(self) -> str:
        """Name of the in-distribution test dataset."""
        return self.names("id")[0]

    @property
    def ood(self) -> list[str]:
        """Names of the OOD datasets."""
        return self.names("ood")

    @property
    def train(self) -> str | None:
        """Name of the training split (role ``train``), or None."""
        found = self.names("train")
        return found[0] if found else None

    @property
    def ood_val(self) -> list[str]:
        """Names of the OOD validation sets (role ``ood_val``)."""
        return self.names("ood_val")

    def evaluated(self) -> DatasetRoles:
        """The datasets of the evaluated roles (``EVALUATED_ROLES``; the new images of a
        predict-only datamodule too), in order: those a cascade is tested on, applied to and
        reports rows for."""
        kept = DatasetRoles.__new__(DatasetRoles)  # a valid mapping's subset (or predict-only)
        kept._roles = {n: r for n, r in self._roles.items() if r not in ("train", "ood_val")}
        return kept
