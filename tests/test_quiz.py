"""``forklab quiz``: fork.py's output byte for byte with --ostep, and Linux's process tree from the model by default.

The --ostep cases are recordings of OSTEP's cpu-api/fork.py itself (tests/data/ostep_fork/README.md).
The Linux-mode trees are checked against the kernel's own parent links: every task the model
has (running or zombie) is printed exactly once, under its ``real_parent``.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from forklab.cli import app
from forklab.include.linux.sched import TaskState
from forklab.quiz import (
    INIT_NAME,
    NODE_INDENT,
    PRINT_STYLES,
    ZOMBIE_MARK,
    ActionDrawer,
    Exit,
    ForkPyRandom,
    LinuxWorld,
    QuizError,
    QuizOptions,
    Wait,
    parse_quiz_action,
    quiz,
    quiz_action_text,
    quiz_actions,
)

DATA = Path(__file__).parent / "data" / "ostep_fork"
RECORDINGS = sorted(DATA.glob("*.json"))


def load(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def run_quiz(*args: str) -> Result:
    return CliRunner().invoke(app, ["quiz", *args], env={"COLUMNS": "200"})


def one_line_error(result: Result) -> str:
    """The single stderr line of a rejected quiz: status 2, nothing on stdout, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("forklab quiz: ")
    return result.stderr


# --- --ostep: fork.py's recorded outputs ------------------------------------------------------------


def test_recordings_cover_every_option() -> None:
    argvs = [" ".join(str(a) for a in load(p)["argv"]) for p in RECORDINGS]  # type: ignore[attr-defined]
    ok = [a for p, a in zip(RECORDINGS, argvs, strict=True) if load(p)["returncode"] == 0]
    assert len(ok) >= 25
    joined = " ".join(ok)
    for option in ("-s", "-f", "-a", "-A", "-t", "-F", "-L", "-R", "-c", "-P basic", "-P line1", "-P line2"):
        assert option in joined, option
    assert any("-P" not in a and "--print_style" not in a for a in ok)  # the default style, fancy


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_ostep_mode_reproduces_fork_py(path: Path) -> None:
    """Same argv, same stdout byte for byte; where fork.py rejects the input, one line naming its reason."""
    case = load(path)
    argv, stdout, code = case["argv"], case["stdout"], case["returncode"]
    assert isinstance(argv, list) and isinstance(stdout, str)
    result = run_quiz("--ostep", *argv)
    if code == 0:
        assert result.exit_code == 0, result.stderr
        assert result.stdout_bytes == stdout.encode("utf-8")
    else:
        assert stdout.strip().splitlines()[-1].strip() in one_line_error(result)


def asked(stdout: str) -> list[str]:
    """The actions a quiz asks about; whether an exit fails under -L is part of the answer, not the question."""
    return [ln.split(" (failed: has children)")[0] for ln in stdout.splitlines() if ln.startswith("Action")]


def fork_py_grid(n: int) -> list[list[str]]:
    """``n`` seeded argv combinations over every fork.py option, the same ones each run."""
    rng = random.Random(2026)
    out = []
    for i in range(n):
        argv = ["-s", str(rng.randrange(1000)), "-a", str(rng.randrange(25)), "-f", rng.choice(["0.2", "0.5", "0.7", "1"])]
        argv += [flag for flag in ("-t", "-F", "-L", "-R", "-c") if rng.random() < 0.5]
        argv += ["-P", PRINT_STYLES[i % len(PRINT_STYLES)]]
        out.append(argv)
    return out


def test_ostep_mode_against_a_live_fork_py() -> None:
    """With FORKLAB_FORK_PY naming a copy of OSTEP's fork.py, 200 more seeded combinations match it byte for byte."""
    script = os.environ.get("FORKLAB_FORK_PY", "")
    if not script or not Path(script).is_file():
        pytest.skip("set FORKLAB_FORK_PY to OSTEP's cpu-api/fork.py to compare with it live")
    for argv in fork_py_grid(200):
        real = subprocess.run([sys.executable, script, *argv], capture_output=True, check=False)
        assert real.returncode == 0, argv
        ours = run_quiz("--ostep", *argv)
        assert ours.stdout_bytes == real.stdout, argv


def test_linux_mode_draws_fork_py_actions() -> None:
    """Without waits, a seed gives fork.py's actions in Linux mode too; only the trees differ."""
    checked = 0
    for path in RECORDINGS:
        case = load(path)
        argv = case["argv"]
        assert isinstance(argv, list) and isinstance(case["stdout"], str)
        if case["returncode"] != 0 or "-A" in argv or "-t" in argv:
            continue
        linux = run_quiz(*argv)
        assert linux.exit_code == 0, linux.stderr
        want = asked(case["stdout"])
        assert asked(linux.stdout) == want
        checked += 1
    assert checked >= 15


