"""Logits from another framework: write them as files, then evaluate and fit a cascade.

    python examples/own_logits.py

Two scikit-learn networks (``MLPClassifier``, one seed each) stand for models of any other
framework. Their logits on every dataset are written in the layout the offline evaluator reads
(``<logits dir>/<member>/<dataset>.npz`` or ``.safetensors``, with a ``meta.json`` giving the
member's MACs); then ``window-cascades evaluate-logits`` evaluates every policy on them, and
``window_cascades.load_logits`` reads the same files into Python. About 10 s on 2 CPU cores.
The documentation's tutorial runs this file section by section (docs/tutorials/own-logits.md).
"""

# --8<-- [start:models]
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

digits = load_digits()
x, y = digits.data / 16, digits.target
order = np.random.default_rng(0).permutation(len(y))
train, heldout, test = order[:300], order[300:900], order[900:]
rng = np.random.default_rng(1)
datasets = {  # name -> (inputs, labels or None)
    "digits_heldout": (x[heldout], y[heldout]),
    "digits_test": (x[test], y[test]),
    "digits_noisy": (np.clip(x[test] + rng.normal(0, 0.2, x[test].shape), 0, 1), y[test]),
    "uniform_noise": (rng.uniform(0, 1, (400, 64)), None),  # out of distribution: no labels
}

members = {}
for seed in (0, 1):
    with warnings.catch_warnings():  # few iterations: small, imperfect members
        warnings.simplefilter("ignore", ConvergenceWarning)
        members[f"mlp_s{seed}"] = MLPClassifier((8,), max_iter=300, random_state=seed).fit(
            x[train], y[train]
        )
# --8<-- [end:models]

# --8<-- [start:write]
import json
import tempfile
from pathlib import Path

from safetensors.numpy import save_file

logits_dir = Path(tempfile.mkdtemp(prefix="my-logits-"))
for k, (member, model) in enumerate(members.items()):
    folder = logits_dir / member
    folder.mkdir()
    for name, (inputs, labels) in datasets.items():
        # the framework's logits; a model that gives probabilities: their log is a logit
        logits = np.log(np.clip(model.predict_proba(inputs), 1e-12, None)).astype(np.float32)
        targets = np.full(len(inputs), -1) if labels is None else labels  # -1: unlabelled
        if k == 0:  # member 1 as NumPy, member 2 as safetensors: both are read
            np.savez(folder / f"{name}.npz", logits=logits, targets=targets)
        else:
            save_file(
                {"logits": logits, "targets": targets.astype(np.int64)},
                str(folder / f"{name}.safetensors"),
            )
    # optional: the member's cost per sample (MACs); without it every member counts 1
    meta = {
        "model_name": f"scikit-learn MLPClassifier{model.hidden_layer_sizes}",
        "macs": sum(w.size for w in model.coefs_),  # a dense network: one MAC per weight
        "params": sum(w.size for w in model.coefs_) + sum(b.size for b in model.intercepts_),
        "num_classes": len(model.classes_),
    }
    (folder / "meta.json").write_text(json.dumps(meta))

for path in sorted(logits_dir.rglob("*")):
    print(path.relative_to(logits_dir))
# --8<-- [end:write]

# --8<-- [start:command]
import subprocess
import sys

out = logits_dir.parent / f"{logits_dir.name}-results"  # not inside the logits folder
command = [
    sys.executable,
    "-m",
    "window_cascades",  # the same as: window-cascades ...
    "evaluate-logits",
    "--logits-dir",
    str(logits_dir),
    "--members",
    *members,
    "--heldout",
    "digits_heldout",
    "--id",
    "digits_test",
    "--shift",
    "digits_noisy",
    "--ood",
    "uniform_noise",
    "--target",
    "cov@5",
    "--policies",
    "single,ensemble,window,single_threshold",
    "--bootstrap",
    "50",
    "--gain-shares",
    "--no-headroom",
    "--no-plots",
    "--no-progress",
    "--out",
    str(out),
]  # fmt: skip - one option with its values per line, as on a command line
run = subprocess.run(command, capture_output=True, text=True)
print(run.stdout + run.stderr + f"exit status {run.returncode}")
# --8<-- [end:command]

# --8<-- [start:python]
import window_cascades as wc

logits = wc.load_logits(
    logits_dir,
    list(members),
    roles={
        "digits_heldout": "heldout",
        "digits_test": "id",
        "digits_noisy": "shift",
        "uniform_noise": "ood",
    },
)
print(logits, "MACs per member:", logits.member_macs)
result = wc.evaluate(logits, ["single", "ensemble", "window"], target="cov@5")
print("cov@5 of the window on the test set:", round(result.value("cov@5", "window"), 4))
# --8<-- [end:python]
