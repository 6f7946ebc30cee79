#!/usr/bin/env bash
# The package as a user gets it (CI runs this before the test suite): copy this checkout's
# files (tracked and untracked, not ignored) outside it, `pip install` that copy into a fresh
# venv (not editable), checks that the package installs one top-level import name,
# window_cascades, then, in a user's project folder holding its own `commands/`,
# `datamodules/`, `configs/`, `artifacts/` and `cascade/` packages (which leave a mark when
# imported), every subcommand's `--help` and the quick start from the shipped config through
# `python -m window_cascades pipeline --config quickstart` (which puts that folder first on
# sys.path, as the SLURM jobs do). It checks that nothing of the folder was imported, that the
# run wrote only into `outputs/` there (nothing into the venv), that its results/metrics.csv is
# identical to today's quick start (scripts/run_pipeline.py in the copy, same interpreter)
# and that it prints the README's table (within the README check's tolerance).
#
#   bash scripts/check_install.sh          # $PYTHON_BASE: the interpreter for the venv (python3)
#
# Everything lives in a temporary folder, removed at the end ($KEEP=1 keeps it). On 2 cores
# with pip's cache warm: about 4 minutes (the install 2, each quick start 1; torch and its CUDA
# libraries are several GB).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/window-cascades-install.XXXXXX")
[[ ${KEEP:-0} == 1 ]] || trap 'rm -rf "$work"' EXIT
step() { echo "[check_install $(date +%H:%M:%S)] $*"; }

step "copying the checkout to $work/src"
mkdir -p "$work/src" "$work/project/imported"
user_packages=(artifacts cascade commands configs datamodules)
for name in "${user_packages[@]}"; do  # a Lightning project's own packages of these names
  mkdir "$work/project/$name"
  echo "open('$work/project/imported/$name', 'w').close()" >"$work/project/$name/__init__.py"
done
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
  | xargs -0 -I{} sh -c 'test -e "$1" && printf "%s\0" "$1"' _ {} \
  | tar --null -T - -cf -) | tar -xf - -C "$work/src"

step "fresh venv, pip install (not editable)"
start=$SECONDS
"${PYTHON_BASE:-python3}" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$work/src" 2>&1 | grep -v "^WARNING: Location" || true
[[ -x $work/venv/bin/window-cascades ]] || { echo "window-cascades was not installed" >&2; exit 1; }
step "installed in $((SECONDS - start)) s"
cd "$work/project"
site=$("$work/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
tops=$("$work/venv/bin/python" - <<'PY'
from importlib.metadata import distribution
files = distribution("window-cascades").files
print(" ".join(sorted({f.parts[0] for f in files if ".dist-info" not in f.parts[0] and f.parts[0] != ".."})))
PY
)
[[ $tops == window_cascades ]] || { echo "the package installs top-level names: $tops" >&2; exit 1; }
grep -q "^$site/" <<<"$("$work/venv/bin/python" -c "import window_cascades; print(window_cascades.__file__)")" \
  || { echo "window_cascades is not imported from the venv's $site" >&2; exit 1; }
"$work/venv/bin/window-cascades" --help
for sub in $("$work/venv/bin/python" -c "from window_cascades.commands.window_cascades import SUBCOMMANDS; print(*SUBCOMMANDS)"); do
  "$work/venv/bin/python" -m window_cascades "$sub" --help >/dev/null \
    || { echo "window-cascades $sub --help failed in the project folder" >&2; exit 1; }
done
touch "$work/marker"
sleep 1
step "the quick start in a user's project folder: python -m window_cascades pipeline --config quickstart"
start=$SECONDS
"$work/venv/bin/python" -m window_cascades pipeline --config quickstart --no-progress
step "quick start (installed) in $((SECONDS - start)) s"
written=$(find "$work/venv" -newer "$work/marker" -type f | head -20)
[[ -z $written ]] || { echo "the run wrote into the venv:"$'\n'"$written" >&2; exit 1; }
[[ -z $(ls -A imported) ]] || { echo "the project's own packages were imported: $(ls imported)" >&2; exit 1; }
kept=(-e outputs -e imported)
for name in "${user_packages[@]}"; do kept+=(-e "$name"); done
wrote=$(ls -A | grep -v -x "${kept[@]}" || true)
[[ -z $wrote ]] || { echo "the run wrote besides outputs/: $wrote" >&2; exit 1; }
results=$work/project/outputs/quickstart/results
[[ -s $results/metrics.csv ]] || { echo "no $results/metrics.csv" >&2; exit 1; }

step "today's quick start (scripts/run_pipeline.py in the copy), for comparison"
(cd "$work/src" && "$work/venv/bin/python" scripts/run_pipeline.py \
  --config configs/quickstart/pipeline.yaml --out "$work/repo_run" --no-progress \
  >"$work/repo_run.log" 2>&1) || { tail -30 "$work/repo_run.log" >&2; exit 1; }
if ! cmp -s "$results/metrics.csv" "$work/repo_run/results/metrics.csv"; then
  echo "metrics.csv differs from today's quick start:" >&2
  diff "$results/metrics.csv" "$work/repo_run/results/metrics.csv" | head -20 >&2
  exit 1
fi
"$work/venv/bin/window-cascades" readme-table "$results" --readme "$work/src/README.md" --check
step "ok: one import name, installed command, quick start in a user's project folder, same metrics ($site)"
