"""CleanupLadder (forklab/ladder.py): undo steps run in reverse on an Exception, never on success or a BaseException."""

from __future__ import annotations

import pytest

from forklab import Kernel, Recorder
from forklab.ladder import CleanupLadder


def test_an_exception_runs_the_undos_in_reverse_and_traces_each_label() -> None:
    k = Kernel()
    rec = Recorder()
    k.listeners.append(rec)
    done: list[str] = []
    with pytest.raises(OSError), CleanupLadder(k, "kernel/fork.c:2300-2361") as ladder:
        ladder.on_failure("bad_fork_free", done.append, "free")
        ladder.on_failure("bad_fork_cleanup_files", done.append, "files")
        raise OSError(12, "ENOMEM")
    assert done == ["files", "free"]
    assert [(e.kind, e.detail, e.source) for e in rec.events] == [
        ("cleanup", "bad_fork_cleanup_files", "kernel/fork.c:2300-2361"),
        ("cleanup", "bad_fork_free", "kernel/fork.c:2300-2361")]


def test_success_drops_every_undo() -> None:
    done: list[str] = []
    with CleanupLadder() as ladder:
        ladder.on_failure("out_files", done.append, "files")
        ladder.succeed()
    assert done == []


def test_a_base_exception_unwinds_nothing() -> None:
    """KeyboardInterrupt or a greenlet being killed is not a kernel failure: no undo runs."""
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt), CleanupLadder() as ladder:
        ladder.on_failure("out", done.append, "mm")
        raise KeyboardInterrupt
    assert done == []


def test_keyword_arguments_reach_the_undo() -> None:
    got: dict[str, int] = {}
    with pytest.raises(ValueError), CleanupLadder() as ladder:
        ladder.on_failure("bad", got.update, a=1)
        raise ValueError
    assert got == {"a": 1}
