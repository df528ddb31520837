"""Transaction answers and queries (by TxnID, RefNumber or simple filters), shared by every kind."""

from __future__ import annotations

from lxml import etree

from mlconnector.sandbox.quickbooks.base import SimulatorBase
from mlconnector.sandbox.quickbooks.records import (
    NO_MATCH,
    RequestFailed,
    child_text,
    entities,
    entity_ids,
)


class TxnQueries(SimulatorBase):
    """Transaction answers and queries (by TxnID, RefNumber or simple filters), shared by every kind."""

    def _txn_query(self, request: etree._Element, rs: etree._Element, kind: str) -> None:
        candidates = self.find_txns(kind=kind)
        txn_ids = [e.text or "" for e in request.findall("TxnID")]
        refs = [e.text or "" for e in request.findall("RefNumber")]
        exact_refs = [e.text or "" for e in request.findall("RefNumberCaseSensitive")]
        if txn_ids:
            selected = [t for t in candidates if t.txn_id in txn_ids]
        elif refs:
            wanted = {r.casefold() for r in refs}
            selected = [t for t in candidates if t.ref_number.casefold() in wanted]
        elif exact_refs:
            selected = [t for t in candidates if t.ref_number in exact_refs]
        else:
            selected = candidates
            ref_filter = request.find("RefNumberFilter")
            if ref_filter is not None:
                how, text = child_text(ref_filter, "MatchCriterion"), (child_text(ref_filter, "RefNumber") or "").casefold()
                test = {"StartsWith": str.startswith, "Contains": str.__contains__, "EndsWith": str.endswith}
                selected = [t for t in selected if test.get(how or "StartsWith", str.startswith)(
                    t.ref_number.casefold(), text)]
            entity_filter = request.find("EntityFilter")
            if entity_filter is not None:
                names = {(e.text or "").casefold() for e in entity_filter.findall("FullName")}
                ids = {e.text for e in entity_filter.findall("ListID")}
                selected = [t for t in selected if entities(self, t) & names or entity_ids(self, t) & ids]
            paid_status = child_text(request, "PaidStatus") or "All"  # bills only
            if kind == "Bill" and paid_status != "All":
                selected = [t for t in selected if (self.open_amount(t.txn_id) == 0) == (paid_status == "PaidOnly")]
            dates = request.find("TxnDateRangeFilter")
            if dates is not None:
                low, high = child_text(dates, "FromTxnDate") or "0000", child_text(dates, "ToTxnDate") or "9999"
                selected = [t for t in selected if low <= t.txn_date <= high]
            max_returned = child_text(request, "MaxReturned")
            if max_returned:
                selected = selected[: int(max_returned)]
        if request.get("iterator") in ("Start", "Continue"):
            rs.set("iteratorRemainingCount", "0")
            rs.set("iteratorID", request.get("iteratorID") or "{A1B2C3D4-0000-4000-8000-000000000002}")
        if not selected:
            raise RequestFailed(1, NO_MATCH)
        include_lines = (child_text(request, "IncludeLineItems") or "false") == "true"
        for txn in selected:
            rs.append(self._txn_ret(txn, include_lines=include_lines))
