"""Figures drawn while the documentation site is built, embedded in the page they belong to.

A page runs a hidden block (markdown-exec, ``html="on"``) that prints what
``figure_html`` returns: the PNG inline (base64), so the figure needs no file beside the
page and the page works from disk. ``docs/hooks/committed_results.py`` puts this folder on
``sys.path``.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")


def png_html(png: bytes, alt: str, caption: str | None = None) -> str:
    """A ``<figure>`` with the PNG bytes inline, its alt text and an optional caption
    (Markdown is not rendered inside it: plain text and ``<code>``)."""
    data = base64.b64encode(png).decode()
    out = f'<figure markdown="0"><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
    if caption:
        out += f"<figcaption>{caption}</figcaption>"
    return out + "</figure>"


def figure_html(fig, alt: str, caption: str | None = None, dpi: int = 110) -> str:
    """A matplotlib figure as ``png_html`` (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return png_html(buffer.getvalue(), alt, caption)


def file_html(path: Path, alt: str, caption: str | None = None) -> str:
    """A PNG file as ``png_html``."""
    return png_html(Path(path).read_bytes(), alt, caption)
