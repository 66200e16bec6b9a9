"""forklab.security (mirrors the kernel's security/)."""
