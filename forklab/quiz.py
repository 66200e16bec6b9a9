"""``forklab quiz``: OSTEP's ``cpu-api/fork.py`` process-tree homework, on the model's kernel.

Two modes share one output layout (the ``ARG`` header, ``Action:`` lines, the trees):

* ``mode="linux"`` (the default) runs every action on a fresh ``forklab.Kernel``: a fork is
  ``k.fork``, an exit is ``k.exit`` (the kernel's ``do_exit``, whose ``forget_original_parent``
  hands the orphans to the nearest child subreaper, else to init), a wait is ``k.wait4``. The
  tree printed after each action is read from the kernel's task list (``children`` and
  ``real_parent``), rooted at init: an exited process stays in it as ``NAME <defunct>`` (a
  zombie) until its parent waits for it. init reaps its own zombie children at once, as every
  init does.
* ``mode="ostep"`` is fork.py's own model: an orphan moves to the root process, or with
  ``local_reparent`` to the exiting process's parent, and an exit leaves no zombie. Its output
  is fork.py's byte for byte for the same seed and options (``tests/data/ostep_fork/``).

The random actions are fork.py's: the same ``random.Random`` draws in the same order, so a
seed gives the same actions in both modes (while ``wait_percentage`` is 0).
"""

from __future__ import annotations

import math
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from forklab.errors import InternalError, KernelError
from forklab.include.linux.sched import Task, TaskState
from forklab.syscalls import Kernel
from forklab.uapi import PR_SET_CHILD_SUBREAPER, WNOHANG

PRINT_STYLES = ("basic", "line1", "line2", "fancy")
MODES = ("linux", "ostep")
ROOT_NAME = "a"
INIT_NAME = "init"
ZOMBIE_MARK = " <defunct>"
MIN_FORK_PERCENTAGE = 0.001  # fork.py refuses a fork percentage at or below this
NODE_INDENT = " " * 31  # every tree line starts here
TITLE_INDENT = " " * 27  # "Process Tree:" above the first tree
FINAL_INDENT = " " * 24  # "Final Process Tree" above the last one
NAME_SEPARATORS = "+-<,"  # what an action string uses between names (linux mode forbids them in names)

# The connector characters of each style: vertical, horizontal, tee (a child with later siblings), corner (the last).
STYLE_CHARS = {
    "line1": ("|", "-", "+", "|"),
    "line2": ("|", "_", "|", "|"),
    "fancy": ("\u2502", "\u2500", "\u251c", "\u2514"),
}


class QuizError(ValueError):
    """An option or an action the quiz cannot use; its message is one line."""


@dataclass(frozen=True, slots=True)
class QuizOptions:
    """fork.py's options under its ``dest`` names, and the Linux mode's own."""

    seed: int = -1
    fork_percentage: float = 0.7
    actions: int = 5
    action_list: str = ""
    show_tree: bool = False
    just_final: bool = False
    leaf_only: bool = False
    local_reparent: bool = False
    print_style: str = "fancy"
    solve: bool = False
    mode: str = "linux"
    wait_percentage: float = 0.0
    subreapers: tuple[str, ...] = ()
    show_pids: bool = False


# --- actions --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fork:
    """``parent+child``: ``parent`` forks a new process named ``child``."""

    parent: str
    child: str


@dataclass(frozen=True, slots=True)
class Exit:
    """``name-``: the process exits."""

    name: str


@dataclass(frozen=True, slots=True)
class Wait:
    """``name<`` (any child) or ``name<child`` (linux mode): wait4 with WNOHANG."""

    name: str
    child: str = ""


Action = Fork | Exit | Wait


def bad_quiz_action(text: str) -> QuizError:
    """fork.py's message for an action it cannot parse or run."""
    return QuizError(f"bad action ({text}), must be X+Y or X- where X and Y are processes")


def parse_quiz_action(text: str, mode: str) -> Action:
    """One action of an ``-A`` list, split as fork.py splits it (``+`` first, then ``-``; ``<`` in linux mode)."""
    for mark in ("+", "-", "<"):
        if mark not in text or (mark == "<" and mode != "linux"):
            continue
        parts = text.split(mark)
        if len(parts) != 2:
            raise bad_quiz_action(text)
        if mark == "+":
            return Fork(parts[0], parts[1])
        return Exit(parts[0]) if mark == "-" else Wait(parts[0], parts[1])
    raise bad_quiz_action(text)