# --- Linux mode: the printed tree is the kernel's ---------------------------------------------------


def parse_tree(lines: list[str]) -> list[tuple[str, str]]:
    """(parent label, child label) for each printed node under another, from a line-style tree."""
    edges: list[tuple[str, str]] = []
    stack: list[str] = []
    for line in lines:
        assert line.startswith(NODE_INDENT)
        body = line[len(NODE_INDENT):]
        label = body.lstrip(" │├└─|+-_")
        level = (len(body) - len(label)) // 4
        del stack[level:]
        if stack:
            edges.append((stack[-1], label))
        stack.append(label)
    return edges


def kernel_edges(world: LinuxWorld) -> list[tuple[str, str]]:
    """(real_parent's label, label) for every task under init, read from the tasks themselves."""
    out: list[tuple[str, str]] = []
    for task in world.k.all_threads():
        if task is world.k.init_task or task is world.k.idle_task:
            continue
        assert task.real_parent is not None
        out.append((world.label(task.real_parent), world.label(task)))
    return out


def assert_tree_is_kernel(world: LinuxWorld, style: str) -> list[tuple[str, str]]:
    printed = parse_tree(world.tree(style))
    assert sorted(printed) == sorted(kernel_edges(world))
    assert len({child for _, child in printed}) == len(printed)  # each task once
    return printed


@pytest.mark.parametrize("seed", range(8))
def test_every_printed_tree_is_the_kernels_parent_links(seed: int) -> None:
    """Random forks, exits and waits, some subreapers: after each action the tree is real_parent's picture."""
    opts = QuizOptions(seed=seed, actions=25, fork_percentage=0.6, wait_percentage=0.25,
                       local_reparent=seed % 4 == 1, subreapers=("b", "d") if seed % 2 else ())
    world = LinuxWorld(opts.leaf_only, opts.local_reparent, opts.subreapers)
    style = ("fancy", "line1", "line2")[seed % 3]
    saw_zombie = saw_reap = False
    for action, text in quiz_actions(opts, world):
        said = world.apply(action, text)
        saw_reap |= "reaps" in said
        printed = assert_tree_is_kernel(world, style)
        zombies = [t for t in world.k.all_threads() if t.exit_state == TaskState.EXIT_ZOMBIE]
        assert sum(child.endswith(ZOMBIE_MARK) for _, child in printed) == len(zombies)
        assert all(t.real_parent is not world.k.init_task for t in zombies)  # init reaps at once
        saw_zombie |= bool(zombies)
    world.k.check_invariants()
    assert saw_zombie


def test_basic_style_indents_by_kernel_depth() -> None:
    world = LinuxWorld(False, False, ())
    for text in ["a+b", "b+c", "c+d", "b-"]:
        world.apply(parse_quiz_action(text, "linux"), text)
    depth = {}
    for line in world.tree("basic"):
        body = line[len(NODE_INDENT):]
        label = body.strip()
        depth[label] = (len(body) - len(body.lstrip()) - max(0, 2 - len(label))) // 3
    for task in world.k.all_threads():
        if task is world.k.idle_task:
            continue
        d, t = 0, task
        while t is not world.k.init_task:
            assert t.real_parent is not None
            d, t = d + 1, t.real_parent
        assert depth[world.label(task)] == d


def quiz_world(action_list: str, *, local_reparent: bool = False, leaf_only: bool = False,
               subreapers: tuple[str, ...] = ()) -> tuple[LinuxWorld, list[str]]:
    world = LinuxWorld(leaf_only, local_reparent, subreapers)
    said = [world.apply(parse_quiz_action(t, "linux"), t) for t in action_list.split(",")]
    assert_tree_is_kernel(world, "fancy")
    return world, said


def parent_of(world: LinuxWorld, name: str) -> str:
    task = world.find(name)
    assert task is not None and task.real_parent is not None
    return world.names[task.real_parent.pid]


def final_edges(*args: str) -> list[tuple[str, str]]:
    result = run_quiz("-c", "-F", *args)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index(" " * 24 + "Final Process Tree:") + 1
    return parse_tree(lines[start:-1])


