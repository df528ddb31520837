from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mlconnector.errors import (
    ExpensifyAuthError,
    ExpensifyError,
    ExpensifyRetriableError,
    ExpensifyValidationError,
)
from mlconnector.expensify import jobs
from mlconnector.expensify.client import (
    DownloadNotReady,
    RateLimiter,
    RetryPolicy,
    classify,
    map_requests_error,
)
from mlconnector.expensify.template import export_template
from mlconnector.redact import redact_text
from mlconnector.sandbox.expensify import ExpensifySimulator, demo_reports
from tests.sim_helpers import FakeClock, make_client

JOB = jobs.export_job(report_states=["APPROVED"], start_date=dt.date(2026, 1, 1))


def _all_subclasses(cls: type[Exception]) -> set[type[Exception]]:
    found: set[type[Exception]] = set()
    sub: type[Exception]
    for sub in cls.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


@pytest.mark.parametrize("exc_type", sorted(_all_subclasses(requests.RequestException) | {requests.RequestException},
                                            key=str))
def test_every_requests_exception_maps_into_the_expensify_error_tree(exc_type: type[Exception]) -> None:
    message = "boom partnerUserSecret%22%3A%22hunter22%22"
    exc: Any = exc_type(message, "{", 0) if issubclass(exc_type, json.JSONDecodeError) else exc_type(message)
    mapped = map_requests_error(exc)
    assert isinstance(mapped, ExpensifyError)
    assert "hunter22" not in str(mapped)
    network = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
    bad_url = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)
    if issubclass(exc_type, network) and not issubclass(exc_type, bad_url):
        assert isinstance(mapped, ExpensifyRetriableError)
    if issubclass(exc_type, bad_url):
        assert not isinstance(mapped, ExpensifyRetriableError)


@pytest.mark.parametrize(
    ("status", "ctype", "body", "expect", "error", "text"),
    [
        (200, "text/plain", b'{"responseMessage":"Authentication error","responseCode":401}', "filename",
         ExpensifyAuthError, "Authentication error"),
        (200, "text/plain", b'{"responseMessage":"Not authorized to authenticate as user a@b.c","responseCode":500}',
         "json", ExpensifyAuthError, "Not authorized"),
        (401, "text/html", b"<html><title>401 Unauthorized</title></html>", "json", ExpensifyAuthError, "HTTP 401"),
        (403, "", b"", "filename", ExpensifyAuthError, "HTTP 403"),
        (200, "text/plain", b'{"responseMessage":"Malformed date \'16-01-01\'","responseCode":410}', "filename",
         ExpensifyValidationError, "(410): Malformed date '16-01-01'"),
        (410, "text/plain", b"", "json", ExpensifyValidationError, "HTTP 410"),
        (429, "text/plain", b"", "json", ExpensifyRetriableError, "rate-limited"),
        (200, "text/plain", b'{"responseMessage":"You have been rate-limited.","responseCode":429}', "file",
         ExpensifyRetriableError, "rate-limited"),
        (500, "text/plain", b"oops", "json", ExpensifyRetriableError, "HTTP 500"),
        (200, "application/json", b'{"responseMessage":"Internal error","responseCode":500}', "json",
         ExpensifyRetriableError, "(500): Internal error"),
        (500, "text/html", b"<html><head><title>HTTP Status 500 - JSONObject</title></head></html>", "filename",
         ExpensifyError, "HTML error page (HTTP 500: HTTP Status 500 - JSONObject)"),
        (200, "text/plain", b"<!DOCTYPE html><html><h1>Oops</h1></html>", "file", ExpensifyError, "HTML error page"),
        (503, "text/html", b"<html><title>Service Unavailable</title></html>", "json", ExpensifyRetriableError, "HTML"),
        (200, "text/plain", b"", "file", DownloadNotReady, "not ready"),
        (200, "text/plain", b'{"responseMessage":"File not found"}', "file", DownloadNotReady, "not ready"),
        (200, "text/plain", b"not a file name", "filename", ExpensifyError, "other than a file name"),
        (200, "text/plain", b'{"responseMessage":"Rule exists","responseCode":666}', "json", ExpensifyError, "666"),
    ],
)
def test_classify_sorts_every_answer(status: int, ctype: str, body: bytes, expect: str, error: type, text: str) -> None:
    with pytest.raises(error) as info:
        classify(status, ctype, body, expect=expect)  # type: ignore[arg-type]
    assert type(info.value) is error
    assert text in str(info.value)