class NameSource:
    """fork.py's process names: ``b`` .. ``z``, ``A`` .. ``Z``, then every two-letter name, and so on."""

    __slots__ = ("base", "current", "index")

    def __init__(self) -> None:
        self.base = string.ascii_lowercase + string.ascii_uppercase
        self.current: list[str] = list(self.base)
        self.index = 1  # "a" is the root

    def next_name(self) -> str:
        """The next unused name, growing the names by one letter when they run out."""
        if self.index == len(self.current):
            self.current = [head + tail for head in self.current for tail in self.base]
            self.index = 0
        name = self.current[self.index]
        self.index += 1
        return name


class ForkPyRandom:
    """fork.py's random helpers over one seeded ``random.Random``: ``randint`` and ``choice`` by ``random()``."""

    __slots__ = ("rng",)

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def random(self) -> float:
        """The next float in [0, 1)."""
        return self.rng.random()

    def randint(self, low: int, high: int) -> int:
        """An int in [low, high] from one ``random()`` draw, truncated as fork.py truncates it."""
        return int(low + self.rng.random() * (high - low + 1))

    def choice(self, items: list[str]) -> str:
        """One item, by ``randint`` over its indices."""
        return items[self.randint(0, len(items) - 1)]


class ActionDrawer:
    """fork.py's random actions, drawn one at a time with exactly fork.py's draws.

    fork.py keeps its own list of processes for the drawing: a drawn exit leaves it even if the
    exit then fails (``leaf_only``), and the root is never drawn to exit.
    """

    __slots__ = ("fork_percentage", "live", "names", "rand")

    def __init__(self, rand: ForkPyRandom, fork_percentage: float) -> None:
        self.rand = rand
        self.fork_percentage = fork_percentage
        self.names = NameSource()
        self.live = [ROOT_NAME]

    def draw(self) -> Action:
        """The next fork or exit; a draw of the root to exit is thrown away and drawn again."""
        while True:
            if self.rand.random() < self.fork_percentage:
                parent = self.rand.choice(self.live)
                child = self.names.next_name()
                self.live.append(child)
                return Fork(parent, child)
            victim = self.rand.choice(self.live)
            if victim != ROOT_NAME:
                self.live.remove(victim)
                return Exit(victim)


# --- trees ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class TreeWalk:
    """One rendering of a tree in fork.py's layout: the node labels, how to find children, the style."""

    label: Callable[[object], str]
    children: Callable[[object], list[object]]
    style: str
    lines: list[str] = field(default_factory=list)

    def walk(self, node: object, level: int, mask: dict[int, bool], is_last: bool) -> None:
        """Append ``node``'s line, then its subtree's; ``mask[i]`` says level ``i`` still has a sibling below."""
        if self.style == "basic":
            self.lines.append(NODE_INDENT + "   " * level + f"{self.label(node):>2}")
            for child in self.children(node):
                self.walk(child, level + 1, {}, False)
            return
        self.lines.append(NODE_INDENT + self.prefix(level, mask, is_last) + self.label(node))
        if is_last:
            mask[level - 1] = False
        mask[level] = True
        kids = self.children(node)
        for i, child in enumerate(kids):
            self.walk(child, level + 1, mask, i == len(kids) - 1)

    def prefix(self, level: int, mask: dict[int, bool], is_last: bool) -> str:
        """The verticals of the open ancestors, then this node's connector."""
        if level == 0:
            return ""
        vertical, horizontal, tee, corner = STYLE_CHARS[self.style]
        out = "".join(f"{vertical}   " if mask.get(i, False) else "    " for i in range(level - 1))
        if not mask.get(level - 1, False):
            return out + f" {horizontal * 3} "
        return out + f"{corner if is_last else tee}{horizontal * 2} "


def render_quiz_tree(root: object, label: Callable[[object], str], children: Callable[[object], list[object]],
                style: str) -> list[str]:
    """The lines of the tree under ``root`` in one of PRINT_STYLES."""
    tree = TreeWalk(label, children, style)
    tree.walk(root, 0, {}, False)
    return tree.lines


# --- the two worlds -------------------------------------------------------------------------------


class World(Protocol):
    """What the quiz runs its actions on: fork.py's tables or the model's kernel."""

    def apply(self, action: Action, text: str) -> str:
        """Run one action (``text`` as the user wrote it); return what ``Action:`` says about it."""

    def tree(self, style: str) -> list[str]:
        """The current process tree."""

    def waiters(self) -> list[str]:
        """Running processes that have a zombie child to reap, in a fixed order."""


