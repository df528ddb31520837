"""The posting logic behind the Web Connector: recover, refresh lists, verify, write, record.

Each session walks these stages. What to send next is decided from the state file every time (never
from memory), so a restarted server picks up exactly where it was::

    1. recover  postings left sent/in_doubt by an earlier session: an error-recovery status check of
                their message set, then a query by RefNumber for whatever is still unknown
                -> posted (found in QuickBooks) or queued again (absent). Never written blindly.
    2. lists    the whole account, vendor, class and customer lists when the cache is empty or stale;
                then blocked reports are planned again (name and e-mail fallbacks need the lists)
    3. verify   otherwise, the accounts, vendors, classes and customers that queued postings reference
                are queried; a posting referencing something missing or inactive is blocked, naming it
    4. write    BillAdd/JournalEntryAdd batches under max_lines_per_message, one new message-set ID
                each; the request is stored and its postings marked sent before it is returned

Only postings verified in this session are written in it. Every state change goes through
``postings.transition`` (state and audit row in one transaction).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlconnector.store.audit import AuditEvent
from mlconnector.config import Config
from mlconnector.errors import NotFoundError, QbxmlError, QbxmlParseError
from mlconnector.models import ListKind, PostingState
from mlconnector.store.postings import Move, PostingRecord, get_posting, postings_in, transition, transition_many
from mlconnector.qbxml.batch import BatchItem, build_batch
from mlconnector.store import ledger as txn_ledger
from mlconnector.qbxml.build import (
    build_message,
    external_guid,
    external_guid_for,
    list_query,
    txn_query_by_id,
    txn_query_by_ref,
    write_request,
)
from mlconnector.qbxml.parse import ListRecord, MessageResponse, RequestResponse, TxnRecord, parse_response
from mlconnector.qbxml.status import Action
from mlconnector.redact import ticket_ref
from mlconnector.soap.session import SessionSettings
from mlconnector.store import Store
from mlconnector.store.ledger import KnownTxn

log = logging.getLogger("mlconnector.soap.work")

ACTOR = "serve"
S = PostingState

# Lists older than this are fetched whole again when reports are blocked or postings are queued.
LIST_MAX_AGE = dt.timedelta(hours=6)
LISTS_REFRESHED_KEY = "qb_lists_refreshed_at"
LISTS_REFRESH_KEY = "qb_lists_refresh"  # a refresh under way: its session, stamp and open iterators
LIST_PAGE = 500  # vendors/customers per page (about 150 KB of qbXML)
PAGED_LISTS = frozenset({ListKind.VENDOR, ListKind.CUSTOMER})  # the lists QuickBooks can page (QBXML.md §3)
# QuickBooks rejects a request it cannot parse before it runs any of it (QBXML.md §4).
NOTHING_APPLIED_HRESULTS = frozenset({"0x80040400"})
# A posting whose requests QuickBooks refuses whole this many sessions in a row, with the same hresult
# and message, is failed with that code: retrying a request QuickBooks cannot read would loop for ever.
FAILURE_STREAK_LIMIT = 3


class Kind(StrEnum):
    """What a stored qbXML message was for."""

    STATUS_CHECK = "status_check"
    RECOVERY_QUERY = "recovery_query"
    LISTS = "lists"
    VERIFY = "verify"
    WRITE = "write"


@dataclass(frozen=True)
class Message:
    """A stored request (``qbxml_messages``) and the postings it concerns."""

    id: int
    ticket: str
    kind: Kind
    state: str
    message_set_id: str | None
    posting_ids: tuple[int, ...]


def _fix_hint(report_id: str) -> str:
    return f"then run: mlconnector replay {report_id}"


class PostingWork:
    """The :class:`~mlconnector.soap.session.Work` that posts queued reports.

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

    # ------------------------------------------------------------------ the Work protocol

    def has_work(self) -> bool:
        """Something is queued, sent, in doubt, or blocked while the lists are stale."""
        counts = self.store.posting_counts()
        if counts[S.QUEUED] or counts[S.SENT] or counts[S.IN_DOUBT]:
            return True
        return bool(counts[S.BLOCKED]) and self._lists_stale()

    def next_request(self, ticket: str, qbxml_version: str, hcp_response: str | None) -> str | None:
        """The next qbXML request of this session, stored before it is returned; None when done."""
        self._sweep_stale_sent(ticket)
        for stage in (self._status_check, self._recovery_query, self._lists, self._verify, self._write):
            request = stage(ticket, qbxml_version)
            if request is not None:
                return request
        return None

    def handle_response(self, ticket: str, response: str) -> int:
        """Record QuickBooks' answer to the message in flight; returns progress."""
        message = self._in_flight(ticket)
        if message is None:
            log.warning("a response arrived for a session with no request in flight")
            return self._progress(ticket)
        try:
            parsed = parse_response(response)
        except QbxmlParseError as exc:
            self._unreadable(message, response, str(exc))
            return self._progress(ticket)
        handler = {
            Kind.STATUS_CHECK: self._on_recovered,
            Kind.RECOVERY_QUERY: self._on_recovery_query,
            Kind.LISTS: self._on_lists,
            Kind.VERIFY: self._on_verify,
            Kind.WRITE: self._on_written,
        }[message.kind]
        handler(message, parsed)
        self._clear_streaks(message)
        self._finish(message, "answered", response=response)
        return self._progress(ticket)

    def handle_failure(self, ticket: str, hresult: str, message_text: str) -> int:
        """QuickBooks could not process the message at all: its postings are retried, then failed.

        Writes go in doubt (recovery asks QuickBooks before anything is written again). After
        :data:`FAILURE_STREAK_LIMIT` identical failures in a row a posting QuickBooks cannot hold is
        failed with the code; one QuickBooks may hold (in doubt) is never failed blindly.
        """
        self._notes.pop(ticket, None)
        message = self._in_flight(ticket)
        if message is None:
            return self._progress(ticket)
        with self.store.atomic():
            affected = self._affected(message)
            streaks = self._count_failure(message.kind, affected, hresult, message_text)
            failed, retried, held = self._after_failure(message, streaks, hresult, message_text)
            self._finish(message, "failed", hresult=hresult, error=message_text)
        self._notes[ticket] = _failure_note(message.kind, failed, retried, held, max(streaks.values(), default=1))
        return self._progress(ticket)

    def failure_note(self, ticket: str) -> str | None:
        """What the last whole-request failure of this session means for the reports (for getLastError)."""
        return self._notes.get(ticket)

    def on_session_lost(self, ticket: str) -> None:
        """The answer to this session's request will never come: its writes are in doubt."""
        message = self._in_flight(ticket)
        if message is None:
            return
        with self.store.atomic():
            if message.kind is Kind.WRITE:
                for posting_id in self._still(message, S.SENT):
                    transition(self.store, posting_id, S.IN_DOUBT, actor=ACTOR,
                               reason="the Web Connector's answer never arrived; QuickBooks will be asked first")
            self._finish(message, "lost")

    def handle_late_response(self, ticket: str, response: str) -> str | None:
        """An answer for a message whose session was already given up (taken over, expired).

        Recorded in full. Each transaction in it settles its posting if that is still open (in doubt,
        or queued again by recovery); a posting already posted under another TxnID is a duplicate in
        QuickBooks, recorded and shown. Returns a sentence for the Web Connector, or None when the
        session had nothing outstanding to answer.
        """
        message = self._last_message(ticket)
        if message is None or message.state not in ("lost", "sent"):
            return None
        try:
            parsed = parse_response(response)
        except QbxmlParseError as exc:
            with self.store.atomic():
                self._finish(message, "late", response=response, error=str(exc))
                self.store.audit.append(AuditEvent.LATE_ANSWER, actor=ACTOR, detail={
                    "session": ticket_ref(ticket), "message": message.id, "kind": message.kind.value,
                    "problem": f"unreadable: {exc}"})
            return ("ml-connector received QuickBooks' answer after this update was given up, but could not read "
                    "it; recovery already checked its reports. See mlconnector audit --event late_answer.")
        settled = duplicates = 0
        with self.store.atomic():
            if message.kind is Kind.WRITE:
                settled, duplicates = self._apply_late_writes(message, parsed)
            self._finish(message, "late", response=response)
            self.store.audit.append(AuditEvent.LATE_ANSWER, actor=ACTOR, detail={
                "session": ticket_ref(ticket), "message": message.id, "kind": message.kind.value,
                "settled": settled, "duplicates": duplicates})
        if message.kind is not Kind.WRITE:
            return "ml-connector recorded QuickBooks' late answer to a query; nothing else to do."
        text = (f"ml-connector had given this update up before QuickBooks answered; the late answer was recorded: "
                f"{settled} report(s) settled by it")
        if duplicates:
            return text + (f", {duplicates} posted twice in QuickBooks (duplicate): run mlconnector status and void "
                           "the duplicates it names.")
        return text + ", no duplicates."

    def summary(self, ticket: str) -> str | None:
        """``Posted 3, failed 1, blocked 1, in doubt 0`` for this session."""
        counts = dict.fromkeys(("posted", "failed", "in_doubt"), 0)
        for state, n in self.store.conn.execute(
            "SELECT p.state, COUNT(DISTINCT p.id) FROM qbxml_message_items i JOIN qbxml_messages m"
            " ON m.id = i.message_id JOIN postings p ON p.id = i.posting_id WHERE m.ticket = ? AND m.kind = ?"
            " GROUP BY p.state",
            (ticket, Kind.WRITE.value),
        ):
            if state in counts:
                counts[state] = int(n)
        blocked = self.store.posting_counts()[S.BLOCKED]
        text = f"Posted {counts['posted']}, failed {counts['failed']}, in doubt {counts['in_doubt']}"
        duplicates = txn_ledger.duplicates_learned_by(self.store, ticket_ref(ticket))
        if duplicates:
            text += f"; {duplicates} DUPLICATE(S) in QuickBooks to void (mlconnector status)"
        return text + (f"; {blocked} blocked (mlconnector status)" if blocked else "")

    # ------------------------------------------------------------------ stage 1: recovery

    def _sweep_stale_sent(self, ticket: str) -> None:
        """A posting still `sent` under another session lost its answer (crash, restart)."""
        stale = self.store.conn.execute(
            "SELECT DISTINCT i.posting_id FROM qbxml_message_items i JOIN qbxml_messages m ON m.id = i.message_id"
            " JOIN postings p ON p.id = i.posting_id WHERE p.state = ? AND m.kind = ?"
            " AND (m.ticket != ? OR m.state != 'sent')",
            (S.SENT.value, Kind.WRITE.value, ticket),
        ).fetchall()
        for (posting_id,) in stale:
            transition(self.store, posting_id, S.IN_DOUBT, actor=ACTOR, expect=S.SENT,
                       reason="sent in an earlier session whose answer never arrived")

    def _status_check(self, ticket: str, version: str) -> str | None:
        if self._done(ticket, Kind.STATUS_CHECK):
            return None
        row = self.store.conn.execute(
            "SELECT message_set_id FROM postings WHERE state = ? AND message_set_id IS NOT NULL"
            " ORDER BY updated_at DESC, id DESC LIMIT 1",
            (S.IN_DOUBT.value,),
        ).fetchone()
        if row is None:
            return None
        old_id = row[0]
        doubtful = [p.id for p in postings_in(self.store, S.IN_DOUBT) if p.message_set_id == old_id]
        # old = new = X is the status check (QBXML.md §2); a fresh new ID could clear X's stored answer.
        xml = build_message([], version=version, on_error="continueOnError",
                            old_message_set_id=old_id, new_message_set_id=old_id)
        return self._store_message(ticket, Kind.STATUS_CHECK, xml, doubtful, [])

    def _recovery_query(self, ticket: str, version: str) -> str | None:
        if self._done(ticket, Kind.RECOVERY_QUERY):
            return None
        doubtful = [p for p in postings_in(self.store, S.IN_DOUBT) if p.posting is not None]
        if not doubtful:
            return None
        requests = []
        for p in doubtful:
            requests.append(txn_query_by_ref(p.mode, [p.ref_number], f"r{p.id}", version))
            if p.txn_id:  # a forced replay keeps the TxnID: the bill may have been edited, even renumbered
                requests.append(txn_query_by_id(p.mode, [p.txn_id], f"t{p.id}", version))
        xml = build_message(requests, version=version, on_error="continueOnError")
        return self._store_message(ticket, Kind.RECOVERY_QUERY, xml, [p.id for p in doubtful], [])

    def _on_recovered(self, message: Message, parsed: MessageResponse) -> None:
        answers = parsed.by_request_id()
        for posting_id in self._still(message, S.IN_DOUBT):
            record = get_posting(self.store, posting_id)
            answer = answers.get(record.request_id or "")
            if answer is None or not (answer.action.processed and answer.txn_id):
                continue
            if not _answer_matches(record.ref_number, external_guid_for(record.report_id, record.part),
                                   answer.txns[0]):
                log.warning("the stored answer for posting %s names another transaction; left to the query", posting_id)
                continue
            self._posted(record, answer, event=AuditEvent.RECOVERED,
                         how=f"error recovery of message set {message.message_set_id}", ticket=message.ticket)

    def _on_recovery_query(self, message: Message, parsed: MessageResponse) -> None:
        """Posted only when the transaction is provably ours; queued again only when nothing has its RefNumber."""
        answers = parsed.by_request_id()
        for posting_id in self._still(message, S.IN_DOUBT):
            record = get_posting(self.store, posting_id)
            assert record.posting is not None
            by_ref, by_id = answers.get(f"r{posting_id}"), answers.get(f"t{posting_id}")
            ours = external_guid(record.posting).casefold()
            same_ref = [t for t in (by_ref.txns if by_ref else ())
                        if (t.ref_number or "").casefold() == record.ref_number.casefold()]
            mine = [t for t in same_ref if (t.external_guid or "").casefold() == ours]
            kept = [t for t in (by_id.txns if by_id and by_id.action.processed else ()) if t.txn_id == record.txn_id]
            if record.txn_id and by_id is not None and by_id.action is Action.NO_MATCH:
                txn_ledger.mark_gone(self.store, posting_id, record.txn_id)  # deleted in QuickBooks by a person
            if kept or mine:
                txn, how = (kept[0], "found in QuickBooks by its TxnID") if kept else (
                    mine[0], f"found in QuickBooks by RefNumber {record.ref_number} and our ExternalGUID")
                transition(self.store, posting_id, S.POSTED, actor=ACTOR, event=AuditEvent.RECOVERED,
                           txn_id=txn.txn_id, edit_sequence=txn.edit_sequence,
                           txn_line_ids=json.dumps(txn.txn_line_ids), reason=None, detail={"how": how})
                # Two of ours with this RefNumber: QuickBooks holds the posting twice.
                self._learn([_known(posting_id, t) for t in [txn, *mine] if t is not None],
                            how=txn_ledger.RECOVERED, ticket=message.ticket)
            elif same_ref:
                # Someone else's transaction has our RefNumber: neither "ours" nor "absent" is safe to assume.
                transition(
                    self.store, posting_id, S.FAILED, actor=ACTOR, qb_status_code=None, qb_status_message=None,
                    reason=f"QuickBooks has a transaction with RefNumber {record.ref_number} that ml-connector did "
                    f"not create (TxnID {same_ref[0].txn_id}); check whether this report is already entered. If "
                    f"it is not, {_fix_hint(record.report_id)}",
                )
            elif _absent(by_ref) and (not record.txn_id or _absent(by_id)):
                self._queue_again_or_fail(record)
            else:
                answer = by_ref if by_ref is not None and not _absent(by_ref) else by_id
                status = f"{answer.status_code} {answer.status_message}" if answer else "no answer"
                self.store.audit.append(
                    AuditEvent.IN_DOUBT, actor=ACTOR, report_id=record.report_id, posting_id=posting_id,
                    detail={"reason": f"QuickBooks did not answer the check: {status}"},
                )

    def _queue_again_or_fail(self, record: PostingRecord) -> None:
        """Absent from QuickBooks: write it again, unless its writes keep failing whole (then fail it)."""
        streak = self._streak(record.id, Kind.WRITE)
        if streak is not None and streak[2] >= FAILURE_STREAK_LIMIT:
            hresult, text, count = streak
            transition(
                self.store, record.id, S.FAILED, actor=ACTOR, qb_status_code=None,
                qb_status_message=f"{hresult}: {text}",
                reason=f"QuickBooks refused the whole request {count} times in a row ({hresult}: {text}); it is "
                f"not in QuickBooks. Send the log file to support, {_fix_hint(record.report_id)}",
            )
            return
        transition(
            self.store, record.id, S.QUEUED, actor=ACTOR, event=AuditEvent.RECOVERED,
            reason=None, message_set_id=None, request_id=None,
            detail={"how": f"RefNumber {record.ref_number} is not in QuickBooks; queued again"},
        )

    # ------------------------------------------------------------------ stages 2 and 3: lists, verify

    def _lists_stale(self) -> bool:
        stamp = self.store.get_setting(LISTS_REFRESHED_KEY)
        if stamp is None:
            return True
        return self.now() - dt.datetime.fromisoformat(stamp) > LIST_MAX_AGE

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
        counts = self.store.posting_counts()
        if not (counts[S.QUEUED] or counts[S.BLOCKED]):
            return None
        requests = [
            # Vendors and customers can run to tens of thousands: paged, so no answer grows past the body cap.
            list_query(kind, None, f"l-{kind.value}", version, iterator="Start", max_returned=LIST_PAGE)
            if kind in PAGED_LISTS else list_query(kind, None, f"l-{kind.value}", version)
            for kind in ListKind
        ]
        xml = build_message(requests, version=version, on_error="continueOnError")
        with self.store.atomic():
            self._save_refresh({"ticket": ticket, "stamp": self.store.timestamp(), "pending": {}, "done": [],
                                "counts": {}})
            return self._store_message(ticket, Kind.LISTS, xml, [], [])

    def _refresh(self) -> dict[str, Any]:
        try:
            data = json.loads(self.store.get_setting(LISTS_REFRESH_KEY) or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _save_refresh(self, refresh: dict[str, Any]) -> None:
        self.store.set_setting(LISTS_REFRESH_KEY, json.dumps(refresh, sort_keys=True))

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
                self._cache(answer.records, stamp)
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
                self.store.conn.execute("DELETE FROM qb_lists WHERE kind = ? AND seen_at != ?", (name, stamp))
            if len(done) == len(ListKind):
                self.store.set_setting(LISTS_REFRESHED_KEY, self.now().isoformat())
            self.store.audit.append(AuditEvent.LISTS_REFRESHED, actor=ACTOR, detail=counts)
            self.store.conn.execute("DELETE FROM settings WHERE key = ?", (LISTS_REFRESH_KEY,))
        # Fallbacks (same-named account, vendor by e-mail) may now resolve what was blocked.
        from mlconnector.services.queue import replan_unsent

        replan_unsent(self.store, self.config, today=self.now().date(), actor=ACTOR,
                      why="QuickBooks lists refreshed")
        self._check_postings(message, self._candidates(), self._cached_lookup())

    def _verify(self, ticket: str, version: str) -> str | None:
        if self._done(ticket, Kind.VERIFY) or self._done(ticket, Kind.LISTS):
            return None
        candidates = self._candidates()
        if not any(p.state is S.QUEUED for p in candidates):
            return None
        names: dict[ListKind, set[str]] = {kind: set() for kind in ListKind}
        for record in candidates:
            assert record.posting is not None
            for kind, refs in record.posting.references().items():
                names[kind] |= refs
        requests = [list_query(kind, sorted(refs), f"v-{kind.value}", version)
                    for kind, refs in names.items() if refs]
        xml = build_message(requests, version=version, on_error="continueOnError")
        return self._store_message(ticket, Kind.VERIFY, xml, [p.id for p in candidates], [])

    def _on_verify(self, message: Message, parsed: MessageResponse) -> None:
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
            self._cache(found.values(), self.store.timestamp())
        candidates = self._existing(message.posting_ids)
        lookup = {key: rec for key, rec in found.items()}

        def find(kind: ListKind, name: str) -> ListRecord | None | bool:
            if kind not in answered:
                return True  # QuickBooks did not answer for this list: QuickBooks itself will judge
            return lookup.get((kind, name.casefold()))

        self._check_postings(message, candidates, find)

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
            if p.posting is not None and (p.state is S.QUEUED or (p.reason or "").startswith("QuickBooks check:"))
        ]

    def _cached_lookup(self) -> Callable[[ListKind, str], ListRecord | None | bool]:
        rows = self.store.conn.execute("SELECT kind, full_name, list_id, edit_sequence, is_active FROM qb_lists")
        cache = {
            (ListKind(k), n.casefold()): ListRecord(ListKind(k), n, lid, seq, is_active is None or bool(is_active))
            for k, n, lid, seq, is_active in rows
        }

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
            if problems:
                reason = (f"QuickBooks check: {'; '.join(problems)} — make it active or create it in QuickBooks, "
                          f"or change the mapping (mlconnector map list); {_fix_hint(record.report_id)}")
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
            self.store.conn.executemany(
                "INSERT INTO qbxml_message_items (message_id, posting_id, verified) VALUES (?, ?, 1)"
                " ON CONFLICT(message_id, posting_id) DO UPDATE SET verified = 1",
                [(message.id, pid) for pid in verified],
            )

    def _cache(self, records: Iterable[ListRecord], now: str) -> None:
        self.store.conn.executemany(
            "INSERT INTO qb_lists (kind, full_name, list_id, edit_sequence, is_active, email, detail, seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(kind, full_name) DO UPDATE SET list_id = excluded.list_id,"
            " edit_sequence = excluded.edit_sequence, is_active = excluded.is_active, email = excluded.email,"
            " detail = excluded.detail, seen_at = excluded.seen_at",
            [
                (r.kind.value, r.full_name, r.list_id, r.edit_sequence, int(r.is_active), r.email,
                 json.dumps({"account_type": r.account_type}) if r.account_type else None, now)
                for r in records
            ],
        )

    # ------------------------------------------------------------------ stage 4: write

    def _write(self, ticket: str, version: str) -> str | None:
        budget = self.config.quickbooks.max_lines_per_message
        while True:
            # Choose by the stored line counts and parse only the chosen postings: the queue may be long.
            chosen: list[int] = []
            used = 0
            for posting_id, lines in self.store.conn.execute(
                "SELECT p.id, p.line_count FROM postings p WHERE p.state = ? AND p.body IS NOT NULL AND EXISTS ("
                "SELECT 1 FROM qbxml_message_items i JOIN qbxml_messages m ON m.id = i.message_id"
                " WHERE i.posting_id = p.id AND m.ticket = ? AND m.kind IN (?, ?) AND m.state = 'answered'"
                " AND i.verified = 1) ORDER BY p.id",
                (S.QUEUED.value, ticket, Kind.LISTS.value, Kind.VERIFY.value),
            ):
                if chosen and used + max(1, lines) > budget:
                    break
                chosen.append(posting_id)
                used += max(1, lines)
            if not chosen:
                return None
            ready = [get_posting(self.store, pid) for pid in chosen]
            items = [BatchItem(f"p{p.id}", p.posting) for p in ready if p.posting is not None]
            message_set_id = _new_message_set_id()
            try:
                batch = build_batch(items, version=version, max_lines=max(budget, used),
                                    new_message_set_id=message_set_id)
            except QbxmlError:
                self._block_unbuildable(ready, version)
                continue
            return self._store_message(
                ticket, Kind.WRITE, batch.xml, [p.id for p in ready], [f"p{p.id}" for p in ready],
                message_set_id=message_set_id,
            )

    def _block_unbuildable(self, ready: Sequence[PostingRecord], version: str) -> list[PostingRecord]:
        keep = []
        for record in ready:
            assert record.posting is not None
            try:
                write_request(record.posting, f"p{record.id}", version)
            except QbxmlError as exc:
                transition(self.store, record.id, S.BLOCKED, actor=ACTOR,
                           reason=f"cannot be written as qbXML: {exc}; {_fix_hint(record.report_id)}")
            else:
                keep.append(record)
        return keep

    def _on_written(self, message: Message, parsed: MessageResponse) -> None:
        answers = parsed.by_request_id()
        sent = self._light(message, S.SENT)
        mismatch = _first_mismatch(sent, answers)
        if mismatch:
            # Matched by requestID alone, a swapped answer would record each TxnID on the other report.
            log.warning("QuickBooks' answer does not match message %s: %s; its postings go in doubt",
                        message.id, mismatch)
            with self.store.atomic():
                transition_many(self.store, [Move(pid, S.IN_DOUBT, {
                    "reason": f"QuickBooks' answer did not match what was sent ({mismatch}); QuickBooks will be "
                              "asked by RefNumber first"}) for pid, *_ in sent], actor=ACTOR)
            return
        moves: list[Move] = []
        learned: list[KnownTxn] = []
        warnings: list[tuple[str, int, RequestResponse]] = []
        for posting_id, report_id, request_id, _ref, _part in sent:
            answer = answers.get(request_id or "")
            if answer is None:
                moves.append(Move(posting_id, S.IN_DOUBT, {
                    "reason": "QuickBooks' answer did not mention this posting; it will be checked first"}))
            elif answer.action.processed and answer.txn_id:
                moves.append(self._posted_move(posting_id, answer))
                learned.append(_known(posting_id, answer.txns[0]))
                if answer.action is Action.WARNING:
                    warnings.append((report_id, posting_id, answer))
            elif answer.action.processed:
                # Processed but no transaction in the answer: only a lookup can say whether it exists.
                moves.append(Move(posting_id, S.IN_DOUBT, {
                    "qb_status_code": answer.status_code, "qb_status_message": answer.status_message,
                    "reason": "QuickBooks accepted the request but returned no TxnID; it will be looked up first"}))
            elif answer.action is Action.RETRY_LATER:
                moves.append(Move(posting_id, S.IN_DOUBT, {
                    "qb_status_code": answer.status_code, "qb_status_message": answer.status_message,
                    "reason": f"QuickBooks was busy ({answer.status_code}); it will be checked and retried"}))
            elif txn_ledger.live_txns(self.store, posting_id):
                # Refused now, but an earlier (late) answer showed QuickBooks already holds it.
                held = txn_ledger.live_txns(self.store, posting_id)[0]
                moves.append(Move(posting_id, S.POSTED, {"txn_id": held, "reason": None}, detail={
                    "how": f"refused ({answer.status_code}) but already in QuickBooks as TxnID {held}"}))
            else:
                moves.append(Move(posting_id, S.FAILED, {
                    "qb_status_code": answer.status_code, "qb_status_message": answer.status_message,
                    "reason": f"QuickBooks error {answer.status_code}: {answer.status_message} — "
                              f"{_advice(answer.action)}; {_fix_hint(report_id)}"}))
        with self.store.atomic():
            transition_many(self.store, moves, actor=ACTOR)
            for report_id, posting_id, answer in warnings:
                self.store.audit.append(AuditEvent.WARNING, actor=ACTOR, report_id=report_id, posting_id=posting_id,
                                        detail={"code": answer.status_code, "message": answer.status_message})
            self._learn(learned, how=txn_ledger.WRITTEN, ticket=message.ticket)

    @staticmethod
    def _posted_move(posting_id: int, answer: RequestResponse, how: str | None = None,
                     event: AuditEvent | None = None) -> Move:
        return Move(posting_id, S.POSTED, {
            "txn_id": answer.txn_id, "edit_sequence": answer.edit_sequence,
            "txn_line_ids": json.dumps(answer.txn_line_ids), "qb_status_code": answer.status_code, "reason": None,
            "qb_status_message": answer.status_message if answer.action is Action.WARNING else None,
        }, detail={"how": how} if how else None, event=event)

    def _light(self, message: Message, state: PostingState) -> list[tuple[int, str, str | None, str, int]]:
        """(id, report ID, requestID, RefNumber, part) of the message's postings still in ``state``, without bodies."""
        if not message.posting_ids:
            return []
        marks = ",".join("?" for _ in message.posting_ids)
        return [(r[0], r[1], r[2], r[3], r[4]) for r in self.store.conn.execute(
            f"SELECT id, report_id, request_id, ref_number, part FROM postings WHERE id IN ({marks}) AND state = ?"
            " ORDER BY id",
            (*message.posting_ids, state.value),
        )]

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
        self._learn([_known(record.id, answer.txns[0])], how=txn_ledger.RECOVERED, ticket=ticket)

    def _learn(self, txns: Sequence[KnownTxn], *, how: str, ticket: str) -> list[txn_ledger.Duplicate]:
        found = txn_ledger.learn(self.store, txns, how=how, ticket_ref=ticket_ref(ticket), actor=ACTOR)
        for dup in found:
            log.error("report %s is in QuickBooks more than once: %s", dup.report_id, dup.fix)
        return found

    # ------------------------------------------------------------------ late answers

    def _apply_late_writes(self, message: Message, parsed: MessageResponse) -> tuple[int, int]:
        """Settle or flag each posting a late write answer names; returns (settled, duplicates)."""
        answers = parsed.by_request_id()
        settled = 0
        learned: list[KnownTxn] = []
        for posting_id, request_id in self._items(message):
            answer = answers.get(request_id or "")
            if answer is None or not (answer.action.processed and answer.txns):
                continue
            txn = answer.txns[0]
            record = self._posting_for(posting_id, txn)
            if record is None:
                self.store.audit.append(AuditEvent.LATE_ANSWER, actor=ACTOR, posting_id=posting_id, detail={
                    "problem": f"TxnID {txn.txn_id} (RefNumber {txn.ref_number}) matches no posting of ours; "
                               "check QuickBooks for it"})
                continue
            if record.state in (S.IN_DOUBT, S.QUEUED, S.BLOCKED, S.FAILED):
                transition(self.store, record.id, S.POSTED, actor=ACTOR, event=AuditEvent.RECOVERED,
                           txn_id=txn.txn_id, edit_sequence=txn.edit_sequence,
                           txn_line_ids=json.dumps(txn.txn_line_ids), reason=None,
                           evidence=f"QuickBooks' late answer to message {message.id} names TxnID {txn.txn_id}",
                           detail={"how": "QuickBooks' late answer to an update that had been given up"})
                settled += 1
            learned.append(_known(record.id, txn))
        found = self._learn(learned, how=txn_ledger.LATE_ANSWER, ticket=message.ticket)
        return settled, len(found)

    def _posting_for(self, posting_id: int, txn: TxnRecord) -> PostingRecord | None:
        """The posting a transaction stands for: the one sent, or the one re-planned in its place."""
        try:
            record = get_posting(self.store, posting_id)
        except NotFoundError:
            candidates = [get_posting(self.store, int(r[0])) for r in self.store.conn.execute(
                "SELECT id FROM postings WHERE ref_number = ? COLLATE NOCASE ORDER BY id", (txn.ref_number or "",))]
            # Without the posting that was sent, only our ExternalGUID can prove which report it is.
            return next((c for c in candidates if txn.external_guid and txn.external_guid.casefold()
                         == external_guid_for(c.report_id, c.part).casefold()), None)
        guid = external_guid_for(record.report_id, record.part)
        return record if _answer_matches(record.ref_number, guid, txn) else None

    def _items(self, message: Message) -> list[tuple[int, str | None]]:
        return [(int(r[0]), r[1]) for r in self.store.conn.execute(
            "SELECT posting_id, request_id FROM qbxml_message_items WHERE message_id = ? ORDER BY posting_id",
            (message.id,))]

    def _last_message(self, ticket: str) -> Message | None:
        row = self.store.conn.execute(
            "SELECT id FROM qbxml_messages WHERE ticket = ? ORDER BY id DESC LIMIT 1", (ticket,)).fetchone()
        return self._message(int(row[0])) if row else None

    # ------------------------------------------------------------------ whole-request failures

    def _affected(self, message: Message) -> list[int]:
        """The postings a message's failure holds up (a full list refresh names none: the queued ones)."""
        if message.posting_ids:
            return list(message.posting_ids)
        return [p.id for p in self._candidates() if p.state is S.QUEUED]

    def _count_failure(self, kind: Kind, posting_ids: Sequence[int], hresult: str, text: str) -> dict[int, int]:
        """One more identical failure for each posting (a different one starts a new run); the run lengths."""
        now = self.store.timestamp()
        runs: dict[int, int] = {}
        for posting_id in posting_ids:
            streak = self._streak(posting_id, kind)
            same = streak is not None and streak[0].casefold() == hresult.casefold() and streak[1] == text
            runs[posting_id] = streak[2] + 1 if same and streak is not None else 1
        self.store.conn.executemany(
            "INSERT INTO request_failures (posting_id, kind, hresult, message, count, last_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(posting_id) DO UPDATE SET kind = excluded.kind, hresult = excluded.hresult,"
            " message = excluded.message, count = excluded.count, last_at = excluded.last_at",
            [(pid, kind.value, hresult, text, n, now) for pid, n in runs.items()],
        )
        return runs

    def _streak(self, posting_id: int, kind: Kind) -> tuple[str, str, int] | None:
        row = self.store.conn.execute(
            "SELECT hresult, message, count FROM request_failures WHERE posting_id = ? AND kind = ?",
            (posting_id, kind.value)).fetchone()
        return (str(row[0]), str(row[1]), int(row[2])) if row else None

    def _clear_streaks(self, message: Message) -> None:
        """QuickBooks read this kind of request for these postings: their runs of failures end."""
        ids = self._affected(message) if message.kind is Kind.LISTS else list(message.posting_ids)
        if not ids or self.store.conn.execute("SELECT 1 FROM request_failures LIMIT 1").fetchone() is None:
            return
        marks = ",".join("?" for _ in ids)
        self.store.conn.execute(
            f"DELETE FROM request_failures WHERE kind = ? AND posting_id IN ({marks})", (message.kind.value, *ids))

    def _after_failure(self, message: Message, runs: dict[int, int], hresult: str,
                       text: str) -> tuple[list[str], list[str], list[str]]:
        """Move the message's postings after a whole-request failure: (failed, to retry, left in doubt) report IDs."""
        failed: list[str] = []
        retried: list[str] = []
        held: list[str] = []
        code = f"{hresult}: {text}"
        if message.kind is Kind.WRITE:
            nothing_applied = hresult.lower() in NOTHING_APPLIED_HRESULTS
            for posting_id, report_id, *_ in self._light(message, S.SENT):
                if nothing_applied and runs.get(posting_id, 1) >= FAILURE_STREAK_LIMIT:
                    transition(self.store, posting_id, S.FAILED, actor=ACTOR, qb_status_code=None,
                               qb_status_message=code, reason=(
                                   f"QuickBooks could not read the request {runs[posting_id]} times in a row ({code});"
                                   f" nothing was posted. Send the log file to support, {_fix_hint(report_id)}"))
                    failed.append(report_id)
                else:
                    # Only a recovery check may put it back in the queue (QuickBooks may have applied part of it).
                    transition(self.store, posting_id, S.IN_DOUBT, actor=ACTOR,
                               reason=f"QuickBooks could not process the request ({code}); it will be checked and "
                               "tried again at the next update")
                    retried.append(report_id)
        elif message.kind in (Kind.VERIFY, Kind.LISTS):
            for posting_id in runs:
                record = get_posting(self.store, posting_id)
                if record.state is not S.QUEUED:
                    continue
                if runs[posting_id] >= FAILURE_STREAK_LIMIT:
                    transition(self.store, posting_id, S.FAILED, actor=ACTOR, qb_status_code=None,
                               qb_status_message=code, reason=(
                                   f"QuickBooks could not read ml-connector's check of its accounts and names "
                                   f"{runs[posting_id]} times in a row ({code}); nothing was posted. Send the log "
                                   f"file to support, {_fix_hint(record.report_id)}"))
                    failed.append(record.report_id)
                else:
                    retried.append(record.report_id)
        else:
            # A recovery check: these may be in QuickBooks, so they stay in doubt until QuickBooks can answer.
            held = [r[1] for r in self._light(message, S.IN_DOUBT)]
        return failed, retried, held

    # ------------------------------------------------------------------ bookkeeping

    def _store_message(
        self, ticket: str, kind: Kind, xml: bytes, posting_ids: Sequence[int], request_ids: Sequence[str],
        *, message_set_id: str | None = None,
    ) -> str:
        text = xml.decode("utf-8")
        with self.store.atomic():
            cursor = self.store.conn.execute(
                "INSERT INTO qbxml_messages (ticket, kind, message_set_id, request_xml, state, sent_at)"
                " VALUES (?, ?, ?, ?, 'sent', ?)",
                (ticket, kind.value, message_set_id, text, self.store.timestamp()),
            )
            message_id = int(cursor.lastrowid or 0)
            self.store.conn.executemany(
                "INSERT INTO qbxml_message_items (message_id, posting_id, request_id) VALUES (?, ?, ?)",
                [(message_id, pid, request_ids[n] if request_ids else None) for n, pid in enumerate(posting_ids)],
            )
            transition_many(self.store, [
                Move(pid, S.SENT, {"request_id": rid, "message_set_id": message_set_id}, expect=S.QUEUED)
                for pid, rid in zip(posting_ids, request_ids)
            ], actor=ACTOR)
            # The digest in the hash-chained audit log lets `audit verify` prove the stored text unchanged.
            self.store.audit.append(AuditEvent.MESSAGE_SENT, actor=ACTOR, detail={
                "message": message_id, "kind": kind.value, "session": ticket_ref(ticket),
                "message_set_id": message_set_id, "postings": len(posting_ids), "request_sha256": _sha256(text)})
        return text

    def _in_flight(self, ticket: str) -> Message | None:
        row = self.store.conn.execute(
            "SELECT id FROM qbxml_messages WHERE ticket = ? AND state = 'sent' ORDER BY id DESC LIMIT 1", (ticket,),
        ).fetchone()
        return self._message(int(row[0])) if row else None

    def _message(self, message_id: int) -> Message:
        row = self.store.conn.execute(
            "SELECT id, ticket, kind, state, message_set_id FROM qbxml_messages WHERE id = ?", (message_id,),
        ).fetchone()
        ids = tuple(r[0] for r in self.store.conn.execute(
            "SELECT posting_id FROM qbxml_message_items WHERE message_id = ? ORDER BY posting_id", (row[0],)))
        return Message(row[0], row[1], Kind(row[2]), row[3], row[4], ids)

    def _finish(self, message: Message, state: str, *, response: str | None = None, hresult: str | None = None,
                error: str | None = None) -> None:
        self.store.conn.execute(
            "UPDATE qbxml_messages SET state = ?, response_xml = COALESCE(?, response_xml), hresult = ?,"
            " error_message = ?, answered_at = ? WHERE id = ?",
            (state, response, hresult, error, self.store.timestamp(), message.id),
        )
        if response is not None or hresult:
            self.store.audit.append(AuditEvent.MESSAGE_ANSWERED, actor=ACTOR, detail={
                "message": message.id, "kind": message.kind.value, "state": state,
                **({"response_sha256": _sha256(response)} if response is not None else {}),
                **({"hresult": hresult} if hresult else {})})

    def _unreadable(self, message: Message, response: str, error: str) -> None:
        with self.store.atomic():
            if message.kind is Kind.WRITE:
                for posting_id in self._still(message, S.SENT):
                    transition(self.store, posting_id, S.IN_DOUBT, actor=ACTOR,
                               reason=f"QuickBooks' answer could not be read ({error}); it will be checked first")
            self._finish(message, "failed", response=response, error=error)

    def _still(self, message: Message, state: PostingState) -> list[int]:
        if not message.posting_ids:
            return []
        marks = ",".join("?" for _ in message.posting_ids)
        return [r[0] for r in self.store.conn.execute(
            f"SELECT id FROM postings WHERE id IN ({marks}) AND state = ? ORDER BY id",
            (*message.posting_ids, state.value),
        )]

    def _done(self, ticket: str, kind: Kind) -> bool:
        row = self.store.conn.execute(
            "SELECT 1 FROM qbxml_messages WHERE ticket = ? AND kind = ? LIMIT 1", (ticket, kind.value)
        ).fetchone()
        return row is not None

    def _progress(self, ticket: str) -> int:
        written = self.store.conn.execute(
            "SELECT COUNT(*) FROM qbxml_message_items i JOIN qbxml_messages m ON m.id = i.message_id"
            " WHERE m.ticket = ? AND m.kind = ?",
            (ticket, Kind.WRITE.value),
        ).fetchone()[0]
        left = self._left(ticket)
        if left == 0:
            return 100
        return min(99, int(100 * written / (written + left)))

    def _left(self, ticket: str) -> int:
        refresh = self._refresh()
        if refresh.get("ticket") == ticket and refresh.get("pending"):
            # List pages still to fetch: the session must go on (then re-planning may queue reports).
            return max(1, self.store.posting_counts()[S.QUEUED] + self.store.posting_counts()[S.BLOCKED])
        counts = self.store.posting_counts()
        pending = counts[S.QUEUED]
        if not self._done(ticket, Kind.RECOVERY_QUERY):
            pending += counts[S.IN_DOUBT]
        if pending and (self._done(ticket, Kind.VERIFY) or self._done(ticket, Kind.LISTS)):
            verified_left = self.store.conn.execute(
                "SELECT COUNT(*) FROM postings p WHERE p.state = ? AND EXISTS (SELECT 1 FROM qbxml_message_items i"
                " JOIN qbxml_messages m ON m.id = i.message_id WHERE i.posting_id = p.id AND m.ticket = ?"
                " AND m.kind IN (?, ?) AND i.verified = 1)",
                (S.QUEUED.value, ticket, Kind.LISTS.value, Kind.VERIFY.value),
            ).fetchone()[0]
            return int(verified_left) + (0 if self._done(ticket, Kind.RECOVERY_QUERY) else counts[S.IN_DOUBT])
        return int(pending)


