"""The docs' examples run, and what they show is what the model does.

Conventions of docs/guide.md and docs/seed-map.md:

* every ```python block of a page runs, in page order, in one namespace (a page is one session);
* a fenced block right after the line ``<!-- expected output -->`` is the exact stdout of the
  python block before it;
* a ```console block holds ``$ forklab ...`` commands, each followed by lines of its output:
  the command runs, and each shown line appears in its output, in order (an excerpt: the
  command may print more); a line ``...`` only marks an elision;
* every ``forklab.a.b.name`` written in code on the seed map resolves to a real function,
  class or module.

The docs site's own machinery (docs/hooks/forklab_docs.py) is tested here too.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import itertools
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from forklab import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = ("guide.md", "seed-map.md")
EXPECTED = "<!-- expected output -->"
FENCE = re.compile(r"^(?P<marker><!-- expected output -->\n)?```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$",
                   re.M | re.S)


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: its language, text, first line number, and whether it is marked expected output."""

    lang: str
    body: str
    line: int
    expected: bool


def blocks(page: str) -> list[Block]:
    """The fenced blocks of ``docs/<page>``, in order."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return [Block(m["lang"], m["body"], text.count("\n", 0, m.start("body")) + 1, bool(m["marker"]))
            for m in FENCE.finditer(text)]


def python_runs(page: str) -> list[tuple[Block, str, Block | None]]:
    """Run the page's python blocks in one namespace: each block, its stdout, and the expected-output block after it."""
    found = blocks(page)
    namespace: dict[str, object] = {"__name__": f"docs_{page.replace('-', '_').removesuffix('.md')}"}
    runs: list[tuple[Block, str, Block | None]] = []
    for i, block in enumerate(found):
        if block.lang != "python":
            continue
        out = io.StringIO()
        code = compile("\n" * (block.line - 1) + block.body, str(DOCS / page), "exec")
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
        after = found[i + 1] if i + 1 < len(found) and found[i + 1].expected else None
        runs.append((block, out.getvalue(), after))
    return runs


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run_and_print_the_expected_output(page: str) -> None:
    runs = python_runs(page)
    assert runs, f"{page} has no python block"
    for block, out, expected in runs:
        if expected is not None:
            assert out == expected.body, f"{page}:{block.line}: the output differs from the one shown"


@pytest.mark.parametrize("page", PAGES)
def test_every_expected_output_follows_a_python_block(page: str) -> None:
    found = blocks(page)
    for before, block in itertools.pairwise(found):
        if block.expected:
            assert before.lang == "python", f"{page}:{block.line}: expected output after a {before.lang!r} block"
    assert not (found and found[0].expected)


def console_commands(page: str) -> list[tuple[int, str, list[str]]]:
    """Each ``$ forklab ...`` command of the page's console blocks: its line, the command, and the lines shown."""
    commands: list[tuple[int, str, list[str]]] = []
    for block in blocks(page):
        if block.lang != "console":
            continue
        for offset, line in enumerate(block.body.splitlines()):
            if line.startswith("$ "):
                assert line.startswith("$ forklab "), f"{page}:{block.line + offset}: only forklab commands run"
                commands.append((block.line + offset, line[2:], []))
            elif line.strip() and line.strip() != "...":
                assert commands, f"{page}:{block.line}: output before any command"
                commands[-1][2].append(line)
    return commands


def _squeeze(text: str) -> str:
    """Whitespace runs as one space, so a terminal's line wrapping and column padding do not matter."""
    return " ".join(text.split())


def run_forklab(command: str) -> str:
    """Run ``forklab ARGS`` in this process from the repository root, wide and without colour: its output."""
    argv = shlex.split(command)
    assert argv[0] == "forklab"
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = runner.invoke(cli.app, argv[1:], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    finally:
        os.chdir(cwd)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"{command}: {result.exception!r}")
    return result.output


def _all_console_commands() -> list[tuple[str, int, str, list[str]]]:
    return [(page, line, cmd, shown) for page in PAGES for line, cmd, shown in console_commands(page)]


@pytest.mark.parametrize(("page", "line", "command", "shown"), _all_console_commands(),
                         ids=lambda v: v if isinstance(v, str) and v.startswith("forklab") else "")