class OstepWorld:
    """fork.py's process tables: children lists and parents by name, no zombies."""

    __slots__ = ("children", "leaf_only", "local_reparent", "parents", "process_list")

    def __init__(self, local_reparent: bool, leaf_only: bool) -> None:
        self.local_reparent = local_reparent
        self.leaf_only = leaf_only
        self.process_list = [ROOT_NAME]
        self.children: dict[str, list[str]] = {ROOT_NAME: []}
        self.parents: dict[str, str] = {}

    def apply(self, action: Action, text: str) -> str:
        """Fork or exit as fork.py does; anything else is a bad action."""
        if isinstance(action, Fork):
            return self.fork(action, text)
        if isinstance(action, Exit):
            return self.exit(action, text)
        raise bad_quiz_action(text)

    def fork(self, action: Fork, text: str) -> str:
        """Add the child at the end of its parent's children."""
        if action.parent not in self.process_list:
            raise bad_quiz_action(text)
        if not action.child or action.child in self.process_list:
            raise QuizError(f"bad action ({text}): a new process needs a name no running process has")
        self.process_list.append(action.child)
        self.children[action.child] = []
        self.children[action.parent].append(action.child)
        self.parents[action.child] = action.parent
        return f"{action.parent} forks {action.child}"

    def exit(self, action: Exit, text: str) -> str:
        """Remove the process; its orphans go to the root (all descendants, flattened) or to its parent."""
        name = action.name
        if name not in self.process_list:
            raise bad_quiz_action(text)
        if self.leaf_only and self.children[name]:
            return f"{name} EXITS (failed: has children)"
        if name == ROOT_NAME:
            raise QuizError("root process: cannot exit")
        parent = self.parents.pop(name)
        self.process_list.remove(name)
        if self.local_reparent:
            orphans = self.children[name]
            adopter = parent
        else:
            orphans = list(self.descendants(name))
            adopter = ROOT_NAME
            for orphan in orphans:
                self.children[orphan] = []
        for orphan in orphans:
            self.parents[orphan] = adopter
            self.children[adopter].append(orphan)
        self.children[parent].remove(name)
        del self.children[name]
        return f"{name} EXITS"

    def descendants(self, name: str) -> Iterator[str]:
        """Every descendant, depth first, each before its children."""
        for child in self.children[name]:
            yield child
            yield from self.descendants(child)

    def tree(self, style: str) -> list[str]:
        """The tree from the root process."""
        return render_quiz_tree(ROOT_NAME, str, lambda n: list(self.children[str(n)]), style)

    def waiters(self) -> list[str]:
        """fork.py has no zombies, so nobody has one to reap."""
        return []


