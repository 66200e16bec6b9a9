"""The model's /proc files, ps -eLf and pstree -p against captures of the real ones (tests/data/proc/).

tests/data/proc/capture.py made the captures on a Linux host: a process "fl-parent" with two
threads and a forked child "fl-child" that wrote one of four shared anonymous pages, and the
real ps, pstree and /proc files of both. Each test rebuilds the same scene on the model, with
the same pids (clone3's set_tid), the same 8-page mapping and the same writes, and compares:
byte for byte where the model keeps the value (pstree, ps's columns, the mapping's smaps
counts, the boot namespaces' inode numbers), and otherwise line order, labels, separators and
field widths. The host ran a later kernel than 5.6, so lines it added are listed (HOST_ONLY)
and two lines whose format changed after 5.6 are compared by label only (FORMAT_CHANGED).
The tests that run the real tools skip when they are missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import map_page

from forklab import CloneArgs, Kernel, Task
from forklab.fs.proc.base import proc_listdir, proc_readlink
from forklab.mm.memory import page_mapcount, vm_normal_page
from forklab.uapi import (
    CLONE_FILES,
    CLONE_FS,
    CLONE_SIGHAND,
    CLONE_SYSVSEM,
    CLONE_THREAD,
    CLONE_VM,
    PAGE_SIZE,
    RLIMIT_SIGPENDING,
    SIGCHLD,
)
from forklab.views.process_list import ps_elf, pstree_p

DATA = Path(__file__).resolve().parent / "data" / "proc"
THREAD = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
# status lines later kernels print and 5.6 does not (the host's kernel is newer)
HOST_ONLY = {"Kthread", "untag_mask", "Seccomp_filters", "SpeculationIndirectBranch", "x86_Thread_features",
             "x86_Thread_features_locked", "Pss_Dirty", "KSM", "ProtectionKey"}
# lines whose layout changed after 5.6: 5.6 prints "FilePmdMapped: " (one space) and "THPeligible:\t\t%d"
FORMAT_CHANGED = {"FilePmdMapped", "THPeligible"}


def capture(name: str) -> str:
    return (DATA / name).read_text()


def ids() -> dict[str, str]:
    out = {}
    for line in capture("ids.txt").splitlines() + capture("links.txt").splitlines():
        key, _, value = line.partition(" ")
        out[key] = value
    return out


class Scene:
    """The capture's processes on the model, with the host's pids."""

    def __init__(self) -> None:
        i = ids()
        self.k = k = Kernel()
        init = k.init_task
        for name in ("fl-parent", "pstree"):
            inode = k.vfs.create(f"/tmp/{name}", mode=0o755)
            inode.data[:] = b"\x7fELF"
        passwd = k.vfs.create("/etc/passwd")
        passwd.data[:] = b"root:x:0:0:root:/root:/bin/sh\n"
        shell = self.spawn(init, int(i["ppid"]))
        self.parent = self.spawn(shell, int(i["parent"]))
        k.execve(self.parent, "/tmp/fl-parent", ["fl-parent"])
        self.region = map_page(k, self.parent, 8)
        for n in range(4):
            k.store(self.parent, self.region + n * PAGE_SIZE, b"\1")
        self.threads = [self.spawn(self.parent, int(tid), THREAD) for tid in i["threads"].split()]
        self.child = self.spawn(self.parent, int(i["child"]))
        self.child.comm = "fl-child"  # prctl(PR_SET_NAME): the model's comm is the Task field
        k.store(self.child, self.region, b"\2")  # one copy-on-write copy
        self.host_region = int(i["region"], 16)

    def spawn(self, parent: Task, nr: int, flags: int = 0) -> Task:
        args = CloneArgs(flags=flags, exit_signal=0 if flags & CLONE_THREAD else SIGCHLD, set_tid=[nr])
        return self.k.find_task(self.k.clone3(parent, args))

    def pstree_child(self) -> None:
        """The pstree process the capture shows under fl-parent."""
        tree = capture("pstree-p.txt")
        pid = int(re.search(r"pstree\((\d+)\)", tree).group(1))  # type: ignore[union-attr]
        k = self.k
        t = self.spawn(self.parent, pid)
        k.execve(t, "/tmp/pstree", ["pstree"])


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene()


def labels(text: str) -> list[str]:
    return [line.split(":", 1)[0] for line in text.splitlines() if ":" in line]


def shape(line: str) -> str:
    """A line with its values abstracted: a padded number keeps its field width, others become N; hex words H<n>."""
    line = re.sub(r"\b[0-9a-f]{8,}\b", lambda m: f"H{len(m.group())}", line)
    return re.sub(r"( *)(\d+)", lambda m: f"<{len(m.group())}>" if m.group(1) and "\t" not in m.group(1) else "N", line)


# --- pstree and ps ---------------------------------------------------------------------------------


def test_pstree_p_is_the_captured_tree_byte_for_byte() -> None:
    """Threads are {process name}(tid), sorted after the child processes by name, the layout psmisc's."""
    s = Scene()
    s.pstree_child()
    assert pstree_p(s.k, s.parent.pid) == capture("pstree-p.txt")


