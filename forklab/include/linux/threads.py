"""Pid limits (include/linux/threads.h)."""

PID_MAX_DEFAULT = 0x8000  # include/linux/threads.h:27
PID_MAX_LIMIT = 4 * 1024 * 1024  # include/linux/threads.h:33-34 (64-bit)
