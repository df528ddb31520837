from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlconnector.errors import ExpensifyRetriableError
from mlconnector.sandbox.expensify import ExpensifySimulator
from mlconnector.services.lists import policy_entries, refresh_policy_lists
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent
from tests.sim_helpers import FakeClock, make_client, make_config


def _rows(store: Store) -> list[tuple[str, str, str, int]]:
    return list(store.conn.execute(
        "SELECT policy_id, kind, name, enabled FROM expensify_lists ORDER BY policy_id, kind, name"))


def test_refresh_without_configured_policies_lists_them_first_then_stores_every_list(store: Store) -> None:
    clock = FakeClock()
    with ExpensifySimulator(clock=clock) as sim, make_client(sim, clock) as client:
        summary = refresh_policy_lists(store, client, make_config(sim))
        kinds = [json.loads(r.form["requestJobDescription"])["inputSettings"]["type"] for r in sim.requests]
    assert kinds == ["policyList", "policy"]
    assert summary.policies == {
        "0810E551A5F2A9C2": {"category": 6, "tag": 5, "employee": 6},
        "BA5EBA11BA5EBA11": {"category": 1, "tag": 2, "employee": 2},
    }
    rows = _rows(store)
    assert ("0810E551A5F2A9C2", "category", "Phone", 0) in rows
    assert ("0810E551A5F2A9C2", "tag", "Ops\\:Support:Tier 1", 1) in rows
    assert ("BA5EBA11BA5EBA11", "tag", "Project X", 0) in rows
    level = store.conn.execute("SELECT detail FROM expensify_lists WHERE name = 'Project X'").fetchone()[0]
    assert json.loads(level)["level"] == "Project"
    assert len(store.audit.rows(event=AuditEvent.LISTS_REFRESHED.value)) == 2


def test_refresh_of_configured_policies_replaces_old_rows(store: Store) -> None:
    clock = FakeClock()
    with ExpensifySimulator(clock=clock) as sim, make_client(sim, clock) as client:
        config = make_config(sim, policy_ids=("BA5EBA11BA5EBA11",))
        refresh_policy_lists(store, client, config)
        sim.policies["BA5EBA11BA5EBA11"] = {**sim.policies["BA5EBA11BA5EBA11"],
                                            "categories": [{"name": "Meals", "enabled": True}]}
        refresh_policy_lists(store, client, config)
        assert [json.loads(r.form["requestJobDescription"])["inputSettings"]["type"] for r in sim.requests] == [
            "policy", "policy"]
    assert [r[2] for r in _rows(store) if r[1] == "category"] == ["Meals"]


def test_a_policy_expensify_does_not_return_ends_with_empty_lists(store: Store) -> None:
    clock = FakeClock()
    with ExpensifySimulator(clock=clock) as sim, make_client(sim, clock) as client:
        sim.policies = {}
        config = make_config(sim, policy_ids=("0810E551A5F2A9C2",))
        summary = refresh_policy_lists(store, client, config)
    assert summary.policies == {"0810E551A5F2A9C2": {"category": 0, "tag": 0, "employee": 0}}


def test_the_documented_policy_answer_parses(reference_dir: Path) -> None:
    answer = json.loads((reference_dir / "expensify/doc_examples/policy_getter_response.json").read_text())
    entries = policy_entries(answer["policyInfo"]["4C6722D4BD2BD941"])
    assert [e.name for e in entries if e.kind == "tag"][:2] == ["Enterprise", "Enterprise:Jean-Luc Picard"]
    assert ("Other", False) in [(e.name, e.enabled) for e in entries if e.kind == "category"]
    assert policy_entries(answer["policyInfo"]["3F329EA1C3809E6C"])[-1].kind == "category"


def test_a_missing_policy_info_raises_retriable(store: Store) -> None:
    class Client:
        def get(self, job: dict[str, object]) -> dict[str, object]:
            return {"responseCode": 200}

    with pytest.raises(ExpensifyRetriableError, match="no policyInfo"):
        from mlconnector.config import Config, ExpensifyConfig

        refresh_policy_lists(store, Client(), Config(expensify=ExpensifyConfig(policy_ids=("X",))))  # type: ignore[arg-type]