def test_an_orphan_goes_to_init_in_linux_and_to_the_root_in_fork_py() -> None:
    world, _ = quiz_world("a+b,b+c,b-")
    assert parent_of(world, "c") == INIT_NAME
    b = world.find("b")
    assert b is not None and b.exit_state == TaskState.EXIT_ZOMBIE and parent_of(world, "b") == "a"
    assert sorted(final_edges("-A", "a+b,b+c,b-")) == [("a", "b <defunct>"), ("init", "a"), ("init", "c")]
    assert sorted(final_edges("--ostep", "-A", "a+b,b+c,b-")) == [("a", "c")]


def test_a_subreaper_adopts_the_orphan() -> None:
    world, _ = quiz_world("a+b,b+c,c+d,c-", subreapers=("a",))
    assert parent_of(world, "d") == "a"
    assert world.k.init_task.children == [world.find("a")]
    assert ("a", "d") in final_edges("--subreaper", "a", "-A", "a+b,b+c,c+d,c-")


def test_local_reparent_is_every_process_a_subreaper() -> None:
    """-R: fork.py's 'to the exiting process's parent' is Linux's nearest subreaper when all are subreapers."""
    world, _ = quiz_world("a+b,b+c,c+d,d+e,c-", local_reparent=True)
    assert parent_of(world, "d") == "b" and parent_of(world, "e") == "d"
    assert all(t.signal is not None and t.signal.is_child_subreaper for t in world.k.all_threads()
               if t.pid in world.names and t is not world.k.init_task)
    ostep = final_edges("--ostep", "-R", "-A", "a+b,b+c,c+d,d+e,c-")
    assert sorted(ostep) == [("a", "b"), ("b", "d"), ("d", "e")]
    assert sorted(final_edges("-R", "-A", "a+b,b+c,c+d,d+e,c-")) == [*ostep[:1], ("b", "c <defunct>"), *ostep[1:],
                                                                      ("init", "a")]
    flat = final_edges("--ostep", "-A", "a+b,b+c,c+d,d+e,c-")  # fork.py without -R: every descendant to the root
    assert sorted(flat) == [("a", "b"), ("a", "d"), ("a", "e")]


def test_a_zombie_stays_until_its_parent_waits() -> None:
    world, said = quiz_world("a+b,b+c,c-,b<")
    assert said[-1] == "b waits and reaps c"
    assert world.find("c") is None
    world, said = quiz_world("a+b,b+c,c-")
    c = world.find("c")
    assert c is not None and c.exit_state == TaskState.EXIT_ZOMBIE
    assert ("b", "c" + ZOMBIE_MARK) in parse_tree(world.tree("fancy"))
    _, said = quiz_world("a+b,a+c,c-,a<b,a<c,a<")
    assert said[3] == "a waits: no child has exited yet"
    assert said[4] == "a waits and reaps c"
    assert said[5] == "a waits: no child has exited yet"  # b runs: WNOHANG returns 0
    _, said = quiz_world("a+b,b<")
    assert said[-1].startswith("b waits: ECHILD")


def test_init_reaps_its_children_at_once() -> None:
    world, _ = quiz_world("a+b,b+c,b-,c-,a-")
    assert world.k.init_task.children == []
    assert [t.pid for t in world.k.all_threads()] == [world.k.init_task.pid]
    assert parse_tree(world.tree("fancy")) == []


def test_leaf_only_counts_zombie_children() -> None:
    """-L: a process with children does not exit; in Linux a zombie child is still a child."""
    world, said = quiz_world("a+b,b+c,c-,b-", leaf_only=True)
    assert said[-1] == "b EXITS (failed: has children)"
    b = world.find("b")
    assert b is not None and not b.exit_state
    ostep = run_quiz("--ostep", "-L", "-c", "-A", "a+b,b+c,c-,b-")
    assert ostep.stdout.splitlines()[-2:] == ["Action: b EXITS", NODE_INDENT + "a"]


def test_random_drawer_is_fork_py_sequence() -> None:
    """The drawer's actions, spelled as -A actions, replay to the same quiz."""
    opts = QuizOptions(seed=7, actions=12, solve=True)
    drawer = ActionDrawer(ForkPyRandom(7), 0.7)
    spelled = ",".join(quiz_action_text(drawer.draw()) for _ in range(12))
    replay = quiz(QuizOptions(seed=7, action_list=spelled, solve=True))
    assert replay.split("Process Tree:", 1)[1] == quiz(opts).split("Process Tree:", 1)[1]
    assert parse_quiz_action("a-", "ostep") == Exit("a") and parse_quiz_action("b<c", "linux") == Wait("b", "c")


