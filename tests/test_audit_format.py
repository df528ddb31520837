from __future__ import annotations

import csv
import io
import json

from mlconnector.services.audit_format import rows_to_csv, rows_to_json, summarize
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent


def _fill(store: Store) -> None:
    with store.atomic():
        store.audit.append(AuditEvent.PULLED, actor="pull", report_id="R1",
                           detail={"total": "19.75", "expenses": 2, "status": "Approved"})
        store.audit.append(AuditEvent.SENT, actor="qbwc", report_id="R1", posting_id=1,
                           detail={"message_set_id": "mlc-1", "request_id": "7"})
        store.audit.append(AuditEvent.POSTED, actor="qbwc", report_id="R1", posting_id=1,
                           detail={"txn_id": "1A-2", "edit_sequence": "171", "from": "sent"})
        store.audit.append(AuditEvent.FAILED, actor="qbwc", report_id="R2", posting_id=2,
                           detail={"qb_status_code": 3140, "qb_status_message": 'invalid reference "Travel"'})
        store.audit.append(AuditEvent.MAPPING_CHANGED, actor="map", detail={
            "kind": "category", "source": "Meals, \"team\"", "old": None, "new": "Meals:Team"})


def test_summaries_say_what_happened(store: Store) -> None:
    _fill(store)
    summaries = [summarize(r) for r in store.audit.rows()]
    assert summaries == [
        "total 19.75; expenses 2; status Approved",
        "message set mlc-1; request 7",
        "TxnID 1A-2; EditSequence 171",
        'QuickBooks 3140: invalid reference "Travel"',
        'category Meals, "team" → Meals:Team',
    ]


def test_json_and_csv_parse_back_with_every_row(store: Store) -> None:
    _fill(store)
    rows = store.audit.rows()
    data = json.loads(rows_to_json(rows))
    assert [d["event"] for d in data] == [r.event for r in rows]
    assert data[3]["detail"]["qb_status_code"] == 3140
    parsed = list(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert [p["id"] for p in parsed] == [str(r.id) for r in rows]
    assert json.loads(parsed[4]["detail"])["source"] == 'Meals, "team"'
    assert parsed[0]["posting_id"] == "" and parsed[1]["posting_id"] == "1"
