"""Pure builders of ``requestJobDescription`` dicts (EXPENSIFY.md §2, §3, §5).

No credentials here: the client adds them at the last moment, so these dicts can be logged and
compared in tests. The shapes follow the documented examples in ``../shared/reference/expensify``.
Note the two list conventions: the exporter takes comma-separated *strings* (``reportIDList``,
``policyIDList``) while the policy getter takes a JSON *array*.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

JobDict = dict[str, Any]

EXPORT_BASENAME = "mlconnector"
POLICY_FIELDS = ("categories", "tags", "employees")


def _csv(values: Iterable[str]) -> str:
    return ",".join(v.strip() for v in values if v.strip())


def export_job(
    *,
    report_states: Sequence[str] = (),
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    approved_after: dt.date | None = None,
    policy_ids: Sequence[str] = (),
    report_ids: Sequence[str] = (),
    not_marked_as: str | None = None,
    test: bool = False,
) -> JobDict:
    """The main export: JSON Lines via our template, and deliberately no ``onFinish``.

    ``markAsExported`` fires when the export job runs and cannot be undone (§2.2), so reports are
    stamped later, only once QuickBooks has them (:func:`stamp_job`).

    Raises:
        ValueError: no anchor (Expensify answers an empty ``filters`` with a 410).
    """
    filters: dict[str, str] = {}
    if report_ids:
        filters["reportIDList"] = _csv(report_ids)
    if start_date is not None:
        filters["startDate"] = start_date.isoformat()
    if end_date is not None:
        filters["endDate"] = end_date.isoformat()
    if approved_after is not None:
        filters["approvedAfter"] = approved_after.isoformat()
    if policy_ids:
        filters["policyIDList"] = _csv(policy_ids)
    if not_marked_as:
        filters["markedAsExported"] = not_marked_as
    if not ({"reportIDList", "startDate", "approvedAfter"} & filters.keys()):
        raise ValueError("an export needs reportIDList, startDate or approvedAfter")
    input_settings: dict[str, Any] = {"type": "combinedReportData", "filters": filters}
    if report_states:
        input_settings["reportState"] = _csv(report_states)
    job: JobDict = {
        "type": "file",
        "onReceive": {"immediateResponse": ["returnRandomFileName"]},
        "inputSettings": input_settings,
        "outputSettings": {"fileExtension": "json", "fileBasename": EXPORT_BASENAME},
    }
    if test:
        job["test"] = "true"  # a string, as documented; a JSON boolean is not known to be honoured
    return job


def stamp_job(report_ids: Sequence[str], label: str) -> JobDict:
    """The small export whose only purpose is its ``markAsExported`` action on exactly these reports."""
    if not report_ids:
        raise ValueError("nothing to stamp")
    return {
        "type": "file",
        "onReceive": {"immediateResponse": ["returnRandomFileName"]},
        "inputSettings": {"type": "combinedReportData", "filters": {"reportIDList": _csv(report_ids)}},
        "outputSettings": {"fileExtension": "txt", "fileBasename": f"{EXPORT_BASENAME}-stamp"},
        "onFinish": [{"actionName": "markAsExported", "label": label}],
    }


def download_job(file_name: str) -> JobDict:
    """Fetch an export's bytes by the bare file name the export answered with."""
    return {"type": "download", "fileName": file_name, "fileSystem": "integrationServer"}


def policy_job(policy_ids: Sequence[str], fields: Sequence[str] = POLICY_FIELDS) -> JobDict:
    """The policy getter (``policyIDList`` is a JSON array here, unlike the exporter's string)."""
    if not policy_ids or not fields:
        raise ValueError("the policy getter needs policy IDs and fields (empty ones are a 410)")
    return {
        "type": "get",
        "inputSettings": {"type": "policy", "fields": list(fields), "policyIDList": list(policy_ids)},
    }


def policy_list_job() -> JobDict:
    """The policies the partner user can see (used when no policy IDs are configured)."""
    return {"type": "get", "inputSettings": {"type": "policyList"}}
