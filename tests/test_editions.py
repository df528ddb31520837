"""QuickBooks editions (US, CA, UK, AU): Intuit's annotated reference decides which elements each accepts.

The simulator refuses what its edition lacks; a session with a Canadian, UK or Australian company file
posts every kind with requests that edition accepts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.sandbox.quickbooks.editions import annotated_file, unavailable_elements
from mlconnector.sandbox.quickbooks.records import ProcessRequestError
from mlconnector.store.postings import postings_for_report

from .test_posting_e2e import _config, _expense, _queue, _report, _run, serving

CURRENCY = {"US": "USD", "CA": "CAD", "UK": "GBP", "AU": "AUD"}


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")


def _table(reference_dir: Path) -> dict[tuple[str, ...], frozenset[str]]:
    return unavailable_elements(str(annotated_file(reference_dir / "qbxml", "13.0")))


def test_the_annotations_are_read_per_element_and_edition(reference_dir: Path) -> None:
    table = _table(reference_dir)
    assert {"QBD", "QBCA", "QBUK", "QBAU"} <= table[("JournalEntryAddRq", "JournalEntryAdd", "Memo")]
    assert table[("VendorQueryRq", "ClassFilter")] == frozenset({"QBAU", "QBOE"})
    assert ("BillAddRq", "BillAdd", "VendorRef") not in table  # every edition takes a vendor


def _message(body: str) -> str:
    return f'<?xml version="1.0"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="stopOnError">{body}' \
           "</QBXMLMsgsRq></QBXML>"


VENDORS_BY_CLASS = _message('<VendorQueryRq requestID="1"><ClassFilter><FullName>Admin</FullName></ClassFilter>'
                            "</VendorQueryRq>")


@pytest.mark.parametrize(("country", "accepted"), [("US", True), ("CA", True), ("AU", False)])
def test_the_simulator_refuses_an_element_its_edition_lacks(
    qb: QuickBooksSimulator, country: str, accepted: bool
) -> None:
    qb.country = country
    if accepted:
        assert "VendorQueryRs" in qb.process_request(VENDORS_BY_CLASS)
        return
    with pytest.raises(ProcessRequestError):
        qb.process_request(VENDORS_BY_CLASS)
    assert "not in the AU edition: VendorQueryRq/ClassFilter" in qb.parse_errors[-1]


def test_a_journal_entry_header_memo_is_refused_by_every_desktop_edition(qb: QuickBooksSimulator) -> None:
    line = "<AccountRef><FullName>Travel</FullName></AccountRef><Amount>1.00</Amount>"
    memo = _message(f'<JournalEntryAddRq requestID="1"><JournalEntryAdd><Memo>x</Memo>'
                    f"<JournalDebitLine>{line}</JournalDebitLine><JournalCreditLine>{line}</JournalCreditLine>"
                    "</JournalEntryAdd></JournalEntryAddRq>")
    with pytest.raises(ProcessRequestError):
        qb.process_request(memo)
    assert "not in the US edition: JournalEntryAddRq/JournalEntryAdd/Memo" in qb.parse_errors[-1]


@pytest.mark.slow
@pytest.mark.parametrize("country", ["CA", "UK", "AU"])
@pytest.mark.parametrize("mode", ["bill", "journal", "check"])
def test_a_session_with_another_edition_posts_every_report_with_requests_it_accepts(
    tmp_path: Path, qb: QuickBooksSimulator, country: str, mode: str
) -> None:
    qb.country = country
    reports = tuple(dataclasses.replace(r, currency=CURRENCY[country]) for r in (
        _report("R00Ann1", "ann@example.com", _expense(1, "412.30"), _expense(2, "58.00", "Meals and Entertainment")),
        _report("R00Bob1", "bob@example.com", _expense(5, "75.25", "Office Supplies", tags=("Admin",))),
    ))
    config = _config(mode, **({"check_account": "Checking"} if mode == "check" else {}))
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, reports)
        summary = _run(url, qb)
        states = {r.report_id: {p.state.value for p in postings_for_report(store, r.report_id)} for r in reports}
    assert summary.stopped == "done", summary
    assert qb.parse_errors == []
    assert states == {"R00Ann1": {"posted"}, "R00Bob1": {"posted"}}, states
    kind = {"bill": "Bill", "journal": "JournalEntry", "check": "Check"}[mode]
    assert sorted((t.kind, t.ref_number) for t in qb.transactions) == [(kind, "R00Ann1"), (kind, "R00Bob1")]
