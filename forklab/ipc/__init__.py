"""forklab.ipc (mirrors the kernel's ipc.)."""
