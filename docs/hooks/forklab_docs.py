"""MkDocs hooks and a griffe extension for forklab's site.

- Kernel source citations (``kernel/fork.c:1824``) in pages and docstrings become links to
  the Linux 5.6.14 source on Elixir. The citation pattern is ``forklab.kernel_map.CITATION``,
  the same one the kernel map reads.
- The API reference is generated: one page per forklab module, grouped by the kernel
  directory the module mirrors (``forklab/kernel/fork.py`` is ``kernel/fork.c``, under
  ``kernel/``), and appended to the nav.
- The home page is README.md, generated, with its ``docs/`` links made relative.
- Top-level pages of docs/ that the nav does not list are appended to it, so a page added
  by someone else still builds in ``--strict`` mode.

Loaded by mkdocs.yml as a hook file and, for docstrings, as a griffe extension
(``docs/hooks/forklab_docs.py:ElixirCitations``).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import griffe

from forklab.kernel_map import CITATION, definitions

ELIXIR = "https://elixir.bootlin.com/linux/v5.6.14/source/"
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "forklab"
REFERENCE = "reference"
# Pages whose bare kernel function names (`copy_process`) link to the reference; kernel-map.md
# lists every name and links to the source already.
KERNEL_NAMES_LINKED = frozenset({"guide.md", "seed-map.md", "architecture.md", "model.md"})

# Fenced code blocks (``` or ~~~, any indent) are left as they are; so are code spans other
# than a lone citation.
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,}).*?^\1\2[ \t]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_LINK = re.compile(r"\[[^\]]*\]\([^)]*\)|<a\b.*?</a>", re.S)

# Kernel top-level directories forklab mirrors; a module under one of them models a kernel file.
KERNEL_DIRS = ("kernel", "mm", "fs", "arch", "include", "ipc", "net", "security", "lib", "block", "init")

# Modules whose reference page shows more than the documented names: uapi's constants have no docstrings.
EXTRA_OPTIONS: dict[str, str] = {"forklab.uapi": "      show_if_no_docstring: true\n"}


def elixir_url(file: str, where: str) -> str:
    """The Elixir address of ``file`` at ``where`` (a line, a range ``a-b``, or a symbol name)."""
    url = ELIXIR + file
    first = where.split("-", 1)[0]
    return f"{url}#L{first}" if first.isdigit() else url


def _link_plain(text: str) -> str:
    """Citations in markdown text that has no code spans or links left in it."""
    return CITATION.sub(lambda m: f"[{m[0]}]({elixir_url(m[1], m[2])})", text)


def _link_outside_links(text: str) -> str:
    """Citations in ``text`` outside code spans and existing links; a code span holding only a citation is linked."""
    out: list[str] = []
    pos = 0
    for m in re.finditer(f"{_CODE_SPAN.pattern}|{_LINK.pattern}", text, re.S):
        out.append(_link_plain(text[pos:m.start()]))
        span = m[0]
        if m[2] is not None:
            whole = CITATION.fullmatch(m[2].strip())
            if whole:
                span = f"[{span}]({elixir_url(whole[1], whole[2])})"
        out.append(span)
        pos = m.end()
    out.append(_link_plain(text[pos:]))
    return "".join(out)


def _outside_code_blocks(markdown: str, change: Callable[[str], str]) -> str:
    """``change`` applied to ``markdown`` outside its fenced and indented code blocks."""
    out: list[str] = []
    pos = 0
    for m in _FENCE.finditer(markdown):
        out.append(_outside_indented(markdown[pos:m.start()], change))
        out.append(m[0])
        pos = m.end()
    out.append(_outside_indented(markdown[pos:], change))
    return "".join(out)


def _outside_indented(text: str, change: Callable[[str], str]) -> str:
    """``change`` applied to each paragraph of ``text`` but those indented as a code block (every line 4 spaces in)."""
    parts = re.split(r"(\n[ \t]*\n)", text)
    return "".join(p if _BLANKS.fullmatch(p) or _is_indented(p) else change(p) for p in parts)


_BLANKS = re.compile(r"\n[ \t]*\n")


def _is_indented(paragraph: str) -> bool:
    """True when every non-empty line of ``paragraph`` starts with four spaces or a tab."""
    lines = [ln for ln in paragraph.split("\n") if ln.strip()]
    return bool(lines) and all(ln.startswith(("    ", "\t")) for ln in lines)


def link_citations(markdown: str) -> str:
    """Make every kernel citation in ``markdown`` a link to Elixir, leaving code blocks, code spans and links alone."""
    return _outside_code_blocks(markdown, _link_outside_links)


_BRACKETS = re.compile(r"\[([^\]\n]*)\](?!\()")


def _plain(text: str) -> str:
    """Text outside code spans as text: ``<pid>`` is no HTML tag, ``[FILE]`` no cross-reference, ``bad_fork_*`` no emphasis."""
    return _BRACKETS.sub(r"\[\1\]", text.replace("<", "&lt;").replace("*", r"\*"))


def escape_markup(text: str) -> str:
    """A docstring's text stays text: ``/proc/<pid>/status`` keeps its ``<``, ``cat [FILE]...`` its brackets."""
    return _outside_code_blocks(text, _escape_outside_spans)


