"""The policy registry: every cascade policy by name, as timm registers models.

A policy is one entry: its name, a fit function, a one-line description and its parameters
(a dataclass, ``window_cascades.cascade.policy_parameters``). The fit function takes the held-out
stage scores ([`FitInputs`][]) and the settings ([`PolicySettings`][]: the shared ones and
every declared parameter) and returns a fitted policy
([`window_cascades.cascade.policies.IntervalPolicy`][] or any object with ``name``, ``setting``,
``num_stages``, ``passes`` and ``to_dict``). The online ``CascadeModule``, the offline evaluator,
their command-line help and the README's policy table all take the list from here. Adding a policy::

    @dataclass(frozen=True)
    class MyParameters:
        share: float = parameter("share", 0.3, "fraction passed on", check=...)

    @register_policy("my_policy", "what it passes on", parameters=MyParameters, sweep="share")
    def fit_my_policy(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
        ...  # settings.share

``sweep`` names the parameter whose values a sweep varies for this policy (the offline
evaluator's ``--share 0.1 0.3``); None: the policy is fitted once per run. The entry also says
whether the policy is in a run that names no policies (``default``), whether it stands for one
of the two reference points every comparison is made against (``reference``: member 1 alone or
the full ensemble) and whether cost-to-target fits it (``in_cost_to_target``, with a swept
parameter that declares a cost grid). Nothing outside the entries lists policy names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from window_cascades.cascade.policy_parameters import (
    PolicyParameter,
    PolicySettings,
    declare_parameters,
    forget_parameters,
    parameters_of,
)

__all__ = ["PolicySettings", "FitInputs", "PolicyEntry", "register_policy", "fit_policies"]

FIRST_MEMBER = "first member"
"""The reference point at 0% of the ensemble's gain: member 1 alone."""
FULL_ENSEMBLE = "full ensemble"
"""The reference point at 100% of the ensemble's gain: every member on every sample."""
REFERENCES = (FIRST_MEMBER, FULL_ENSEMBLE)
# not a reference point of the gain: the policy the others are compared with at the run's
# target, spending the same held-out cost without looking at tau (the target's own comparison)
COST_MATCHED = "cost-matched comparator"


@dataclass
class FitInputs:
    """What a policy is fitted on, for a cascade of ``num_stages`` members.

    Attributes:
        stage_confidence: per stage 1..M-1 in order (entry k: stage k + 1), held-out
            confidences (float64, N) of the ensemble of the first k + 1 members.
        stage_correct: matching correctness of that ensemble's prediction (N each, bool).
        mixture_confidence: per stage, confidences on the unlabelled test mixture (ID + OOD),
            or None when no policy needs them.
        heldout_name: name of the held-out dataset, for error messages.
        final_confidence: the full ensemble's held-out confidences (policies that score the
            cascade's output, e.g. ``budget_window``), or None.
        final_correct: the full ensemble's held-out correctness, matching them, or None.
        stage_macs: MACs per member (policies with a compute budget).
    """

    stage_confidence: list[torch.Tensor]
    stage_correct: list[torch.Tensor]
    mixture_confidence: list[torch.Tensor] | None = None
    heldout_name: str = "heldout"
    final_confidence: torch.Tensor | None = None
    final_correct: torch.Tensor | None = None
    stage_macs: list[float] | None = None

    @property
    def num_stages(self) -> int:
        """M, the number of members."""
        return len(self.stage_confidence) + 1


@dataclass(frozen=True)
class PolicyEntry:
    """One registered policy.

    Attributes:
        name: the policy's name (the ``policy`` column of ``metrics.csv``).
        fit: (FitInputs, PolicySettings) -> fitted policy.
        description: one line, for help texts and the README.
        sweep: the parameter a sweep varies (e.g. ``width``, ``pass_fraction``,
            ``budget``) or None.
        needs_mixture: the fit reads ``FitInputs.mixture_confidence``.
        parameters: the parameters it declares (``window_cascades.cascade.policy_parameters``).
        default: evaluated when no policies are named (the offline ``--policies``, the online
            ``model.policies``).
        reference: [`FIRST_MEMBER`][] or [`FULL_ENSEMBLE`][] for the policy that is that
            reference point (paired differences in ``deltas.csv`` are taken against these, and
            shares of the ensemble's gain between them); ``COST_MATCHED`` for the one policy
            every other is compared with on the target's operating-point metrics (report.md's
            first table); None for every other policy.
        in_cost_to_target: cost-to-target fits it when its ``sweep`` declares a cost grid;
            False leaves it out (e.g. a policy whose gain is proportional to its cost by
            construction).
    """

    name: str
    fit: Callable
    description: str
    sweep: str | None = None
    needs_mixture: bool = False
    parameters: tuple[PolicyParameter, ...] = ()
    default: bool = False
    reference: str | None = None
    in_cost_to_target: bool = True


