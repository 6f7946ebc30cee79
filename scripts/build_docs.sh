#!/usr/bin/env bash
# Build the documentation site strictly: a broken link, a missing reference, a docstring that
# fails to render, a public module missing from the API reference, a public function of the
# checked API without its parameters documented (scripts/check_docstrings.py) or a tutorial or
# figure whose code fails fails the build; then check the built site as shipped (it opens from
# disk and loads nothing from outside itself: scripts/check_site.py).
#   bash scripts/build_docs.sh            into site/ (ignored by git; open site/index.html)
#   bash scripts/build_docs.sh DIR        into DIR
#   bash scripts/build_docs.sh --serve    a live preview on http://127.0.0.1:8000
# Sets up .venv (scripts/setup_env.sh) and installs requirements-docs.txt into it when missing.
# PYTHON_DOCS=/path/to/python uses another environment that already has the package and them
# (e.g. one made by `pip install '.[docs]'`).
set -euo pipefail
cd "$(dirname "$0")/.."
export NO_MKDOCS_2_WARNING=1  # Material's notice about its successor, printed on every build
py="${PYTHON_DOCS:-}"
if [ -z "$py" ]; then
  bash scripts/setup_env.sh
  py=.venv/bin/python
  stamp=.venv/.docs-requirements.sha256
  want=$(sha256sum requirements-docs.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[docs] installing requirements-docs.txt into .venv"
    "$py" -m pip install --quiet -r requirements-docs.txt
    echo "$want" > "$stamp"
  fi
fi
# the site runs the library (tutorials, figures, generated tables): say so before MkDocs fails
# (-I: the package as installed, not this folder's window_cascades/, which holds only the API)
if ! "$py" -I -c "import window_cascades.api, mkdocs, markdown_exec" 2>/dev/null; then
  echo "error: $py lacks the library or the docs tools; install both with: pip install '.[docs]'" >&2
  exit 2
fi
if [ "${1:-}" = "--serve" ]; then
  exec "$py" -m mkdocs serve --strict
fi
site="$(realpath -m "${1:-site}")"
start=$(date +%s)
"$py" -m mkdocs build --strict --clean --site-dir "$site"
"$py" scripts/check_site.py "$site"
echo "[docs] built and checked in $(( $(date +%s) - start )) s: open $site/index.html"
