"""The simulated Integration Server's error envelopes and job types, as the real one writes them."""

from __future__ import annotations

import json

RATE_LIMIT_MESSAGE = (
    "You have been rate-limited. Please try again later or contact help@expensify.com for assistance."
)

TOMCAT_500 = (
    "<!doctype html><html lang=\"en\"><head><title>HTTP Status 500 - {what}</title></head>"
    "<body><h1>HTTP Status 500 - {what}</h1><hr class=\"line\" /><p><b>Type</b> Exception Report</p>"
    "<h3>Apache Tomcat</h3></body></html>"
)


def env(message: str, code: int) -> bytes:
    return json.dumps({"responseMessage": message, "responseCode": code}).encode()


def job_type_of(raw: str) -> str:
    try:
        job = json.loads(raw)
        return str(job.get("type", "?")) if isinstance(job, dict) else "?"
    except ValueError:
        return "?"


def failure(kind: str, message: str | None) -> tuple[int, str, bytes]:
    plain = "text/plain;charset=utf-8"
    answers: dict[str, tuple[int, str, bytes]] = {
        "auth": (200, plain, env(message or "Authentication error", 401)),
        "http_401": (401, "text/html", b"<html><head><title>401 Unauthorized</title></head></html>"),
        "http_403": (403, "text/html", b"<html><head><title>403 - Invalid Credentials</title></head></html>"),
        "validation": (200, plain, env(message or "Malformed date '16-01-01'. Expected format is yyyy-MM-dd", 410)),
        "rate_limit_http": (429, plain, b""),
        "rate_limit_body": (200, plain, env(RATE_LIMIT_MESSAGE, 429)),
        "server_error_body": (200, plain, env(message or "Internal error", 500)),
        "http_500": (500, plain, b"Internal Server Error"),
        "http_503": (503, "text/html", b"<html><head><title>503 Service Unavailable</title></head></html>"),
        "html": (500, "text/html;charset=utf-8", TOMCAT_500.format(what=message or "JSONObject").encode()),
        "drop": (0, "", b""),
    }
    return answers[kind]
