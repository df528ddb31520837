"""Stage 1, recovery: postings left sent or in doubt are asked about, never written blindly.

An error-recovery status check of their message set, then a query by RefNumber (and by the stored
TxnID after a forced replay): posted when the transaction is provably ours, queued again only when
nothing has its RefNumber.
"""

from __future__ import annotations

import json

from mlconnector.qbxml.build import (
    build_message,
    external_guid,
    external_guid_for,
    txn_query_by_id,
    txn_query_by_ref,
)
from mlconnector.qbxml.parse import MessageResponse, RequestResponse
from mlconnector.qbxml.status import Action
from mlconnector.qbxml.txns import txn_kind
from mlconnector.soap.work.core import (
    ACTOR,
    FAILURE_STREAK_LIMIT,
    S,
    WorkBase,
    answer_matches,
    fix_hint,
    known_txn,
    log,
)
from mlconnector.store import failures, messages
from mlconnector.store import ledger as txn_ledger
from mlconnector.store.audit import AuditEvent
from mlconnector.store.messages import Kind, Message
from mlconnector.store.postings import (
    PostingRecord,
    get_posting,
    newest_in_doubt_message_set,
    postings_in,
    transition,
)


class Recovery(WorkBase):
    """Stage 1, recovery: postings left sent or in doubt are asked about, never written blindly."""

    def _sweep_stale_sent(self, ticket: str) -> None:
        """A posting still `sent` under another session lost its answer (crash, restart)."""
        for posting_id in messages.stale_sent(self.store, ticket):
            transition(self.store, posting_id, S.IN_DOUBT, actor=ACTOR, expect=S.SENT,
                       reason="sent in an earlier session whose answer never arrived")

    def _status_check(self, ticket: str, version: str) -> str | None:
        if self._done(ticket, Kind.STATUS_CHECK):
            return None
        old_id = newest_in_doubt_message_set(self.store)
        if old_id is None:
            return None
        doubtful = [p.id for p in postings_in(self.store, S.IN_DOUBT) if p.message_set_id == old_id]
        if doubtful and all(self._given_up(pid, Kind.STATUS_CHECK) for pid in doubtful):
            return None  # QuickBooks keeps refusing this check: the query by RefNumber decides instead
        # old = new = X is the status check (QBXML.md §2); a fresh new ID could clear X's stored answer.
        xml = build_message([], version=version, on_error="continueOnError",
                            old_message_set_id=old_id, new_message_set_id=old_id)
        return self._store_message(ticket, Kind.STATUS_CHECK, xml, doubtful, [])

    def _given_up(self, posting_id: int, kind: Kind) -> bool:
        run = failures.streak(self.store, posting_id, kind.value)
        return run is not None and run[2] >= FAILURE_STREAK_LIMIT

    def _recovery_query(self, ticket: str, version: str) -> str | None:
        if self._done(ticket, Kind.RECOVERY_QUERY):
            return None
        # A posting whose check QuickBooks keeps refusing stays in doubt (never written blindly), but no
        # longer stops every session at its first request: the other reports go on.
        doubtful = [p for p in postings_in(self.store, S.IN_DOUBT)
                    if p.posting is not None and not self._given_up(p.id, Kind.RECOVERY_QUERY)]
        if not doubtful:
            return None
        requests = []
        for p in doubtful:
            assert p.posting is not None
            find = txn_kind(p.mode).recovery_query
            requests.append(find(p.posting, f"r{p.id}", version) if find is not None
                            else txn_query_by_ref(p.mode, [p.ref_number], f"r{p.id}", version))
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
            if not answer_matches(record.ref_number, external_guid_for(record.report_id, record.part),
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
            found = by_ref.txns if by_ref else ()
            if record.posting.to_be_printed:
                # No RefNumber was sent (QuickBooks numbers it when it prints): only the ExternalGUID
                # tells ours from the payee's other checks of that day, which are no conflict.
                same_ref = mine = [t for t in found if (t.external_guid or "").casefold() == ours]
            else:
                same_ref = [t for t in found if (t.ref_number or "").casefold() == record.ref_number.casefold()]
                mine = [t for t in same_ref if (t.external_guid or "").casefold() == ours]
            kept = [t for t in (by_id.txns if by_id and by_id.action.processed else ()) if t.txn_id == record.txn_id]
            if record.txn_id and by_id is not None and by_id.action is Action.NO_MATCH:
                txn_ledger.mark_gone(self.store, posting_id, record.txn_id)  # deleted in QuickBooks by a person
            if kept or mine:
                txn, how = (kept[0], "found in QuickBooks by its TxnID") if kept else (
                    mine[0], f"found in QuickBooks by {_lookup(record)} and our ExternalGUID")
                transition(self.store, posting_id, S.POSTED, actor=ACTOR, event=AuditEvent.RECOVERED,
                           txn_id=txn.txn_id, edit_sequence=txn.edit_sequence,
                           txn_line_ids=json.dumps(txn.txn_line_ids), reason=None, detail={"how": how})
                # Two of ours with this RefNumber: QuickBooks holds the posting twice.
                self._learn([known_txn(posting_id, t) for t in [txn, *mine] if t is not None],
                            how=txn_ledger.RECOVERED, ticket=message.ticket)
            elif same_ref:
                # Someone else's transaction has our RefNumber: neither "ours" nor "absent" is safe to assume.
                transition(
                    self.store, posting_id, S.FAILED, actor=ACTOR, qb_status_code=None, qb_status_message=None,
                    reason=f"QuickBooks has a transaction with RefNumber {record.ref_number} that ml-connector did "
                    f"not create (TxnID {same_ref[0].txn_id}); check whether this report is already entered. If "
                    f"it is not, {fix_hint(record.report_id)}",
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
        streak = failures.streak(self.store, record.id, Kind.WRITE.value)
        if streak is not None and streak[2] >= FAILURE_STREAK_LIMIT:
            hresult, text, count = streak
            transition(
                self.store, record.id, S.FAILED, actor=ACTOR, qb_status_code=None,
                qb_status_message=f"{hresult}: {text}",
                reason=f"QuickBooks refused the whole request {count} times in a row ({hresult}: {text}); it is "
                f"not in QuickBooks. Send the log file to support, {fix_hint(record.report_id)}",
            )
            return
        transition(
            self.store, record.id, S.QUEUED, actor=ACTOR, event=AuditEvent.RECOVERED,
            reason=None, message_set_id=None, request_id=None,
            detail={"how": f"nothing with {_lookup(record)} and our ExternalGUID is in QuickBooks; queued again"},
        )


def _absent(answer: RequestResponse | None) -> bool:
    """QuickBooks answered a query and found nothing (or found what the caller already ruled out)."""
    return answer is not None and (answer.action is Action.NO_MATCH or answer.action.processed)


def _lookup(record: PostingRecord) -> str:
    """How recovery looked the posting up, in words: its RefNumber, or payee and date for a check to print."""
    if record.ref_number or record.posting is None:
        return f"RefNumber {record.ref_number}"
    return f"payee {record.posting.vendor} on {record.posting.txn_date.isoformat()}"
