"""Graphviz for the pictures: quoting for DOT, running the ``dot`` binary, writing a picture by file suffix.

Layout is Graphviz's own: the views write DOT text and ``dot`` turns it into SVG or PNG. Without
``dot`` on the PATH (Debian's ``graphviz`` package) an image request raises ``GraphvizMissing``,
which names the tool; DOT text and terminal renderings need nothing installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

IMAGE_FORMATS = ("svg", "png")
TEXT_SUFFIXES = (".dot", ".gv", ".txt")
DOT_TIMEOUT_S = 60


class GraphvizMissing(RuntimeError):
    """An image was asked for but Graphviz's ``dot`` binary is not installed."""


class GraphvizFailed(RuntimeError):
    """``dot`` ran and rejected its input (a bug in the DOT a view wrote)."""


def dot_quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as DOT's centred ``\\n``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def html_escape(text: str) -> str:
    """Text for a Graphviz HTML-like label: the XML specials escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def dot_binary() -> str:
    """The path of Graphviz's ``dot``; GraphvizMissing when it is not installed."""
    found = shutil.which("dot")
    if found is None:
        raise GraphvizMissing("Graphviz's 'dot' program is not installed (Debian: apt-get install graphviz); "
                              "DOT text and the terminal rendering work without it")
    return found


def render_dot(dot_text: str, fmt: str) -> bytes:
    """Lay out ``dot_text`` with ``dot -T<fmt>`` (svg or png) and return the image bytes."""
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, not {fmt!r}")
    proc = subprocess.run([dot_binary(), f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True,
                          timeout=DOT_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GraphvizFailed(f"dot -T{fmt} failed: {message[0] if message else f'status {proc.returncode}'}")
    return proc.stdout


def picture_bytes(path: Path, dot_text: str, terminal_text: str) -> bytes:
    """What to write at ``path``, chosen by its suffix: .svg/.png an image, .dot/.gv the DOT, .txt the terminal view."""
    suffix = path.suffix.lower()
    if suffix in (".dot", ".gv"):
        return dot_text.encode("utf-8")
    if suffix == ".txt":
        return terminal_text.encode("utf-8")
    if suffix.lstrip(".") in IMAGE_FORMATS:
        return render_dot(dot_text, suffix.lstrip("."))
    known = ", ".join([*TEXT_SUFFIXES, *(f".{f}" for f in IMAGE_FORMATS)])
    raise ValueError(f"cannot tell what to write from the file name {path.name!r}: use one of {known}")


def write_picture(path: Path, dot_text: str, terminal_text: str) -> None:
    """Write the picture ``picture_bytes`` chooses for ``path``; nothing is written when it fails."""
    data = picture_bytes(path, dot_text, terminal_text)
    path.write_bytes(data)


def run_picture_command(prog: str, work: Callable[[], int]) -> int:
    """Run a picture command's ``work``; what it cannot do (a bad scenario, no ``dot``, an unwritable file) is one
    line on stderr and status 2."""
    try:
        return work()
    except (ValueError, GraphvizMissing, GraphvizFailed, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


__all__ = [
    "GraphvizFailed",
    "GraphvizMissing",
    "dot_binary",
    "dot_quote",
    "html_escape",
    "picture_bytes",
    "render_dot",
    "run_picture_command",
    "write_picture",
]
