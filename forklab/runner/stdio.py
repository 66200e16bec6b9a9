"""print() inside a program: sys.stdout and sys.stderr write to the running process's fds 1 and 2.

While a run lasts, ``sys.stdout``/``sys.stderr`` are streams that, in a simulated process's
user code, append to that image's line buffer and write each completed line with one
``write(2)`` call, as C's line-buffered stdio does on a terminal. The buffer is user-space
memory of the image, so it behaves as stdio does across fork: a partial line printed before a
fork is flushed by both processes. Returning from main (or SystemExit) flushes it; ``os._exit``
does not. Outside user code (the runner itself, the host) the streams write to the host's.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from forklab.runner.core import Runner
    from forklab.runner.process import Image


class ProcessStream(io.TextIOBase):
    """A text stream for fd 1 or 2 of whichever simulated process is running user code."""

    def __init__(self, runner: Runner, fd: int, host: TextIO) -> None:
        super().__init__()
        self._runner = runner
        self._fd = fd
        self._host = host

    def _image(self) -> Image | None:
        """The image whose user code is running, or None outside user code."""
        runner = self._runner
        proc = runner.libc._p
        if not runner.in_user or proc is None or proc.dead:
            return None
        return proc.image

    def write(self, s: str) -> int:
        """Buffer ``s`` in the image; write out every completed line."""
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        image = self._image()
        if image is None:
            return self._host.write(s)
        text = image.stdio.get(self._fd, "") + s
        cut = text.rfind("\n") + 1
        image.stdio[self._fd] = text[cut:]
        if cut:
            self._runner.write_all(self._fd, text[:cut].encode("utf-8", "surrogateescape"))
        return len(s)

    def flush(self) -> None:
        """Write out the image's partial line."""
        image = self._image()
        if image is None:
            self._host.flush()
            return
        flush_image(self._runner, image, self._fd)

    def writable(self) -> bool:
        """Always: the stream is fd 1 or 2."""
        return True

    def fileno(self) -> int:
        """The simulated fd (the host's own stream has another)."""
        return self._fd


def flush_image(runner: Runner, image: Image, fd: int) -> None:
    """Write out ``image``'s buffered partial line for ``fd``."""
    pending = image.stdio.pop(fd, "")
    if pending:
        runner.write_all(fd, pending.encode("utf-8", "surrogateescape"))


@contextlib.contextmanager
def redirect(runner: Runner) -> Iterator[None]:
    """Route print() in the run's programs to their fds 1 and 2 while the run lasts."""
    saved = sys.stdout, sys.stderr
    sys.stdout = ProcessStream(runner, 1, saved[0])
    sys.stderr = ProcessStream(runner, 2, saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


__all__ = ["ProcessStream", "flush_image", "redirect"]
