"""forklab.block (mirrors the kernel's block/)."""