_REGISTRY: dict[str, PolicyEntry] = {}


def register_policy(
    name: str,
    description: str,
    parameters: type | None = None,
    sweep: str | None = None,
    needs_mixture: bool = False,
    default: bool = False,
    reference: str | None = None,
    in_cost_to_target: bool = True,
) -> Callable:
    """Decorator registering a policy's fit function under ``name`` with its parameters'
    dataclass; from then on every command and ``window_cascades.evaluate`` can run it.

    Args:
        name: the policy's name (``--policies``, the ``policy`` column of ``metrics.csv``).
        description: what it passes on to the next member, in one line (help texts, docs).
        parameters: a frozen dataclass whose fields are made by
            ``window_cascades.cascade.policy_parameters.parameter`` (each becomes an option,
            e.g. ``--top-share``, and a ``PolicySettings`` attribute); None: no parameters.
        sweep: the parameter a sweep varies for this policy (several ``--top-share`` values
            give one set of rows each); None: fitted once per run.
        needs_mixture: the fit reads the unlabelled test mixture's confidences
            (``FitInputs.mixture_confidence``; needs an ``ood`` set).
        default: evaluated when no policies are named.
        reference: [`FIRST_MEMBER`][] or [`FULL_ENSEMBLE`][] (see [`PolicyEntry`][]).
        in_cost_to_target: False keeps it out of cost-to-target.

    Returns:
        The decorator; it returns the fit function unchanged. The fit function takes
        ([`FitInputs`][], [`PolicySettings`][]) and returns a fitted policy (an
        ``IntervalPolicy``: pass a sample on at stage k when lower_k <= confidence <= upper_k).

    Raises:
        ValueError: a name registered twice, a ``sweep`` that is not one of its parameters, a
            parameter declared differently by another policy, or a reference point another
            policy already is.

    Example:
        >>> from window_cascades.cascade.builtin_policies import interval_policy
        >>> @register_policy("below_median", "the less confident half of held-out scores")
        ... def fit_below_median(inputs: FitInputs, settings: PolicySettings):
        ...     medians = [float(c.median()) for c in inputs.stage_confidence]
        ...     stages = [{"lower": None, "upper": m} for m in medians]
        ...     return interval_policy("below_median", stages, "median")
        >>> "below_median" in policy_names()
        True
        >>> unregister_policy("below_median")  # (a test's clean-up; a plugin stays registered)
    """
    declared = parameters_of(parameters)
    names = [p.name for p in declared]
    if sweep is not None and sweep not in names:
        raise ValueError(f"policy {name!r}: sweep {sweep!r} is not one of its parameters {names}")
    if reference is not None and reference not in (*REFERENCES, COST_MATCHED):
        raise ValueError(
            f"policy {name!r}: reference {reference!r} is not one of {(*REFERENCES, COST_MATCHED)}"
        )

    def add(fit: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"policy {name!r} is registered twice")
        taken = [e.name for e in _REGISTRY.values() if reference and e.reference == reference]
        if taken:
            raise ValueError(f"policy {name!r}: {taken[0]!r} is already the {reference}")
        declare_parameters(name, declared)
        _REGISTRY[name] = PolicyEntry(
            name,
            fit,
            description,
            sweep,
            needs_mixture,
            declared,
            default,
            reference,
            in_cost_to_target,
        )
        return fit

    return add


def unregister_policy(name: str) -> None:
    """Remove a registered policy (e.g. a plugin's, or one a test registered).

    Args:
        name: the policy's registered name.

    Raises:
        ValueError: no policy is registered under ``name``.
    """
    policy_entry(name)
    del _REGISTRY[name]
    forget_parameters(name)


def swept_parameters() -> list[str]:
    """The parameters some registered policy sweeps, in registration order."""
    return list(dict.fromkeys(e.sweep for e in _REGISTRY.values() if e.sweep is not None))


def policy_entries() -> dict[str, PolicyEntry]:
    """Every registered policy, in registration order."""
    return dict(_REGISTRY)


def policy_names() -> tuple[str, ...]:
    """Names of every registered policy."""
    return tuple(_REGISTRY)


def default_policies() -> list[str]:
    """The policies a run evaluates when it names none (registered with ``default=True``), in
    registration order."""
    return [e.name for e in _REGISTRY.values() if e.default]