def _list_kind(answer: RequestResponse) -> ListKind | None:
    prefix = answer.name.removesuffix("QueryRs").lower()
    try:
        return ListKind(prefix)
    except ValueError:
        return None


def _absent(answer: RequestResponse | None) -> bool:
    """QuickBooks answered a query and found nothing (or found what the caller already ruled out)."""
    return answer is not None and (answer.action is Action.NO_MATCH or answer.action.processed)


def _known(posting_id: int, txn: TxnRecord) -> KnownTxn:
    return KnownTxn(posting_id, txn.txn_id, txn.txn_type, txn.ref_number, txn.edit_sequence)


def _answer_matches(ref_number: str, guid: str, txn: TxnRecord) -> bool:
    """The transaction carries this posting's RefNumber, and its ExternalGUID where QuickBooks returns one.

    An answer with neither proves nothing either way; it is taken as before (by requestID), since sending
    it to recovery by RefNumber could not find it and would write it again.
    """
    if txn.ref_number is not None and txn.ref_number.casefold() != ref_number.casefold():
        return False
    return txn.external_guid is None or txn.external_guid.casefold() == guid.casefold()


def _first_mismatch(sent: Sequence[tuple[int, str, str | None, str, int]],
                    answers: dict[str, RequestResponse]) -> str | None:
    """The first answer that names another posting's transaction, described; None when all match."""
    for _pid, report_id, request_id, ref_number, part in sent:
        answer = answers.get(request_id or "")
        if answer is None or not answer.txns:
            continue
        txn = answer.txns[0]
        if not _answer_matches(ref_number, external_guid_for(report_id, part), txn):
            return (f"requestID {request_id} was sent for RefNumber {ref_number} but came back with RefNumber "
                    f"{txn.ref_number} (TxnID {txn.txn_id})")
    return None