class LinuxWorld:
    """The processes as tasks of a fresh model kernel: init, then the root process ``a`` forked from it."""

    __slots__ = ("all_subreapers", "k", "leaf_only", "names", "show_pids", "subreapers")

    def __init__(self, leaf_only: bool, all_subreapers: bool, subreapers: tuple[str, ...],
                 show_pids: bool = False) -> None:
        self.k = Kernel()
        self.names: dict[int, str] = {self.k.init_task.pid: INIT_NAME}
        self.leaf_only = leaf_only
        self.all_subreapers = all_subreapers
        self.subreapers = set(subreapers)
        self.show_pids = show_pids
        self.spawn(self.k.init_task, ROOT_NAME)

    def spawn(self, parent: Task, name: str) -> Task:
        """fork(2) as ``parent``; name the child, and make it a child subreaper if asked."""
        child = self.k.find_task(self.k.fork(parent))
        self.names[child.pid] = name
        if self.all_subreapers or name in self.subreapers:
            self.k.prctl(child, PR_SET_CHILD_SUBREAPER, 1)
        return child

    def find(self, name: str) -> Task | None:
        """The task (running or zombie) with this name, if the kernel still has it."""
        for task in self.k.all_threads():
            if self.names.get(task.pid) == name:
                return task
        return None

    def running(self, name: str, text: str) -> Task:
        """The running task with this name; a bad action if there is none."""
        task = self.find(name) if name != INIT_NAME else None
        if task is None or task.exit_state:
            raise bad_quiz_action(text)
        return task

    def apply(self, action: Action, text: str) -> str:
        """Run the action's syscall, then let init reap its zombie children as init does."""
        if isinstance(action, Fork):
            said = self.fork(action, text)
        elif isinstance(action, Exit):
            said = self.exit(action, text)
        else:
            said = self.wait(action, text)
        self.init_reaps()
        return said

    def fork(self, action: Fork, text: str) -> str:
        """``k.fork`` as the parent; the kernel adds the child at the end of its children."""
        parent = self.running(action.parent, text)
        bad = not action.child or action.child == INIT_NAME or any(c in NAME_SEPARATORS for c in action.child)
        if bad or self.find(action.child) is not None:
            raise QuizError(f"bad action ({text}): a new process needs a name no process in the tree has")
        try:
            self.spawn(parent, action.child)
        except KernelError as e:  # EAGAIN at pid_max or threads_max: the fork's own answer
            raise QuizError(f"{text}: fork failed: {e}") from None
        return f"{action.parent} forks {action.child}"

    def exit(self, action: Exit, text: str) -> str:
        """``k.exit``: the task becomes a zombie and the kernel reparents its children."""
        task = self.running(action.name, text)
        if self.leaf_only and task.children:
            return f"{action.name} EXITS (failed: has children)"
        self.k.exit(task, 0)
        return f"{action.name} EXITS"

    def wait(self, action: Wait, text: str) -> str:
        """``k.wait4(pid or -1, WNOHANG)``: say whom it reaped, or why nobody."""
        task = self.running(action.name, text)
        pid = -1
        if action.child:
            child = self.find(action.child)
            if child is None:
                raise bad_quiz_action(text)
            pid = child.pid
        try:
            reaped, _ = self.k.wait4(task, pid, WNOHANG)
        except KernelError as e:
            return f"{action.name} waits: {e.strerror}"
        if reaped == 0:
            return f"{action.name} waits: no child has exited yet"
        return f"{action.name} waits and reaps {self.names.pop(reaped)}"

    def init_reaps(self) -> None:
        """init waits for every zombie child it has, at once."""
        init = self.k.init_task
        while any(c.exit_state == TaskState.EXIT_ZOMBIE for c in init.children):
            reaped, _ = self.k.wait4(init, -1, WNOHANG)
            if self.names.pop(reaped, None) is None:
                raise InternalError(f"init's wait4 returned {reaped}, not one of its zombie children")

    def label(self, node: object) -> str:
        """A task's name, with ``(pid)`` as ``pstree -p`` shows it if asked, marked when it is a zombie."""
        assert isinstance(node, Task)
        name = self.names[node.pid] + (f"({node.pid})" if self.show_pids else "")
        return name + ZOMBIE_MARK if node.exit_state == TaskState.EXIT_ZOMBIE else name

    def tree(self, style: str) -> list[str]:
        """The tree from init, read from each task's ``children`` list."""
        return render_quiz_tree(self.k.init_task, self.label, self.children_of, style)

    @staticmethod
    def children_of(node: object) -> list[object]:
        """A task's ``children`` list, in the kernel's order (the newest, and the latest adopted, last)."""
        return list(node.children) if isinstance(node, Task) else []

    def waiters(self) -> list[str]:
        """Named running tasks with a zombie child, in task-list order."""
        out: list[str] = []
        for task in self.k.all_threads():
            if task is self.k.init_task or task.exit_state or task.pid not in self.names:
                continue
            if any(c.exit_state == TaskState.EXIT_ZOMBIE for c in task.children):
                out.append(self.names[task.pid])
        return out


# --- the quiz -------------------------------------------------------------------------------------


def optparse_int(option: str, text: str) -> int:
    """An int option as fork.py's optparse reads it: ``0x`` hex, ``0b`` binary, a leading ``0`` octal, else decimal."""
    radix, digits = 10, text
    if text[:2].lower() == "0x":
        radix = 16
    elif text[:2].lower() == "0b":
        radix, digits = 2, text[2:] or "0"
    elif text[:1] == "0":
        radix = 8
    try:
        return int(digits, radix)
    except ValueError:
        raise QuizError(f"option {option}: invalid integer value: {text!r}") from None


def optparse_float(option: str, text: str) -> float:
    """A float option as optparse reads it (``float()``); NaN is refused, since no draw is ever below it."""
    try:
        value = float(text)
    except ValueError:
        raise QuizError(f"option {option}: invalid floating-point value: {text!r}") from None
    if math.isnan(value):
        raise QuizError(f"option {option}: invalid floating-point value: {text!r}")
    return value


def subreaper_names(text: str) -> tuple[str, ...]:
    """``a,c`` to the names that become child subreapers; each must be a process name an action could use."""
    names = tuple(n for n in text.split(",") if n) if text else ()
    for name in names:
        if name == INIT_NAME or any(c in NAME_SEPARATORS for c in name):
            raise QuizError(f"--subreaper: {name!r} is not a process name")
    return names


