"""Check a built documentation site as it is shipped: it works from disk and fetches nothing.

    python scripts/check_site.py SITE_DIR

- every relative ``href``/``src`` of every page resolves to a file of the site (the pages are
  files, ``use_directory_urls: false``, so the site opens from disk; the top 404.html, which
  only a web server shows, is skipped);
- no page loads a script, stylesheet, image, font or frame from outside the site, and no
  stylesheet of the site imports one or names a font outside it (``<link rel="canonical">``
  and ordinary links to other sites are not loads);
- no page shows a raw Sphinx role (``:func:``, ``:class:``, ...) where a cross-reference belongs;
- every formula is marked for the KaTeX the site serves, and KaTeX is loaded from the site.

``scripts/build_docs.sh`` runs it after every build; exit status 1 lists what is wrong.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

LOADS = re.compile(
    r"<(?:script|img|iframe|source)\b[^>]*\bsrc=\"([^\"]+)\"|<link\b([^>]*)>", re.IGNORECASE
)
CSS_URL = re.compile(r"@import\s+(?:url\()?[\"']?([^\"')\s;]+)|url\([\"']?([^\"')]+)")
ROLE = re.compile(r":(?:py:)?(?:func|meth|class|attr|mod|data|obj|exc|const):`?")


def external(url: str) -> bool:
    return bool(re.match(r"^(https?:)?//", url))


def problems(site: Path) -> list[str]:
    """Everything wrong with the built site, one line each."""
    found = []
    pages = sorted(site.rglob("*.html"))
    if not pages:
        return [f"{site}: no pages"]
    for page in pages:
        rel = page.relative_to(site).as_posix()
        text = page.read_text()
        for m in LOADS.finditer(text):
            url, link = m.group(1), m.group(2)
            if link is not None:
                if "canonical" in link or "alternate" in link:
                    continue
                href = re.search(r'href="([^"]+)"', link)
                url = href.group(1) if href else None
            if url and external(html.unescape(url)):
                found.append(f"{rel}: loads {url} from outside the site")
        if rel != "404.html":
            for m in re.finditer(r'(?:href|src)="([^"]+)"', text):
                url = html.unescape(m.group(1))
                if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^//", url):
                    continue
                target = (page.parent / url.split("#")[0].split("?")[0]).resolve()
                if not target.is_file():
                    found.append(f"{rel}: link {url} is not a file of the site")
        body = re.sub(r"<(script|style)\b.*?</\1>", "", text, flags=re.S)
        for m in ROLE.finditer(re.sub(r"<[^>]+>", "", body)):
            found.append(f"{rel}: raw Sphinx role {m.group(0)!r}")
        if 'class="arithmatex"' in text and "assets/katex/katex.min.js" not in text:
            found.append(f"{rel}: has formulas but does not load the site's KaTeX")
    for css in sorted(site.rglob("*.css")):
        for m in CSS_URL.finditer(css.read_text()):
            url = m.group(1) or m.group(2)
            if external(url):
                found.append(f"{css.relative_to(site)}: imports {url} from outside the site")
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python scripts/check_site.py SITE_DIR (a built site)", file=sys.stderr)
        return 2
    found = problems(Path(argv[0]))
    for line in found[:50]:
        print(f"error: {line}", file=sys.stderr)
    if len(found) > 50:
        print(f"error: ... and {len(found) - 50} more", file=sys.stderr)
    pages = len(list(Path(argv[0]).rglob("*.html")))
    print(f"[docs] {argv[0]}: {pages} pages checked, {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
