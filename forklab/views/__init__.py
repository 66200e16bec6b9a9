"""Views of the model's state and trace: pictures, process listings and renderings in real tools' formats.

Nothing here changes the kernel's state; every view is computed from it.
"""
