"""forklab.arch.x86 (mirrors the kernel's arch/x86/)."""
