"""Write the documentation's pictures for one built-in scenario: the sharing diagram and the copy-on-write map.

    python -m forklab.views.picture_docs --scenario fork -d docs/img

writes ``sharing.svg``, ``sharing.dot`` and ``sharing.txt`` (the terminal table), and, when the
scenario has a fork to map, ``cow.svg``, ``cow.dot`` and ``cow.txt`` (the terminal grid with the
per-page pfn table). The SVGs need Graphviz's ``dot``; the same command gives the same bytes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from forklab.views.cowmap import cow_dot, cow_grid_text, cow_map
from forklab.views.picture_graphviz import run_picture_command, write_picture
from forklab.views.picture_scenarios import SCENARIO_NAMES, build_picture_scenario, one_line_parser
from forklab.views.sharing import sharing_dot, sharing_graph, sharing_text

PICTURE_SUFFIXES = (".svg", ".dot", ".txt")


def write_doc_pictures(directory: Path, scenario: str = "fork") -> list[Path]:
    """Write both pictures of ``scenario`` into ``directory`` (created if missing); returns the files written."""
    s = build_picture_scenario(scenario)
    title = f"forklab: {s.summary}"
    graph = sharing_graph(s.kernel, s.tasks)
    pictures = [("sharing", sharing_dot(graph, title), sharing_text(graph, title))]
    if s.cow is not None:
        m = cow_map(s.cow)
        pictures.append(("cow", cow_dot(m), cow_grid_text(m, pages=True)))
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for stem, dot_text, terminal in pictures:
        for suffix in PICTURE_SUFFIXES:
            path = directory / f"{stem}{suffix}"
            write_picture(path, dot_text, terminal)
            written.append(path)
    return written


def picture_docs_main(argv: Sequence[str] | None = None) -> int:
    """``python -m forklab.views.picture_docs [--scenario NAME] [-d DIR]``: write the pictures, list the files."""
    parser = one_line_parser("python -m forklab.views.picture_docs",
                             "Write the sharing diagram and copy-on-write map of a built-in scenario.")
    parser.add_argument("--scenario", default="fork", choices=SCENARIO_NAMES, help="which scenario (default fork)")
    parser.add_argument("-d", "--directory", type=Path, default=Path("docs/img"), help="where (default docs/img)")
    args = parser.parse_args(argv)

    def work() -> int:
        for path in write_doc_pictures(args.directory, args.scenario):
            print(path)
        return 0

    return run_picture_command(parser.prog, work)


__all__ = ["picture_docs_main", "write_doc_pictures"]

if __name__ == "__main__":
    sys.exit(picture_docs_main())
