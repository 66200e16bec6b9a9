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
from contextlib import ExitStack
from types import TracebackType
from typing import TYPE_CHECKING, ParamSpec

if TYPE_CHECKING:
    from forklab.state import KernelState

P = ParamSpec("P")


class CleanupLadder(ExitStack):
    """A ladder of undo steps, each under its kernel label; ``source`` cites the ladder in the kernel."""

    def __init__(self, k: KernelState | None = None, source: str = "") -> None:
        super().__init__()  # ExitStack.pop_all builds an empty instance: hence the defaults
        self.k = k
        self.source = source

    def on_failure(self, label: str, undo: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """Register ``undo(*args, **kwargs)`` under ``label``; it runs only if a later step raises an Exception."""

        def run(exc_type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None) -> bool:
            if exc_type is not None and issubclass(exc_type, Exception):
                if self.k is not None:
                    self.k.trace("cleanup", self.source, label)
                undo(*args, **kwargs)
            return False

        self.push(run)

    def succeed(self) -> None:
        """Past the last point of failure: drop every registered undo."""
        self.pop_all()
