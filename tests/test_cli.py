"""The command line: ``forklab tour`` runs and shows the model's key moments."""

from __future__ import annotations

from typer.testing import CliRunner

from forklab.cli import app


def test_tour_runs_every_stage_and_prints_its_computed_facts() -> None:
    """The tour prints each stage's title and every fact the stage computed from the model (forklab/tour.py)."""
    from forklab.tour import build_stages

    result = CliRunner().invoke(app, ["tour"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    out = result.output
    for stage in build_stages():
        assert f"{stage.number}. {stage.title}" in out
        for fact in stage.facts:
            assert fact in out


def test_tour_is_deterministic() -> None:
    """Two runs print the same bytes."""
    runner = CliRunner()
    first = runner.invoke(app, ["tour"], env={"COLUMNS": "200"}).output
    second = runner.invoke(app, ["tour"], env={"COLUMNS": "200"}).output
    assert first == second


def test_tour_stage_shows_one_stage_and_a_bad_stage_is_a_one_line_error() -> None:
    runner = CliRunner()
    five = runner.invoke(app, ["tour", "--stage", "5"], env={"COLUMNS": "200"})
    assert five.exit_code == 0 and "5. mm" in five.output and "1. fork()" not in five.output
    for bad in ("10", "0", "x"):
        result = runner.invoke(app, ["tour", "--stage", bad])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_tour_html_writes_one_page_with_every_stage(tmp_path) -> None:  # type: ignore[no-untyped-def]
    page = tmp_path / "tour.html"
    result = CliRunner().invoke(app, ["tour", "--html", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    for n in range(1, 10):
        assert f"{n}. " in text
    bad = CliRunner().invoke(app, ["tour", "--html", str(tmp_path / "no" / "such" / "dir.html")])
    assert bad.exit_code == 2 and "cannot write" in bad.output


def test_explain_names_the_rule_for_each_version() -> None:
    """``forklab explain clone3 CLONE_NEWTIME --kernel V``: EINVAL with its line in 5.6, a pid in 6.18."""
    runner = CliRunner()
    old = runner.invoke(app, ["explain", "clone3", "CLONE_NEWTIME"], env={"COLUMNS": "200"})
    assert old.exit_code == 1 and "EINVAL" in old.output and "kernel/fork.c:2694" in old.output
    new = runner.invoke(app, ["explain", "clone3", "CLONE_NEWTIME", "--kernel", "6.18"], env={"COLUMNS": "200"})
    assert new.exit_code == 0, new.output
    assert "copy_time_ns" in new.output and "timens_on_fork" in new.output


def test_explain_unprivileged_user_namespace() -> None:
    """CLONE_NEWUSER|CLONE_NEWNET works for uid 1000; CLONE_NEWNET alone is EPERM (kernel/nsproxy.c:163)."""
    runner = CliRunner()
    ok = runner.invoke(app, ["explain", "clone", "CLONE_NEWUSER|CLONE_NEWNET|SIGCHLD", "--uid", "1000"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["explain", "clone", "CLONE_NEWNET|SIGCHLD", "--uid", "1000"], env={"COLUMNS": "200"})
    assert bad.exit_code == 1 and "EPERM" in bad.output and "kernel/nsproxy.c:163" in bad.output


def test_diff_versions_lists_each_switch() -> None:
    """``forklab diff-versions`` lists every change between 5.6.14 and 6.18 with its version."""
    result = CliRunner().invoke(app, ["diff-versions"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    for name in ("clone_into_cgroup", "clone3_newtime", "pidfd_thread", "timens_vm_allowed", "pid_max_per_ns"):
        assert name in result.output


def test_verify_against_host_command() -> None:
    """``forklab verify --against-host`` prints the agreement table; skips where the host can't run the probe."""
    import pytest

    from forklab import host

    if not host.available("priv"):
        pytest.skip(f"host oracle unavailable: {host.unavailable_reason('priv')}")
    result = CliRunner().invoke(app, ["verify", "--against-host", "-n", "30", "--modes", "priv", "--seed", "5"])
    assert "agree %" in result.output
    assert result.exit_code == 0, result.output


def test_explain_bad_kernel_version_and_set_tid_are_one_line_errors() -> None:
    """An unknown --kernel or a malformed --set-tid: one line on stderr, status 2, no traceback."""
    from typer.testing import CliRunner

    from forklab.cli import app

    for args, needle in ((["explain", "clone3", "CLONE_NEWTIME", "--kernel", "9.9"], "unknown kernel version '9.9'"),
                         (["explain", "clone3", "0", "--set-tid", "x,1"], "--set-tid must be comma-separated")):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert needle in result.output and "Traceback" not in result.output


def test_explain_bad_flags_are_one_line_errors_with_a_suggestion() -> None:
    from typer.testing import CliRunner

    from forklab.cli import app

    result = CliRunner().invoke(app, ["explain", "clone", "CLONE_FSS"])
    assert result.exit_code == 2 and "unknown flag 'CLONE_FSS' (did you mean CLONE_FS?)" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(app, ["explain", "clone", "0xZZ"])
    assert result.exit_code == 2 and "'0xZZ' is not a number" in result.output and "Traceback" not in result.output
