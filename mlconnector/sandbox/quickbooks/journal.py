"""JournalEntryAddRq: reference checks, balance, non-negative amounts."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from mlconnector.sandbox.quickbooks.base import SimulatorBase
from mlconnector.sandbox.quickbooks.records import (
    RequestFailed,
    TxnLine,
    child_text,
    money_text,
)


class JournalAdds(SimulatorBase):
    """JournalEntryAddRq: reference checks, balance, non-negative amounts."""

    def _journal_add(self, request: etree._Element, rs: etree._Element, message_set_id: str | None) -> None:
        add = request.find("JournalEntryAdd")
        if add is None:
            raise RequestFailed(3150, 'There is a missing element: "JournalEntryAdd".')
        lines = []
        for line in add:
            if line.tag not in ("JournalDebitLine", "JournalCreditLine"):
                continue
            account = self._resolve(line.find("AccountRef"), ["account"], "Account", "Journal Entry", required=True)
            entity = self._resolve(line.find("EntityRef"), ["vendor", "customer"], "Entity", "Journal Entry")
            klass = self._resolve(line.find("ClassRef"), ["class"], "Class", "Journal Entry")
            amount = self._amount(line)
            if amount < 0:
                raise RequestFailed(3210, f'The "Amount" field has an invalid value "{money_text(amount)}". QuickBooks '
                                           "error message: Journal entry amounts cannot be negative.")
            assert account is not None
            if account.account_type in ("AccountsPayable", "AccountsReceivable") and entity is None:
                raise RequestFailed(3180, "There was an error when saving a Journal Entry. QuickBooks error message: "
                                           f"A line posting to {account.full_name} needs a name.")
            side = "debit" if line.tag == "JournalDebitLine" else "credit"
            lines.append(TxnLine(self._new_id(), side, account.full_name, amount, child_text(line, "Memo") or "",
                                 entity.full_name if entity else None, klass.full_name if klass else None,
                                 child_text(line, "BillableStatus")))
        if not lines:
            raise RequestFailed(3180, "There was an error when saving a Journal Entry. QuickBooks error message: "
                                       "Transactions must have at least one line.")
        debits = sum((ln.amount for ln in lines if ln.side == "debit"), Decimal("0"))
        credits = sum((ln.amount for ln in lines if ln.side == "credit"), Decimal("0"))
        if debits != credits:
            raise RequestFailed(3210, f'The "Amount" field has an invalid value "{money_text(debits - credits)}". '
                                       "QuickBooks error message: The transaction is not in balance. Make sure the "
                                       "amounts in the debit column equal the amounts in the credit column.")
        number = next(self._txn_numbers)
        # With journal numbering on, QuickBooks numbers an entry that comes without a RefNumber itself.
        ref = child_text(add, "RefNumber") or (str(number) if self.journal_numbering else "")
        # No header memo: QuickBooks Desktop has none on journal entries (the annotated reference).
        txn = self._new_txn("JournalEntry", add, request, message_set_id, lines, txn_number=number, ref_number=ref,
                            memo="")
        self.transactions.append(txn)
        rs.append(self._txn_ret(txn, include_lines=True))
