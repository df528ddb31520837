"""What ``mlconnector status`` reports, as plain data (rendered by cli/render, or printed as JSON).

The JSON shape is part of the user-facing contract: keys are only ever added.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mlconnector.config import load_config
from mlconnector.errors import ConfigError
from mlconnector.models import PostingState
from mlconnector.paths import Paths
from mlconnector.store import Store, dashboard
from mlconnector.store.pulls import LAST_PULL_SETTING
from mlconnector.store.company import company_file
from mlconnector.store.ledger import all_duplicates
from mlconnector.store.payments import payment_counts


# Without it (and before any pull succeeded) the plain `pull` a schedule runs fails every day.
START_DATE_PROBLEM = ("expensify.start_date: missing, and no pull has succeeded yet, so a plain `mlconnector pull` "
                      "fails (set it in config.toml, or run mlconnector init --force --start-date YYYY-MM-DD)")


def _alerts(store: Store) -> list[dict[str, Any]]:
    """Each alert channel that ever tried to send: when, and its last error (a failing channel is otherwise
    silent: it is only retried)."""
    from mlconnector.redact import redact_text
    from mlconnector.store.alerts import channel_states

    return [{"channel": c.channel, "last_attempt_at": c.last_attempt_at, "last_sent_at": c.last_sent_at,
             "last_error": redact_text(c.last_error) if c.last_error else None}
            for c in sorted(channel_states(store).values(), key=lambda c: c.channel)]


def _schedule(store: Store, config: Any) -> dict[str, Any]:
    """The next pull `serve` runs by itself ([schedule]) and how its last one ended."""
    from mlconnector.services.schedule import schedule_status

    if config is None:
        return {"next_pull": None, "last_pull": None}
    return schedule_status(store, config, dt.datetime.now(dt.timezone.utc))


def _writable(paths: Paths) -> bool:
    import os

    state = paths.state_file
    return os.access(state, os.W_OK) and os.access(state.parent, os.W_OK)


def collect_status(paths: Paths) -> dict[str, Any]:
    """Config, state file and posting counts. Never creates files; never includes a secret."""
    config: dict[str, Any] = {"path": str(paths.config_file), "found": paths.config_file.exists(), "problems": []}
    takeover = dt.timedelta(minutes=10)
    start_missing = False
    loaded_config = None
    if config["found"]:
        try:
            loaded = load_config(paths.config_file)
            loaded_config = loaded
            takeover = dt.timedelta(minutes=loaded.qbwc.takeover_after_minutes)
            config["mode"] = loaded.quickbooks.mode.value
            start_missing = loaded.expensify.start_date is None
            config["expensify_credentials"] = bool(
                loaded.expensify.partner_user_id and loaded.expensify.partner_user_secret
            )
        except ConfigError as exc:
            config["problems"] = [str(p) for p in exc.problems]
    state: dict[str, Any] = {"path": str(paths.state_file), "exists": paths.state_file.exists()}
    counts = dict.fromkeys((s.value for s in PostingState), 0)
    payments = {**counts, "paid_by_hand": 0}
    reports = {"queued": 0, "blocked": 0}
    reasons: list[dict[str, Any]] = []
    if state["exists"]:
        store = Store.open(paths.state_file) if _writable(paths) else Store.open_read_only(paths.state_file)
        try:
            state["schema_version"] = store.schema_version()
            counts = {s.value: n for s, n in store.posting_counts().items()}
            if start_missing and store.get_setting(LAST_PULL_SETTING) is None:
                config["problems"].append(START_DATE_PROBLEM)
            payments = payment_counts(store)
            reports = report_counts(store)
            reasons = top_blocked_reasons(store)
            pulls = _pull_status(store)
            dashboard = {**web_connector_status(store, takeover), **attention(store), "duplicates": duplicates(store),
                         "quickbooks_company": company_file(store) or None,
                         "schedule": _schedule(store, loaded_config), "alerts": _alerts(store)}
        finally:
            store.close()
    else:
        pulls = {"last_pull": None, "changed_after_posting": []}
        dashboard = {"last_qbwc_contact": None, "qbwc_session": None,
                     "blocked": _empty_list(), "failed": _empty_list(), "duplicates": _empty_list(),
                     "quickbooks_company": None, "schedule": {"next_pull": None, "last_pull": None}, "alerts": []}
    return {
        "home": {"path": str(paths.home), "exists": paths.home.is_dir()},
        # "postings" counts every transaction, bill payments included; "bill_payments" those alone, plus the
        # reports whose bills QuickBooks showed paid by hand (no payment posted).
        "config": config, "state": state, "postings": counts, "bill_payments": payments, "log_dir": str(paths.log_dir),
        "reports": reports, "blocked_reasons": reasons, **pulls, **dashboard,
    }


# How many blocked and failed postings status lists by name; the rest are counted ("more").
ATTENTION_LIMIT = 20


def _empty_list() -> dict[str, Any]:
    return {"count": 0, "items": [], "more": 0}


def web_connector_status(store: Store, takeover: dt.timedelta = dt.timedelta(minutes=10)) -> dict[str, Any]:
    """When the Web Connector last logged in, and how its newest session stands (no ticket: it is a credential).

    A session with a request inside QuickBooks makes new updates wait ("busy"): ``busy_until`` says
    until when, so a stalled update is explained rather than mysterious.
    """
    session = dashboard.newest_session(store)
    if session is not None:
        awaiting = session["state"] == "awaiting_response"
        session["awaiting_answer"] = awaiting
        session["busy_until"] = (
            (dt.datetime.fromisoformat(session["last_seen_at"]) + takeover).isoformat(timespec="seconds")
            if awaiting else None)
    return {"last_qbwc_contact": store.get_setting("qbwc.last_contact"), "qbwc_session": session}


def duplicates(store: Store, limit: int = ATTENTION_LIMIT) -> dict[str, Any]:
    """Reports QuickBooks holds more than once, with both TxnIDs and the fix (never deleted automatically)."""
    count, found = all_duplicates(store, limit)
    return {"count": count, "items": [d.as_dict() for d in found], "more": count - len(found)}


def attention(store: Store, limit: int = ATTENTION_LIMIT) -> dict[str, Any]:
    """The blocked postings (by report) and the failed ones (newest first), each with its reason."""
    blocked = dashboard.blocked_postings(store, limit)
    failed = dashboard.failed_postings(store, limit)
    totals = dashboard.postings_per_state(store, ("blocked", "failed"))
    return {
        name: {"count": int(totals.get(name, 0)), "items": items, "more": int(totals.get(name, 0)) - len(items)}
        for name, items in (("blocked", blocked), ("failed", failed))
    }


def report_counts(store: Store) -> dict[str, int]:
    """How many reports have a queued posting, and how many a blocked one."""
    return dashboard.reports_per_state(store, ("queued", "blocked"))


def top_blocked_reasons(store: Store, limit: int = 5) -> list[dict[str, Any]]:
    """The commonest reasons reports are blocked, with how many reports each blocks (most first).

    A blocked posting's reason holds one block per line, "location: reason — fix"; the location
    (report, expense, field) is dropped so the same problem in many reports counts as one.
    """
    reports_by_reason: dict[str, set[str]] = {}
    for report_id, reason in dashboard.blocked_reasons(store):
        for line in str(reason).splitlines():
            text = line.split(": ", 1)[1] if ": " in line else line
            reports_by_reason.setdefault(text.strip(), set()).add(str(report_id))
    ranked = sorted(reports_by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [{"reason": text, "reports": len(ids), "example": sorted(ids)[0]} for text, ids in ranked[:limit]]


def _pull_status(store: Store) -> dict[str, Any]:
    """The last pull and the reports edited in Expensify after QuickBooks got them."""
    return {"last_pull": dashboard.last_pull(store), "changed_after_posting": dashboard.changed_after_posting(store)}
