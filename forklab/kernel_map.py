"""The kernel's own map: which forklab function models which kernel function, and where.

A reader holding the kernel source finds each function under its kernel name, in the module
named after its kernel file: a function whose docstring first cites ``X.c`` (or ``X.h``) lives
in a module ``X.py``. This module reads the package's source with ``ast`` (it imports none of
it), lists every top-level function with the first kernel citation of its docstring, and checks
the two rules tests/test_kernel_map.py enforces: each function name is defined once, and each
cited function lives in its kernel file's module (or in the module ``ABSORBED`` names for that
file). ``python -m forklab.kernel_map`` prints docs/kernel-map.md.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
MAP_PATH = ROOT / "docs" / "kernel-map.md"

# A kernel source citation: ``kernel/fork.c:1824-2362``, ``mm/memory.c:2750``,
# ``include/linux/uidgid.h:kuid_has_mapping``.
CITATION = re.compile(r"(?<![\w/.])((?:[\w+-]+/)*[\w+-]+\.[ch]):(\d+(?:-\d+)?|[A-Za-z_]\w*)")

# Kernel files whose cited functions forklab keeps in a module of another name: file -> (module, why).
ABSORBED: dict[str, tuple[str, str]] = {
    "include/linux/mm.h": ("forklab/mm/memory.py", "the struct page, vma and rss inline helpers, next to the page-table code"),
    "arch/x86/include/asm/pgtable.h": ("forklab/mm/memory.py", "the x86 PTE accessors, next to the PTE tables they read"),
    "arch/x86/mm/fault.c": ("forklab/mm/uaccess.py", "the user fault path, which every user access of the model takes"),
    "arch/x86/kernel/sys_x86_64.c": ("forklab/mm/mmap.py", "x86's mmap entry and top-down search, with the mmap code they drive"),
    "include/linux/sched/mm.h": ("forklab/kernel/fork.py", "mmget/mmdrop, next to mmput and mm_alloc of kernel/fork.c"),
}

# forklab helpers that stand for one step many kernel functions share: name -> why.
FACTORED: dict[str, str] = {
    "copy_ns": "the share-or-copy steps of copy_utsname, copy_ipcs, copy_cgroup_ns, copy_time_ns, copy_net_ns",
    "put_ns": "the last-reference steps of put_uts_ns, put_ipc_ns, put_cgroup_ns, put_time_ns, put_net",
}

# forklab's own tools: they model no kernel file, so their citations say where a checked rule comes from.
TOOLS: dict[str, str] = {
    "forklab/debug.py": "invariant checks and snapshots of the whole model",
    "forklab/fs/debug.py": "invariant checks and snapshots of the VFS model",
    "forklab/mm/debug.py": "invariant checks and snapshots of the memory model",
}


@dataclass(frozen=True, slots=True)
class Citation:
    """A kernel source location: ``file`` (``kernel/fork.c``) and ``where`` (a line, a range or a name)."""

    file: str
    where: str

    def __str__(self) -> str:
        return f"{self.file}:{self.where}"

    @property
    def stem(self) -> str:
        """The kernel file's name without ``.c``/``.h``, ``-`` read as ``_``: the name of the module it belongs in."""
        return PurePosixPath(self.file).stem.replace("-", "_")


@dataclass(frozen=True, slots=True)
class Definition:
    """One top-level function: its name, module (a path from the repo root), line and first citation."""

    name: str
    module: str
    line: int
    citation: Citation | None

    @property
    def home(self) -> str | None:
        """The module this function must live in, by its citation; None when it cites nothing."""
        if self.citation is None:
            return None
        absorbed = ABSORBED.get(self.citation.file)
        if absorbed is not None:
            return absorbed[0]
        return f"{self.citation.stem}.py"


def first_citation(doc: str | None) -> Citation | None:
    """The first kernel citation in a docstring, or None."""
    m = CITATION.search(doc or "")
    return None if m is None else Citation(m.group(1), m.group(2))


def definitions(package: Path = PACKAGE) -> list[Definition]:
    """Every top-level function of the package, in path order then line order."""
    out = []
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package.parent).as_posix()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append(Definition(node.name, module, node.lineno, first_citation(ast.get_docstring(node))))
    return out


def duplicates(defs: Iterable[Definition]) -> dict[str, list[Definition]]:
    """Function names defined more than once, with every definition."""
    by_name: dict[str, list[Definition]] = defaultdict(list)
    for d in defs:
        by_name[d.name].append(d)
    return {name: ds for name, ds in sorted(by_name.items()) if len(ds) > 1}


def is_placed(d: Definition) -> bool:
    """Whether ``d`` lives where its citation says: uncited, FACTORED and forklab's tools' functions always do."""
    home = d.home
    if home is None or d.module in TOOLS or d.name in FACTORED:
        return True
    if "/" in home:
        return d.module == home
    return PurePosixPath(d.module).name == home


def misplaced(defs: Iterable[Definition]) -> list[Definition]:
    """Cited functions living outside their kernel file's module."""
    return [d for d in defs if not is_placed(d)]


def render(defs: Iterable[Definition]) -> str:
    """docs/kernel-map.md: every cited function of the kernel model, grouped by kernel file."""
    by_file: dict[str, list[Definition]] = defaultdict(list)
    for d in defs:
        if d.citation is not None and d.module not in TOOLS:
            by_file[d.citation.file].append(d)
    lines = [
        "# Kernel map",
        "",
        "Generated by `python -m forklab.kernel_map > docs/kernel-map.md`; tests/test_kernel_map.py",
        "fails when it is stale. Each row is a top-level forklab function, the kernel source its",
        "docstring cites first, and where forklab defines it; grouped by kernel file.",
    ]
    for file in sorted(by_file):
        lines += ["", f"## {file}", "", "| kernel function | cited source | forklab |", "| --- | --- | --- |"]
        for d in sorted(by_file[file], key=lambda d: (d.name, d.module)):
            lines.append(f"| `{d.name}` | {d.citation} | {d.module}:{d.line} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(definitions()), end="")
