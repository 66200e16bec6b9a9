"""Imports sit at the top of their module; one inside a function says why in a comment (an import cycle, a lazy load)."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "forklab"


def _local_imports_without_reason() -> list[str]:
    out: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = path.read_text(encoding="utf-8")
        lines = src.splitlines()
        for fn in ast.walk(ast.parse(src)):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for st in ast.walk(fn):
                if isinstance(st, (ast.Import, ast.ImportFrom)) and st is not fn:
                    names = [st.module or ""] if isinstance(st, ast.ImportFrom) else [a.name for a in st.names]
                    if not any(n.startswith("forklab") for n in names):
                        continue
                    text = " ".join(lines[st.lineno - 1: st.end_lineno])
                    if "#" not in text:
                        out.append(f"{path.relative_to(PACKAGE.parent)}:{st.lineno}: {text.strip()}")
    return out


def test_function_level_imports_say_why() -> None:
    bad = _local_imports_without_reason()
    assert not bad, "move these imports to the top of their module, or say why they cannot be there:\n" + "\n".join(bad)


def test_every_module_imports_first() -> None:
    """No import order hides a cycle: each module can be the first one a program imports."""
    mods = sorted(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
                  for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")
    code = "import importlib, sys\nimportlib.import_module(sys.argv[1])\n"

    def first(m: str) -> str | None:
        r = subprocess.run([sys.executable, "-c", code, m], capture_output=True, text=True, check=False)
        return f"{m}: {(r.stderr.strip().splitlines() or ['failed'])[-1]}" if r.returncode else None

    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(first, mods) if f]
    assert not failures, "\n".join(failures)