def check_quiz_options(opts: QuizOptions) -> None:
    """Reject what fork.py rejects (a fork percentage <= 0.001) and what would make no quiz at all."""
    if opts.mode not in MODES:
        raise QuizError(f"mode must be one of {', '.join(MODES)}, not {opts.mode!r}")
    if math.isnan(opts.fork_percentage) or opts.fork_percentage <= MIN_FORK_PERCENTAGE:
        raise QuizError(f"fork_percentage must be > {MIN_FORK_PERCENTAGE}")
    if opts.print_style not in PRINT_STYLES:
        raise QuizError(f"bad style {opts.print_style} (use {', '.join(PRINT_STYLES)})")
    if math.isnan(opts.wait_percentage) or not 0 <= opts.wait_percentage < 1:
        raise QuizError(f"wait_percentage must be in [0, 1), not {opts.wait_percentage}")
    if opts.mode == "ostep" and (opts.wait_percentage or opts.subreapers or opts.show_pids):
        raise QuizError("fork.py has no waits, subreapers or pids: drop --ostep or those options")


def quiz_header(opts: QuizOptions) -> list[str]:
    """The ``ARG`` lines fork.py prints first; linux mode adds its own."""
    lines = ["", f"ARG seed {opts.seed}", f"ARG fork_percentage {opts.fork_percentage}",
             f"ARG actions {opts.actions}", f"ARG action_list {opts.action_list}", f"ARG show_tree {opts.show_tree}",
             f"ARG just_final {opts.just_final}", f"ARG leaf_only {opts.leaf_only}",
             f"ARG local_reparent {opts.local_reparent}", f"ARG print_style {opts.print_style}",
             f"ARG solve {opts.solve}"]
    if opts.mode == "linux":
        lines += ["ARG mode linux", f"ARG wait_percentage {opts.wait_percentage}",
                  f"ARG subreapers {','.join(opts.subreapers)}", f"ARG show_pids {opts.show_pids}"]
    return [*lines, ""]


def quiz_world_for(opts: QuizOptions) -> World:
    """fork.py's tables for ``ostep``; a fresh kernel for ``linux`` (``local_reparent``: every process a subreaper)."""
    if opts.mode == "ostep":
        return OstepWorld(opts.local_reparent, opts.leaf_only)
    return LinuxWorld(opts.leaf_only, opts.local_reparent, opts.subreapers, opts.show_pids)


def quiz_actions(opts: QuizOptions, world: World) -> Iterator[tuple[Action, str]]:
    """The given ``-A`` actions, or ``opts.actions`` random ones; each with its text."""
    if opts.action_list:
        for text in opts.action_list.split(","):
            yield parse_quiz_action(text, opts.mode), text
        return
    rand = ForkPyRandom(opts.seed)
    drawer = ActionDrawer(rand, opts.fork_percentage)
    for _ in range(opts.actions):
        waiters = world.waiters() if opts.wait_percentage else []
        if opts.wait_percentage and rand.random() < opts.wait_percentage and waiters:
            name = rand.choice(waiters)
            yield Wait(name), f"{name}<"
        else:
            action = drawer.draw()
            yield action, quiz_action_text(action)


def quiz_action_text(action: Action) -> str:
    """An action as an ``-A`` list spells it."""
    if isinstance(action, Fork):
        return f"{action.parent}+{action.child}"
    if isinstance(action, Exit):
        return f"{action.name}-"
    return f"{action.name}<{action.child}"


def quiz_step_lines(opts: QuizOptions, said: str, tree: Callable[[], list[str]]) -> list[str]:
    """What one action prints: the action or ``Action?``, then the tree or ``Process Tree?``."""
    if opts.show_tree:
        out = [f"Action: {said}" if opts.solve else "Action?"]
        return out if opts.just_final else out + tree()
    out = [f"Action: {said}"]
    if opts.just_final:
        return out
    return out + (tree() if opts.solve else ["Process Tree?"])


def quiz_final_lines(opts: QuizOptions, tree: list[str]) -> list[str]:
    """With ``just_final``: the final tree (shown with ``show_tree`` or ``solve``), else the question."""
    if not opts.just_final:
        return []
    if opts.show_tree or opts.solve:
        return ["", FINAL_INDENT + "Final Process Tree:", *tree, ""]
    return ["", FINAL_INDENT + "Final Process Tree?", ""]


def quiz(opts: QuizOptions) -> str:
    """The whole quiz's output; raises QuizError (one line) for an option or action it cannot use."""
    check_quiz_options(opts)
    world = quiz_world_for(opts)
    lines = [*quiz_header(opts), TITLE_INDENT + "Process Tree:", *world.tree(opts.print_style), ""]
    for action, text in quiz_actions(opts, world):
        said = world.apply(action, text)
        lines += quiz_step_lines(opts, said, lambda: world.tree(opts.print_style))
    lines += quiz_final_lines(opts, world.tree(opts.print_style))
    return "\n".join(lines) + "\n"
