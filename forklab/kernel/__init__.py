"""forklab.kernel (mirrors the kernel's kernel.)."""
