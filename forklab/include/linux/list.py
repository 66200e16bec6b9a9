"""Long kernel lists of tasks in O(1) form: struct list_head and struct hlist_head (include/linux/types.h:176-186).

The kernel links a task into its lists through nodes inside the task: list_add_tail (the task list,
a runqueue) and hlist_add_head (a pid's tasks) are O(1), and so is list_del / hlist_del. A walk meets
a list_head's entries oldest first and an hlist_head's newest first.

NOTE: the model's lists are plain Python lists (the plain picture of the kernel's list) while they are
short. Once one reaches ``LONG_LIST`` entries, its adder (attach_pid, copy_process, activate_task)
turns it into a ``ListHead`` or ``HlistHead``: a dict keyed by the entry in the order of the adds,
walked forward or in reverse, so a session of a million processes or a million-task runqueue adds
and unlinks in O(1) instead of moving a million pointers each time. Both forms give the same walk,
the same first entry and the same equality with a list; only their cost differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSequence
from typing import ClassVar, TypeVar, overload

from forklab.errors import InternalError

T = TypeVar("T")

LONG_LIST = 64  # entries from which a list of tasks takes its dict form


class _LinkedEntries(MutableSequence[T]):
    """Entries kept in a dict in the order they were added; ``HEAD_FIRST`` walks that order in reverse."""

    __slots__ = ("_nodes",)
    HEAD_FIRST: ClassVar[bool] = False

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._nodes: dict[T, None] = self._ordered(list(items))

    def _ordered(self, walk: list[T]) -> dict[T, None]:
        """The dict whose add order gives ``walk``."""
        return dict.fromkeys(reversed(walk) if self.HEAD_FIRST else walk)

    def __iter__(self) -> Iterator[T]:
        return reversed(self._nodes) if self.HEAD_FIRST else iter(self._nodes)

    def __reversed__(self) -> Iterator[T]:
        return iter(self._nodes) if self.HEAD_FIRST else reversed(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __bool__(self) -> bool:
        return bool(self._nodes)

    def __contains__(self, value: object) -> bool:
        try:
            return value in self._nodes
        except TypeError:  # an unhashable value is on no list of tasks
            return False

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> MutableSequence[T]: ...

    def __getitem__(self, index: int | slice) -> T | MutableSequence[T]:
        if index == 0 and self._nodes:
            return next(iter(self))  # list_first_entry / hlist_first
        if index == -1 and self._nodes:
            return next(reversed(self))
        return list(self)[index]

    @overload
    def __setitem__(self, index: int, value: T) -> None: ...

    @overload
    def __setitem__(self, index: slice, value: Iterable[T]) -> None: ...

    def __setitem__(self, index: int | slice, value: T | Iterable[T]) -> None:
        """Replace in place, as list_replace_rcu / hlist_replace_rcu (de_thread) do."""
        walk = list(self)
        walk[index] = value  # type: ignore[index, assignment]
        self._nodes = self._ordered(walk)

    def __delitem__(self, index: int | slice) -> None:
        walk = list(self)
        del walk[index]
        self._nodes = self._ordered(walk)

    def insert(self, index: int, value: T) -> None:
        """Add ``value`` before position ``index``: O(1) at the end the kernel adds at, else a rebuild."""
        if value in self._nodes:
            raise InternalError(f"list add: {value!r} is already on this list")
        if index == (0 if self.HEAD_FIRST else len(self._nodes)):
            self._nodes[value] = None
            return
        walk = list(self)
        walk.insert(index, value)
        self._nodes = self._ordered(walk)

    def append(self, value: T) -> None:
        """Add ``value`` at the end of the walk."""
        self.insert(len(self._nodes), value)

    def remove(self, value: T) -> None:
        """list_del / hlist_del, in O(1); ValueError when ``value`` is not on the list, as list.remove."""
        if value not in self._nodes:
            raise ValueError(f"{value!r} is not on this list")
        del self._nodes[value]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _LinkedEntries | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list

    def __repr__(self) -> str:
        return repr(list(self))

    def snapshot_state(self) -> list[T]:
        """The walk, for forklab.debug's snapshots."""
        return list(self)


class ListHead(_LinkedEntries[T]):
    """A long list_head of tasks (the task list, a runqueue): added at the tail, walked oldest first."""

    __slots__ = ()


class HlistHead(_LinkedEntries[T]):
    """A long hlist_head of tasks (a pid's tasks of one type): added at the head, walked newest first."""

    __slots__ = ()
    HEAD_FIRST = True


def long_list(entries: MutableSequence[T], kind: type[_LinkedEntries[T]]) -> MutableSequence[T]:
    """``entries`` itself while short, else its O(1) form ``kind`` (the same walk); see the module docstring."""
    if len(entries) >= LONG_LIST and isinstance(entries, list):
        return kind(entries)
    return entries