def test_pstree_compaction_is_the_captured_one() -> None:
    """Without -p the two equal thread leaves merge into 2*[{fl-parent}]."""
    from forklab.views.process_list import PstreeOptions, proc_entries, processes, pstree_render  # one test only

    s = Scene()
    s.pstree_child()
    text = pstree_render(processes(proc_entries(s.k)), PstreeOptions(root=s.parent.pid))
    assert text == capture("pstree.txt")


def _ps_rows(text: str) -> list[list[str]]:
    """Rows without STIME, C and CMD, which depend on the wall clock, CPU use and the command line."""
    out = []
    for line in text.splitlines()[1:]:
        f = line.split(None, 9)
        out.append([f[0], f[1], f[2], f[3], f[5], f[7], f[8]])
    return out


def _columns(header: str) -> list[tuple[str, int, int]]:
    """Each header word and its start and end column."""
    return [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", header)]


def test_ps_elf_header_and_rows_are_the_captured_ones(scene: Scene) -> None:
    host = capture("ps-eLf.txt")
    model = ps_elf(scene.k)
    assert model.splitlines()[0] == host.splitlines()[0]
    ours = [line for line in model.splitlines()[1:] if line.split()[1] in (str(scene.parent.pid), str(scene.child.pid))]
    assert _ps_rows("\n".join(["", *ours])) == _ps_rows(host)
    # every column of every row sits where the header puts it: right-aligned ends, left-aligned starts
    cols = _columns(host.splitlines()[0])
    for line in ours + host.splitlines()[1:]:
        for word, start, end in cols[:-1]:
            if word in ("UID", "STIME", "TTY"):
                assert line[start] != " " and (start == 0 or line[start - 1] == " "), (word, line)
            else:
                assert line[end - 1] != " " and line[end] == " ", (word, line)


def test_ps_elf_rows_follow_the_model(scene: Scene) -> None:
    """One row per thread, NLWP the group's nr_threads, LWP each thread's pid, PPID the real parent's tgid."""
    rows = [line.split() for line in ps_elf(scene.k).splitlines()[1:]]
    parent = [r for r in rows if r[1] == str(scene.parent.pid)]
    assert [int(r[3]) for r in parent] == [scene.parent.pid, *(t.pid for t in scene.threads)]
    assert {int(r[5]) for r in parent} == {scene.parent.signal.nr_threads} == {3}
    assert {int(r[2]) for r in parent} == {scene.parent.real_parent.tgid}
    assert len(rows) == len(scene.k.all_threads())


@pytest.mark.skipif(shutil.which("ps") is None or shutil.which("pstree") is None, reason="needs procps and psmisc")
def test_the_hosts_tools_still_print_the_captured_layout() -> None:
    """The live tools' header and tree shape match the stored captures (so the captures are not stale)."""
    header = subprocess.run(["ps", "-eLf"], capture_output=True, check=True, text=True).stdout.splitlines()[0]
    assert header == capture("ps-eLf.txt").splitlines()[0]
    tree = subprocess.run(["pstree", "-p", "1"], capture_output=True, check=True, text=True).stdout
    assert tree.splitlines()[0].startswith(tree.split("(", 1)[0] + "(1)")


# --- status ------------------------------------------------------------------------------------------


def test_status_has_5_6s_lines_in_the_hosts_order(scene: Scene) -> None:
    host = capture("parent-status.txt")
    model = scene.k.proc(f"/proc/{scene.parent.pid}/status")
    host_labels = [x for x in labels(host) if x not in HOST_ONLY]
    assert labels(model) == host_labels
    assert "Groups:\t \n" in model  # the trailing space 5.6 prints after the (empty) group list


def test_status_lines_have_the_hosts_separators_and_widths(scene: Scene) -> None:
    host = {line.split(":", 1)[0]: line for line in capture("parent-status.txt").splitlines()}
    model = scene.k.proc(f"/proc/{scene.parent.pid}/status")
    config = {"Speculation_Store_Bypass", "Cpus_allowed", "Cpus_allowed_list", "Name"}  # CPU, machine, comm
    for line in model.splitlines():
        label = line.split(":", 1)[0]
        if label not in config:
            assert shape(line) == shape(host[label]), label


def test_status_values_follow_the_model(scene: Scene) -> None:
    """Threads is nr_threads, NSpid one number per pid level, SigQ the user's queued signals / RLIMIT_SIGPENDING."""
    k, p = scene.k, scene.parent
    text = dict(line.split(":\t", 1) for line in k.proc(f"/proc/{p.pid}/status").splitlines())
    assert int(text["Threads"]) == p.signal.nr_threads == 3
    assert text["NSpid"].split("\t") == [str(u.nr) for u in p.thread_pid.numbers]
    assert text["SigQ"] == f"0/{p.signal.rlim[RLIMIT_SIGPENDING][0]}"
    assert text["Cpus_allowed_list"] == f"0-{k.nr_cpus - 1}"


# --- stat and statm ------------------------------------------------------------------------------------


def test_stat_has_the_hosts_52_fields(scene: Scene) -> None:
    for who, task in (("parent", scene.parent), ("child", scene.child)):
        host = capture(f"{who}-stat.txt")
        model = scene.k.proc(f"/proc/{task.pid}/stat")
        for text in (host, model):
            assert text.endswith("\n") and text.count("\n") == 1
        split = [t.rstrip("\n").rpartition(") ")[2].split(" ") for t in (host, model)]
        assert len(split[0]) == len(split[1]) == 50  # fields 3..52
        assert model.split(" ", 2)[:2] == [str(task.pid), f"({task.comm})"] and host.split(" ")[1] == f"({task.comm})"
        for h, m in zip(split[0], split[1], strict=True):
            assert re.fullmatch(r"-?\d+|[RSDTtXZPI]", h) and re.fullmatch(r"-?\d+|[RSDTtXZPI]", m)


def test_statm_has_the_hosts_7_fields(scene: Scene) -> None:
    host = capture("parent-statm.txt").split()
    model = scene.k.proc(f"/proc/{scene.parent.pid}/statm")
    assert len(model.split()) == len(host) == 7 and model.endswith("\n")
    size, resident, *_ = map(int, model.split())
    mm = scene.parent.mm
    assert size == mm.total_vm and resident == sum(mm.rss_stat[i] for i in (0, 1, 3))


# --- maps, smaps, smaps_rollup ----------------------------------------------------------------------


def smaps_block(text: str, start: int) -> list[str]:
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"{start:08x}-"))
    end = next((i for i in range(first + 1, len(lines)) if re.match(r"[0-9a-f]+-[0-9a-f]+ ", lines[i])), len(lines))
    return lines[first:end]


