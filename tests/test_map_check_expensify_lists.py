"""``map check`` lists the names of Expensify's lists that no report uses yet; ``refresh_if_stale`` keeps them fresh."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.config import Config, QuickBooksConfig
from mlconnector.errors import ExpensifyAuthError
from mlconnector.models import ListKind
from mlconnector.qbxml.parse import ListRecord
from mlconnector.sandbox.expensify import ExpensifySimulator
from mlconnector.services.lists import refresh_if_stale, refresh_policy_lists
from mlconnector.services.mappings import set_mapping
from mlconnector.services.queue import check_mappings
from mlconnector.store import Store, qb_lists
from mlconnector.store.policy_lists import mark_refreshed, replace_policy_lists
from mlconnector.store.reports import save_report
from tests.sim_helpers import FakeClock, make_client, make_config

from .factories import expense, report

POLICY = "P1A2B3C4D5E6F7A8"
POLICIES: dict[str, dict[str, Any]] = {
    POLICY: {
        "name": "Acme",
        "categories": [{"name": n, "enabled": n != "Phone"} for n in ("Travel", "Meals", "Office Supplies", "Phone", "Gifts")],
        "tags": [
            {"name": "Department", "tags": [{"name": "Sales", "enabled": True}, {"name": "Legal", "enabled": False},
                                            {"name": "Ops", "enabled": True}]},
            {"name": "Customer", "tags": [{"name": "Acme:Project X", "enabled": True}, {"name": "Globex", "enabled": True}]},
        ],
        "employees": [{"email": "ann@example.com"}, {"email": "Bo@Example.com"}, {"email": "chloe@example.com"}],
    },
}
QB_RECORDS = [
    ListRecord(ListKind.ACCOUNT, "Travel", "A1", "1", True),
    ListRecord(ListKind.ACCOUNT, "Meals & Entertainment", "A2", "1", True),
    ListRecord(ListKind.CLASS, "Sales", "C1", "1", True),
    ListRecord(ListKind.CUSTOMER, "Acme:Project X", "K1", "1", True),
    ListRecord(ListKind.VENDOR, "Ann Smith", "V1", "1", True, "ann@example.com"),
]


def _refresh_from_simulator(store: Store, policies: dict[str, dict[str, Any]]) -> None:
    clock = FakeClock()
    with ExpensifySimulator(clock=clock, policies=policies) as sim, make_client(sim, clock) as client:
        refresh_policy_lists(store, client, make_config(sim, policy_ids=tuple(policies)))


def test_map_check_lists_enabled_expensify_names_that_no_report_uses_and_nothing_resolves(store: Store) -> None:
    _refresh_from_simulator(store, POLICIES)
    qb_lists.cache_records(store, QB_RECORDS, store.timestamp())
    set_mapping(store, "category", "Meals", "Meals & Entertainment", actor="t")
    save_report(store, report("R1"))  # Travel, Sales, Acme:Project X, ann@example.com: all resolve
    save_report(store, report("R2", expense(1, category="Office Supplies", tags=()), submitter_email="bo@example.com"))
    check = check_mappings(store, QuickBooksConfig())
    assert {(n.kind.value, n.source) for n in check.names} >= {("category", "Office Supplies"), ("employee", "bo@example.com")}
    assert [(n.kind.value, n.source, n.fix) for n in check.not_used_yet] == [
        ("category", "Gifts", 'mlconnector map set category Gifts "ACCOUNT FULL NAME"'),
        ("class", "Ops", 'mlconnector map set class Ops "CLASS FULL NAME"'),
        ("customer", "Globex", 'mlconnector map set customer Globex "CUSTOMER FULL NAME"'),
        ("employee", "chloe@example.com", 'mlconnector map set employee chloe@example.com "VENDOR NAME"'),
    ]
    assert all(n.reports == () and n.policies == (POLICY,) and not n.blocks for n in check.not_used_yet)
    data = check.as_dict()
    assert data["blocking"] == 2 and data["names"][0]["origin"] == "report"  # the keys map check had stay
    assert data["not_used_yet"][0] == {
        "kind": "category", "source": "Gifts", "target": None, "how": "unresolved", "origin": "expensify_list",
        "problem": 'category "Gifts" is unmapped and the QuickBooks account of that name does not exist',
        "fix": 'mlconnector map set category Gifts "ACCOUNT FULL NAME"', "reports": [], "policies": [POLICY],
    }


def test_before_quickbooks_lists_arrive_every_unmapped_expensify_name_is_listed_as_unchecked(store: Store) -> None:
    replace_policy_lists(store, POLICY, [("category", "Travel", True, "{}"), ("tag", "Sales:East", True, "{}"),
                                         ("employee", "ann@example.com", True, "{}")], store.timestamp())
    mark_refreshed(store, store.timestamp(), [POLICY])
    set_mapping(store, "class", "Sales", "Sales Dept", actor="t")
    check = check_mappings(store, QuickBooksConfig(class_tag_level=1, customer_tag_level=2))
    assert [(n.kind.value, n.source, n.how.value) for n in check.not_used_yet] == [
        ("category", "Travel", "same_name_unchecked"),
        ("customer", "East", "same_name_unchecked"),  # "Sales:East" at level 2, split as an expense's tag is
        ("employee", "ann@example.com", "unresolved"),
    ]
    assert check.not_used_yet[0].problem == (
        'category "Travel" is unmapped, and with no QuickBooks account list fetched yet the same name would be used'
        " unchecked")
    assert check.blocking == ()


def _home_store(home: Path) -> Store:
    return Store.open(home / "state.db")


def test_map_check_prints_each_expensify_name_with_its_whole_fix_on_one_line(cli: CliRunner, home: Path) -> None:
    long_email = "chloe.dubois-very-long-department-name@subsidiary.example-company.com"
    long_category = "Conferences, Seminars & Continuing Professional Education (CPE) for staff"
    store = _home_store(home)
    replace_policy_lists(store, POLICY, [("category", long_category, True, "{}"), ("category", "Phone", False, "{}"),
                                         ("employee", long_email, True, "{}")], store.timestamp())
    mark_refreshed(store, store.timestamp(), [])
    qb_lists.cache_records(store, QB_RECORDS, store.timestamp())
    store.close()
    result = cli.invoke(app, ["map", "check"])
    assert result.exit_code == 0, result.output  # names no report uses block nothing
    assert "Not used by any report yet: 2 name(s) in Expensify's lists" in result.output
    fixes = [f'mlconnector map set category "{long_category}" "ACCOUNT FULL NAME"',
             f'mlconnector map set employee {long_email} "VENDOR NAME"']
    for name, fix in zip((long_category, long_email), fixes):
        assert any(name in line and line.rstrip(" │").endswith(fix) for line in result.output.splitlines()), name
    assert "…" not in result.output and "Phone" not in result.output
    data = json.loads(cli.invoke(app, ["map", "check", "--json"]).output)
    assert [(n["source"], n["origin"], n["fix"]) for n in data["not_used_yet"]] == [
        (long_category, "expensify_list", fixes[0]), (long_email, "expensify_list", fixes[1])]


def test_map_check_says_to_run_map_refresh_when_expensify_lists_were_never_fetched(cli: CliRunner) -> None:
    result = cli.invoke(app, ["map", "check"])
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == (
        "Expensify's categories, tags and employees have not been fetched: run mlconnector map refresh"
        " to list the names that still need a mapping before reports use them.")
    assert json.loads(cli.invoke(app, ["map", "check", "--json"]).output)["expensify_lists_at"] is None


# ------------------------------------------------------------------------------ refresh_if_stale


def _job_types(sim: ExpensifySimulator) -> list[str]:
    return [json.loads(r.form["requestJobDescription"])["inputSettings"]["type"] for r in sim.requests]


def _clocked_store() -> tuple[Store, Callable[[dt.timedelta], None]]:
    now = [dt.datetime(2026, 4, 1, 8, 0, tzinfo=dt.UTC)]

    def advance(by: dt.timedelta) -> None:
        now[0] += by

    return Store.memory(now=lambda: now[0]), advance


@pytest.mark.parametrize(("policy_ids", "first_jobs"), [((), ["policyList", "policy"]), (("BA5EBA11BA5EBA11",), ["policy"])])
def test_refresh_if_stale_refreshes_a_fresh_store_then_not_within_a_day_then_a_day_later(
    policy_ids: tuple[str, ...], first_jobs: list[str]
) -> None:
    store, advance = _clocked_store()
    clock = FakeClock()
    with ExpensifySimulator(clock=clock) as sim, make_client(sim, clock) as client:
        config = make_config(sim, policy_ids=policy_ids)
        first = refresh_if_stale(store, client, config)
        assert first is not None and first.policies["BA5EBA11BA5EBA11"] == {"category": 1, "tag": 2, "employee": 2}
        assert _job_types(sim) == first_jobs
        advance(dt.timedelta(hours=23, minutes=59))
        assert refresh_if_stale(store, client, config) is None
        assert _job_types(sim) == first_jobs  # no request at all
        advance(dt.timedelta(minutes=1))
        assert refresh_if_stale(store, client, config) is not None
        assert _job_types(sim) == first_jobs * 2
    actors = {r.actor for r in store.audit.rows(event="lists_refreshed")}
    assert actors == {"pull"}


def test_refresh_if_stale_refreshes_when_the_configured_policies_change(store: Store) -> None:
    clock = FakeClock()
    with ExpensifySimulator(clock=clock) as sim, make_client(sim, clock) as client:
        refresh_policy_lists(store, client, make_config(sim, policy_ids=("BA5EBA11BA5EBA11",)))
        assert refresh_if_stale(store, client, make_config(sim, policy_ids=("BA5EBA11BA5EBA11",))) is None
        both = make_config(sim, policy_ids=("BA5EBA11BA5EBA11", "0810E551A5F2A9C2"))
        assert refresh_if_stale(store, client, both) is not None
        assert len(sim.requests) == 2


def test_refresh_if_stale_raises_what_map_refresh_raises_and_tries_again_next_time(store: Store) -> None:
    clock = FakeClock()
    with ExpensifySimulator(clock=clock) as sim, make_client(sim, clock) as client:
        config: Config = make_config(sim, policy_ids=("BA5EBA11BA5EBA11",))
        sim.fail_next("auth")
        with pytest.raises(ExpensifyAuthError):
            refresh_if_stale(store, client, config)
        assert refresh_if_stale(store, client, config) is not None
        assert len(sim.requests) == 2
