"""Pure tensor maths of uncertainty estimation: confidence scores and metrics.

Every function here takes plain tensors and returns tensors or floats; nothing knows about
Lightning, files or policies. Conventions: a *confidence* is higher for samples the model is
more sure about; OOD detection uses ``-confidence`` as the OOD score.
"""

# The built-in scores register here, from the package (as cascade/__init__.py registers the
# policies), so the registry imports none of them; their declarations import no torch.
from window_cascades.uncertainty import builtin_scores  # noqa: E402, F401, I001
