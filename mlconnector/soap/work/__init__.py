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
   3b. pay      reimbursed reports whose bills are posted get their bill payment queued; each payment's
                bills are asked for (still open for the whole amount?) with its names, then it is
                verified, recorded as paid by hand, or blocked with the reason
    4. write    BillAdd/JournalEntryAdd batches under max_lines_per_message, one new message-set ID
                each; the request is stored and its postings marked sent before it is returned

Only postings verified in this session are written in it. Every state change goes through
``store.postings.transition`` (state and audit row in one transaction). One module per phase:
``recover``, ``lists`` (lists and verify), ``payments``, ``write``, ``failures`` (hresults and late answers), over
``core``; :class:`PostingWork` puts them together behind the Web Connector protocol.
"""

from __future__ import annotations

import datetime as dt
import logging

from mlconnector.config import Config
from mlconnector.errors import QbxmlParseError
from mlconnector.qbxml.company import answers_company_queries
from mlconnector.qbxml.parse import parse_response
from mlconnector.redact import ticket_ref
from mlconnector.soap.session import SessionSettings
from mlconnector.soap.work.core import ACTOR, LIST_MAX_AGE, S
from mlconnector.soap.work.failures import Failures, _failure_note
from mlconnector.soap.work.payments import Payments
from mlconnector.soap.work.recover import Recovery
from mlconnector.soap.work.write import Writes
from mlconnector.store import Store, messages
from mlconnector.store import ledger as txn_ledger
from mlconnector.store.audit import AuditEvent
from mlconnector.store.messages import Kind
from mlconnector.store.postings import transition

log = logging.getLogger("mlconnector.soap.work")


class PostingWork(Recovery, Payments, Writes, Failures):
    """The :class:`~mlconnector.soap.session.Work` that posts queued reports.

    Args:
        store: the state file.
        config: the configuration (line budgets, posting rules for re-planning).
        now: the clock.
    """

    def has_work(self) -> bool:
        """Something is queued, sent, in doubt, or blocked while the lists or company settings are due a check."""
        counts = self.store.open_posting_counts()
        if counts[S.QUEUED] or counts[S.SENT] or self._checkable_in_doubt(counts[S.IN_DOUBT]):
            return True
        if self._payments_due() or self._replan_pending():
            return True
        return bool(counts[S.BLOCKED]) and (self._lists_stale() or self._company_recheck_due())

    def next_request(self, ticket: str, qbxml_version: str, hcp_response: str | None) -> str | None:
        """The next qbXML request of this session, stored before it is returned; None when done."""
        if hcp_response:
            self._remember_company(hcp_response, ticket)
        self._sweep_stale_sent(ticket)
        self._replan_step(ticket)  # the next chunk of reports to plan with freshly refreshed lists, if any
        for stage in (self._status_check, self._recovery_query, self._lists, self._verify, self._payment_check,
                      self._write):
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
        if message.kind in (Kind.LISTS, Kind.VERIFY, Kind.PAYMENT_CHECK) and answers_company_queries(response):
            self._remember_company(response, ticket)  # before the checks that depend on it
        handler = {
            Kind.STATUS_CHECK: self._on_recovered,
            Kind.RECOVERY_QUERY: self._on_recovery_query,
            Kind.LISTS: self._on_lists,
            Kind.VERIFY: self._on_verify,
            Kind.PAYMENT_CHECK: self._on_payment_check,
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
        message = messages.last_message(self.store, ticket)
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
        for state, n in messages.session_outcomes(self.store, ticket).items():
            if state in counts:
                counts[state] = n
        blocked = self.store.open_posting_counts()[S.BLOCKED]
        text = f"Posted {counts['posted']}, failed {counts['failed']}, in doubt {counts['in_doubt']}"
        duplicates = txn_ledger.duplicates_learned_by(self.store, ticket_ref(ticket))
        if duplicates:
            text += f"; {duplicates} DUPLICATE(S) in QuickBooks to void (mlconnector status)"
        return text + (f"; {blocked} blocked (mlconnector status)" if blocked else "")


__all__ = ["PostingWork", "Kind", "LIST_MAX_AGE", "make_work", "make_settings"]


def make_work(store: Store, config: Config) -> PostingWork:
    """The Work that ``mlconnector serve`` runs (its state file folds its log back after answers, not in calls)."""
    store.defer_checkpoints()
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
