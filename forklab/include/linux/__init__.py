"""The structs of include/linux, as slotted dataclasses whose fields keep the kernel's names."""
