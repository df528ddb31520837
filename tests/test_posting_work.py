"""PostingWork driven directly (no HTTP): the protocol details end-to-end tests cannot easily reach."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from mlconnector.models import PostingState
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.soap.work import PostingWork
from mlconnector.store import Store
from mlconnector.store.postings import postings_for_report

from .test_posting_e2e import SAMPLE, _config, _queue

T = "ticket-1"


@pytest.fixture
def qb() -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded()


def _step(work: PostingWork, qb: QuickBooksSimulator, ticket: str = T) -> tuple[str | None, int | None]:
    request = work.next_request(ticket, "13.0", None)
    if request is None:
        return None, None
    return request, work.handle_response(ticket, qb.process_request(request))


def _until_done(work: PostingWork, qb: QuickBooksSimulator, ticket: str = T) -> list[str]:
    sent = []
    for _ in range(20):
        request, progress = _step(work, qb, ticket)
        if request is None:
            break
        sent.append(request)
        if progress == 100:
            break
    return sent


def test_the_error_recovery_status_check_repeats_the_lost_message_set_id_as_the_new_one(
    store: Store, qb: QuickBooksSimulator
) -> None:
    config = _config("bill")
    work = PostingWork(store, config)
    _queue(store, config, SAMPLE[:1])
    _step(work, qb)  # the lists
    write = work.next_request(T, "13.0", None)
    assert write is not None and "BillAddRq" in write
    qb.process_request(write)
    work.on_session_lost(T)  # the answer never came back
    check = work.next_request("ticket-2", "13.0", None)
    assert check is not None
    msgs = etree.fromstring(check.split("?>", 2)[-1].encode()).find("QBXMLMsgsRq")
    assert msgs is not None and len(msgs) == 0
    assert msgs.get("oldMessageSetID") == msgs.get("newMessageSetID") == re.search(
        r'newMessageSetID="([^"]+)"', write).group(1)  # type: ignore[union-attr]


def test_an_accepted_write_without_a_txnid_is_looked_up_not_failed(store: Store, qb: QuickBooksSimulator) -> None:
    config = _config("bill")
    work = PostingWork(store, config)
    _queue(store, config, SAMPLE[:1])
    _step(work, qb)
    write = work.next_request(T, "13.0", None)
    assert write is not None
    answer = re.sub(r"<BillRet>.*</BillRet>", "", qb.process_request(write), flags=re.S)
    work.handle_response(T, answer)
    (posting,) = postings_for_report(store, "R00Ann1")
    assert posting.state is PostingState.IN_DOUBT and "no TxnID" in (posting.reason or "")
    _until_done(work, qb, "ticket-2")  # the next session finds it by RefNumber and our ExternalGUID
    (posting,) = postings_for_report(store, "R00Ann1")
    assert posting.state is PostingState.POSTED and len(qb.bills()) == 1


def test_a_posting_re_planned_while_its_check_was_out_does_not_break_the_session(
    store: Store, qb: QuickBooksSimulator
) -> None:
    config = _config("bill")
    work = PostingWork(store, config)
    _queue(store, config, SAMPLE[:2])
    _until_done(work, qb)  # lists and first posts
    _queue(store, config, SAMPLE[2:])
    verify = work.next_request("ticket-2", "13.0", None)
    assert verify is not None and "QueryRq" in verify
    store.conn.execute("DELETE FROM postings WHERE report_id = 'R00Bob1'")  # a concurrent re-plan
    assert work.handle_response("ticket-2", qb.process_request(verify)) == 100


def test_the_session_summary_counts_each_posting_once(store: Store, qb: QuickBooksSimulator) -> None:
    config = _config("bill")
    qb.fail_next("BillAddRq", 3175, "busy")  # sent twice in the session: busy, then posted
    work = PostingWork(store, config)
    _queue(store, config, SAMPLE[2:])
    _until_done(work, qb)
    assert [p.state for p in postings_for_report(store, "R00Bob1")] == [PostingState.POSTED]
    assert work.summary(T) == "Posted 1, failed 0, in doubt 0"


def test_the_schema_files_are_not_needed_to_post(tmp_path: Path, qb: QuickBooksSimulator) -> None:
    store = Store.open(tmp_path / "state.db")
    config = _config("journal")
    _queue(store, config)
    _until_done(PostingWork(store, config), qb)
    assert len(qb.journal_entries()) == 3
    store.close()
