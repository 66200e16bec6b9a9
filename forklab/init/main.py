"""Boot (init/main.c): ``start_kernel`` builds the idle task (pid 0), init (pid 1) and the initial namespaces.

The model boots straight into a running init: pid 1 in the initial pid namespace, uid 0 with
every capability, in the initial user, mount, uts, ipc, net, cgroup and time namespaces and
the root cgroup. Its parent is the idle task ("swapper", pid 0), which is in no pid map,
exactly as ``init_struct_pid`` is in no idr. The objects init/init_task.c defines statically
(``init_task``, ``init_signals``, ``init_sighand``, ``init_fs``, ``init_files``) are built here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forklab.include.asm_generic.resource import init_rlimits
from forklab.include.linux.cred import Cred, UserStruct
from forklab.include.linux.fdtable import FilesStruct
from forklab.include.linux.fs_struct import FsStruct
from forklab.include.linux.nsproxy import Namespace, Nsproxy
from forklab.include.linux.pid import PIDNS_ADDING, Pid, PidNamespace, Upid
from forklab.include.linux.sched import PIDTYPE, SIGNAL_UNKILLABLE, SighandStruct, SignalStruct, Task, TaskState
from forklab.include.linux.user_namespace import UCOUNT_COUNTS, UserNamespace
from forklab.kernel.cgroup.pids import Cgroup
from forklab.kernel.fork import mm_alloc
from forklab.kernel.sched.core import activate_task
from forklab.uapi import SIGCHLD

if TYPE_CHECKING:
    from forklab.state import KernelState


def start_kernel(k: KernelState) -> Task:
    """Build the initial objects and return init (pid 1), running on CPU 0 (init/main.c:start_kernel, init/init_task.c)."""

    user_ns = UserNamespace(level=0, inum=0xEFFFFFFD, count=8)  # cred, pid ns, six other namespaces
    user_ns.ucount_max = [k.max_threads // 2] * UCOUNT_COUNTS  # fork_init (kernel/fork.c:831-833)
    k.init_user_ns = user_ns
    root_user = UserStruct(uid=0, count=1)
    k.uidhash[0] = root_user
    k.root_user = root_user
    full = k.cap_full_set
    cred = Cred(usage=4, cap_permitted=full, cap_effective=full, cap_bset=full,
                user=root_user, user_ns=user_ns)
    pid_ns = PidNamespace(level=0, user_ns=user_ns, inum=0xEFFFFFFC, count=1, pid_allocated=PIDNS_ADDING,
                          pid_max=k.pid_max)
    k.init_pid_ns = pid_ns

    def ns(kind: str, inum: int) -> Namespace:
        return Namespace(kind=kind, user_ns=user_ns, count=1, inum=inum, name={"nodename": "forklab"} if kind == "uts" else {})

    time_ns = ns("time", 0xEFFFFFFA)
    time_ns.count = 2
    nsproxy = Nsproxy(count=2, uts_ns=ns("uts", 0xEFFFFFFE), ipc_ns=ns("ipc", 0xEFFFFFFF),
                      mnt_ns=ns("mnt", 0xF0000000), pid_ns_for_children=pid_ns, net_ns=ns("net", 0xF0000098),
                      time_ns=time_ns, time_ns_for_children=time_ns, cgroup_ns=ns("cgroup", 0xEFFFFFFB))
    pid_ns.count += 1  # held by the nsproxy
    k.cgroup_root = Cgroup(name="")

    idle = Task(pid=0, tgid=0, comm="swapper/0", state=TaskState.TASK_RUNNING, cred=cred, real_cred=cred,
                nsproxy=nsproxy, sighand=SighandStruct(), signal=SignalStruct(), cgroups=k.cgroup_root,
                exit_signal=0)
    assert idle.signal is not None
    idle.signal.thread_head = [idle]
    idle.group_leader = idle.real_parent = idle.parent = idle
    idle_pid = Pid(count=1, level=0, numbers=[Upid(0, pid_ns)])
    idle.thread_pid = idle_pid
    k.idle_task = idle

    init_pid = Pid(count=1, level=0, numbers=[Upid(1, pid_ns)])
    pid_ns.idr[1] = init_pid
    pid_ns.idr_next = 2
    pid_ns.pid_allocated = PIDNS_ADDING + 1
    pid_ns.count += 1  # held by init's struct pid
    sig = SignalStruct(rlim=init_rlimits(k.max_threads), flags=SIGNAL_UNKILLABLE, leader=1)
    init = Task(pid=1, tgid=1, comm="init", exit_signal=SIGCHLD, cred=cred, real_cred=cred, nsproxy=nsproxy,
                sighand=SighandStruct(), signal=sig, files=FilesStruct(), fs=FsStruct(), cgroups=k.cgroup_root,
                real_parent=idle, parent=idle, cpus_mask=frozenset(range(k.nr_cpus)))
    init.group_leader = init
    sig.thread_head = [init]
    sig.curr_target = init
    sig.pids = [init_pid, init_pid, init_pid, init_pid]
    init.thread_pid = init_pid
    for kind in PIDTYPE:
        init_pid.tasks[kind].append(init)
        init.pid_links[kind] = init_pid
    pid_ns.child_reaper = init
    root_user.processes = 1
    root_user.count += 1
    k.cgroup_root.nr_tasks = 1
    idle.children.append(init)
    k.tasks.append(init)
    k.nr_threads = 1
    k.process_counts = 1
    init.mm = init.active_mm = mm_alloc(k)
    assert init.mm is not None
    init.mm.owner = init
    init.state = TaskState.TASK_RUNNING
    activate_task(k, init)
    return init
