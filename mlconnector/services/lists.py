"""``mlconnector map refresh``: copy each policy's categories, tags and employees into the state file.

The lists let ``map check`` list the names no report uses yet that still need a mapping. A refresh
replaces a policy's rows in one transaction with its audit row, so a failed refresh keeps the old
lists whole; the time of the last complete refresh is kept, and :func:`refresh_if_stale` (called by
``pull``) refreshes only when the lists are older than a day or missing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlconnector.config import Config
from mlconnector.errors import ExpensifyRetriableError
from mlconnector.expensify import jobs
from mlconnector.expensify.client import ExpensifyClient
from mlconnector.expensify.parse import split_tag_levels
from mlconnector.mapping.rules import MappingKind, normalize_source
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent
from mlconnector.store.policy_lists import (
    last_refresh,
    list_entries,
    mark_refreshed,
    newest_fetch,
    replace_policy_lists,
)

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


def refresh_policy_lists(
    store: Store, client: ExpensifyClient, config: Config, *, actor: str = "map refresh"
) -> RefreshSummary:
    """Fetch categories, tags and employees of the configured policies (or of every policy the
    partner user sees when none are configured) and store them in ``expensify_lists``, with the
    time of this refresh (:func:`refresh_if_stale` reads it).

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
        with store.atomic():
            mark_refreshed(store, store.timestamp(), config.expensify.policy_ids)
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
            store.audit.append(AuditEvent.LISTS_REFRESHED, actor=actor,
                               detail={"policy_id": policy_id, "found": policy_id in info, **counts})
        summary.policies[policy_id] = counts
    with store.atomic():
        mark_refreshed(store, now, config.expensify.policy_ids)
    return summary


def lists_age(store: Store, config: Config) -> dt.timedelta | None:
    """How old the stored lists are, or None when they were never refreshed (or not for the policies
    ``config`` names now)."""
    at, policies = last_refresh(store)
    if at is None or sorted(policies) != sorted(config.expensify.policy_ids):
        return None
    try:
        when = dt.datetime.fromisoformat(at)
        return store.now() - when
    except (ValueError, TypeError):  # an unreadable or naive/aware-mixed stamp counts as never
        return None


def refresh_if_stale(
    store: Store,
    client: ExpensifyClient,
    config: Config,
    *,
    max_age: dt.timedelta = dt.timedelta(days=1),
    actor: str = "pull",
) -> RefreshSummary | None:
    """Refresh the Expensify lists as ``map refresh`` does when they are older than ``max_age`` or
    missing; otherwise return None without calling Expensify.

    Raises:
        ExpensifyError: Expensify failed (as :func:`refresh_policy_lists`); the stored lists stay as they were.
        StoreError: the state file could not be written.
    """
    age = lists_age(store, config)
    if age is not None and dt.timedelta(0) <= age < max_age:  # a stamp from the future (clock moved back) is stale
        return None
    return refresh_policy_lists(store, client, config, actor=actor)


@dataclass(frozen=True)
class ListName:
    """A name that Expensify's lists hold, as a mapping source, and the policies that have it enabled."""

    kind: MappingKind
    source: str
    policies: tuple[str, ...]


def _tag_at(name: str, detail: Mapping[str, Any], level: int) -> str | None:
    """The value a tag gives at ``level`` (1-based): a levelled tag's own name, or the level of a flat
    ``Parent:Child`` name split as an expense's tag is (``\\:`` a literal colon)."""
    if level <= 0:
        return None
    if "level_index" in detail:
        value = name.replace("\\:", ":").strip() if detail.get("level_index") == level else ""
    else:
        levels = split_tag_levels(name)
        value = levels[level - 1] if len(levels) >= level else ""
    return value or None


def enabled_list_names(store: Store, *, class_tag_level: int = 1, customer_tag_level: int = 2) -> list[ListName]:
    """Every enabled category, tag (at the class and customer:job levels) and employee e-mail stored
    by the last refresh, once per mapping source, by kind and name."""
    found: dict[tuple[MappingKind, str], list[str]] = {}
    for policy_id, kind, name, enabled, detail_json in list_entries(store):
        if not enabled:
            continue
        if kind == "category":
            sources = [(MappingKind.CATEGORY, name)]
        elif kind == "employee":
            sources = [(MappingKind.EMPLOYEE, name)]
        elif kind == "tag":
            try:
                detail = json.loads(detail_json)
            except ValueError:
                detail = {}
            detail = detail if isinstance(detail, dict) else {}
            sources = [(mk, tag) for mk, level in ((MappingKind.CLASS, class_tag_level),
                                                    (MappingKind.CUSTOMER, customer_tag_level))
                       if (tag := _tag_at(name, detail, level)) is not None]
        else:
            continue
        for mk, source in sources:
            policies = found.setdefault((mk, normalize_source(mk, source)), [])
            if policy_id not in policies:
                policies.append(policy_id)
    return [ListName(mk, source, tuple(policies))
            for (mk, source), policies in sorted(found.items(), key=lambda i: (i[0][0].value, i[0][1].casefold()))]


def lists_refreshed_at(store: Store) -> str | None:
    """When the Expensify lists were last refreshed (or fetched, by an older ml-connector), or None."""
    return last_refresh(store)[0] or newest_fetch(store)
