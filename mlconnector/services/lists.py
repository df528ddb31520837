"""``mlconnector map refresh``: copy each policy's categories, tags and employees into the state file.

The lists let ``map check`` (and validation) tell a typo from a name Expensify really has. A refresh
replaces a policy's rows in one transaction with its audit row, so a failed refresh keeps the old
lists whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlconnector.config import Config
from mlconnector.errors import ExpensifyRetriableError
from mlconnector.expensify import jobs
from mlconnector.expensify.client import ExpensifyClient
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent
from mlconnector.store.policy_lists import replace_policy_lists

KINDS = ("category", "tag", "employee")


@dataclass(frozen=True)
class ListEntry:
    """One name of a policy list."""

    kind: str
    name: str
    enabled: bool = True
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RefreshSummary:
    """How many names each policy's lists hold after the refresh."""

    policies: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON view."""
        return {"policies": self.policies}


def _categories(items: Any) -> Iterator[ListEntry]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("name"):
            extra = {k: v for k, v in item.items() if k not in ("name", "enabled")}
            yield ListEntry("category", str(item["name"]), bool(item.get("enabled", True)), extra)


def _tags(items: Any) -> Iterator[ListEntry]:
    """Tags come flat (``Parent:Child`` names) or as levels ``[{name, tags: […]}]`` (EXPENSIFY.md §5.1)."""
    for position, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("tags"), list):
            for tag in item["tags"]:
                if isinstance(tag, dict) and tag.get("name"):
                    detail = {"level": item.get("name", ""), "level_index": position + 1,
                              **{k: v for k, v in tag.items() if k not in ("name", "enabled")}}
                    yield ListEntry("tag", str(tag["name"]), bool(tag.get("enabled", True)), detail)
        elif item.get("name"):
            extra = {k: v for k, v in item.items() if k not in ("name", "enabled")}
            yield ListEntry("tag", str(item["name"]), bool(item.get("enabled", True)), extra)


def _employees(items: Any) -> Iterator[ListEntry]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("email"):
            extra = {k: v for k, v in item.items() if k != "email"}
            yield ListEntry("employee", str(item["email"]).strip().lower(), True, extra)


def policy_entries(info: Mapping[str, Any]) -> list[ListEntry]:
    """Every list entry of one policy's ``policyInfo`` object."""
    return [*_categories(info.get("categories")), *_tags(info.get("tags")), *_employees(info.get("employees"))]


def refresh_policy_lists(store: Store, client: ExpensifyClient, config: Config) -> RefreshSummary:
    """Fetch categories, tags and employees of the configured policies (or of every policy the
    partner user sees when none are configured) and store them in ``expensify_lists``.

    Raises:
        ExpensifyError: Expensify failed; ExpensifyRetriableError when its answer lacked ``policyInfo``.
        StoreError: the state file could not be written.
    """
    policy_ids = list(config.expensify.policy_ids)
    if not policy_ids:
        answer = client.get(jobs.policy_list_job())
        policy_ids = [str(p["id"]) for p in answer.get("policyList", []) if isinstance(p, dict) and p.get("id")]
    summary = RefreshSummary()
    if not policy_ids:
        return summary
    answer = client.get(jobs.policy_job(policy_ids))
    info = answer.get("policyInfo")
    if not isinstance(info, dict):
        # Seen in production (EXPENSIFY.md §5.1): an answer without policyInfo; it passes on retry.
        raise ExpensifyRetriableError("Expensify's policy answer had no policyInfo", hint="run the command again")
    now = store.timestamp()
    for policy_id in policy_ids:
        entries = policy_entries(info.get(policy_id) or {})
        with store.atomic():
            replace_policy_lists(store, policy_id, [
                (e.kind, e.name, e.enabled, json.dumps(dict(e.detail), sort_keys=True)) for e in entries], now)
            counts = {kind: len({e.name for e in entries if e.kind == kind}) for kind in KINDS}
            store.audit.append(AuditEvent.LISTS_REFRESHED, actor="map refresh",
                               detail={"policy_id": policy_id, "found": policy_id in info, **counts})
        summary.policies[policy_id] = counts
    return summary
