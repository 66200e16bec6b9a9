"""forklab.kernel.cgroup (mirrors the kernel's kernel/cgroup/)."""
