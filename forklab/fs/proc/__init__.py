"""forklab.fs.proc (mirrors the kernel's fs/proc/): text views of tasks."""
