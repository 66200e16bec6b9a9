"""forklab.arch.x86.kernel (mirrors the kernel's arch/x86/kernel/)."""