def _escape_outside_spans(text: str) -> str:
    """``_plain`` applied to ``text`` outside its code spans."""
    out: list[str] = []
    pos = 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_plain(text[pos:m.start()]))
        out.append(m[0])
        pos = m.end()
    out.append(_plain(text[pos:]))
    return "".join(out)


class ElixirCitations(griffe.Extension):
    """Griffe extension: each docstring's citations become Elixir links, its ``<`` and ``[`` stay text."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring, once, as it is loaded."""
        if obj.docstring is not None and not getattr(obj.docstring, "_forklab_linked", False):
            obj.docstring.value = link_citations(escape_markup(obj.docstring.value))
            obj.docstring._forklab_linked = True  # type: ignore[attr-defined]


# ---- the generated API reference -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModulePage:
    """One reference page: the module's dotted name, its page path, and the title the nav shows."""

    module: str
    path: str
    title: str
    section: str
    kernel: bool


def kernel_file(rel: PurePosixPath) -> str:
    """The kernel file a module path mirrors: ``kernel/fork.py`` -> ``kernel/fork.c``; include/ modules are headers."""
    parts = list(rel.with_suffix("").parts)
    if parts[0] == "include":
        parts = [p.replace("asm_generic", "asm-generic") for p in parts]
        return "/".join(parts) + ".h"
    return "/".join(parts) + ".c"


def module_pages(package: Path = PACKAGE) -> list[ModulePage]:
    """Every module of the package (``__init__`` files only where they hold code), sorted by page path."""
    pages: list[ModulePage] = []
    for file in sorted(package.rglob("*.py")):
        rel = PurePosixPath(file.relative_to(package).as_posix())
        if "__pycache__" in rel.parts:
            continue
        is_init = rel.name == "__init__.py"
        if is_init and not _has_code(file):
            continue
        target = rel.parent if is_init else rel.with_suffix("")
        if not target.parts:
            continue  # the package itself: its page is the hand-written Public API page
        dotted = ".".join(("forklab", *target.parts))
        kernel = bool(target.parts) and target.parts[0] in KERNEL_DIRS and not is_init
        if kernel:
            title = kernel_file(rel)
            section = str(PurePosixPath(title).parent) + "/"
        else:
            title = dotted
            section = "forklab's own tools"
        path = f"{REFERENCE}/{'/'.join(target.parts)}{'/index' if is_init else ''}.md"
        pages.append(ModulePage(dotted, path, title, section, kernel))
    return pages


def _has_code(file: Path) -> bool:
    """True when an ``__init__.py`` defines or re-exports something beyond its docstring."""
    body = [ln for ln in file.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    return any(ln.startswith(("def ", "class ", "from ", "import ")) for ln in body)


def page_markdown(page: ModulePage) -> str:
    """The markdown of one module's reference page."""
    if page.kernel:
        head = f"# {page.title}\n\n`{page.module}` models [{page.title}]({ELIXIR}{page.title}).\n\n"
        options = "      filters: [\"!^__.*__$\"]\n"
    else:
        head = f"# {page.module}\n\n"
        options = "      filters: [\"!^_\"]\n"
    options += EXTRA_OPTIONS.get(page.module, "")
    return f"{head}::: {page.module}\n    options:\n      show_root_heading: false\n{options}"


def reference_nav(pages: list[ModulePage]) -> list[Any]:
    """The nav of the API reference: the public API, then each kernel directory, then forklab's own tools."""
    sections: dict[str, list[dict[str, str]]] = {}
    for page in pages:
        sections.setdefault(page.section, []).append({page.title: page.path})
    kernel = sorted(s for s in sections if s != "forklab's own tools")
    nav: list[Any] = [{"Public API": f"{REFERENCE}/index.md"}]
    nav += [{section: sections[section]} for section in kernel]
    nav.append({"forklab's own tools": sections.get("forklab's own tools", [])})
    return nav


def _nav_files(nav: Any) -> set[str]:
    """Every page path a nav structure names."""
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, dict):
        return set().union(*(_nav_files(v) for v in nav.values()))
    if isinstance(nav, list):
        return set().union(*(_nav_files(v) for v in nav)) if nav else set()
    return set()


