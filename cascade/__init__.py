"""Cascade policies and the one cascade engine that runs them.

``policies`` says which samples a stage passes on, ``policy_registry`` fits the policies on a
held-out split (calibration), ``engine`` runs a cascade over any source of per-stage logits
(live members or cached logits), ``cost`` turns exit stages into exit fractions and expected
MACs, and ``evaluation`` turns cascade outputs into the tidy metric rows of
docs/concepts/metrics.md.
"""

# The built-in metrics and policies register here, from the package (as timm's
# models/__init__.py imports its model files), so the registries import none of them. The order
# is the registry order: metrics.csv lists the labelled-set metrics, then the OOD ones, then the
# operating point and cost; the README table and --list-policies list budget_window last.
from window_cascades.cascade import builtin_metrics, builtin_ood_metrics  # noqa: E402, F401, I001
from window_cascades.cascade import builtin_operating_metrics  # noqa: E402, F401, I001
from window_cascades.cascade import builtin_policies  # noqa: E402, F401, I001
from window_cascades.cascade import budget_window  # noqa: E402, F401, I001
