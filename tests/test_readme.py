"""The README's Python examples run, in order, as one session: what they assert is what the model does."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)


def test_readme_trace_excerpt_is_what_the_command_prints() -> None:
    """The README's function_graph excerpt is the start of ``forklab trace fork --format graph``, line for line."""
    from typer.testing import CliRunner

    from forklab.cli import app

    text = README.read_text(encoding="utf-8")
    section = text.split("## What you see", 1)[1].split("## Using it", 1)[0]
    excerpt = re.findall(r"```\n(.*?)```", section, flags=re.S)[0].splitlines()
    out = CliRunner().invoke(app, ["trace", "fork", "--format", "graph"]).output.splitlines()
    assert len(excerpt) >= 20 and out[:len(excerpt)] == excerpt


def test_readme_picture_is_what_the_documented_command_makes(tmp_path: Path) -> None:
    """docs/img/sharing.svg is what ``python -m forklab.views.picture_docs --scenario fork`` writes today."""
    import shutil

    from forklab.views.picture_docs import write_doc_pictures

    if shutil.which("dot") is None:
        import pytest

        pytest.skip("graphviz's dot is not installed")
    assert "docs/img/sharing.svg" in README.read_text(encoding="utf-8")
    write_doc_pictures(tmp_path, "fork")
    assert (tmp_path / "sharing.svg").read_bytes() == (README.parent / "docs/img/sharing.svg").read_bytes()
