"""Stages 2 and 3: the QuickBooks lists (whole, when stale) or a re-query of the names queued postings use.

A posting that references a missing or inactive account, vendor, class or customer is blocked, naming
it; only postings verified in this session may be written in it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any

from mlconnector.models import ListKind
from mlconnector.qbxml.build import Request, build_message, list_query
from mlconnector.qbxml.company import company_queries
from mlconnector.qbxml.parse import ListRecord, MessageResponse, RequestResponse
from mlconnector.soap.work.core import (
    ACTOR,
    COMPANY_REASON,
    REPLAN_BUDGET,
    REPLAN_CHUNK,
    REPLAN_KEY,
    LIST_PAGE,
    LISTS_REFRESH_KEY,
    LISTS_REFRESHED_KEY,
    PAGED_LISTS,
    S,
    WorkBase,
    fix_hint,
    log,
)
from mlconnector.store import messages, qb_lists
from mlconnector.store.audit import AuditEvent
from mlconnector.store.company import company_file
from mlconnector.store.messages import Kind, Message
from mlconnector.store.postings import PostingRecord, move_unsent_date, transition
from mlconnector.store.reports import load_report


class ListsAndVerify(WorkBase):
    """Stages 2 and 3: the QuickBooks lists (whole, when stale) or a re-query of the names queued postings use."""

    def _lists(self, ticket: str, version: str) -> str | None:
        refresh = self._refresh()
        if refresh.get("ticket") == ticket and refresh.get("pending"):
            # The next pages: QuickBooks keeps an iterator only for its own session, so finish it now.
            requests = [
                list_query(ListKind(kind), None, f"l-{kind}", version, iterator="Continue", iterator_id=iterator_id,
                           max_returned=LIST_PAGE)
                for kind, iterator_id in sorted(refresh["pending"].items())
            ]
            xml = build_message(requests, version=version, on_error="continueOnError")
            return self._store_message(ticket, Kind.LISTS, xml, [], [])
        if self._done(ticket, Kind.LISTS) or not self._lists_stale():
            return None
        counts = self.store.open_posting_counts()
        if not (counts[S.QUEUED] or counts[S.BLOCKED]):
            return None
        requests = [
            # Vendors and customers can run to tens of thousands: paged, so no answer grows past the body cap.
            list_query(kind, None, f"l-{kind.value}", version, iterator="Start", max_returned=LIST_PAGE)
            if kind in PAGED_LISTS else list_query(kind, None, f"l-{kind.value}", version)
            for kind in ListKind
        ] + (company_queries() if self._company_unknown(ticket) else [])
        xml = build_message(requests, version=version, on_error="continueOnError")
        with self.store.atomic():
            self._save_refresh({"ticket": ticket, "stamp": self.store.timestamp(), "pending": {}, "done": [],
                                "counts": {}})
            return self._store_message(ticket, Kind.LISTS, xml, [], [])

    def _on_lists(self, message: Message, parsed: MessageResponse) -> None:
        refresh = self._refresh()
        stamp = str(refresh.get("stamp") or self.store.timestamp())
        pending: dict[str, str] = dict(refresh.get("pending") or {})
        done: set[str] = set(refresh.get("done") or [])
        counts: dict[str, int] = dict(refresh.get("counts") or {})
        with self.store.atomic():
            for answer in parsed.responses:
                kind = _list_kind(answer)
                if kind is None:
                    continue
                pending.pop(kind.value, None)
                if not answer.action.processed:
                    log.warning("QuickBooks did not return the %s list: %s %s", kind.value, answer.status_code,
                                answer.status_message)
                    continue
                qb_lists.cache_records(self.store, answer.records, stamp)
                counts[kind.value] = counts.get(kind.value, 0) + len(answer.records)
                if answer.iterator_remaining_count:
                    pending[kind.value] = answer.iterator_id or ""
                else:
                    done.add(kind.value)
            self._save_refresh({**refresh, "pending": pending, "done": sorted(done), "counts": counts})
        if pending:
            return  # more pages; the lists are judged complete only after the last one
        with self.store.atomic():
            for name in done:  # whatever was not seen in this refresh is gone from QuickBooks
                qb_lists.drop_unseen(self.store, name, stamp)
            if len(done) == len(ListKind):
                self.store.set_setting(LISTS_REFRESHED_KEY, self.now().isoformat())
            self.store.audit.append(AuditEvent.LISTS_REFRESHED, actor=ACTOR, detail=counts)
            self.store.delete_setting(LISTS_REFRESH_KEY)
        # Fallbacks (same-named account, vendor by e-mail) may now resolve what was blocked: every unsent report
        # is planned again, a chunk per call (see REPLAN_KEY), its postings checked against the new lists.
        from mlconnector.services.queue import unsent_reports

        waiting = unsent_reports(self.store)
        with self.store.atomic():
            self.store.set_setting(REPLAN_KEY, json.dumps({"message": message.id, "reports": waiting}))
        records = qb_lists.cached_records(self.store)  # read once: re-planning and the check both use them
        # Postings of reports that wait to be planned again are checked with their chunk; the others now.
        replanned = set(waiting)
        self._check_postings(message, [p for p in self._candidates() if p.report_id not in replanned],
                             self._cached_lookup(records))
        self._replan_step(message.ticket, records, message)

    def _replan_step(self, ticket: str, records: list[ListRecord] | None = None,
                     message: Message | None = None) -> None:
        """Plan chunks of the reports waiting for the refreshed lists until this call's time budget is spent."""
        import time

        started = time.monotonic()
        while self._replan_pending():
            self._replan_chunk(ticket, records, message)
            if time.monotonic() - started >= REPLAN_BUDGET.total_seconds():
                return

    def _replan_chunk(self, ticket: str, records: list[ListRecord] | None = None,
                      message: Message | None = None) -> None:
        """Plan the next chunk of unsent reports again with the refreshed lists, and check their postings under
        this session's latest lists or verify message (only what a session verified may be written in it;
        before this session has one, its verify stage checks them)."""
        pending = self._replan_pending()
        if not pending:
            return
        from mlconnector.services.queue import replan_unsent

        chunk, rest = pending["reports"][:REPLAN_CHUNK], pending["reports"][REPLAN_CHUNK:]
        records = qb_lists.cached_records(self.store) if records is None else records
        replan_unsent(self.store, self.config, today=self.now().date(), actor=ACTOR, records=records,
                      why="QuickBooks lists refreshed", report_ids=chunk)
        with self.store.atomic():
            if rest:
                self.store.set_setting(REPLAN_KEY, json.dumps({**pending, "reports": rest}))
            else:
                self.store.delete_setting(REPLAN_KEY)
        if message is None:  # a later call: the session's latest answered lists or verify message
            check = messages.latest_check(self.store, ticket)
            if check is None:
                return
            message = messages.get_message(self.store, check)
        wanted = set(chunk)
        self._check_postings(message, [p for p in self._candidates() if p.report_id in wanted],
                             self._cached_lookup(records))

    def _verify(self, ticket: str, version: str) -> str | None:
        if self._done(ticket, Kind.VERIFY) or self._done(ticket, Kind.LISTS):
            return None
        candidates = self._candidates()
        if not any(p.state is S.QUEUED for p in candidates):
            if candidates and self._company_unknown(ticket):
                # Only blocked postings: ask for the company file's settings, which may free them.
                xml = build_message(company_queries(), version=version, on_error="continueOnError")
                return self._store_message(ticket, Kind.VERIFY, xml, [], [])
            return None
        requests = self._name_queries(candidates, ticket, version)
        xml = build_message(requests, version=version, on_error="continueOnError")
        return self._store_message(ticket, Kind.VERIFY, xml, [p.id for p in candidates], [])

    def _name_queries(self, candidates: Iterable[PostingRecord], ticket: str, version: str) -> list[Request]:
        """Queries for every name the postings reference, and for the company file's settings when unknown."""
        names: dict[ListKind, set[str]] = {kind: set() for kind in ListKind}
        for record in candidates:
            assert record.posting is not None
            for kind, refs in record.posting.references().items():
                names[kind] |= refs
        return [list_query(kind, sorted(refs), f"v-{kind.value}", version)
                for kind, refs in names.items() if refs] + (company_queries() if self._company_unknown(ticket) else [])

    def _on_verify(self, message: Message, parsed: MessageResponse) -> None:
        self._check_postings(message, self._existing(message.posting_ids), self._answered_lookup(parsed))

    def _answered_lookup(self, parsed: MessageResponse) -> Callable[[ListKind, str], ListRecord | None | bool]:
        """The names a re-query answered (cached as well), as a lookup for :meth:`_check_postings`."""
        found: dict[tuple[ListKind, str], ListRecord] = {}
        answered: set[ListKind] = set()
        for answer in parsed.responses:
            kind = _list_kind(answer)
            if kind is None or not answer.action.processed:
                continue
            answered.add(kind)
            for record in answer.records:
                found[(kind, record.full_name.casefold())] = record
        with self.store.atomic():
            qb_lists.cache_records(self.store, found.values(), self.store.timestamp())

        def find(kind: ListKind, name: str) -> ListRecord | None | bool:
            if kind not in answered:
                return True  # QuickBooks did not answer for this list: QuickBooks itself will judge
            return found.get((kind, name.casefold()))

        return find

    def _cached_lookup(self, records: Iterable[ListRecord]) -> Callable[[ListKind, str], ListRecord | None | bool]:
        cache = {(r.kind, r.full_name.casefold()): r for r in records}

        def find(kind: ListKind, name: str) -> ListRecord | None | bool:
            return cache.get((kind, name.casefold()))

        return find

    def _check_postings(
        self,
        message: Message,
        candidates: Iterable[PostingRecord],
        find: Callable[[ListKind, str], ListRecord | None | bool],
    ) -> None:
        verified: list[int] = []
        for record in candidates:
            if record.state not in (S.QUEUED, S.BLOCKED):
                continue
            assert record.posting is not None
            problems, seen = [], {}
            for kind, refs in record.posting.references().items():
                for name in sorted(refs):
                    hit = find(kind, name)
                    if hit is None:
                        problems.append(f'{kind.value} "{name}" does not exist in QuickBooks')
                    elif isinstance(hit, ListRecord):
                        seen[f"{kind.value}:{name}"] = {"list_id": hit.list_id, "edit_sequence": hit.edit_sequence,
                                                        "is_active": hit.is_active}
                        if not hit.is_active:
                            problems.append(f'{kind.value} "{name}" is inactive in QuickBooks')
            refused = self._company_refuses(record)
            if refused:
                reason = f"{COMPANY_REASON}{refused}"
                if record.state is S.QUEUED or record.reason != reason:
                    transition(self.store, record.id, S.BLOCKED, actor=ACTOR, reason=reason)
                continue
            if problems:
                reason = (f"QuickBooks check: {'; '.join(problems)} — make it active or create it in QuickBooks, "
                          f"or change the mapping (mlconnector map list); {fix_hint(record.report_id)}")
                if record.state is S.QUEUED or record.reason != reason:
                    transition(self.store, record.id, S.BLOCKED, actor=ACTOR, reason=reason,
                               detail={"references": seen})
                continue
            if record.state is S.BLOCKED:
                transition(self.store, record.id, S.QUEUED, actor=ACTOR, reason=None,
                           detail={"why": "QuickBooks check passed"})
            self.store.audit.append(AuditEvent.REQUERIED, actor=ACTOR, report_id=record.report_id,
                                    posting_id=record.id, detail={"references": seen})
            verified.append(record.id)
        with self.store.atomic():
            # Only verified postings may be written in this session (see _write).
            messages.mark_verified(self.store, message.id, verified)

    def _company_refuses(self, record: PostingRecord) -> str | None:
        """Why the company file's own settings refuse this posting (a sentence with the fix), or None.

        A posting dated in a closed period is moved to the next open day first, unless closed_period =
        "block". Settings QuickBooks did not report never block anything.
        """
        company = company_file(self.store)
        posting = record.posting
        assert posting is not None
        if company.get("class_tracking") is False and any(ln.klass for ln in posting.lines):
            return ("class tracking is off in this QuickBooks company file: turn it on (Edit › Preferences › "
                    "Accounting) or set quickbooks.class_tag_level = 0")
        currency = load_report(self.store, record.report_id).currency.upper()
        home = home_currency(company)
        if home is not None and currency and currency != home:
            return (f"the report is in {currency} but the company file's home currency is {home}: set the Expensify "
                    f"workspace's output currency to {home}, or enter the report in QuickBooks by hand")
        closing = company.get("closing_date")
        if closing and posting.txn_date <= dt.date.fromisoformat(str(closing)):
            if self.config.quickbooks.closed_period == "block":
                return (f"its date {posting.txn_date} is in a period closed in QuickBooks (closing date {closing}): "
                        "reopen the period, or set quickbooks.closed_period = \"next_open_day\"")
            self._move_to_open_day(record, dt.date.fromisoformat(str(closing)) + dt.timedelta(days=1))
        return None

    def _move_to_open_day(self, record: PostingRecord, day: dt.date) -> None:
        assert record.posting is not None
        note = f"dated {day} (was {record.posting.txn_date}: the period is closed in QuickBooks)"
        memo = f"{record.posting.memo} ({note})" if record.posting.memo else ""
        moved = dataclasses.replace(record.posting, txn_date=day, memo=memo)
        move_unsent_date(self.store, record.id, moved, actor=ACTOR, why=note)


def _list_kind(answer: RequestResponse) -> ListKind | None:
    prefix = answer.name.removesuffix("QueryRs").lower()
    try:
        return ListKind(prefix)
    except ValueError:
        return None

# Currency names QuickBooks uses for a home currency (HomeCurrencyRef), and each edition's own currency.
_CURRENCY_NAMES = {"us dollar": "USD", "canadian dollar": "CAD", "british pound sterling": "GBP", "euro": "EUR",
                   "australian dollar": "AUD", "pound sterling": "GBP"}
_EDITION_CURRENCY = {"US": "USD", "CA": "CAD", "UK": "GBP", "AU": "AUD"}


def home_currency(company: dict[str, Any]) -> str | None:
    """The company file's home currency as an ISO code, or None when it cannot be told."""
    if company.get("multicurrency") is True:
        return _CURRENCY_NAMES.get(str(company.get("home_currency") or "").strip().casefold())
    if company.get("multicurrency") is False or company.get("country"):
        return _EDITION_CURRENCY.get(str(company.get("country") or "US").upper())
    return None
