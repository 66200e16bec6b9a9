"""KernelState: the globals in one small object; Kernel is only the syscall table on top of it."""

from __future__ import annotations

import inspect

import pytest

from forklab import Kernel
from forklab.errors import InternalError
from forklab.state import KernelState
from forklab.version import CHANGES


def test_kernel_is_a_kernel_state_with_no_state_of_its_own() -> None:
    """Kernel adds methods only: no slots, no __dict__, every attribute is KernelState's."""
    k = Kernel()
    assert isinstance(k, KernelState)
    assert Kernel.__slots__ == ()
    assert not hasattr(k, "__dict__")
    own = {n for n, v in vars(Kernel).items() if not n.startswith("__")}
    assert all(callable(getattr(Kernel, n)) for n in own), "Kernel defines only methods"


def test_a_bare_state_is_unbooted_and_a_booted_kernel_has_init() -> None:
    bare = KernelState()
    assert bare.tasks == [] and bare.nr_threads == 0
    k = Kernel()
    assert k.init_task.pid == 1 and k.tasks == [k.init_task] and k.nr_threads == 1


def test_state_module_imports_only_leaf_modules() -> None:
    """forklab/state.py imports structs (the hrtimer queue's too), the page map, the VFS superblock, the injector, trace and versions."""
    import forklab.state as state

    src = inspect.getsource(state)
    imported = {line.split()[1] for line in src.splitlines() if line.startswith("from forklab")}
    assert imported <= {"forklab.errors", "forklab.fs.vfs", "forklab.include.linux.cred", "forklab.include.linux.hrtimer",
                        "forklab.include.linux.pid",
                        "forklab.include.linux.sched", "forklab.include.linux.threads",
                        "forklab.include.linux.user_namespace", "forklab.kernel.cgroup.pids",
                        "forklab.kernel.sched.core", "forklab.lib.fault_inject", "forklab.mm.page_alloc",
                        "forklab.trace", "forklab.version"}, imported


@pytest.mark.parametrize("version", ["5.6.14", "6.18"])
def test_has_answers_for_every_known_change(version: str) -> None:
    k = KernelState(version=version)
    for change in CHANGES:
        assert isinstance(k.has(change.name), bool)


def test_has_raises_on_a_change_that_does_not_exist() -> None:
    """A misspelt switch would silently answer False and run the 5.6 rule; it is a bug in forklab."""
    with pytest.raises(InternalError, match="clone3_newtimee"):
        KernelState().has("clone3_newtimee")


@pytest.mark.parametrize(("kwargs", "exc"), [
    ({"pid_max": 10}, ValueError), ({"nr_cpus": 0}, ValueError), ({"threads_max": 5}, ValueError),
    ({"version": "4.19"}, ValueError), ({"version": 5}, TypeError), ({"pid_max": "32768"}, TypeError),
    ({"nr_cpus": True}, TypeError),
])
def test_bad_tunables_are_api_errors(kwargs: dict[str, object], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        Kernel(**kwargs)  # type: ignore[arg-type]
