"""Whole-request failures (hresults) and answers that come back after their session was given up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from mlconnector.qbxml.build import external_guid_for
from mlconnector.qbxml.parse import MessageResponse, TxnRecord
from mlconnector.soap.work.core import (
    ACTOR,
    FAILURE_STREAK_LIMIT,
    NOTHING_APPLIED_HRESULTS,
    S,
    WorkBase,
    answer_matches,
    fix_hint,
    known_txn,
)
from mlconnector.store import failures, messages
from mlconnector.store import ledger as txn_ledger
from mlconnector.store.audit import AuditEvent
from mlconnector.store.ledger import KnownTxn
from mlconnector.store.messages import Kind, Message
from mlconnector.store.postings import (
    PostingRecord,
    get_posting,
    ids_with_ref_number,
    postings_for_report,
    report_of_posting,
    transition,
)


class Failures(WorkBase):
    """Whole-request failures (hresults) and answers that come back after their session was given up."""

    def _affected(self, message: Message) -> list[int]:
        """The postings a message's failure holds up (a full list refresh names none: the queued ones)."""
        if message.posting_ids:
            return list(message.posting_ids)
        return [p.id for p in self._candidates() if p.state is S.QUEUED]

    def _count_failure(self, kind: Kind, posting_ids: Sequence[int], hresult: str, text: str) -> dict[int, int]:
        """One more identical failure for each posting (a different one starts a new run); the run lengths."""
        runs: dict[int, int] = {}
        for posting_id in posting_ids:
            run = failures.streak(self.store, posting_id, kind.value)
            same = run is not None and run[0].casefold() == hresult.casefold() and run[1] == text
            runs[posting_id] = run[2] + 1 if same and run is not None else 1
        failures.record_runs(self.store, kind.value, runs, hresult, text)
        return runs

    def _clear_streaks(self, message: Message) -> None:
        """QuickBooks read this kind of request for these postings: their runs of failures end."""
        ids = self._affected(message) if message.kind is Kind.LISTS else list(message.posting_ids)
        failures.clear_runs(self.store, message.kind.value, ids)

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
                                   f" nothing was posted. Send the log file to support, {fix_hint(report_id)}"))
                    failed.append(report_id)
                else:
                    # Only a recovery check may put it back in the queue (QuickBooks may have applied part of it).
                    transition(self.store, posting_id, S.IN_DOUBT, actor=ACTOR,
                               reason=f"QuickBooks could not process the request ({code}); it will be checked and "
                               "tried again at the next update")
                    retried.append(report_id)
        elif message.kind in (Kind.VERIFY, Kind.LISTS, Kind.PAYMENT_CHECK):
            for posting_id in runs:
                record = get_posting(self.store, posting_id)
                if record.state is not S.QUEUED:
                    continue
                if runs[posting_id] >= FAILURE_STREAK_LIMIT:
                    transition(self.store, posting_id, S.FAILED, actor=ACTOR, qb_status_code=None,
                               qb_status_message=code, reason=(
                                   f"QuickBooks could not read ml-connector's check of its accounts and names "
                                   f"{runs[posting_id]} times in a row ({code}); nothing was posted. Send the log "
                                   f"file to support, {fix_hint(record.report_id)}"))
                    failed.append(record.report_id)
                else:
                    retried.append(record.report_id)
        else:
            # A recovery check: these may be in QuickBooks, so they stay in doubt until QuickBooks can answer.
            held = [r[1] for r in self._light(message, S.IN_DOUBT)]
        return failed, retried, held

    def _apply_late_writes(self, message: Message, parsed: MessageResponse) -> tuple[int, int]:
        """Settle or flag each posting a late write answer names; returns (settled, duplicates)."""
        answers = parsed.by_request_id()
        settled = 0
        learned: list[KnownTxn] = []
        for posting_id, request_id in messages.message_items(self.store, message.id):
            answer = answers.get(request_id or "")
            if answer is None or not (answer.action.processed and answer.txns):
                continue
            txn = answer.txns[0]
            record = self._posting_for(posting_id, txn, message.posting_ids)
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
            learned.append(known_txn(record.id, txn))
        found = self._learn(learned, how=txn_ledger.LATE_ANSWER, ticket=message.ticket)
        return settled, len(found)

    def _posting_for(self, posting_id: int, txn: TxnRecord, siblings: Sequence[int]) -> PostingRecord | None:
        """The posting a late transaction stands for.

        The one its requestID names; else another posting of the same message (a late answer cannot be
        sent back through recovery, so a mismatched one is sorted here); else, for a posting re-planned
        since it was sent, the report's current posting with the same ExternalGUID.
        """
        named = self._existing([posting_id])
        if named and answer_matches(named[0].ref_number, external_guid_for(named[0].report_id, named[0].part), txn):
            return named[0]
        others = self._existing([pid for pid in siblings if pid != posting_id])
        report_id = named[0].report_id if named else report_of_posting(self.store, posting_id)
        if report_id is not None:
            others += [p for p in postings_for_report(self.store, report_id) if p.id not in siblings]
        others += self._existing([pid for pid in ids_with_ref_number(self.store, txn.ref_number or "")
                                  if pid not in siblings])
        return next((p for p in others if _same_transaction(p, txn)), None)


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


def _same_transaction(record: PostingRecord, txn: TxnRecord) -> bool:
    """Proof that a transaction is this posting: our ExternalGUID, else (QuickBooks returned none) the RefNumber."""
    if txn.external_guid:
        return txn.external_guid.casefold() == external_guid_for(record.report_id, record.part).casefold()
    return bool(record.ref_number) and (txn.ref_number or "").casefold() == record.ref_number.casefold()
