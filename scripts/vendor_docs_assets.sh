#!/usr/bin/env bash
# Refresh the third-party files the documentation site serves itself (docs/assets/), so the
# built site needs no font or script host: KaTeX (formulas) and iframe-worker's shim (search
# when the site is opened from disk). Needs npm and network; the docs build itself needs
# neither. The versions are pinned here and recorded, with each file's SHA-256, in
# docs/assets/VENDORED.txt.
#   bash scripts/vendor_docs_assets.sh
set -euo pipefail
cd "$(dirname "$0")/.."
KATEX=0.19.1
IFRAME_WORKER=1.0.4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "katex@$KATEX" "iframe-worker@$IFRAME_WORKER" >/dev/null)
mkdir -p "$work/katex" "$work/iframe-worker"
tar -xzf "$work/katex-$KATEX.tgz" -C "$work/katex"
tar -xzf "$work/iframe-worker-$IFRAME_WORKER.tgz" -C "$work/iframe-worker"
k="$work/katex/package"
dest=docs/assets/katex
rm -rf "$dest" && mkdir -p "$dest/fonts"
cp "$k/dist/katex.min.js" "$k/dist/katex.min.css" "$k/dist/contrib/auto-render.min.js" \
  "$k/LICENSE" "$dest/"
# every current browser takes woff2, the first source the stylesheet names
cp "$k"/dist/fonts/*.woff2 "$dest/fonts/"
cp "$work/iframe-worker/package/shim/index.js" docs/assets/javascripts/iframe-worker-shim.js
cp "$work/iframe-worker/package/LICENSE" docs/assets/javascripts/iframe-worker-LICENSE
{
  echo "# Third-party files served by the site, written by scripts/vendor_docs_assets.sh"
  echo "katex $KATEX (MIT): https://www.npmjs.com/package/katex"
  echo "iframe-worker $IFRAME_WORKER (MIT): https://www.npmjs.com/package/iframe-worker"
  echo
  (cd docs/assets && find katex javascripts/iframe-worker-shim.js -type f | LC_ALL=C sort \
    | xargs sha256sum)
} > docs/assets/VENDORED.txt
echo "docs/assets: katex $KATEX, iframe-worker $IFRAME_WORKER"