@pytest.mark.parametrize("who", ["parent", "child"])
def test_smaps_of_the_cow_region_equals_the_capture(scene: Scene, who: str) -> None:
    """Three pages still shared (Shared_Dirty 12 kB, half of each in Pss) and the copied page Private_Dirty in
    both processes: the counts are the real kernel's, line for line."""
    task = scene.parent if who == "parent" else scene.child
    model = smaps_block(scene.k.proc(f"/proc/{task.pid}/smaps"), scene.region)
    host = [line for line in smaps_block(capture(f"{who}-smaps.txt"), scene.host_region)
            if line.split(":")[0] not in HOST_ONLY]
    assert model[0].split()[1:] == host[0].split()[1:]  # perms offset dev inode
    assert len(model) == len(host)
    for m, h in zip(model[1:], host[1:], strict=True):
        if m.split(":")[0] in FORMAT_CHANGED:
            assert m.split(":")[0] == h.split(":")[0] and m.split()[-1] == h.split()[-1]
        else:
            assert m == h


def test_smaps_counts_follow_the_page_tables(scene: Scene) -> None:
    """Rss is the present pages, Pss the sum of PAGE_SIZE/mapcount, Shared_* the pages mapped more than once."""
    k = scene.k
    for task in (scene.parent, scene.child):
        vma = next(v for v in task.mm.mmap if v.vm_start == scene.region)
        pfns = [p for a in range(vma.vm_start, vma.vm_end, PAGE_SIZE)
                if (p := _pfn(k, task, vma, a)) is not None]
        counts = {line.split(":")[0]: int(line.split()[1]) for line in smaps_block(k.proc(f"/proc/{task.pid}/smaps"),
                                                                                  scene.region)[1:-2]}
        assert counts["Rss"] == len(pfns) * PAGE_SIZE // 1024
        assert counts["Pss"] == sum(PAGE_SIZE // page_mapcount(k, p) for p in pfns) // 1024
        shared = sum(page_mapcount(k, p) > 1 for p in pfns)
        assert counts["Shared_Dirty"] + counts["Shared_Clean"] == shared * PAGE_SIZE // 1024
        assert counts["Private_Dirty"] + counts["Private_Clean"] == (len(pfns) - shared) * PAGE_SIZE // 1024


def _pfn(k: Kernel, task: Task, vma, addr: int) -> int | None:
    from forklab.mm.memory import get_pte, pte_present  # one helper only

    pte = get_pte(task.mm, addr)
    return vm_normal_page(k, vma, addr, pte) if pte_present(pte) else None


def test_a_cow_copy_moves_a_page_from_shared_to_private() -> None:
    """Before the child's write all four pages are Shared_Dirty in both; after it one is Private_Dirty in each."""
    k = Kernel()
    parent = k.find_task(k.fork(k.init_task))
    addr = map_page(k, parent, 4)
    for n in range(4):
        k.store(parent, addr + n * PAGE_SIZE, b"\1")
    child = k.find_task(k.fork(parent))

    def counts(t: Task) -> dict[str, int]:
        block = smaps_block(k.proc(f"/proc/{t.pid}/smaps"), addr)
        return {line.split(":")[0]: int(line.split()[1]) for line in block[1:] if line.endswith(" kB")}

    assert [counts(t)["Shared_Dirty"] for t in (parent, child)] == [16, 16]
    assert [counts(t)["Pss"] for t in (parent, child)] == [8, 8]
    k.store(child, addr, b"\2")
    for t in (parent, child):
        c = counts(t)
        assert (c["Shared_Dirty"], c["Private_Dirty"], c["Pss"]) == (12, 4, 10)


def test_maps_lines_have_the_hosts_layout(scene: Scene) -> None:
    """start-end perms offset dev inode, and a name at column 73 (seq_pad)."""
    model = scene.k.proc(f"/proc/{scene.parent.pid}/maps").splitlines()
    host = capture("parent-maps.txt").splitlines()
    pattern = re.compile(r"[0-9a-f]{8,}-[0-9a-f]{8,} [r-][w-][x-][ps] [0-9a-f]{8} [0-9a-f]{2}:[0-9a-f]{2} \d+ ")
    for line in model + host:
        assert pattern.match(line), line
        rest = line[pattern.match(line).end():]  # type: ignore[union-attr]
        if rest:
            assert len(line) - len(rest.lstrip()) == 73 or len(pattern.match(line).group()) >= 73, line  # type: ignore[union-attr]
    assert any(line.endswith("[stack]") for line in model)


def test_smaps_rollup_has_the_hosts_lines_and_sums_the_vmas(scene: Scene) -> None:
    k, p = scene.k, scene.parent
    model = k.proc(f"/proc/{p.pid}/smaps_rollup")
    host = capture("parent-smaps_rollup.txt")
    assert model.splitlines()[0].endswith("[rollup]") and model.splitlines()[0].index("[rollup]") == 73
    assert host.splitlines()[0].index("[rollup]") == 73
    assert labels(model)[1:] == [x for x in labels(host)[1:] if x not in HOST_ONLY]
    for m in model.splitlines()[1:]:
        h = next(line for line in host.splitlines() if line.split(":")[0] == m.split(":")[0])
        if m.split(":")[0] not in FORMAT_CHANGED:
            assert shape(m) == shape(h)
    rollup = {line.split(":")[0]: int(line.split()[1]) for line in model.splitlines()[1:]}
    per_vma: dict[str, int] = {}
    for line in k.proc(f"/proc/{p.pid}/smaps").splitlines():
        if line.endswith(" kB") and ":" in line:
            per_vma[line.split(":")[0]] = per_vma.get(line.split(":")[0], 0) + int(line.split()[1])
    assert rollup["Rss"] == per_vma["Rss"] == p.mm.rss_stat[1] * PAGE_SIZE // 1024
    assert rollup["Pss_Anon"] + rollup["Pss_File"] + rollup["Pss_Shmem"] == rollup["Pss"]


# --- fd, ns, task --------------------------------------------------------------------------------------


def test_ns_links_are_the_hosts_for_the_boot_namespaces(scene: Scene) -> None:
    """5.6's fixed inode numbers (ipc, uts, user, pid, cgroup, time) read exactly as on the host; net and mnt,
    allocated at boot in 5.6, only in the same form."""
    i = ids()
    pid = scene.parent.pid
    names = [key[3:] for key in i if key.startswith("ns/")]
    assert proc_listdir(scene.k, f"/proc/{pid}/ns") == names
    for name in names:
        text = proc_readlink(scene.k, f"/proc/{pid}/ns/{name}")
        if name in ("net", "mnt"):
            assert re.fullmatch(rf"{name}:\[\d+\]", text)
        else:
            assert text == i[f"ns/{name}"]


def test_fd_links_and_task_listing_have_the_hosts_form(scene: Scene) -> None:
    i = ids()
    k, p = scene.k, scene.parent
    r, w = k.pipe2(p)
    ino = p.files.fdt.fd[r].f_inode.i_ino
    assert proc_readlink(k, f"/proc/{p.pid}/fd/{r}") == proc_readlink(k, f"/proc/{p.pid}/fd/{w}") == f"pipe:[{ino}]"
    host = [v for key, v in i.items() if key.startswith("fd/")]
    assert all(re.fullmatch(r"pipe:\[\d+\]", v) for v in host) and len(set(host)) == 1
    assert proc_listdir(k, f"/proc/{p.pid}/task") == i["task"].split()
    k.close(p, r)
    k.close(p, w)


# --- the live host, where it has the tools --------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs a Linux /proc")
def test_the_live_hosts_status_has_the_models_lines_in_order(scene: Scene) -> None:
    live = [x for x in labels(Path("/proc/self/status").read_text()) if x not in HOST_ONLY]
    assert labels(scene.k.proc(f"/proc/{scene.parent.pid}/status")) == live


@pytest.mark.skipif(shutil.which("ps") is None, reason="needs procps")
@pytest.mark.parametrize("flags", ["-f", "-Lf", "-L", ""])
def test_ps_headers_are_the_live_hosts(flags: str) -> None:
    """The headers of ps -e, -eL, -ef and -eLf, byte for byte (pid_max 32768 gives the 5-wide PID columns)."""
    from forklab.views.process_list import PsOptions, proc_entries, processes, ps_render  # these tests only

    if Path("/proc/sys/kernel/pid_max").read_text().strip() != "32768":
        pytest.skip("the PID columns' width follows the host's pid_max")
    host = subprocess.run(["ps", "-e" + flags.lstrip("-")], capture_output=True, check=True, text=True).stdout
    k = Kernel()
    opts = PsOptions(every=True, threads="L" in flags, full="f" in flags)
    text, _ = ps_render(processes(proc_entries(k)), opts, None)
    assert text.splitlines()[0] == host.splitlines()[0]
