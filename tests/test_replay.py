from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.config import QuickBooksConfig
from mlconnector.errors import NotFoundError, RefusedError
from mlconnector.models import PostingState
from mlconnector.services.mappings import set_mapping
from mlconnector.services.queue import plan_and_queue
from mlconnector.services.replay import ReplayOutcome, ReplayResult, replay_report
from mlconnector.store import Store
from mlconnector.store.postings import PostingRecord, postings_for_report, transition
from mlconnector.store.reports import save_report

from .factories import expense, report

DAY = dt.date(2026, 4, 1)
QB = QuickBooksConfig()
S = PostingState
INVALID_REF = 'There is an invalid reference to QuickBooks Account "Travel" in the Bill.'


def _queued(store: Store, report_id: str = "R1") -> PostingRecord:
    save_report(store, report(report_id))
    set_mapping(store, "employee", "ann@example.com", "Ann Smith", actor="t")
    plan_and_queue(store, QB, today=DAY)
    (posting,) = postings_for_report(store, report_id)
    assert posting.state is S.QUEUED
    return posting


def _failed(store: Store, report_id: str = "R1") -> PostingRecord:
    posting = _queued(store, report_id)
    transition(store, posting.id, S.SENT, actor="qbwc", message_set_id="mlc-1", request_id="7")
    return transition(store, posting.id, S.FAILED, actor="qbwc", qb_status_code=3140,
                      qb_status_message=INVALID_REF, reason="QuickBooks refused the bill")


def _posted(store: Store, report_id: str = "R1") -> PostingRecord:
    posting = _queued(store, report_id)
    transition(store, posting.id, S.SENT, actor="qbwc", message_set_id="mlc-1", request_id="7")
    return transition(store, posting.id, S.POSTED, actor="qbwc", txn_id="1A-2", edit_sequence="171")


def _replay(store: Store, report_id: str = "R1", **kwargs: object) -> ReplayResult:
    return replay_report(store, QB, report_id, today=DAY, actor="cli:test", **kwargs)  # type: ignore[arg-type]


def _events(store: Store, report_id: str = "R1") -> list[str]:
    return [r.event for r in store.audit.rows(report_id=report_id)]


def test_a_failed_report_replayed_after_fixing_its_mapping_is_queued_exactly_once(store: Store) -> None:
    _failed(store)
    set_mapping(store, "category", "Travel", "Travel:Airfare", actor="t")
    result = _replay(store)
    assert result.outcome is ReplayOutcome.QUEUED and result.queued == 1 and result.replanned
    (posting,) = postings_for_report(store, "R1")
    assert posting.state is S.QUEUED and posting.qb_status_code is None
    assert posting.posting is not None and posting.posting.lines[0].account == "Travel:Airfare"
    assert _events(store).count("replayed") == 1 and _events(store)[-1] == "queued"
    again = _replay(store)
    assert again.outcome is ReplayOutcome.ALREADY_QUEUED
    assert [p.id for p in postings_for_report(store, "R1")] == [posting.id]


def test_a_failed_report_with_an_unchanged_plan_goes_back_to_queued_as_the_same_posting(store: Store) -> None:
    failed = _failed(store)
    result = _replay(store)
    assert result.outcome is ReplayOutcome.QUEUED and result.queued == 1 and not result.replanned
    (posting,) = postings_for_report(store, "R1")
    assert posting.id == failed.id and posting.state is S.QUEUED
    assert (posting.qb_status_code, posting.qb_status_message, posting.message_set_id) == (None, None, None)
    last = store.audit.rows(report_id="R1")[-1]
    assert (last.event, last.detail["from"]) == ("replayed", "failed")
    assert last.detail["previous_failure"] == f"QuickBooks 3140: {INVALID_REF}"


def test_a_blocked_report_is_planned_again_with_the_new_mapping(store: Store) -> None:
    save_report(store, report("R1"))
    plan_and_queue(store, QB, today=DAY)
    assert postings_for_report(store, "R1")[0].state is S.BLOCKED
    still = _replay(store)
    assert still.outcome is ReplayOutcome.BLOCKED and "ann@example.com" in still.reasons[0]
    assert postings_for_report(store, "R1")[0].state is S.BLOCKED
    set_mapping(store, "employee", "ann@example.com", "Ann Smith", actor="t")
    result = _replay(store)
    assert result.outcome is ReplayOutcome.QUEUED and result.queued == 1
    (posting,) = postings_for_report(store, "R1")
    assert posting.state is S.QUEUED and posting.posting is not None and posting.posting.vendor == "Ann Smith"
    assert _events(store).count("replayed") == 2


def test_a_posted_report_is_refused_without_force_and_nothing_changes(store: Store) -> None:
    _posted(store)
    rows = len(store.audit.rows())
    with pytest.raises(RefusedError, match=r"report R1 is already in QuickBooks \(TxnID 1A-2\)") as caught:
        _replay(store)
    assert caught.value.hint and "--force" in caught.value.hint
    assert postings_for_report(store, "R1")[0].state is S.POSTED and len(store.audit.rows()) == rows


def test_a_forced_replay_puts_a_posted_report_in_doubt_without_its_old_message_set(store: Store) -> None:
    _posted(store)
    result = _replay(store, force=True)
    assert result.outcome is ReplayOutcome.RECHECK and result.rechecked == (("R1", "1A-2"),)
    (posting,) = postings_for_report(store, "R1")
    assert posting.state is S.IN_DOUBT
    assert (posting.message_set_id, posting.request_id, posting.txn_id) == (None, None, "1A-2")
    last = store.audit.rows(report_id="R1")[-1]
    assert (last.event, last.detail["from"]) == ("replayed", "posted")
    with pytest.raises(RefusedError, match="being posted"):
        _replay(store, force=True)