def reference_policy(reference: str) -> str:
    """The policy that is the reference point ``reference`` ([`FIRST_MEMBER`][] or
    [`FULL_ENSEMBLE`][]); a clear error when none is registered.

    Args:
        reference: [`FIRST_MEMBER`][] or [`FULL_ENSEMBLE`][].
    """
    found = [e.name for e in _REGISTRY.values() if e.reference == reference]
    if not found:
        raise ValueError(f"no registered policy is the {reference} (register one with reference=)")
    return found[0]


def reference_policies() -> tuple[str, ...]:
    """The reference policies, member 1 alone first: the baselines of paired differences."""
    return tuple(reference_policy(r) for r in REFERENCES)


def cost_matched_policy() -> str | None:
    """The policy registered with ``reference=COST_MATCHED`` (``single_threshold``), or None."""
    return next((e.name for e in _REGISTRY.values() if e.reference == COST_MATCHED), None)


def policy_entry(name: str) -> PolicyEntry:
    """The entry of ``name``, with a clear error for an unknown name.

    Args:
        name: the policy's registered name.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown policy {name!r}; expected one of {list(_REGISTRY)}")
    return _REGISTRY[name]


def check_policies(names: list[str]) -> list[str]:
    """Validate a list of policy names (known, no repeats) and return it.

    Args:
        names: policy names, e.g. from ``--policies single,window``.
    """
    for name in names:
        policy_entry(name)
    if len(set(names)) != len(names):
        raise ValueError(f"policies are listed twice: {names}")
    return list(names)


def policy_table() -> str:
    """The registered policies as a Markdown table (name, what it passes on, its parameters,
    swept by, whether a run that names no policies evaluates it)."""
    lines = [
        "| policy | what it passes on to the next member | parameters | swept by | by default |",
        "| --- | --- | --- | --- | --- |",
    ]
    for e in _REGISTRY.values():
        sweep = f"`{e.sweep}`" if e.sweep else "-"
        params = ", ".join(f"`{p.name}`" for p in e.parameters) or "-"
        default = "yes" if e.default else "-"
        lines.append(f"| `{e.name}` | {e.description} | {params} | {sweep} | {default} |")
    return "\n".join(lines)


def check_scores(confidence: torch.Tensor, what: str) -> torch.Tensor:
    """Flat float64 scores, refusing an empty split or NaN/Inf (``what`` names the data).

    Args:
        confidence: the confidences to check (any shape; flattened).
        what: what the data is, for the message (e.g. the held-out split's name and stage).
    """
    if confidence.numel() == 0:
        raise ValueError(f"{what}: the held-out split is empty; the policies cannot be fitted")
    if not torch.isfinite(confidence).all():
        raise ValueError(f"{what}: confidences contain NaN or Inf")
    return confidence.double().flatten()


def fit_policies(
    names: list[str], inputs: FitInputs, settings: PolicySettings | None = None
) -> dict:
    """Fit every named policy on the held-out stage scores; returns name -> fitted policy.

    Args:
        names: the policies to fit, registered names.
        inputs: the held-out stage scores and what else a policy reads ([`FitInputs`][]).
        settings: the target, the shared settings and every declared parameter's value; None: the
            defaults (target ``cov@5``).
    """
    fitted, unfitted = fit_reachable_policies(names, inputs, settings, keep_going=False)
    return fitted


def fit_reachable_policies(
    names: list[str],
    inputs: FitInputs,
    settings: PolicySettings | None = None,
    keep_going: bool = True,
) -> tuple[dict, dict[str, str]]:
    """Fit every named policy; one whose target cannot be reached on the held-out split (no
    threshold meets it, or no threshold can be certified) is left out with the reason.

    Args:
        names: the policies, in order.
        inputs: the held-out stage scores.
        settings: the policies' settings.
        keep_going: False raises the first such error instead.

    Returns:
        (name -> fitted policy, name -> why it was not fitted), each in ``names``' order.
    """
    from window_cascades.uncertainty.guarantees import GuaranteeError
    from window_cascades.uncertainty.selective import UnreachableTargetError

    check_policies(names)
    settings = settings or PolicySettings()
    for c in inputs.stage_confidence:
        check_scores(c, f"held-out split {inputs.heldout_name!r}")
    fitted, unfitted = {}, {}
    for name in names:
        entry = _REGISTRY[name]
        if entry.needs_mixture and inputs.mixture_confidence is None:
            raise ValueError(f"{name} needs the scores of an unlabelled test mixture")
        try:
            fitted[name] = entry.fit(inputs, settings)
        except (UnreachableTargetError, GuaranteeError) as err:
            if not keep_going:
                raise
            unfitted[name] = str(err)
    return fitted, unfitted
