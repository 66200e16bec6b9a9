"""Programs: a Python callable, or a file that defines ``main``, run as the code of a simulated process.

A *file* program runs as a fresh module in each process image: every image (the first
process, each fork child re-running it, each exec of it) executes the file's top level again
into a new module, so module globals belong to that process, as on Linux. A *callable*
program shares whatever its globals and closures hold between all processes; the runner
warns (``SharedStateWarning``) when such a ``main`` writes globals or enclosing cells,
because a fork child re-running it would then see the parent's changes and diverge.
"""

from __future__ import annotations

import ast
import dis
import sys
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forklab.runner.errors import ProgramError

MODULE_NAME = "__forklab_program__"


class SharedStateWarning(UserWarning):
    """A callable ``main`` writes globals or closure cells, which every simulated process shares."""


@dataclass(slots=True, frozen=True)
class Program:
    """An executable's code: ``fn`` (a callable) or ``code`` (a compiled file defining ``main``).

    ``with_argv`` says whether main is called as ``main(os, argv)`` (installed programs) or
    ``main(os)`` (the program given to ``forklab.run``).
    """

    name: str
    with_argv: bool
    fn: Callable[..., object] | None = None
    code: types.CodeType | None = None
    path: str = ""

    def entry(self) -> Callable[..., object]:
        """A ``main`` for a new image: the callable itself, or ``main`` of a fresh run of the file."""
        if self.code is None:
            assert self.fn is not None
            return self.fn
        module = types.ModuleType(MODULE_NAME)
        module.__file__ = self.path
        saved = sys.modules.get(MODULE_NAME)
        sys.modules[MODULE_NAME] = module  # dataclasses and typing look classes' modules up while they are made
        try:
            exec(self.code, module.__dict__)
        finally:
            if saved is None:
                del sys.modules[MODULE_NAME]
            else:
                sys.modules[MODULE_NAME] = saved
        main = module.__dict__.get("main")
        if not callable(main):
            raise ProgramError(f"{self.path} defines no main function: a forklab program file needs def main(os)")
        return main  # type: ignore[no-any-return]  # a module global is Any


def from_callable(fn: object, name: str, with_argv: bool) -> Program:
    """A Program running ``fn``; TypeError if it is not callable."""
    if not callable(fn):
        raise TypeError(f"a program must be a callable or a path to a .py file, not {type(fn).__name__}")
    if not with_argv:
        warn_shared_state(fn)
    return Program(name=name, with_argv=with_argv, fn=fn)


def from_file(path: str | Path, with_argv: bool) -> Program:
    """A Program running the file at ``path``; ValueError if it cannot be read or compiled."""
    p = Path(path)
    try:
        source = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot read program file {str(path)!r}: {e.strerror}") from None
    try:
        tree = ast.parse(source, str(p))
        code = compile(tree, str(p), "exec")
    except SyntaxError as e:
        raise ValueError(f"program file {str(path)!r} does not compile: {e}") from None
    if "main" not in _top_level_names(tree):
        raise ProgramError(f"{path} defines no main function: a forklab program file needs def main(os)")
    return Program(name=p.stem or "prog", with_argv=with_argv, code=code, path=str(p))


def load(program: object, name: str | None, with_argv: bool) -> Program:
    """A Program from a callable or a path (str or Path ending in .py)."""
    if isinstance(program, (str, Path)):
        return from_file(program, with_argv)
    label = name or getattr(program, "__name__", "") or "main"
    return from_callable(program, label if label.isidentifier() else "main", with_argv)


def _top_level_names(tree: ast.Module) -> set[str]:
    """The names a module's top level binds by def, class, assignment or import."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def warn_shared_state(fn: object) -> None:
    """Warn if ``fn``'s code (or code nested in it) stores to a global or to a cell of an enclosing function."""
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType):
        return
    names = sorted(_shared_stores(code, outer_cells=frozenset()))
    if names:
        warnings.warn(
            f"{getattr(fn, '__qualname__', 'main')} writes {', '.join(names)}, which every simulated process "
            "shares: a fork child re-running main sees the parent's value and may diverge. Keep per-process "
            "state in main's locals, or run a file (forklab.run('prog.py')), whose globals belong to each process",
            SharedStateWarning, stacklevel=5)


def _shared_stores(code: types.CodeType, outer_cells: frozenset[str]) -> set[str]:
    """Names of globals and outer cells that ``code`` or its nested code objects store to."""
    own_cells = frozenset(code.co_cellvars)
    found: set[str] = set()
    for ins in dis.get_instructions(code):
        if ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL") or (ins.opname in ("STORE_DEREF", "DELETE_DEREF") and ins.argval in code.co_freevars \
                and ins.argval not in outer_cells):
            found.add(str(ins.argval))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _shared_stores(const, outer_cells | own_cells)
    return found


__all__ = ["Program", "SharedStateWarning", "from_callable", "from_file", "load", "warn_shared_state"]
