"""Signal frames and rt_sigreturn (arch/x86/kernel/signal.c:638-664, 685-766; kernel/signal.c:2758-2773, 2883-2921).

handle_signal pushes an RtSigframe on ``task.sigframes`` with the mask to restore; signal_delivered
blocks sa_mask and the signal (without SA_NODEFER) until the frame's rt_sigreturn. A task whose user
code is run by a driver (``user_handlers``, the program runner) keeps its frames until it calls
rt_sigreturn; a task driven by kernel calls alone returns from each handler at once.
"""

from __future__ import annotations

import errno

import pytest
from conftest import fork_child

from forklab import Blocked, Kernel, SigAction, Task, TaskKilled, TaskState
from forklab.arch.x86.entry.common import do_syscall_64
from forklab.arch.x86.kernel.signal import sys_rt_sigreturn
from forklab.kernel.signal import sigmask
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_SIGHAND,
    CLONE_THREAD,
    CLONE_VM,
    SA_NODEFER,
    SA_RESTART,
    SIG_BLOCK,
    SIG_UNBLOCK,
    SIGSEGV,
    SIGTERM,
    SIGUSR1,
    SIGUSR2,
)

HANDLER = 0x4000
THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD


def rt_sigreturn(k: Kernel, t: Task) -> int:
    """rt_sigreturn(2) through the entry code, as the Kernel method for it does."""
    return do_syscall_64(k, t, "rt_sigreturn", lambda c: sys_rt_sigreturn(k, c))


def user_task(k: Kernel) -> Task:
    """A child of init whose handlers a driver of user code runs (Task.user_handlers)."""
    t = fork_child(k)
    t.user_handlers = True
    return t


def entered(k: Kernel, t: Task) -> list[int]:
    """The signals whose handlers ``t`` entered, in order."""
    return [sig for pid, sig, how in k.signals_delivered if pid == t.pid and how.startswith("handler")]


def test_a_delivery_pushes_a_frame_and_blocks_the_mask_until_rt_sigreturn(k):
    t = user_task(k)
    k.rt_sigprocmask(t, SIG_BLOCK, sigmask(SIGTERM))
    k.rt_sigaction(t, SIGUSR1, SigAction(HANDLER, 0, sigmask(SIGUSR2)))
    k.kill(k.init_task, t.pid, SIGUSR1)
    k.getpid(t)
    (frame,) = t.sigframes
    assert (frame.ksig.sig, frame.ksig.ka.sa_handler, frame.uc_sigmask) == (SIGUSR1, HANDLER, sigmask(SIGTERM))
    assert t.blocked == sigmask(SIGTERM) | sigmask(SIGUSR2) | sigmask(SIGUSR1)
    k.kill(k.init_task, t.pid, SIGUSR1)  # blocked while the handler runs: it stays pending
    k.getpid(t)
    assert entered(k, t) == [SIGUSR1] and t.signal.shared_pending.signal & sigmask(SIGUSR1)
    assert rt_sigreturn(k, t) == 0
    # the mask is back, and rt_sigreturn's own return to user mode enters the handler again
    assert entered(k, t) == [SIGUSR1, SIGUSR1] and len(t.sigframes) == 1
    rt_sigreturn(k, t)
    assert t.blocked == sigmask(SIGTERM) and not t.sigframes
    k.check_invariants()


def test_sa_nodefer_leaves_the_signal_unblocked(k):
    t = user_task(k)
    k.rt_sigaction(t, SIGUSR1, SigAction(HANDLER, SA_NODEFER))
    k.kill(k.init_task, t.pid, SIGUSR1)
    k.getpid(t)
    assert t.blocked == 0
    k.kill(k.init_task, t.pid, SIGUSR1)
    k.getpid(t)  # a nested delivery: a second frame on top of the first
    assert [f.ksig.sig for f in t.sigframes] == [SIGUSR1, SIGUSR1]
    rt_sigreturn(k, t)
    rt_sigreturn(k, t)
    assert not t.sigframes
    k.check_invariants()


def test_two_signals_in_one_return_stack_two_frames_the_last_runs_first(k):
    """exit_to_usermode_loop delivers each pending signal (arch/x86/entry/common.c:136-179): the second frame is
    pushed on top of the first; the masks nest."""
    t = user_task(k)
    k.rt_sigaction(t, SIGUSR1, SigAction(HANDLER))
    k.rt_sigaction(t, SIGUSR2, SigAction(HANDLER + 0x10))
    k.rt_sigprocmask(t, SIG_BLOCK, sigmask(SIGUSR1) | sigmask(SIGUSR2))
    k.kill(k.init_task, t.pid, SIGUSR1)
    k.kill(k.init_task, t.pid, SIGUSR2)
    k.rt_sigprocmask(t, SIG_UNBLOCK, sigmask(SIGUSR1) | sigmask(SIGUSR2))  # both are delivered on the way out
    assert [f.ksig.sig for f in t.sigframes] == [SIGUSR1, SIGUSR2]
    assert t.sigframes[1].uc_sigmask == sigmask(SIGUSR1)  # the mask the first handler runs under
    rt_sigreturn(k, t)
    assert t.blocked == sigmask(SIGUSR1)
    rt_sigreturn(k, t)
    assert t.blocked == 0
    k.check_invariants()


