"""The kernel's own map (forklab/kernel_map.py): one definition per function, each in its kernel file's module."""

from __future__ import annotations

from forklab.kernel_map import ABSORBED, FACTORED, MAP_PATH, TOOLS, definitions, duplicates, misplaced, render


def test_each_function_is_defined_once() -> None:
    dups = duplicates(definitions())
    listing = "\n".join(
        f"{name}: " + ", ".join(f"{d.module}:{d.line}" for d in ds) for name, ds in dups.items()
    )
    assert not dups, f"top-level functions defined more than once:\n{listing}"


def test_each_cited_function_lives_in_its_kernel_files_module() -> None:
    bad = misplaced(definitions())
    listing = "\n".join(f"{d.name} ({d.citation}) is in {d.module}, belongs in {d.home}" for d in bad)
    assert not bad, f"{len(bad)} functions outside their kernel file's module:\n{listing}"


def test_allowlists_name_existing_modules_and_say_why() -> None:
    root = MAP_PATH.parent.parent
    for file, (module, reason) in ABSORBED.items():
        assert (root / module).is_file(), f"ABSORBED[{file!r}] names a missing module {module}"
        assert reason, file
    for module, reason in TOOLS.items():
        assert (root / module).is_file() and reason, module
    names = {d.name for d in definitions()}
    for name, reason in FACTORED.items():
        assert name in names and reason, name


def test_kernel_map_doc_is_current() -> None:
    assert MAP_PATH.read_text(encoding="utf-8") == render(definitions()), (
        "docs/kernel-map.md is stale: run `python -m forklab.kernel_map > docs/kernel-map.md`"
    )
