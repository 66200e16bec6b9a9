"""forklab.mm (mirrors the kernel's mm.)."""
