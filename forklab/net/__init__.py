"""forklab.net (mirrors the kernel's net.)."""
