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
    result = CliRunner().invoke(app, ["explain", "clone", "0xZZ"])
    assert result.exit_code == 2 and "'0xZZ' is not a number" in result.output and "Traceback" not in result.output
