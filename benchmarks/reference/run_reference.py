"""Time the paper's reference cascade evaluation on our cached logits.

What it runs: ``cascade_results.py`` of the reference code of Xia & Bouganis, ICCV 2023,
https://github.com/Guoxoug/window-early-exit (MIT licence, (c) 2023 Guoxoug), exactly as its
README evaluates one cascade:

    python cascade_results.py experiment_configs/efficientnetb2_imagenet.json \
        --seeds 12 --strategy_func window_threshold_strategy \
        --exit_metric confidence --unc_task cov@5

It loads both members' logits, rebuilds the ImageNet / OpenImage-O / iNaturalist ``Data``
objects to read the labels, builds the EfficientNet and counts its MACs with ptflops, fits the
window (tau for cov@5 on the ImageNet val split, +-10 percentiles around it), then evaluates
the single model, the window cascade and the second stage (ensemble), with every uncertainty
score, every SC metric, OOD ROC/FPR and SCOD (plus the OOD-adjusted window), and writes a CSV.

The reference code is NOT vendored: fetch it and export a working copy (see README.md here),
then pass it as ``--reference``. Each run is a separate ``python cascade_results.py ...``
process (``cwd`` = the reference copy, no shell), timed whole with ``time.perf_counter``
(interpreter start-up and imports included); its output goes to a log in the temp folder. The
child's CPU time (user+sys) and the 1-minute load average are printed too, since the wall time
of a shared machine is noisy.

Untimed conversion of our layout (``<logits-dir>/<m0|m1>/<dataset>.safetensors``) into what
the reference reads, in a temp folder:
  * ``results/<arch>_imagenet/<arch>_imagenet_<1|2>_logits.pth`` = ``torch.save({"afp, wfp":
    {"imagenet": test, "imagenet_val": heldout, "openimage-o": ood_b, "inaturalist": ood_a}})``
    for m0 (seed 1) and m1 (seed 2), the file ``test.py`` of the reference writes;
  * labels come from the datasets in the reference, so empty placeholder image files are laid
    out for torchvision: ``imagenet/val/c<label>/`` (ID test) and ``imagenet/train/c<label>/``
    (held-out split, the last ``val_size`` entries of ``imagenet_idx/index.pth``, plus one
    placeholder training image so that the reference's train split is not empty),
    ``inaturalist/images/`` and ``openimage-o/openimages_datalist.txt``. ID logits are stored
    sorted by label (stable), the order in which the reference's ImageFolder lists them;
  * a config: the reference's ``experiment_configs/<arch>_imagenet.json`` with these paths
    (what its ``change_paths.py`` does) and ``val_size``.

``--settings K`` runs the reference K times per repeat, once per setting: the reference has no
window-width argument (+-10 percentiles is hard-coded), so a sweep goes over its CLI settings,
the (exit_metric, unc_task) pairs of its ``experiment_scripts/test_cascades.sh`` (6 pairs, then
the same 6 with ``--seeds 21``), cycling after 12. Each run fits and evaluates one window.

Packages: the reference needs torch, torchvision, numpy, pandas, scipy, scikit-learn < 1.8
(it imports the private ``sklearn.metrics._ranking._binary_clf_curve``, gone in 1.8), tqdm,
Pillow and ptflops. Our ``.venv`` lacks ptflops and has scikit-learn 1.9, so the default
interpreter is a venv ``/tmp/refvenv`` that sees ``.venv``'s packages (a ``.pth`` file) and adds
``ptflops==0.7.5`` and ``scikit-learn==1.7.2`` (README.md).

    .venv/bin/python benchmarks/reference/run_reference.py --reference /tmp/window-early-exit \
        --logits-dir /tmp/bench_logits --repeats 3 [--settings K]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

SWEEP = [
    ("confidence", "cov@5"),
    ("confidence", "cov@10"),
    ("confidence", "risk@50"),
    ("confidence", "risk@80"),
    ("energy", "FPR@80"),
    ("energy", "FPR@95"),
]
DEFAULT_PYTHON = "/tmp/refvenv/bin/python"


def touch_files(folder: Path, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()


def convert(logits_dir: Path, reference: Path, work: Path, arch: str, names: dict) -> Path:
    """Lay out our logits as the reference's inputs under ``work``; return the config path."""
    members = [
        {k: load_file(str(logits_dir / m / f"{v}.safetensors")) for k, v in names.items()}
        for m in ("m0", "m1")
    ]
    for key in ("test", "heldout"):  # ImageFolder lists files class by class
        t0, t1 = members[0][key]["targets"], members[1][key]["targets"]
        assert torch.equal(t0, t1), f"members disagree on {key} targets"
        order = torch.argsort(t0, stable=True)
        for mem in members:
            mem[key] = {"logits": mem[key]["logits"][order], "targets": t0[order]}
        missing = set(range(members[0][key]["logits"].shape[1])) - set(t0.tolist())
        assert not missing, f"{key}: no sample of classes {sorted(missing)[:5]}..."
        split = "val" if key == "test" else "train"
        for i, y in enumerate(members[0][key]["targets"].tolist()):
            touch_files(work / "imagenet" / split / f"c{y:04d}", [f"{i:06d}.JPEG"])
    # one extra training image (listed last): the reference's train split must not be empty
    n_val = len(members[0]["heldout"]["targets"])
    touch_files(work / "imagenet" / "train" / "c0999", ["train.JPEG"])
    (work / "imagenet_idx").mkdir()
    index = torch.cat([torch.tensor([n_val]), torch.arange(n_val)])  # val = the last n_val
    torch.save(index, work / "imagenet_idx" / "index.pth")
    n_inat = len(members[0]["inaturalist"]["logits"])
    n_oi = len(members[0]["openimage-o"]["logits"])
    touch_files(work / "inaturalist" / "images", [f"{i:06d}.jpg" for i in range(n_inat)])
    (work / "openimage-o" / "test").mkdir(parents=True)
    (work / "openimage-o" / "openimages_datalist.txt").write_text(
        "".join(f"img_{i:06d}.jpg\n" for i in range(n_oi))
    )

    config = json.loads((reference / "experiment_configs" / f"{arch}_imagenet.json").read_text())
    config["id_dataset"].update(
        datapath=str(work / "imagenet"), val_size=n_val, idx_path=str(work / "imagenet_idx")
    )
    for ood in config["ood_datasets"]:
        ood["datapath"] = str(work / ood["name"])
    config["test_params"]["results_savedir"] = str(work / "results")
    out = work / "results" / f"{arch}_imagenet"
    out.mkdir(parents=True)
    for seed, mem in zip((1, 2), members, strict=True):
        saved = {"imagenet": mem["test"]["logits"], "imagenet_val": mem["heldout"]["logits"]}
        saved.update({k: mem[k]["logits"] for k in ("openimage-o", "inaturalist")})
        torch.save({"afp, wfp": saved}, out / f"{arch}_imagenet_{seed}_logits.pth")
    path = work / "config.json"
    path.write_text(json.dumps(config, indent=4))
    return path