def test_rt_sigreturn_without_a_frame_is_sigsegv(k):
    """No frame at regs->sp: badframe -> signal_fault -> force_sig(SIGSEGV) (arch/x86/kernel/signal.c:661-663)."""
    t = user_task(k)
    with pytest.raises(TaskKilled):
        rt_sigreturn(k, t)
    assert t.exit_state and t.exit_code == SIGSEGV
    assert (t.pid, SIGSEGV, "killed") in k.signals_delivered


def test_a_task_without_user_code_returns_from_each_handler_at_once(k):
    """Task.user_handlers False (kernel calls alone): the frame is popped by the return to user mode and the
    mask restored; a signal the handler's mask held back is entered after it."""
    t = fork_child(k)
    assert not t.user_handlers
    k.rt_sigaction(t, SIGUSR1, SigAction(HANDLER, 0, sigmask(SIGUSR2)))
    k.rt_sigaction(t, SIGUSR2, SigAction(HANDLER + 0x10))
    k.rt_sigprocmask(t, SIG_BLOCK, sigmask(SIGUSR1) | sigmask(SIGUSR2))
    k.kill(k.init_task, t.pid, SIGUSR1)
    k.kill(k.init_task, t.pid, SIGUSR2)
    k.rt_sigprocmask(t, SIG_UNBLOCK, sigmask(SIGUSR1) | sigmask(SIGUSR2))
    assert entered(k, t) == [SIGUSR1, SIGUSR2] and not t.sigframes and t.blocked == 0
    k.check_invariants()


def test_a_restart_with_a_frame_returns_to_user_code_first(k):
    """With user code to run the handler, an SA_RESTART restart is not made in the kernel: the call raises Blocked
    with the task runnable and the frame on it; the driver runs the handler, rt_sigreturn, then issues the call
    again (arch/x86/kernel/signal.c:726-735: the handler runs before the restarted instruction)."""
    p = user_task(k)
    c = fork_child(k, p)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER, SA_RESTART))
    k.kill(k.init_task, p.pid, SIGUSR1)
    with pytest.raises(Blocked):
        k.wait4(p, -1, 0)
    assert p.state == TaskState.TASK_RUNNING and [f.ksig.sig for f in p.sigframes] == [SIGUSR1]
    rt_sigreturn(k, p)
    with pytest.raises(Blocked):
        k.wait4(p, -1, 0)  # now it sleeps
    assert p.state == TaskState.TASK_INTERRUPTIBLE
    k.exit(c, 0)
    assert k.wait4(p, -1, 0) == (c.pid, 0)
    k.check_invariants()


def test_a_handler_mask_hands_a_shared_signal_to_another_thread(k):
    """set_current_blocked -> __set_task_blocked: a group signal the handler's mask now blocks is retargeted, and a
    thread asleep in an interruptible wait is woken to take it (kernel/signal.c:2883-2893, 2788-2813)."""
    p = user_task(k)
    t = k.find_task(k.clone(p, THREAD))
    r, _w = k.pipe(p)
    k.rt_sigaction(p, SIGUSR1, SigAction(HANDLER, 0, sigmask(SIGUSR2)))
    k.rt_sigaction(p, SIGUSR2, SigAction(HANDLER + 0x10))
    with pytest.raises(Blocked):
        k.read(t, r, 1)
    k.kill(k.init_task, p.pid, SIGUSR2)  # complete_signal picks p, which is running: t sleeps on
    assert t.state == TaskState.TASK_INTERRUPTIBLE
    k.tgkill(k.init_task, p.pid, p.pid, SIGUSR1)
    k.getpid(p)  # p enters its SIGUSR1 handler, which blocks SIGUSR2
    assert entered(k, p) == [SIGUSR1] and p.blocked & sigmask(SIGUSR2)
    assert t.state == TaskState.TASK_RUNNING  # retarget_shared_pending woke it
    with pytest.raises(OSError) as e:
        k.read(t, r, 1)  # t takes SIGUSR2: its handler has no SA_RESTART
    assert e.value.errno == errno.EINTR and entered(k, t) == [SIGUSR2]
    k.check_invariants()
