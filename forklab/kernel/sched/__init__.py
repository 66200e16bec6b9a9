"""forklab.kernel.sched (mirrors the kernel's kernel/sched/)."""
