"""CleanupLadder: the kernel's goto-unwinding ladders, as one typed idiom.

A kernel function that builds something in steps unwinds a failure through a ladder of
labels (``bad_fork_cleanup_files:``, ``out_unmark:``, ...): each label undoes one step and
falls through to the ones below it, so a failure at step n undoes steps n-1 .. 1 in reverse.
Here each step, once done, registers its undo under the label it mirrors; an ``Exception``
leaving the ``with`` block runs the registered undos in reverse order, and ``succeed()``
(the point past which nothing can fail) drops them. A ``BaseException`` that is not an
``Exception`` (KeyboardInterrupt, a greenlet being killed) unwinds nothing: it is not a
kernel failure, and the model makes no claim about the state it leaves.

``on_failure`` is typed with a ``ParamSpec``, so mypy checks every undo call's arguments.
Used by copy_process and ksys_unshare (kernel/fork.c) and do_execve (fs/exec.c).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec

if TYPE_CHECKING:
    from forklab.state import KernelState

P = ParamSpec("P")


class CleanupLadder:
    """A ladder of undo steps, each under its kernel label; ``source`` cites the ladder in the kernel.

    NOTE: a plain list of (label, undo, args) where contextlib.ExitStack wrapped each step in a closure; the
    unwinding is ExitStack's: reverse order, a failing undo does not stop the ones below it (its exception,
    chained to the first, is what propagates), and a BaseException stops the unwinding.
    """

    __slots__ = ("_undos", "k", "source")

    def __init__(self, k: KernelState | None = None, source: str = "") -> None:
        self.k = k
        self.source = source
        self._undos: list[tuple[str, Callable[..., object], tuple[Any, ...], dict[str, Any]]] = []

    def __enter__(self) -> CleanupLadder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        undos, self._undos = self._undos, []
        if exc is None or not isinstance(exc, Exception):
            return
        pending: BaseException = exc
        for label, undo, args, kwargs in reversed(undos):
            if self.k is not None:
                self.k.trace("cleanup", self.source, label)
            try:
                undo(*args, **kwargs)
            except BaseException as failed:  # ExitStack's rule: the labels below still run
                pending = failed
                if not isinstance(failed, Exception):
                    break
        if pending is not exc:
            raise pending

    def on_failure(self, label: str, undo: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """Register ``undo(*args, **kwargs)`` under ``label``; it runs only if a later step raises an Exception."""
        self._undos.append((label, undo, args, kwargs))

    def succeed(self) -> None:
        """Past the last point of failure: drop every registered undo."""
        self._undos = []
