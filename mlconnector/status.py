"""What ``mlconnector status`` reports, as plain data (rendered by cli/render, or printed as JSON).

The JSON shape is part of the user-facing contract: keys are only ever added.
"""

from __future__ import annotations

from typing import Any

from mlconnector.config import load_config
from mlconnector.errors import ConfigError
from mlconnector.models import PostingState
from mlconnector.paths import Paths
from mlconnector.store import Store


def collect_status(paths: Paths) -> dict[str, Any]:
    """Config, state file and posting counts. Never creates files; never includes a secret."""
    config: dict[str, Any] = {"path": str(paths.config_file), "found": paths.config_file.exists(), "problems": []}
    if config["found"]:
        try:
            loaded = load_config(paths.config_file)
            config["mode"] = loaded.quickbooks.mode.value
            config["expensify_credentials"] = bool(
                loaded.expensify.partner_user_id and loaded.expensify.partner_user_secret
            )
        except ConfigError as exc:
            config["problems"] = [str(p) for p in exc.problems]
    state: dict[str, Any] = {"path": str(paths.state_file), "exists": paths.state_file.exists()}
    counts = dict.fromkeys((s.value for s in PostingState), 0)
    if state["exists"]:
        store = Store.open(paths.state_file)
        try:
            state["schema_version"] = store.schema_version()
            counts = {s.value: n for s, n in store.posting_counts().items()}
            pulls = _pull_status(store)
        finally:
            store.close()
    else:
        pulls = {"last_pull": None, "changed_after_posting": []}
    return {"config": config, "state": state, "postings": counts, "log_dir": str(paths.log_dir), **pulls}


def _pull_status(store: Store) -> dict[str, Any]:
    """The last pull and the reports edited in Expensify after QuickBooks got them."""
    row = store.conn.execute(
        "SELECT id, started_at, finished_at, result, error FROM pulls ORDER BY id DESC LIMIT 1"
    ).fetchone()
    last = dict(zip(("id", "started_at", "finished_at", "result", "error"), row)) if row else None
    changed = [r[0] for r in store.conn.execute(
        "SELECT report_id FROM reports WHERE changed_after_posting = 1 ORDER BY report_id")]
    return {"last_pull": last, "changed_after_posting": changed}
