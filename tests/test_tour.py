"""The tour's stages: every fact they show is computed from the model, and these tests check the relations."""

from __future__ import annotations

import errno
from html.parser import HTMLParser

import pytest
from rich.console import Console

from forklab.tour import STAGES, build_stages, render_stages, stages_html

SHARING_FIELDS = ("mm", "files", "fs", "sighand", "signal", "real_cred", "nsproxy")


@pytest.fixture(scope="module")
def stages():  # type: ignore[no-untyped-def]
    return {s.number: s for s in build_stages()}


def test_there_are_nine_stages_in_the_seeds_order(stages) -> None:  # type: ignore[no-untyped-def]
    assert sorted(stages) == list(range(1, len(STAGES) + 1)) == list(range(1, 10))
    with pytest.raises(ValueError, match="no stage 10"):
        build_stages([10])


def test_each_sharing_row_is_the_identity_of_the_two_tasks(stages) -> None:  # type: ignore[no-untyped-def]
    for s in stages.values():
        for _label, name, how, _rule in s.sharing:
            assert name in SHARING_FIELDS and how in ("shared", "copied")
    fork = stages[1]
    k = fork.kernel
    child = k.find_task(fork.checks["pid"])
    parent = child.real_parent
    for _label, name, how, _rule in fork.sharing:
        assert (how == "shared") == (getattr(child, name) is getattr(parent, name))
    assert fork.checks["ax"] == child.regs.ax == 0
    assert fork.checks["shared"] == [n for n in SHARING_FIELDS if getattr(child, n) is getattr(parent, n)]


def test_the_einval_stage_names_the_first_rule_in_source_order(stages) -> None:  # type: ignore[no-untyped-def]
    s = stages[2]
    results = s.checks["results"]
    assert len(results) == 5 and all(code == errno.EINVAL for _, code, _, _ in results)
    lines = [int(source.rsplit(":", 1)[1]) for *_, source in results]
    assert lines[4] == min(lines[2], lines[4])  # three rules broken: the earliest line decides
    assert s.checks["tasks"] == len(s.kernel.all_threads())
    for (_, _, rule, source), fact in zip(results, s.facts, strict=False):
        assert rule in fact and source in fact


def test_user_namespace_stage(stages) -> None:  # type: ignore[no-untyped-def]
    c = stages[3].checks
    assert c["new_cred"] and c["level"] == 1 and c["owner"] == 1000 and c["thread_shares"]
    assert c["caps"] == stages[3].kernel.cap_full_set


def test_files_stage_counts_are_the_models(stages) -> None:  # type: ignore[no-untyped-def]
    c = stages[4].checks
    assert c["same_file"] and c["f_count"] == 2 and c["files_count"] == 2 and c["fs_users"] == 2


def test_cow_stage_copies_for_the_child_and_reuses_for_the_parent(stages) -> None:  # type: ignore[no-untyped-def]
    c = stages[5].checks
    assert c["shared_pfn"] == c["before"] and c["same_pages"] == 4
    assert c["child_pfn"] != c["before"]  # the child's write copied the page
    assert c["parent_pfn"] == c["before"]  # the parent's later write reused it in place
    assert c["parent_data"] == b"PARENT" and c["child_data"] == b"child!"
    rec = stages[5].recorder
    assert rec is not None
    if rec.find("do_wp_page"):  # the fault path is traced: the trace agrees with the page tables
        assert c["copy_traced"] and c["reuse_traced"]


def test_pid_numbers_at_two_levels(stages) -> None:  # type: ignore[no-untyped-def]
    c = stages[6].checks
    assert c["child_numbers"][1] == 1 and c["grandchild_numbers"][1] == 2
    assert c["child_numbers"][0] > 1 and c["grandchild_numbers"][0] > c["child_numbers"][0]
    nspid = [f for f in stages[6].facts if "NSpid" in f]
    assert repr("\t".join(map(str, c["child_numbers"]))) in nspid[0]
    assert repr("\t".join(map(str, c["grandchild_numbers"]))) in nspid[1]


def test_vfork_and_thread_stages(stages) -> None:  # type: ignore[no-untyped-def]
    assert stages[7].checks == {"shares_mm": True, "asleep": "TASK_KILLABLE", "after": "TASK_RUNNING"}
    t = stages[8].checks
    assert t["tgid"] == 1 and t["nr_threads"] == 2 and t["exit_signal"] == -1


def test_the_failure_unwinds_through_bad_fork_labels_and_leaves_nothing(stages) -> None:  # type: ignore[no-untyped-def]
    c = stages[9].checks
    assert c["errno"] == errno.ENOMEM and c["before"] == c["after"]
    assert c["labels"] and all(label.startswith("bad_fork") for label in c["labels"])
    assert c["labels"][-1] == "bad_fork_free"  # the first step's undo runs last


def test_render_shows_every_fact_and_is_deterministic(stages) -> None:  # type: ignore[no-untyped-def]
    def text() -> str:
        console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        render_stages(build_stages(), console)
        return console.export_text()

    first = text()
    assert first == text()
    for s in stages.values():
        assert s.title in first
        for fact in s.facts:
            assert fact in first


def test_the_html_tour_has_every_stage(stages) -> None:  # type: ignore[no-untyped-def]
    page = stages_html(list(stages.values()))
    HTMLParser().feed(page)
    for s in stages.values():
        assert f"{s.number}. " in page
    assert "<script src" not in page and "stylesheet" not in page
