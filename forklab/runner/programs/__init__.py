"""The standard executables: true, false, echo, cat, wc, sleep, kill, ps, pstree and sh, as user programs.

Each is a callable ``prog(os, argv) -> status`` that an ``execve`` of its path starts (see
``forklab.run(..., programs=...)``). They add user space only: every effect is a call on the
``os`` the runner gives them, so the model's trace shows their forks, pipes, dup2s, execs and
waits, and every rule comes from the model kernel.

``STANDARD_PROGRAMS`` maps each path to its program. ``forklab.run`` and ``forklab.explore``
install them all by default (``standard_programs=False`` leaves /bin empty but for the
program itself); ``programs=`` adds executables or replaces standard ones::

    run = forklab.run(main, programs={"/bin/hello": hello})   # /bin/sh, /bin/cat, ... and /bin/hello

Where the model kernel lacks a call a tool needs, the tool says so in its module: ``sleep``
cannot wait (no nanosleep), ``wc`` sizes files by lseek (no fstat), and ``ps``/``pstree``
probe ``/proc/<n>`` (no readdir of /proc).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from forklab.runner.programs.coreutils import cat_main, echo_main, false_main, sleep_main, true_main, wc_main
from forklab.runner.programs.procps import kill_main, ps_main, pstree_main
from forklab.runner.programs.sh import sh_main

if TYPE_CHECKING:
    from forklab.runner.libc import Libc

Program = Callable[["Libc", list[str]], int]

STANDARD_PROGRAMS: dict[str, Program] = {
    "/bin/sh": sh_main,
    "/bin/true": true_main,
    "/bin/false": false_main,
    "/bin/echo": echo_main,
    "/bin/cat": cat_main,
    "/bin/wc": wc_main,
    "/bin/sleep": sleep_main,
    "/bin/kill": kill_main,
    "/bin/ps": ps_main,
    "/bin/pstree": pstree_main,
}

__all__ = ["STANDARD_PROGRAMS", "Program"]
