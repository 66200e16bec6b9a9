"""forklab.lib (mirrors the kernel's lib.)."""
