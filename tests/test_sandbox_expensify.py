"""The simulator's own wire behaviour (EXPENSIFY.md §9), checked with plain HTTP requests."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import requests

from mlconnector.expensify import jobs
from mlconnector.expensify.template import export_template, stamp_template
from mlconnector.sandbox.expensify import ExpensifySimulator, SimReport, demo_reports
from mlconnector.sandbox.export_render import render_export


def _job(sim: ExpensifySimulator, job: dict[str, Any]) -> str:
    creds = {"partnerUserID": sim.partner_user_id, "partnerUserSecret": sim.partner_user_secret}
    return json.dumps({**job, "credentials": creds})


def _export_ids(sim: ExpensifySimulator, job: dict[str, Any], *, in_query: bool = False) -> list[str]:
    fields = {"requestJobDescription": _job(sim, job), "template": export_template()}
    answer = (requests.post(sim.url, params=fields, timeout=5) if in_query
              else requests.post(sim.url, data=fields, timeout=5))
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain"), answer.text
    name = answer.text
    body = requests.post(sim.url, data={"requestJobDescription": _job(sim, jobs.download_job(name))}, timeout=5)
    lines = [json.loads(line) for line in body.content.splitlines()]
    return [line["reportID"] for line in lines[:-1]]


def test_filters_states_policies_labels_and_fields_from_the_query_string() -> None:
    reports = demo_reports(4, 1)
    reports[1]["policyID"] = "BA5EBA11BA5EBA11"
    with ExpensifySimulator([SimReport(reports[0], state="OPEN"), *reports[1:]], not_ready_polls=0,
                            rate_limits=()) as sim:
        ids = [r["reportID"] for r in reports]
        everything = jobs.export_job(start_date=dt.date(2026, 1, 1))
        assert _export_ids(sim, everything, in_query=True) == ids
        approved = jobs.export_job(report_states=["APPROVED"], start_date=dt.date(2026, 1, 1),
                                   policy_ids=["0810E551A5F2A9C2"], not_marked_as="L")
        assert _export_ids(sim, approved) == ids[2:]
        stamp = jobs.stamp_job([ids[2]], "L")
        requests.post(sim.url, data={"requestJobDescription": _job(sim, stamp), "template": stamp_template()}, timeout=5)
        assert sim.labels(ids[2]) == {"L"}
        assert _export_ids(sim, approved) == ids[3:]
        test_stamp = {**jobs.stamp_job([ids[3]], "L"), "test": "true"}
        requests.post(sim.url, data={"requestJobDescription": _job(sim, test_stamp), "template": stamp_template()},
                      timeout=5)
        assert sim.labels(ids[3]) == set()  # test mode never runs onFinish


def test_wire_errors_look_like_expensifys() -> None:
    with ExpensifySimulator(rate_limits=()) as sim:
        def post(fields: dict[str, str]) -> requests.Response:
            return requests.post(sim.url, data=fields, timeout=5)

        unknown = post({"requestJobDescription": _job(sim, jobs.download_job("export-nope.json"))})
        assert unknown.json() == {"responseMessage": "File not found"}
        no_filters = {"type": "file", "inputSettings": {"type": "combinedReportData", "filters": {}}}
        answer = post({"requestJobDescription": _job(sim, no_filters), "template": export_template()})
        assert answer.status_code == 200 and answer.json()["responseCode"] == 410
        too_long = jobs.export_job(start_date=dt.date(2024, 1, 1),
                                   end_date=dt.date(2026, 1, 1))
        answer = post({"requestJobDescription": _job(sim, too_long), "template": export_template()})
        assert answer.json()["responseCode"] == 410
        bad_date = {"type": "file", "inputSettings": {"type": "combinedReportData", "filters": {"startDate": "16-01-01"}}}
        answer = post({"requestJobDescription": _job(sim, bad_date), "template": export_template()})
        assert answer.json()["responseMessage"] == "Malformed date '16-01-01'. Expected format is yyyy-MM-dd"
        missing = post({"template": export_template()})
        assert missing.status_code == 500 and "HTTP Status 500 - requestJobDescription" in missing.text


def test_the_server_side_limit_answers_429_and_records_every_request() -> None:
    now = [0.0]
    with ExpensifySimulator(clock=lambda: now[0]) as sim:
        statuses = []
        for _ in range(7):
            statuses.append(requests.post(sim.url, data={"requestJobDescription": _job(sim, jobs.policy_list_job())},
                                          timeout=5).status_code)
        now[0] = 10.5
        statuses.append(requests.post(sim.url, data={"requestJobDescription": _job(sim, jobs.policy_list_job())},
                                      timeout=5).status_code)
    assert statuses == [200] * 5 + [429, 429, 200]
    assert sim.request_times() == [0.0] * 7 + [10.5]


def test_the_emulation_renders_ten_thousand_reports_quickly() -> None:
    reports = demo_reports(10_000, 10)
    started = time.perf_counter()
    size = sum(len(line) for line in render_export(reports))
    assert size > 10_000 * 1_000
    assert time.perf_counter() - started < 20  # generous: typically about 1 s
