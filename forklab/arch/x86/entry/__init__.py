"""arch/x86/entry: the syscall entry and the exit work on the way back to user mode."""