def test_linux_mode_is_deterministic_and_styles_all_render() -> None:
    for style in PRINT_STYLES:
        first = run_quiz("-s", "3", "-a", "15", "-w", "0.3", "-c", "-P", style)
        assert first.exit_code == 0, first.stderr
        assert first.stdout == run_quiz("-s", "3", "-a", "15", "-w", "0.3", "-c", "-P", style).stdout
        assert "ARG mode linux" in first.stdout


def test_reverse_quiz_shows_trees_and_hides_actions() -> None:
    result = run_quiz("-t", "-A", "a+b,b-")
    assert result.exit_code == 0
    assert result.stdout.count("Action?") == 2 and "forks" not in result.stdout
    assert NODE_INDENT + "    \u2514\u2500\u2500 b" + ZOMBIE_MARK in result.stdout.splitlines()


# --- the real kernel as the oracle of Linux mode ------------------------------------------------------

HOST_TREE = r'''"""Run quiz actions on the real kernel as pid 1 of a new pid namespace; print each step's tree as JSON."""
import ctypes, json, os, sys, tempfile, time

PR_SET_CHILD_SUBREAPER = 36
actions = sys.argv[1].split(",")
subreapers = set(filter(None, sys.argv[2].split(",")))
everyone = sys.argv[3] == "1"
tmp = tempfile.mkdtemp()
ack_r, ack_w = os.pipe()
names = {os.getpid(): "init"}

def fifo(name):
    return os.path.join(tmp, name)

def worker(name):
    if everyone or name in subreapers:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    cmd = open(fifo(name), "r")
    os.write(ack_w, f"{os.getpid()}\n".encode())
    for line in cmd:
        verb, _, arg = line.strip().partition(" ")
        if verb == "fork":
            if os.fork() == 0:
                worker(arg)
        elif verb == "exit":
            os._exit(0)
        else:
            try:
                got = os.waitpid(int(arg), os.WNOHANG)[0]
            except ChildProcessError:
                got = -1
            os.write(ack_w, f"{got}\n".encode())
    os._exit(0)

def ack():
    line = b""
    while not line.endswith(b"\n"):
        line += os.read(ack_r, 1)
    return int(line)

writers = {}
def start(name):
    os.mkfifo(fifo(name))
    writers[name] = os.open(fifo(name), os.O_RDWR)

def send(name, text):
    os.write(writers[name], (text + "\n").encode())

def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return rest[0], int(rest[1])
    except FileNotFoundError:
        return None

def init_reaps():
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return

def snapshot():
    out = {}
    for pid, name in names.items():
        st = state(pid)
        if st is not None and name != "init":
            out[name] = [names.get(st[1], str(st[1])), st[0] == "Z"]
    return out

def pid_of(name):
    return next(p for p, n in names.items() if n == name and state(p) is not None)

start("a")
if os.fork() == 0:
    worker("a")
names[ack()] = "a"
said = []
for text in actions:
    if "+" in text:
        parent, child = text.split("+")
        start(child)
        send(parent, f"fork {child}")
        names[ack()] = child
    elif "-" in text:
        pid = pid_of(text[:-1])
        send(text[:-1], "exit")
        while (st := state(pid)) is not None and st[0] != "Z":
            time.sleep(0.001)
    else:
        who, child = text.split("<")
        send(who, f"wait {pid_of(child) if child else -1}")
        ack()
    init_reaps()
    print(json.dumps(snapshot(), sort_keys=True), flush=True)
'''


@functools.cache
def host_pidns_reason() -> str | None:
    """None if this machine can run a program as pid 1 of a new pid namespace with its own /proc; else why not."""
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False)
    return None if probe.returncode == 0 else f"unshare --pid --mount-proc failed: {probe.stderr.decode().strip()}"


def host_steps(tmp: Path, action_list: str, subreapers: tuple[str, ...], everyone: bool) -> list[dict[str, list[object]]]:
    """Each action on real processes under a real init (pid 1 of a new pid namespace): name -> [parent, zombie]."""
    script = tmp / "host_tree.py"
    script.write_text(HOST_TREE, encoding="utf-8")
    run = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(script), action_list,
                          ",".join(subreapers), "1" if everyone else "0"],
                         capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def model_step(world: LinuxWorld) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for task in world.k.all_threads():
        if task is not world.k.init_task and task is not world.k.idle_task:
            assert task.real_parent is not None
            out[world.names[task.pid]] = [world.names[task.real_parent.pid], task.exit_state == TaskState.EXIT_ZOMBIE]
    return out


