"""Tracing: every step of the model can be watched, and costs almost nothing when no one listens.

A ``TraceEvent`` is an immutable record with a sequence number, so two runs with the same
inputs give byte-identical traces (``format_event``). Listeners are plain callables; the
``Kernel.trace`` method returns at once when the listener list is empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class TraceEvent:
    """One step the kernel took: ``kind`` (e.g. ``copy_files``), where in the source, and details."""

    seq: int
    kind: str
    tid: int
    source: str
    detail: str

    def format(self) -> str:
        """Render as one stable line: ``#seq [tid] kind: detail (source)``."""
        where = f" ({self.source})" if self.source else ""
        return f"#{self.seq} [{self.tid}] {self.kind}: {self.detail}{where}"


Listener = Callable[[TraceEvent], None]


class Recorder:
    """A listener that keeps every event; ``lines()`` gives the trace as text."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []

    def __call__(self, event: TraceEvent) -> None:
        self.events.append(event)

    def lines(self) -> list[str]:
        """The recorded trace, one formatted line per event."""
        return [e.format() for e in self.events]

    def kinds(self) -> list[str]:
        """The kinds of the recorded events, in order."""
        return [e.kind for e in self.events]
