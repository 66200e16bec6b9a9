"""Fault injection as /proc/<pid>/fail-nth does it (lib/fault-inject.c:should_fail).

Writing ``n`` to a task's ``fail_nth`` makes the n-th fallible allocation of that task's next
syscall fail. Each fallible site in the model calls ``FaultInjector.should_fail(site)`` right
where the kernel allocates (kmem_cache_alloc, alloc_page, idr_alloc...); the caller then fails
the way that call site fails (ENOMEM, or what the site returns). The injector also records the
sites a syscall passed, which is how the fail-nth sweep test finds every site.
"""

from __future__ import annotations


class FaultInjector:
    """The per-syscall countdown of ``task->fail_nth`` and the list of fallible sites visited."""

    __slots__ = ("countdown", "failed_site", "sites")

    def __init__(self) -> None:
        self.countdown = 0
        self.sites: list[str] = []
        self.failed_site = ""

    def arm(self, nth: int) -> None:
        """Start a syscall: fail the ``nth`` fallible site (0 disarms)."""
        self.countdown = nth
        self.sites = []
        self.failed_site = ""

    def should_fail(self, site: str) -> bool:
        """Count one fallible site; True when it is the one to fail (lib/fault-inject.c:should_fail)."""
        self.sites.append(site)
        if self.countdown <= 0:
            return False
        self.countdown -= 1
        if self.countdown == 0:
            self.failed_site = site
            return True
        return False