def test_console_commands_show_what_the_page_shows(page: str, line: int, command: str, shown: list[str]) -> None:
    output = run_forklab(command)
    assert "Traceback" not in output, f"{page}:{line}: {command}\n{output}"
    rest = _squeeze(output)
    for want in shown:
        at = rest.find(_squeeze(want))
        assert at >= 0, f"{page}:{line}: {command!r} does not print {want!r} (in order); it printed:\n{output}"
        rest = rest[at + len(_squeeze(want)):]


def test_the_guide_runs_at_least_one_command_per_tool() -> None:
    commands = [cmd for _, _, cmd, _ in _all_console_commands()]
    assert any(c.startswith("forklab explain ") for c in commands)
    assert any(c.startswith("forklab run ") for c in commands)
    assert "forklab.explore(" in (DOCS / "guide.md").read_text(encoding="utf-8")


# ---- the seed map names real functions ------------------------------------------------------

DOTTED = re.compile(r"`(forklab(?:\.\w+)+)`")


def resolve(dotted: str) -> object:
    """The object ``forklab.a.b.c`` names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise AssertionError(f"{dotted}: no module")


def test_every_forklab_name_on_the_seed_map_is_a_real_function() -> None:
    text = (DOCS / "seed-map.md").read_text(encoding="utf-8")
    names = sorted(set(DOTTED.findall(text)))
    functions = 0
    for dotted in names:
        try:
            obj = resolve(dotted)
        except AttributeError as e:
            raise AssertionError(f"seed-map.md names {dotted}, which does not exist ({e})") from None
        assert inspect.isfunction(obj) or inspect.isclass(obj) or isinstance(obj, ModuleType), dotted
        if inspect.isfunction(obj):
            functions += 1
            assert obj.__module__ == dotted.rsplit(".", 1)[0] or dotted.startswith("forklab.Kernel"), (
                f"{dotted} is defined in {obj.__module__}: name it where it lives")
    assert functions >= 40, f"the seed map names only {functions} functions"


def test_the_seed_map_quotes_every_section_heading_of_the_seed_document() -> None:
    seed = ROOT.parent / "shared" / "seed" / "fork-in-linux-5.6.14.txt"
    if not seed.exists():
        pytest.skip("the seed document is not beside this checkout")
    text = (DOCS / "seed-map.md").read_text(encoding="utf-8")
    for heading in ("fork 在 Linux 内核里面的实现", "_do_frok", "标志含义", "copy_process", "dup_task_struct",
                    "memcg_charge_kernel_stack", "copy_creds", "prepare_creds", "create_user_ns", "copy_files",
                    "copy_fs", "copy_fs_struct", "copy_mm", "dup _mm", "dup_mmap", "vm_stat_account",
                    "copy_page_range", "copy_namespaces", "copy_io", "copy_thread_tls", "参考资料"):
        assert re.search(rf"^{re.escape(heading)}$", seed.read_text(encoding="utf-8"), re.M), heading
        assert f"«{heading}»" in text, f"seed-map.md does not quote the seed's section {heading!r}"


# ---- the site's machinery --------------------------------------------------------------------


def _hooks() -> ModuleType:
    """docs/hooks/forklab_docs.py, loaded by path as mkdocs loads it (needs griffe, from the docs extra)."""
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("forklab_docs_hooks", DOCS / "hooks" / "forklab_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_citations_become_elixir_links_outside_code() -> None:
    hooks = _hooks()
    url = "https://elixir.bootlin.com/linux/v5.6.14/source/kernel/fork.c#L1824"
    assert hooks.link_citations("see kernel/fork.c:1824-2362.") == f"see [kernel/fork.c:1824-2362]({url})."
    assert hooks.link_citations("`kernel/fork.c:1824`") == f"[`kernel/fork.c:1824`]({url})"
    assert hooks.link_citations("`copy_process` (kernel/fork.c:1824)").startswith("`copy_process` ([")
    untouched = ("```\nkernel/fork.c:1824\n```\n", "`f() at kernel/fork.c:1824`", "[x](kernel/fork.c:1824)",
                 "para\n\n    indented kernel/fork.c:1824\n")
    for text in untouched:
        assert hooks.link_citations(text) == text
    named = hooks.link_citations("include/linux/uidgid.h:kuid_has_mapping")
    assert named == ("[include/linux/uidgid.h:kuid_has_mapping]"
                     "(https://elixir.bootlin.com/linux/v5.6.14/source/include/linux/uidgid.h)")


def test_kernel_function_names_link_to_their_reference_entry() -> None:
    hooks = _hooks()
    functions = hooks.kernel_functions()
    assert functions["copy_process"] == "forklab.kernel.fork.copy_process"
    assert functions["copy_page_range"] == "forklab.mm.memory.copy_page_range"
    assert "run_program" not in functions                   # forklab's own tools cite no kernel file
    linked = hooks.link_kernel_names("`copy_process` and `dup_mmap()` but not `k.fork` or `nope`", functions)
    assert linked == ("[`copy_process`][forklab.kernel.fork.copy_process] and "
                      "[`dup_mmap()`][forklab.kernel.fork.dup_mmap] but not `k.fork` or `nope`")
    assert hooks.link_kernel_names("```\n`copy_process`\n```\n", functions) == "```\n`copy_process`\n```\n"
    names = hooks.link_names("`forklab.Kernel.fork` and `forklab.kernel.fork`", "guide.md",
                             {"forklab.kernel.fork": "reference/kernel/fork.md"})
    assert names == "[`forklab.Kernel.fork`][forklab.syscalls.Kernel.fork] and [`forklab.kernel.fork`](reference/kernel/fork.md)"


def test_docstring_text_stays_text() -> None:
    hooks = _hooks()
    assert hooks.escape_markup("reads /proc/<pid>/status") == "reads /proc/&lt;pid>/status"
    assert hooks.escape_markup("cat [FILE]...") == r"cat \[FILE\]..."
    assert hooks.escape_markup("bad_fork_* and copy_*") == r"bad_fork_\* and copy_\*"
    assert hooks.escape_markup("`<pid>` and [a](b)") == "`<pid>` and [a](b)"
    assert hooks.escape_markup("x\n\n    a < b\n") == "x\n\n    a < b\n"


def test_a_docstring_loaded_by_griffe_links_its_citation() -> None:
    hooks = _hooks()
    import griffe  # lazy: only the docs extra has it, and the importorskip above checked it

    source = ROOT / "forklab" / "kernel" / "fork.py"
    fork = griffe.visit("fork", filepath=source, code=source.read_text(encoding="utf-8"),
                        extensions=griffe.load_extensions(hooks.ElixirCitations()))
    doc = fork["copy_process"].docstring.value
    assert "](https://elixir.bootlin.com/linux/v5.6.14/source/kernel/fork.c#L1824)" in doc


def test_every_module_has_a_reference_page_under_its_kernel_directory() -> None:
    hooks = _hooks()
    pages = hooks.module_pages()
    by_module = {p.module: p for p in pages}
    modules = {".".join(("forklab", *f.relative_to(ROOT / "forklab").with_suffix("").parts))
               for f in (ROOT / "forklab").rglob("*.py") if "__pycache__" not in f.parts and f.name != "__init__.py"}
    assert modules <= set(by_module)
    fork = by_module["forklab.kernel.fork"]
    assert (fork.title, fork.section, fork.path) == ("kernel/fork.c", "kernel/", "reference/kernel/fork.md")
    assert by_module["forklab.include.linux.sched"].title == "include/linux/sched.h"
    assert by_module["forklab.runner.explore"].section == "forklab's own tools"
    assert len({p.path for p in pages}) == len(pages)
    nav = hooks.reference_nav(pages)
    assert {"kernel/": next(v for d in nav for s, v in d.items() if s == "kernel/")} in nav


def test_the_nav_names_only_pages_that_exist() -> None:
    hooks = _hooks()
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = re.findall(r"^  - [^:]+: (\S+\.md)$", text, re.M)
    assert "guide.md" in nav and "seed-map.md" in nav
    generated = {"index.md"}
    for page in nav:
        assert page in generated or (DOCS / page).exists(), f"mkdocs.yml lists {page}, which is not in docs/"
    assert hooks.unlisted_pages(DOCS, nav) == sorted(set(p.name for p in DOCS.glob("*.md")) - set(nav))
