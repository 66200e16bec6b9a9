"""forklab.kernel.time (mirrors the kernel's kernel/time/)."""
