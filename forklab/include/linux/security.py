"""Constants of include/linux/security.h: the LSM_UNSAFE_* reasons an exec is unsafe."""

from __future__ import annotations

LSM_UNSAFE_SHARE = 1  # include/linux/security.h:209-211
LSM_UNSAFE_PTRACE = 2
LSM_UNSAFE_NO_NEW_PRIVS = 4
