"""What every phase of the posting work shares: the state it reads, stored messages, progress.

See the package docstring for the phases. Everything is decided from the state file on every call
(never from memory), so a restarted server picks up exactly where it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mlconnector.config import Config
from mlconnector.errors import NotFoundError
from mlconnector.models import ListKind, PostingMode, PostingState
from mlconnector.qbxml.company import parse_company_file
from mlconnector.qbxml.parse import RequestResponse, TxnRecord
from mlconnector.qbxml.status import Action
from mlconnector.redact import ticket_ref
from mlconnector.store import Store, failures, messages
from mlconnector.store import ledger as txn_ledger
from mlconnector.store.audit import AuditEvent
from mlconnector.store.company import company_file, remember_company_file
from mlconnector.store.ledger import KnownTxn
from mlconnector.store.messages import Kind, Message
from mlconnector.store.postings import (
    Move,
    PostingRecord,
    get_posting,
    ids_in_state,
    light_in_state,
    postings_in,
    transition,
    transition_many,
)

log = logging.getLogger("mlconnector.soap.work")

ACTOR = "serve"
S = PostingState

# Lists older than this are fetched whole again when reports are blocked or postings are queued.
LIST_MAX_AGE = dt.timedelta(hours=6)
LISTS_REFRESHED_KEY = "qb_lists_refreshed_at"
# A report blocked by the company file's settings (class tracking, currency, closing date) is re-checked
# this often, so turning class tracking on in QuickBooks lets it post within the hour. Not more often:
# each check is a Web Connector update, which may open QuickBooks.
COMPANY_RECHECK_AFTER = dt.timedelta(hours=1)
COMPANY_REASON = "QuickBooks check: the company file's settings: "
DECIDING_SETTINGS = ("class_tracking", "closing_date", "multicurrency", "home_currency", "country")
LISTS_REFRESH_KEY = "qb_lists_refresh"  # a refresh under way: its session, stamp and open iterators
# After a refresh, unsent reports are planned again with the new lists a chunk per Web Connector call, so no
# call grows with the backlog (5,000 blocked reports in one call would take seconds). The pending reports and
# the lists message whose check they join are kept here, so a new session (or a restarted serve) goes on.
REPLAN_KEY = "qb_lists_replan"
REPLAN_CHUNK = 50
# Chunks are planned until this much time has gone in a call: a usual backlog is done in the lists answer
# itself (no extra round trips), a huge one (thousands of reports) is spread over the following calls.
REPLAN_BUDGET = dt.timedelta(milliseconds=250)
LIST_PAGE = 500  # vendors/customers per page (about 150 KB of qbXML)
PAGED_LISTS = frozenset({ListKind.VENDOR, ListKind.CUSTOMER})  # the lists QuickBooks can page (QBXML.md §3)
# QuickBooks rejects a request it cannot parse before it runs any of it (QBXML.md §4).
NOTHING_APPLIED_HRESULTS = frozenset({"0x80040400"})
# A posting whose requests QuickBooks refuses whole this many sessions in a row, with the same hresult
# and message, is failed with that code: retrying a request QuickBooks cannot read would loop for ever.
FAILURE_STREAK_LIMIT = 3


def fix_hint(report_id: str) -> str:
    """The command a person runs once the cause is fixed."""
    return f"then run: mlconnector replay {report_id}"


class WorkBase:
    """The state and bookkeeping every phase uses.

    Args:
        store: the state file.
        config: the configuration (line budgets, posting rules for re-planning).
        now: the clock.
    """

    def __init__(self, store: Store, config: Config, now: Callable[[], dt.datetime] | None = None) -> None:
        self.store = store
        self.config = config
        self.now = now or store.now
        self._notes: dict[str, str] = {}  # per ticket: what the last whole-request failure means

    def _store_message(
        self, ticket: str, kind: Kind, xml: bytes, posting_ids: Sequence[int], request_ids: Sequence[str],
        *, message_set_id: str | None = None,
    ) -> str:
        text = xml.decode("utf-8")
        with self.store.atomic():
            message_id = messages.insert_message(self.store, ticket, kind, text, posting_ids, request_ids,
                                                 message_set_id)
            transition_many(self.store, [
                Move(pid, S.SENT, {"request_id": rid, "message_set_id": message_set_id}, expect=S.QUEUED)
                for pid, rid in zip(posting_ids, request_ids)
            ], actor=ACTOR)
            # The digest in the hash-chained audit log lets `audit verify` prove the stored text unchanged.
            self.store.audit.append(AuditEvent.MESSAGE_SENT, actor=ACTOR, detail={
                "message": message_id, "kind": kind.value, "session": ticket_ref(ticket),
                "message_set_id": message_set_id, "postings": len(posting_ids), "request_sha256": sha256_hex(text)})
        return text

    def _in_flight(self, ticket: str) -> Message | None:
        return messages.in_flight(self.store, ticket)

    def _finish(self, message: Message, state: str, *, response: str | None = None, hresult: str | None = None,
                error: str | None = None) -> None:
        messages.finish_message(self.store, message.id, state, response=response, hresult=hresult, error=error)
        if response is not None or hresult:
            self.store.audit.append(AuditEvent.MESSAGE_ANSWERED, actor=ACTOR, detail={
                "message": message.id, "kind": message.kind.value, "state": state,
                **({"response_sha256": sha256_hex(response)} if response is not None else {}),
                **({"hresult": hresult} if hresult else {})})

    def _unreadable(self, message: Message, response: str, error: str) -> None:
        with self.store.atomic():
            if message.kind is Kind.WRITE:
                for posting_id in self._still(message, S.SENT):
                    transition(self.store, posting_id, S.IN_DOUBT, actor=ACTOR,
                               reason=f"QuickBooks' answer could not be read ({error}); it will be checked first")
            self._finish(message, "failed", response=response, error=error)

    def _still(self, message: Message, state: PostingState) -> list[int]:
        return ids_in_state(self.store, message.posting_ids, state)

    def _light(self, message: Message, state: PostingState) -> list[tuple[int, str, str | None, str, int]]:
        """(id, report ID, requestID, RefNumber, part) of the message's postings still in ``state``."""
        return light_in_state(self.store, message.posting_ids, state)

    def _done(self, ticket: str, kind: Kind) -> bool:
        return messages.sent_in_session(self.store, ticket, kind)

    def _progress(self, ticket: str) -> int:
        written = messages.written_in_session(self.store, ticket)
        left = self._left(ticket)
        if left == 0:
            return 100
        return min(99, int(100 * written / (written + left)))

    def _left(self, ticket: str) -> int:
        replan = self._replan_pending()
        if replan:
            return max(1, len(replan["reports"]))  # reports still to plan with the new lists
        refresh = self._refresh()
        if refresh.get("ticket") == ticket and refresh.get("pending"):
            # List pages still to fetch: the session must go on (then re-planning may queue reports).
            counts = self.store.open_posting_counts()
            return max(1, counts[S.QUEUED] + counts[S.BLOCKED])
        counts = self.store.open_posting_counts()
        checkable = self._checkable_in_doubt(counts[S.IN_DOUBT])
        pending = counts[S.QUEUED]
        if not self._done(ticket, Kind.RECOVERY_QUERY):
            pending += checkable
        # A bill written in this session may make its payment due: the session must not end before it goes.
        payments = self._payments_left(ticket)
        if payments:
            return int(messages.verified_left(self.store, ticket)) + payments
        if pending and (self._done(ticket, Kind.VERIFY) or self._done(ticket, Kind.LISTS)):
            verified_left = messages.verified_left(self.store, ticket)
            return int(verified_left) + (0 if self._done(ticket, Kind.RECOVERY_QUERY) else checkable)
        if not pending and counts[S.BLOCKED] and self._lists_stale() and not self._done(ticket, Kind.LISTS):
            return 1  # the lists (and company settings) are due: the refresh may free blocked postings
        return int(pending)

    def _payments_left(self, ticket: str) -> int:
        """Bill payments still to queue or check in this session (``Payments`` knows; none here)."""
        return 0

    def _checkable_in_doubt(self, in_doubt: int) -> int:
        """In-doubt postings whose check QuickBooks has not refused too often (the others wait for a person)."""
        if not in_doubt:
            return 0
        return sum(1 for p in postings_in(self.store, S.IN_DOUBT)
                   if (run := failures.streak(self.store, p.id, Kind.RECOVERY_QUERY.value)) is None
                   or run[2] < FAILURE_STREAK_LIMIT)

    def _existing(self, posting_ids: Iterable[int]) -> list[PostingRecord]:
        """The postings that still exist: a concurrent pull or mapping change may have re-planned some."""
        found = []
        for posting_id in posting_ids:
            try:
                found.append(get_posting(self.store, posting_id))
            except NotFoundError:
                log.info("posting %s was re-planned while its check was out; skipped", posting_id)
        return found

    def _candidates(self) -> list[PostingRecord]:
        """Queued postings, and postings blocked by an earlier check that may pass now."""
        return [
            p for p in postings_in(self.store, S.QUEUED, S.BLOCKED)
            if p.posting is not None and p.mode is not PostingMode.BILL_PAYMENT  # checked by their own stage
            and (p.state is S.QUEUED or (p.reason or "").startswith("QuickBooks check:"))
        ]

    def _posted(self, record: PostingRecord, answer: RequestResponse, *, event: AuditEvent, how: str | None,
                ticket: str) -> None:
        transition(
            self.store, record.id, S.POSTED, actor=ACTOR, event=event, txn_id=answer.txn_id,
            edit_sequence=answer.edit_sequence, txn_line_ids=json.dumps(answer.txn_line_ids),
            qb_status_code=answer.status_code, reason=None,
            qb_status_message=answer.status_message if answer.action is Action.WARNING else None,
            detail={"how": how} if how else None,
        )
        if answer.action is Action.WARNING:
            self.store.audit.append(AuditEvent.WARNING, actor=ACTOR, report_id=record.report_id,
                                    posting_id=record.id,
                                    detail={"code": answer.status_code, "message": answer.status_message})
        self._learn([known_txn(record.id, answer.txns[0])], how=txn_ledger.RECOVERED, ticket=ticket)

    @staticmethod
    def _posted_move(posting_id: int, answer: RequestResponse, how: str | None = None,
                     event: AuditEvent | None = None) -> Move:
        return Move(posting_id, S.POSTED, {
            "txn_id": answer.txn_id, "edit_sequence": answer.edit_sequence,
            "txn_line_ids": json.dumps(answer.txn_line_ids), "qb_status_code": answer.status_code, "reason": None,
            "qb_status_message": answer.status_message if answer.action is Action.WARNING else None,
        }, detail={"how": how} if how else None, event=event)

    def _learn(self, txns: Sequence[KnownTxn], *, how: str, ticket: str) -> list[txn_ledger.Duplicate]:
        found = txn_ledger.learn(self.store, txns, how=how, ticket_ref=ticket_ref(ticket), actor=ACTOR)
        for dup in found:
            log.error("report %s is in QuickBooks more than once: %s", dup.report_id, dup.fix)
        return found

    def _remember_company(self, answer: str, ticket: str) -> None:
        """Keep what QuickBooks says about the company file (class tracking, closing date, edition).

        ``answer`` is the Web Connector's strHCPResponse, or QuickBooks' answer to :func:`company_queries`.
        """
        company = parse_company_file(answer)
        if company is None:
            log.warning("the Host/Company/Preferences answer could not be read; posting goes on")
            return
        settings = company.as_dict()
        before = company_file(self.store)
        if before and any(before.get(key) != settings[key] for key in DECIDING_SETTINGS):
            # Postings the old settings blocked may pass now (and queued ones may not): check them all again.
            log.info("the QuickBooks company file's settings changed: blocked reports are checked again")
            self.store.delete_setting(LISTS_REFRESHED_KEY)
        remember_company_file(self.store, {**settings, "session": ticket_ref(ticket)})

    def _lists_stale(self) -> bool:
        stamp = self.store.get_setting(LISTS_REFRESHED_KEY)
        if stamp is None:
            return True
        return self.now() - dt.datetime.fromisoformat(stamp) > LIST_MAX_AGE

    def _company_recheck_due(self) -> bool:
        """True when a posting waits on the company file's settings, last read long enough ago to ask again."""
        if not any((p.reason or "").startswith(COMPANY_REASON) for p in postings_in(self.store, S.BLOCKED)):
            return False
        read_at = company_file(self.store).get("read_at")
        if not read_at:
            return True
        return self.now() - dt.datetime.fromisoformat(str(read_at)) > COMPANY_RECHECK_AFTER

    def _company_unknown(self, ticket: str) -> bool:
        """True until this session has read the company file's settings (then ask with company_queries)."""
        return company_file(self.store).get("session") != ticket_ref(ticket)

    def _class_tracking_off(self) -> bool:
        """True only when QuickBooks said so: an unknown setting never blocks a posting."""
        return company_file(self.store).get("class_tracking") is False

    def _refresh(self) -> dict[str, Any]:
        try:
            data = json.loads(self.store.get_setting(LISTS_REFRESH_KEY) or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _replan_pending(self) -> dict[str, Any]:
        try:
            data = json.loads(self.store.get_setting(REPLAN_KEY) or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) and data.get("reports") else {}

    def _save_refresh(self, refresh: dict[str, Any]) -> None:
        self.store.set_setting(LISTS_REFRESH_KEY, json.dumps(refresh, sort_keys=True))


def known_txn(posting_id: int, txn: TxnRecord) -> KnownTxn:
    return KnownTxn(posting_id, txn.txn_id, txn.txn_type, txn.ref_number, txn.edit_sequence)


def answer_matches(ref_number: str, guid: str, txn: TxnRecord) -> bool:
    """The transaction carries this posting's RefNumber, and its ExternalGUID where QuickBooks returns one.

    An answer with neither proves nothing either way; it is taken as before (by requestID), since sending
    it to recovery by RefNumber could not find it and would write it again.
    """
    # A check to be printed is sent without a RefNumber: QuickBooks may give it one; only the GUID counts.
    if ref_number and txn.ref_number is not None and txn.ref_number.casefold() != ref_number.casefold():
        return False
    return txn.external_guid is None or txn.external_guid.casefold() == guid.casefold()


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
