"""forklab.init (mirrors the kernel's init/)."""