def test_a_report_being_posted_is_refused(store: Store) -> None:
    posting = _queued(store)
    transition(store, posting.id, S.SENT, actor="qbwc")
    with pytest.raises(RefusedError, match=r"report R1 is being posted \(part 1/1 sent\); the next Web Connector"):
        _replay(store, force=True)


def test_a_report_changed_after_posting_is_refused_even_with_force(store: Store) -> None:
    _posted(store)
    save_report(store, report("R1", expense(1, "99.00")))
    with pytest.raises(RefusedError, match="changed in Expensify after QuickBooks got it"):
        _replay(store, force=True)
    assert postings_for_report(store, "R1")[0].state is S.POSTED


def test_an_unknown_report_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="report nope is not in the state file"):
        _replay(store, "nope")


def test_a_report_planned_to_nothing_is_planned_again_on_replay(store: Store) -> None:
    save_report(store, report("R1", expense(1, reimbursable=False)))
    plan_and_queue(store, QB, today=DAY)
    result = _replay(store)
    assert result.outcome is ReplayOutcome.NOTHING_TO_POST and result.reasons
    assert postings_for_report(store, "R1") == []


# --------------------------------------------------------------------------------------- CLI


def _state(home: Path) -> Store:
    return Store.open(home / "state.db")


def test_replay_cli_queues_a_failed_report_and_says_so(cli: CliRunner, home: Path) -> None:
    store = _state(home)
    _failed(store)
    store.close()
    result = cli.invoke(app, ["replay", "R1"])
    assert result.exit_code == 0, result.output
    assert result.output == ("Report R1: queued 1 posting(s) for the next Web Connector session"
                             " (same plan as before).\n")


def test_replay_cli_refuses_a_posted_report_in_one_line_and_changes_nothing(cli: CliRunner, home: Path) -> None:
    store = _state(home)
    _posted(store)
    rows = len(store.audit.rows())
    store.close()
    result = cli.invoke(app, ["replay", "R1"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: report R1 is already in QuickBooks (TxnID 1A-2) — pass --force to have the next Web Connector"
        " session look it up by RefNumber R1 and post it only if QuickBooks no longer has it\n"
    )
    store = _state(home)
    assert postings_for_report(store, "R1")[0].state is S.POSTED and len(store.audit.rows()) == rows
    store.close()


def test_replay_cli_with_force_puts_the_report_in_doubt(cli: CliRunner, home: Path) -> None:
    store = _state(home)
    _posted(store)
    store.close()
    result = cli.invoke(app, ["replay", "R1", "--force"])
    assert result.exit_code == 0, result.output
    assert "asks QuickBooks for RefNumber R1 (was TxnID 1A-2) and posts it only if" in result.output
    store = _state(home)
    (posting,) = postings_for_report(store, "R1")
    assert posting.state is S.IN_DOUBT and posting.message_set_id is None
    assert store.audit.rows(report_id="R1")[-1].actor.startswith("cli")
    store.close()


def test_replay_cli_exits_1_in_one_line_for_an_unknown_report(cli: CliRunner) -> None:
    result = cli.invoke(app, ["replay", "R404"])
    assert result.exit_code == 1
    assert result.output == ("Error: report R404 is not in the state file — check the ID with mlconnector status,"
                             " or pull it with mlconnector pull --report R404\n")


def test_replay_cli_exits_4_when_the_report_stays_blocked(cli: CliRunner, home: Path) -> None:
    store = _state(home)
    save_report(store, report("R1"))
    plan_and_queue(store, QB, today=DAY)
    store.close()
    result = cli.invoke(app, ["replay", "R1"])
    assert result.exit_code == 4
    assert result.output.startswith("Report R1 is still blocked:\n  report R1") and "map set employee" in result.output


def test_a_report_edited_while_out_and_refused_by_quickbooks_points_to_pull_report(store: Store) -> None:
    posting = _queued(store)
    transition(store, posting.id, S.SENT, actor="qbwc")
    save_report(store, report("R1", expense(1, "99.00")))  # flagged while it was out
    transition(store, posting.id, S.FAILED, actor="qbwc", reason="refused")
    with pytest.raises(RefusedError, match="edited in Expensify while it was being posted") as info:
        _replay(store)
    assert info.value.hint == "fetch the edited version with mlconnector pull --report R1; it is planned again"


def test_a_report_with_a_posted_part_and_a_refused_part_requeues_only_the_refused_part(store: Store) -> None:
    from dataclasses import replace

    small = replace(QB, max_lines_per_txn=1)
    save_report(store, report("R1"))
    set_mapping(store, "employee", "ann@example.com", "Ann Smith", actor="t")
    plan_and_queue(store, small, today=DAY)
    first, second = postings_for_report(store, "R1")
    for posting in (first, second):
        transition(store, posting.id, S.SENT, actor="qbwc")
    transition(store, first.id, S.POSTED, actor="qbwc", txn_id="TX-1")
    transition(store, second.id, S.FAILED, actor="qbwc", qb_status_code=3180, qb_status_message="closed period")
    result = replay_report(store, small, "R1", today=DAY, actor="cli:test")
    assert result.outcome is ReplayOutcome.QUEUED and result.queued == 1
    assert [p.state for p in postings_for_report(store, "R1")] == [S.POSTED, S.QUEUED]
    assert postings_for_report(store, "R1")[0].txn_id == "TX-1"