def random_actions(seed: int, count: int, wait_percentage: float) -> str:
    opts = QuizOptions(seed=seed, actions=count, fork_percentage=0.6, wait_percentage=wait_percentage)
    world = LinuxWorld(False, False, ())
    spelled = []
    for action, text in quiz_actions(opts, world):
        world.apply(action, text)
        spelled.append(text)
    return ",".join(spelled)


HOST_CASES = [
    ("a+b,b+c,c+d,b-,c-,a<,a+e,e+f,e-", (), False),
    ("a+b,b+c,c+d,d+e,c-,b-,a<,a<", ("a",), False),
    ("a+b,b+c,c+d,d+e,c-,d-,b<c,b<,b<,e-,b<", ("b",), False),
    ("a+b,b+c,c+d,d+e,c-,b-,d-", (), True),
    (random_actions(4, 30, 0.3), ("b", "d"), False),
    (random_actions(9, 30, 0.2), (), True),
]


@pytest.mark.parametrize(("action_list", "subreapers", "everyone"), HOST_CASES)
def test_linux_mode_matches_the_host_kernel(tmp_path: Path, action_list: str, subreapers: tuple[str, ...],
                                            everyone: bool) -> None:
    """After every action, each process's parent and zombie state on this machine's kernel equal the model's."""
    reason = host_pidns_reason()
    if reason is not None:
        pytest.skip(reason)
    host = host_steps(tmp_path, action_list, subreapers, everyone)
    world = LinuxWorld(False, everyone, subreapers)
    texts = action_list.split(",")
    assert len(host) == len(texts)
    for text, seen in zip(texts, host, strict=True):
        world.apply(parse_quiz_action(text, "linux"), text)
        assert model_step(world) == seen, text


def test_pids_are_the_kernels() -> None:
    """-p labels each process ``name(pid)``: that pid is the named task's, under its real parent."""
    world = LinuxWorld(False, False, ("a",), show_pids=True)
    for text in ["a+b", "b+c", "c+d", "c-", "a+e"]:
        world.apply(parse_quiz_action(text, "linux"), text)
    printed = parse_tree(world.tree("line2"))
    assert sorted(printed) == sorted(kernel_edges(world))
    for _, label in printed:
        name, pid = label.removesuffix(ZOMBIE_MARK).rstrip(")").split("(")
        assert world.names[int(pid)] == name and world.k.find_task(int(pid)).pid == int(pid)
    assert run_quiz("-p", "-A", "a+b", "-c").stdout.splitlines()[-1] == NODE_INDENT + "    \u2514\u2500\u2500 b(3)"


# --- bad input: one line, status 2 ------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["-s"], ["--bogus"], ["-s", "x"], ["-s", "08"], ["-a", "1.5"], ["-f", "0"], ["-f", "nan"], ["-f", "many"],
    ["-P", "wavy"], ["-A", "a+b,z-"], ["-A", "a+b+c"], ["-A", "a+b,"], ["-A", "a+"], ["-A", "a+b,a+b"],
    ["-A", "a+b,b-,b+c"], ["-A", "b<"], ["-A", "a<z"], ["-A", "a+init"], ["-A", "a+b<"], ["-w", "2"],
    ["-w", "nan"], ["--subreaper", "a+b"], ["--ostep", "-A", "a-"], ["--ostep", "-w", "0.5"],
    ["--ostep", "--subreaper", "a"], ["--ostep", "-A", "a<"],
])
def test_bad_input_is_one_line(args: list[str]) -> None:
    one_line_error(run_quiz(*args))


actions_text = st.lists(st.sampled_from(["a", "b", "c", "d", "e", "init", "+", "-", "<", ",", "", "ab"]),
                        max_size=20).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=actions_text, mode=st.sampled_from(["linux", "ostep"]), leaf=st.booleans(), local=st.booleans())
def test_any_action_string_runs_or_is_one_quiz_error(text: str, mode: str, leaf: bool, local: bool) -> None:
    """Whatever -A holds, the quiz prints or raises QuizError with a one-line message, never another exception."""
    opts = QuizOptions(action_list=text, mode=mode, leaf_only=leaf, local_reparent=local, solve=True)
    try:
        out = quiz(opts)
    except QuizError as e:
        assert "\n" not in str(e) and str(e)
        return
    assert out.endswith("\n")


def test_help_documents_the_zombie_marker_and_cli_stays_lazy() -> None:
    result = run_quiz("--help")
    assert result.exit_code == 0 and "<defunct>" in result.stdout
    assert run_quiz("-h").stdout == result.stdout  # fork.py's -h
    code = "import sys, forklab.cli; sys.exit('forklab.quiz' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
