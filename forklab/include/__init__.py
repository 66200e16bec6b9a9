"""Kernel data structures, one module per header of include/linux (no logic lives here)."""
