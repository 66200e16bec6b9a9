"""forklab.fs (mirrors the kernel's fs.)."""
