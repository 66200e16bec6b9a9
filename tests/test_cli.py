"""The command line: ``forklab tour`` runs and shows the model's key moments."""

from __future__ import annotations

from typer.testing import CliRunner

from forklab.cli import app


def test_tour_runs_and_shows_rules() -> None:
    """The tour forks, rejects a flag combination with its rule, and shows COW copy then reuse."""
    result = CliRunner().invoke(app, ["tour"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "EINVAL: CLONE_SIGHAND requires CLONE_VM (kernel/fork.c:1859)" in out
    assert "copied" in out and "shared" in out
    assert "wp_page_copy" in out and "reuses" in out
    assert "check_invariants()" in out


def test_tour_is_deterministic() -> None:
    """Two runs print the same bytes."""
    runner = CliRunner()
    first = runner.invoke(app, ["tour"], env={"COLUMNS": "200"}).output
    second = runner.invoke(app, ["tour"], env={"COLUMNS": "200"}).output
    assert first == second
