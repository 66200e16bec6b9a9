"""forklab.arch (mirrors the kernel's arch/)."""