def run_once(python: str, reference: Path, config: Path, setting: int, log: Path):
    """One ``cascade_results.py`` process for sweep setting ``setting``: (wall, CPU) seconds."""
    metric, task = SWEEP[setting % len(SWEEP)]
    seeds = "12" if setting % 12 < len(SWEEP) else "21"
    cmd = [
        python,
        "cascade_results.py",
        str(config),
        "--seeds",
        seeds,
        "--strategy_func",
        "window_threshold_strategy",
        "--exit_metric",
        metric,
        "--unc_task",
        task,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as f:
        t = time.perf_counter()
        rc = subprocess.run(cmd, cwd=reference, stdout=f, stderr=subprocess.STDOUT).returncode
        elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        raise SystemExit(f"reference failed (rc {rc}): {' '.join(cmd)}\n{log.read_text()[-3000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reference", required=True, type=Path, help="exported reference copy")
    p.add_argument("--logits-dir", required=True, type=Path, help="<dir>/<m0|m1>/<dataset>")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--settings", type=int, default=1, help="reference runs per repeat")
    p.add_argument("--python", default=DEFAULT_PYTHON, help="interpreter for the reference")
    p.add_argument("--arch", default="efficientnetb2", help="reference config <arch>_imagenet")
    p.add_argument(
        "--work", type=Path, default=None, help="new folder for the inputs (default: temp)"
    )
    args = p.parse_args()
    names = {"heldout": "heldout", "test": "test", "inaturalist": "ood_a", "openimage-o": "ood_b"}
    work = args.work or Path(tempfile.mkdtemp(prefix="reference_inputs_"))
    t = time.perf_counter()
    config = convert(args.logits_dir, args.reference.resolve(), work, args.arch, names)
    print(f"converted inputs in {time.perf_counter() - t:.1f} s (not timed) under {work}")
    totals = []
    for r in range(args.repeats):
        runs = [
            run_once(args.python, args.reference.resolve(), config, s, work / f"log_{r}_{s}.txt")
            for s in range(args.settings)
        ]
        totals.append(sum(wall for wall, _ in runs))
        print(
            f"repeat {r + 1}: {totals[-1]:.2f} s wall for {args.settings} reference run(s) "
            f"({', '.join(f'{w:.2f}' for w, _ in runs)}); "
            f"CPU user+sys {sum(c for _, c in runs):.2f} s, load {os.getloadavg()[0]:.2f}"
        )
    print(
        f"reference cascade_results.py x{args.settings}, {args.repeats} repeats: median "
        f"{statistics.median(totals):.2f} s (min {min(totals):.2f}, max {max(totals):.2f}); "
        f"CSVs in {work / 'results'}, logs in {work}"
    )


if __name__ == "__main__":
    main()