def _failure_note(kind: Kind, failed: Sequence[str], retried: Sequence[str], held: Sequence[str], run: int) -> str:
    """What a whole-request failure means for the reports, for the Web Connector's error text."""
    parts = []
    if failed:
        parts.append(f"{len(failed)} report(s) were marked failed after {FAILURE_STREAK_LIMIT} identical failures "
                     f"({_names(failed)}): see mlconnector status")
    if retried:
        parts.append(f"{len(retried)} report(s) will be tried again at the next update ({_names(retried)}; failure "
                     f"{min(run, FAILURE_STREAK_LIMIT)} of {FAILURE_STREAK_LIMIT} before they are marked failed)")
    if held:
        parts.append(f"{len(held)} report(s) stay in doubt until QuickBooks can answer the check "
                     f"({_names(held)}); nothing is written for them meanwhile")
    if not parts:
        parts.append(f"the {kind.value.replace('_', ' ')} request will be sent again at the next update")
    return "; ".join(parts) + "."


def _names(report_ids: Sequence[str], limit: int = 5) -> str:
    unique = sorted(set(report_ids))
    more = f" and {len(unique) - limit} more" if len(unique) > limit else ""
    return ", ".join(unique[:limit]) + more


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _advice(action: Action) -> str:
    return {
        Action.FIX_REFERENCE: "fix the account, vendor, class or customer it names (or the mapping)",
        Action.USER_FIX: "QuickBooks refused the data; correct it in Expensify or QuickBooks",
        Action.UNSUPPORTED: "this QuickBooks version cannot take it; check the qbXML version setting",
        Action.BUG: "ml-connector sent something QuickBooks rejects: send the log file to support",
    }.get(action, "see the message")


def _new_message_set_id() -> str:
    # <= 23 characters (QBXML.md §2); random so two installations never collide in one company file.
    return "mlc-" + secrets.token_hex(9)


__all__ = ["PostingWork", "Kind", "LIST_MAX_AGE", "make_work", "make_settings"]


def make_work(store: Store, config: Config) -> PostingWork:
    """The Work that ``mlconnector serve`` runs."""
    return PostingWork(store, config)


def make_settings(config: Config) -> SessionSettings:
    """The Web Connector login and limits ``mlconnector serve`` runs with.

    Raises:
        ConfigError: no Web Connector login is configured.
    """
    username, password_hash = config.require_qbwc_login()
    return SessionSettings(
        username=username, password_hash=password_hash, company_file=config.quickbooks.company_file,
        max_qbxml_version=config.quickbooks.qbxml_version,
        takeover_after=dt.timedelta(minutes=config.qbwc.takeover_after_minutes),
    )
