"""From two members' logits in memory to a deployed cascade's decisions, with the public API.

    python examples/in_memory.py

Two small PyTorch networks (one seed each: the members of a deep ensemble) are trained on 300
of scikit-learn's 8 x 8 handwritten digits, which ship with scikit-learn; their logits on a
held-out split, a test split, a noisy copy of it and photo patches (out of distribution) go into
``window_cascades.Logits``. Every registered policy is fitted on the held-out split and
evaluated with bootstrap intervals; the fitted cascade is saved, loaded back and applied to new
images. About 10 s on 2 CPU cores. The documentation's tutorial runs this file section by
section (docs/tutorials/in-memory.md).
"""

# --8<-- [start:data]
import numpy as np
import torch
from sklearn.datasets import load_digits, load_sample_images

digits = load_digits()
images = torch.tensor(digits.data, dtype=torch.float32) / 16  # N x 64, values in [0, 1]
labels = torch.tensor(digits.target)
order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
train, heldout, test = order[:300], order[300:900], order[900:]  # 300 / 600 / 897


def photo_patches(n: int, seed: int = 0) -> torch.Tensor:
    """Out-of-distribution inputs: n random 8 x 8 grey patches of scikit-learn's two photos."""
    rng = np.random.default_rng(seed)
    photos = [img.mean(axis=2) / 255 for img in load_sample_images().images]
    patches = []
    for _ in range(n):
        photo = photos[rng.integers(len(photos))]
        y, x = rng.integers(0, photo.shape[0] - 64), rng.integers(0, photo.shape[1] - 64)
        patch = photo[y : y + 64 : 8, x : x + 64 : 8]  # a 64 x 64 crop, every 8th pixel
        patches.append(patch.reshape(64))
    return torch.tensor(np.array(patches), dtype=torch.float32)


noise = torch.Generator().manual_seed(1)
datasets = {
    "digits_heldout": images[heldout],  # the held-out split: the policies are fitted here
    "digits_test": images[test],
    "digits_noisy": (images[test] + 0.2 * torch.randn(len(test), 64, generator=noise)).clamp(0, 1),
    "photo_patches": photo_patches(400),
}
roles = {
    "digits_heldout": "heldout",
    "digits_test": "id",
    "digits_noisy": "shift",
    "photo_patches": "ood",
}
targets = {
    "digits_heldout": labels[heldout],
    "digits_test": labels[test],
    "digits_noisy": labels[test],
}
# --8<-- [end:data]


# --8<-- [start:members]
def train_member(seed: int) -> torch.nn.Module:
    """One member: a small network (8 hidden units, so that members err, and differ) trained
    on the 300 training images from its own seed."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, 8), torch.nn.ReLU(), torch.nn.Linear(8, 10))
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(100):  # full batches: a fraction of a second
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(images[train]), labels[train])
        loss.backward()
        optimiser.step()
    return net.eval()


members = [train_member(seed) for seed in (0, 1)]


@torch.no_grad()
def member_logits(x: torch.Tensor) -> list[torch.Tensor]:
    """Every member's N x 10 logits on the inputs x, in cascade order."""
    return [member(x) for member in members]


# --8<-- [end:members]

# --8<-- [start:logits]
import window_cascades as wc

logits = wc.Logits(
    {name: member_logits(x) for name, x in datasets.items()},
    roles=roles,
    labels=targets,  # the OOD set has no labels
)
print(logits)
# --8<-- [end:logits]

# --8<-- [start:evaluate]
result = wc.evaluate(
    logits,  # no policy names: every registered policy
    target="cov@5",  # the operating target: coverage at 5% selective risk
    parameters={"width": 0.1, "pass_fraction": 0.2, "budget": 1.2},
    bootstrap=50,  # resamples of every test set: 95% intervals (use 1000 for a paper)
)
print(sorted({row["policy"] for row in result.rows}))
# --8<-- [end:evaluate]


# --8<-- [start:table]
def table(rows: list[dict], dataset: str, metrics: list[str]) -> str:
    """A Markdown table: one line per policy, each metric as value [95% interval]."""
    policies = list(dict.fromkeys(r["policy"] for r in rows if r["dataset"] == dataset))
    lines = ["| policy | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for policy in policies:
        cells = []
        for metric in metrics:
            (row,) = [
                r
                for r in rows
                if (r["dataset"], r["policy"], r["metric"]) == (dataset, policy, metric)
            ]
            cells.append(f"{row['value']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]")
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


for name in ("digits_test", "digits_noisy"):
    print(f"\n**{name}** ({roles[name]})\n")
    print(table(result.rows, name, ["expected_macs", "acc", "cov@5", "aurc"]))
# --8<-- [end:table]


# --8<-- [start:plots]
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from window_cascades.uncertainty.selective import risk_coverage_curve

fig, (tradeoff, curves, exits) = plt.subplots(1, 3, figsize=(15, 4.2))

# 1. cost against cov@5 on the test set, with the bootstrap intervals
for k, policy in enumerate(dict.fromkeys(r["policy"] for r in result.rows)):
    cost = result.value("expected_macs", policy, "digits_test")
    (cov,) = [
        r
        for r in result.rows
        if (r["dataset"], r["policy"], r["metric"]) == ("digits_test", policy, "cov@5")
    ]
    low, high = cov["value"] - cov["ci_low"], cov["ci_high"] - cov["value"]
    tradeoff.errorbar(
        cost, cov["value"], yerr=[[low], [high]], fmt="os^Dv<>"[k % 7], capsize=3, label=policy
    )
tradeoff.set(
    xlabel="cost (member evaluations per sample)",
    ylabel="cov@5",
    title="Cost against cov@5 (digits_test)",
)
tradeoff.legend(fontsize=7)

# 2. risk-coverage curves of each policy's output, from its decisions on the test set
test_logits = member_logits(datasets["digits_test"])
for policy in ("single", "window", "ensemble"):
    decisions = wc.decide(result.fitted, test_logits, policy=policy)
    curve = risk_coverage_curve(
        decisions["confidence"], decisions["prediction"] == targets["digits_test"]
    )
    curves.plot(curve.coverage, curve.risk, label=policy)
curves.set(xlabel="coverage", ylabel="selective risk", title="Risk-coverage (digits_test)")
curves.legend(fontsize=8)

# 3. the share of every set the window passes on to member 2
names = [n for n in datasets if roles[n] != "heldout"]
shares = [result.value("exit_frac@2", "window", n) for n in names]
exits.barh(names, shares, color="C1")
exits.set(xlim=(0, 1), xlabel="share passed on to member 2", title="Where the window exits")
exits.invert_yaxis()
fig.tight_layout()
# --8<-- [end:plots]

# --8<-- [start:save]
import tempfile

folder = tempfile.mkdtemp(prefix="my-cascade-")  # a folder of your own
path = wc.save_fitted(result.fitted, folder)  # folder/fitted_cascade.json
print(path.name, path.stat().st_size, "bytes")
# --8<-- [end:save]

# --8<-- [start:decide]
fitted = wc.load_fitted(folder)
new_images = datasets["digits_noisy"][:6]  # six images the cascade has not seen
decisions = wc.decide(fitted, member_logits(new_images), policy="window")
for key, values in decisions.items():
    print(f"{key:>11}: {values.tolist()}")
# --8<-- [end:decide]