def test_classify_accepts_the_successful_shapes(reference_dir: Path) -> None:
    live = (reference_dir / "expensify/live_observed/file-submit.txt").read_bytes()
    assert classify(200, "text/plain;charset=utf-8", live, expect="filename") == live.decode().strip()
    policy = (reference_dir / "expensify/doc_examples/policy_getter_response.json").read_bytes()
    assert "policyInfo" in classify(200, "application/json", policy, expect="json")
    assert classify(200, "application/octet-stream", b'{"reportID":"R1"}\n', expect="file") is None
    error = (reference_dir / "expensify/doc_examples/policy_getter_error.json").read_bytes()
    with pytest.raises(ExpensifyValidationError, match="Required parameter 'policyIDList' is missing"):
        classify(200, "text/plain", error, expect="json")


def test_retry_delays_grow_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(base_delay=2.0, max_delay=20.0, jitter=0.5)
    assert [policy.delay(n, lambda: 0.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert [policy.delay(n, lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [2.0, 4.0, 8.0, 16.0, 20.0]
    assert [policy.delay(n, lambda: 1.0, rate_limited=True) for n in (1, 4, 5)] == [10.0, 16.0, 20.0]


def _max_in_window(times: list[float], period: float) -> int:
    return max((sum(1 for t in times if start <= t < start + period) for start in times), default=0)


def test_the_limiter_keeps_both_windows() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep, margin=0.0)
    times = []
    for _ in range(60):
        limiter.acquire()
        times.append(clock())
    assert _max_in_window(times, 10.0) == 5 and _max_in_window(times, 60.0) == 20
    assert times[-1] - times[0] >= 120  # 60 requests at 20 per minute take at least two minutes


# ----------------------------------------------------------------------- over loopback HTTP


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[ExpensifySimulator]:
    with ExpensifySimulator(demo_reports(3), clock=clock, not_ready_polls=2) as s:
        yield s


def test_export_then_download_returns_the_file_after_not_ready_polls(sim: ExpensifySimulator, clock: FakeClock) -> None:
    client = make_client(sim, clock)
    name = client.export(JOB, export_template())
    assert name.startswith("mlconnector") and name.endswith(".json")
    buffer = io.BytesIO()
    size = client.download(name, buffer)
    assert size == len(buffer.getvalue()) > 0
    assert [r.job_type for r in sim.requests] == ["file", "download", "download", "download"]
    assert json.loads(buffer.getvalue().splitlines()[-1]) == {"end": True, "reports": 3}
    form = sim.requests[0].form
    assert set(form) == {"requestJobDescription", "template"}
    assert "template" not in json.loads(form["requestJobDescription"])


def test_a_template_nested_in_the_json_is_refused_like_expensify_does(sim: ExpensifySimulator) -> None:
    job = {**JOB, "template": export_template(),
           "credentials": {"partnerUserID": sim.partner_user_id, "partnerUserSecret": sim.partner_user_secret}}
    answer = requests.post(sim.url, params={"requestJobDescription": json.dumps(job)}, timeout=5)
    assert json.loads(answer.text) == {"responseMessage": "No Template Submitted", "responseCode": 410}


@pytest.mark.parametrize("kind", ["auth", "http_401", "http_403"])
def test_bad_credentials_fail_at_once_without_retrying(sim: ExpensifySimulator, clock: FakeClock, kind: str) -> None:
    sim.fail_next(kind, times=3)
    with pytest.raises(ExpensifyAuthError):
        make_client(sim, clock).export(JOB, export_template())
    assert len(sim.requests) == 1


def test_wrong_secret_is_an_auth_error_and_the_secret_never_reaches_the_log(
    sim: ExpensifySimulator, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    from mlconnector.expensify.client import ExpensifyClient

    client = ExpensifyClient(sim.partner_user_id, "wrong-secret-xyz", sim.url, sleep=clock.sleep, clock=clock)
    with pytest.raises(ExpensifyAuthError, match="Authentication error") as info:
        client.export(JOB, export_template())
    assert "wrong-secret-xyz" not in str(info.value) and "wrong-secret-xyz" not in caplog.text
    assert redact_text("x wrong-secret-xyz y") == "x ******** y"


def test_a_410_carries_expensifys_message(sim: ExpensifySimulator, clock: FakeClock) -> None:
    sim.fail_next("validation", message="Required parameter 'policyIDList' is missing")
    with pytest.raises(ExpensifyValidationError) as info:
        make_client(sim, clock).export(JOB, export_template())
    assert str(info.value) == "Expensify rejected the request (410): Required parameter 'policyIDList' is missing"
    assert len(sim.requests) == 1


@pytest.mark.parametrize("kind", ["rate_limit_http", "rate_limit_body", "http_500", "server_error_body", "http_503",
                                  "drop"])
def test_retriable_failures_are_retried_with_backoff_then_succeed(
    sim: ExpensifySimulator, clock: FakeClock, kind: str
) -> None:
    sim.fail_next(kind, times=2)
    name = make_client(sim, clock).export(JOB, export_template())
    assert name.endswith(".json")
    assert [r.job_type for r in sim.requests] == ["file"] * 3
    if kind.startswith("rate_limit"):
        assert clock.slept[:2] == [10.0, 10.0]  # a full window is waited out
    else:
        assert clock.slept[:2] == [0.75, 1.5]  # base 1 s doubling, half of it jittered (rand = 0.5)


def test_retries_give_up_after_the_policys_tries(sim: ExpensifySimulator, clock: FakeClock) -> None:
    sim.fail_next("http_500", times=10)
    with pytest.raises(ExpensifyRetriableError, match=r"HTTP 500\) \(after 4 tries\)"):
        make_client(sim, clock).export(JOB, export_template())
    assert len(sim.requests) == 4


def test_an_html_error_page_is_a_clear_error_and_not_retried(sim: ExpensifySimulator, clock: FakeClock) -> None:
    sim.fail_next("html")
    with pytest.raises(ExpensifyError) as info:
        make_client(sim, clock).export(JOB, export_template())
    assert not isinstance(info.value, ExpensifyRetriableError)
    assert "HTML error page (HTTP 500: HTTP Status 500 - JSONObject)" in str(info.value)


def test_malformed_json_gets_the_tomcat_page_from_the_simulator(sim: ExpensifySimulator) -> None:
    answer = requests.post(sim.url, data={"requestJobDescription": "{'type':'file'"}, timeout=5)
    assert answer.status_code == 500 and "HTTP Status 500 - JSONObject" in answer.text


def test_a_download_that_never_gets_ready_is_a_clear_retriable_error(clock: FakeClock) -> None:
    with ExpensifySimulator(demo_reports(1), clock=clock, not_ready_polls=10**6, not_ready_style="envelope") as sim:
        client = make_client(sim, clock, max_polls=5)
        name = client.export(JOB, export_template())
        buffer = io.BytesIO()
        with pytest.raises(ExpensifyRetriableError, match=f"the export file {name} was not ready after 5 polls"):
            client.download(name, buffer)
    assert buffer.getvalue() == b""


def test_an_unreachable_server_is_a_retriable_network_error(clock: FakeClock) -> None:
    with ExpensifySimulator(clock=clock) as sim:
        url = sim.url
    from mlconnector.expensify.client import ExpensifyClient

    client = ExpensifyClient("u", "secret-1234", url, retry=RetryPolicy(max_tries=2), sleep=clock.sleep, clock=clock)
    with pytest.raises(ExpensifyRetriableError, match=r"could not connect to 127\.0\.0\.1:\d+: connection refused"):
        client.get(jobs.policy_list_job())


def test_job_builders_match_the_documented_shapes(reference_dir: Path) -> None:
    doc = json.loads((reference_dir / "expensify/doc_report_exporter_full.json").read_text())
    job = jobs.export_job(report_states=["APPROVED", "REIMBURSED"], start_date=dt.date(2016, 1, 1),
                          end_date=dt.date(2016, 2, 1), not_marked_as="Expensify Export")
    assert set(job) | {"credentials", "onFinish"} == set(doc)
    assert "onFinish" not in job  # markAsExported must never ride on the main export
    assert job["inputSettings"]["filters"] == doc["inputSettings"]["filters"]
    assert job["inputSettings"]["reportState"] == doc["inputSettings"]["reportState"]
    download = json.loads((reference_dir / "expensify/helpdoc_downloader_current.json").read_text())
    assert set(jobs.download_job("x.json")) | {"credentials"} == set(download)
    getter = json.loads((reference_dir / "expensify/doc_policy_getter.json").read_text())
    built = jobs.policy_job(["0123456789ABCDEF"])
    assert built["type"] == getter["type"] and isinstance(built["inputSettings"]["policyIDList"], list)
    stamp = jobs.stamp_job(["R1", "R2"], "ml-connector")
    assert stamp["inputSettings"]["filters"] == {"reportIDList": "R1,R2"}
    assert stamp["onFinish"] == [{"actionName": "markAsExported", "label": "ml-connector"}]
    assert jobs.export_job(report_ids=["R1"], test=True)["test"] == "true"
    with pytest.raises(ValueError):
        jobs.export_job(report_states=["APPROVED"])