def unlisted_pages(docs_dir: Path, nav: Any) -> list[str]:
    """Top-level markdown pages of ``docs_dir`` that ``nav`` does not name, sorted."""
    listed = _nav_files(nav)
    return sorted(p.name for p in docs_dir.glob("*.md") if p.name not in listed)


# ---- MkDocs hook entry points ----------------------------------------------------------------


def on_config(config: Any, **kwargs: Any) -> Any:
    """Append unlisted pages and the generated API reference to the nav."""
    nav = list(config["nav"] or [])
    extra = unlisted_pages(Path(config["docs_dir"]), nav)
    if extra:
        nav.append({"More": extra})
    nav.append({"API reference": reference_nav(module_pages())})
    config["nav"] = nav
    return config


def home_markdown(readme: Path = ROOT / "README.md") -> str:
    """The site's home page: README.md, its ``docs/`` links made relative to the site."""
    return readme.read_text(encoding="utf-8").replace("](docs/", "](")


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    """Add the home page (README.md) and one generated page per forklab module."""
    from mkdocs.structure.files import File  # lazy: mkdocs is only there when the site is built

    files.append(File.generated(config, "index.md", content=home_markdown()))
    for page in module_pages():
        files.append(File.generated(config, page.path, content=page_markdown(page)))
    return files


_BARE_SPAN = re.compile(r"(?<![\[`])`(\w+)(?:\(\))?`(?![\]`])")


def kernel_functions(package: Path = PACKAGE) -> dict[str, str]:
    """Each kernel function's name -> its dotted forklab path: the top-level functions whose docstring cites a kernel file.

    tests/test_kernel_map.py keeps each name defined once, so a bare name is unambiguous.
    """
    found: dict[str, str] = {}
    for d in definitions(package):
        path = PurePosixPath(d.module)
        on_kernel_page = path.parts[1] in KERNEL_DIRS and path.name != "__init__.py"
        if d.citation is not None and (on_kernel_page or not d.name.startswith("_")):  # as the pages filter them
            found[d.name] = ".".join(path.with_suffix("").parts)
    return {name: f"{module}.{name}" for name, module in found.items()}


def link_kernel_names(markdown: str, functions: dict[str, str]) -> str:
    """Each code span that is a kernel function's bare name (```copy_process```) links to its reference entry."""

    def one(m: re.Match[str]) -> str:
        dotted = functions.get(m[1])
        return f"[{m[0]}][{dotted}]" if dotted else m[0]

    return _outside_code_blocks(markdown, lambda text: _BARE_SPAN.sub(one, text))


_NAME_SPAN = re.compile(r"(?<![\[`])`(forklab(?:\.\w+)+)`(?![\]`])")


def link_names(markdown: str, from_page: str, modules: dict[str, str]) -> str:
    """Each code span that is a dotted forklab name links to its reference entry, outside code blocks.

    A module links to its page (``modules``: dotted name -> page path), anything else is an
    autorefs cross-reference, which ``mkdocs build --strict`` fails on when it does not exist.
    """
    depth = PurePosixPath(from_page).parent

    def one(m: re.Match[str]) -> str:
        name = m[1]
        if name in modules:
            rel = PurePosixPath(*[".."] * len(depth.parts), modules[name]) if depth.parts else modules[name]
            return f"[`{name}`]({rel})"
        home = defined_as(name)
        return f"[`{name}`][{home}]" if home else m[0]

    return _outside_code_blocks(markdown, lambda text: _NAME_SPAN.sub(one, text))


def defined_as(dotted: str) -> str | None:
    """Where the function or class ``forklab.a.b`` names is defined (``forklab.Kernel`` -> ``forklab.syscalls.Kernel``).

    None when the name does not resolve, or names no function or class: such a span stays plain.
    """
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            return None
        return f"{obj.__module__}.{obj.__qualname__}"
    return None


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """In the hand-written pages, citations link to Elixir and forklab names to the API reference."""
    if page.file.src_uri.startswith(f"{REFERENCE}/"):
        return link_citations(markdown)
    modules = {p.module: p.path for p in module_pages()} | {"forklab": f"{REFERENCE}/index.md"}
    linked = link_names(link_citations(markdown), page.file.src_uri, modules)
    return link_kernel_names(linked, kernel_functions()) if page.file.src_uri in KERNEL_NAMES_LINKED else linked
