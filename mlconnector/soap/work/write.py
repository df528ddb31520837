"""Stage 4, writes: batches under the message budget, and QuickBooks' answers to them.

An answer is taken for a posting only when it carries that posting's RefNumber (and ExternalGUID);
otherwise the message's postings go in doubt and recovery settles them.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from mlconnector.errors import QbxmlError
from mlconnector.qbxml.batch import BatchItem, build_batch
from mlconnector.qbxml.build import external_guid_for, write_request
from mlconnector.qbxml.parse import MessageResponse, RequestResponse
from mlconnector.qbxml.status import Action
from mlconnector.soap.work.core import (
    ACTOR,
    S,
    WorkBase,
    answer_matches,
    fix_hint,
    known_txn,
    log,
)
from mlconnector.store import ledger as txn_ledger
from mlconnector.store import messages
from mlconnector.store.audit import AuditEvent
from mlconnector.store.ledger import KnownTxn
from mlconnector.store.messages import Kind, Message
from mlconnector.store.postings import (
    Move,
    PostingRecord,
    get_posting,
    transition,
    transition_many,
)


class Writes(WorkBase):
    """Stage 4, writes: batches under the message budget, and QuickBooks' answers to them."""

    def _write(self, ticket: str, version: str) -> str | None:
        budget = self.config.quickbooks.max_lines_per_message
        while True:
            # Choose by the stored line counts and parse only the chosen postings: the queue may be long.
            chosen: list[int] = []
            used = 0
            for posting_id, lines in messages.verified_queue(self.store, ticket):
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
                           reason=f"cannot be written as qbXML: {exc}; {fix_hint(record.report_id)}")
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
                learned.append(known_txn(posting_id, answer.txns[0]))
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
                              f"{_advice(answer.action)}; {fix_hint(report_id)}"}))
        with self.store.atomic():
            transition_many(self.store, moves, actor=ACTOR)
            for report_id, posting_id, answer in warnings:
                self.store.audit.append(AuditEvent.WARNING, actor=ACTOR, report_id=report_id, posting_id=posting_id,
                                        detail={"code": answer.status_code, "message": answer.status_message})
            self._learn(learned, how=txn_ledger.WRITTEN, ticket=message.ticket)


def _first_mismatch(sent: Sequence[tuple[int, str, str | None, str, int]],
                    answers: dict[str, RequestResponse]) -> str | None:
    """The first answer that names another posting's transaction, described; None when all match."""
    for _pid, report_id, request_id, ref_number, part in sent:
        answer = answers.get(request_id or "")
        if answer is None or not answer.txns:
            continue
        txn = answer.txns[0]
        if not answer_matches(ref_number, external_guid_for(report_id, part), txn):
            return (f"requestID {request_id} was sent for RefNumber {ref_number} but came back with RefNumber "
                    f"{txn.ref_number} (TxnID {txn.txn_id})")
    return None


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
