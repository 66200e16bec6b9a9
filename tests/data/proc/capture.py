"""Capture the real tools' output for tests/test_proc_formats.py (run as root on a Linux host: python3 capture.py).

A process (comm "fl-parent") with two extra threads (comm "fl-worker") and one forked child
(comm "fl-child") that shares the parent's anonymous pages copy-on-write until it writes one
page; then this script saves ps -eLf, pstree -p, and the parent's and child's /proc files.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent
libc = ctypes.CDLL(None)
PR_SET_NAME = 15


def set_comm(name: str) -> None:
    libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0)


def main() -> int:
    region = mmap.mmap(-1, 8 * mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for i in range(4):
        region[i * mmap.PAGESIZE] = 1  # four present, dirty anonymous pages
    stop = threading.Event()
    ready = threading.Barrier(3)

    def worker() -> None:
        set_comm("fl-worker")
        ready.wait()
        stop.wait()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    set_comm("fl-parent")
    ready.wait()
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        set_comm("fl-child")
        region[0] = 2  # one copy-on-write copy: private in both afterwards
        os.write(w, b"x")
        time.sleep(30)
        os._exit(0)
    os.read(r, 1)
    me = os.getpid()
    addr = ctypes.addressof(ctypes.c_char.from_buffer(region))
    saves = {
        "ps-eLf.txt": ["ps", "-eLf"],
        "pstree-p.txt": ["pstree", "-p", str(me)],
        "pstree.txt": ["pstree", str(me)],
    }
    for name, argv in saves.items():
        out = subprocess.run(argv, capture_output=True, check=True).stdout
        if name == "ps-eLf.txt":  # the header and this test's processes only
            lines = out.splitlines(keepends=True)
            out = b"".join([lines[0], *(ln for ln in lines[1:] if ln.split()[1] in (str(me).encode(), str(child).encode()))])
        (OUT / name).write_bytes(out)
    links = [f"ppid {os.getppid()}"]
    for entry in os.listdir(f"/proc/{me}/ns"):
        links.append(f"ns/{entry} {os.readlink(f'/proc/{me}/ns/{entry}')}")
    fds = os.listdir(f"/proc/{me}/fd")
    for fd in (r, w):  # the pipe's two ends (the other descriptors are the caller's)
        assert str(fd) in fds
        links.append(f"fd/{fd} {os.readlink(f'/proc/{me}/fd/{fd}')}")
    links.append("task " + " ".join(os.listdir(f"/proc/{me}/task")))
    (OUT / "links.txt").write_text("\n".join(links) + "\n")
    for who, pid in (("parent", me), ("child", child)):
        for f in ("status", "stat", "statm", "maps", "smaps", "smaps_rollup"):
            (OUT / f"{who}-{f}.txt").write_bytes(Path(f"/proc/{pid}/{f}").read_bytes())
    (OUT / "ids.txt").write_text(f"parent {me}\nchild {child}\nregion {addr:x}\n"
                                 f"threads {' '.join(str(t.native_id) for t in threads)}\n")
    os.kill(child, 9)
    os.waitpid(child, 0)
    stop.set()
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
