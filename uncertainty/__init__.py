"""Pure tensor maths of uncertainty estimation: confidence scores and metrics.

Every function here takes plain tensors and returns tensors or floats; nothing knows about
Lightning, files or policies. Conventions: a *confidence* is higher for samples the model is
more sure about; OOD detection uses ``-confidence`` as the OOD score.
"""
