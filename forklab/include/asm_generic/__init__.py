"""The headers of include/asm-generic (a Python package name cannot hold its hyphen)."""
