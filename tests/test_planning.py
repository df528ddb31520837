from __future__ import annotations

import datetime as dt

import pytest

from mlconnector.config import QuickBooksConfig
from mlconnector.errors import NotFoundError, UserError
from mlconnector.mapping.files import dumps, loads
from mlconnector.models import PostingMode, PostingState, ReimbursableMode
from mlconnector.services.mappings import (
    import_mappings,
    list_mappings,
    set_mapping,
    unset_mapping,
)
from mlconnector.services.queue import check_mappings, plan_and_queue, replan_unsent
from mlconnector.services.status import report_counts, top_blocked_reasons
from mlconnector.store import Store
from mlconnector.store.postings import postings_for_report, transition
from mlconnector.store.reports import save_report

from .factories import expense, report

DAY = dt.date(2026, 4, 1)
QB = QuickBooksConfig()


def _states(store: Store, report_id: str) -> list[str]:
    return [p.state.value for p in postings_for_report(store, report_id)]


def test_unplanned_reports_are_queued_or_blocked_with_the_reason(store: Store) -> None:
    save_report(store, report("R1"))
    save_report(store, report("R2", submitter_email="bob@example.com"))
    set_mapping(store, "employee", "ann@example.com", "Ann Smith", actor="t")
    summary = plan_and_queue(store, QB, today=DAY)
    assert summary.queued == ("R1",) and summary.blocked_reports == ("R2",) and summary.postings_queued == 1
    assert _states(store, "R1") == ["queued"] and _states(store, "R2") == ["blocked"]
    (blocked,) = postings_for_report(store, "R2")
    assert blocked.reason and "bob@example.com" in blocked.reason and "mlconnector map set employee" in blocked.reason
    assert plan_and_queue(store, QB, today=DAY).queued == ()  # nothing left to plan


def test_a_mapping_change_replans_blocked_reports(store: Store) -> None:
    save_report(store, report("R1"))
    plan_and_queue(store, QB, today=DAY)
    assert _states(store, "R1") == ["blocked"]
    set_mapping(store, "employee", "ann@example.com", "Ann Smith", actor="t")
    summary = replan_unsent(store, QB, today=DAY, actor="t")
    assert summary.queued == ("R1",)
    (posting,) = postings_for_report(store, "R1")
    assert posting.state is PostingState.QUEUED and posting.posting and posting.posting.vendor == "Ann Smith"


def test_replanning_leaves_unchanged_plans_and_sent_postings_alone(store: Store) -> None:
    save_report(store, report("R1"))
    save_report(store, report("R2"))
    set_mapping(store, "employee", "ann@example.com", "Ann Smith", actor="t")
    plan_and_queue(store, QB, today=DAY)
    sent = postings_for_report(store, "R2")[0]
    transition(store, sent.id, PostingState.SENT, actor="t")
    audit_rows = len(store.audit.rows())
    assert replan_unsent(store, QB, today=DAY, actor="t").unchanged == ("R1",)
    assert len(store.audit.rows()) == audit_rows
    set_mapping(store, "category", "Travel", "Travel:Airfare", actor="t")
    summary = replan_unsent(store, QB, today=DAY, actor="t")
    assert summary.queued == ("R1",)
    assert postings_for_report(store, "R1")[0].posting.lines[0].account == "Travel:Airfare"  # type: ignore[union-attr]
    assert postings_for_report(store, "R2")[0].state is PostingState.SENT


def test_a_report_with_nothing_to_post_is_noted_once(store: Store) -> None:
    save_report(store, report("R1", expense(1, reimbursable=False)))
    first = plan_and_queue(store, QB, today=DAY)
    assert first.nothing_to_post == ("R1",) and len(first.notes) == 2
    assert plan_and_queue(store, QB, today=DAY).nothing_to_post == ()
    assert [r.event for r in store.audit.rows()].count("note") == 2


def test_card_only_reports_skipped_before_are_planned_once_the_settings_change(store: Store) -> None:
    from dataclasses import replace

    from mlconnector.models import NonReimbursablePolicy

    save_report(store, report("R1", expense(1, reimbursable=False)))
    assert plan_and_queue(store, QB, today=DAY).nothing_to_post == ("R1",)
    assert plan_and_queue(store, QB, today=DAY).queued == ()  # unchanged: still skipped, not noted again
    journal = replace(QB, non_reimbursable=NonReimbursablePolicy.JOURNAL, card_account="Corporate Card")
    assert plan_and_queue(store, journal, today=DAY).queued == ("R1",)


def test_planning_named_reports_refuses_unknown_ids(store: Store) -> None:
    with pytest.raises(NotFoundError):
        plan_and_queue(store, QB, ["nope"], today=DAY)


def test_journal_mode_is_recorded_on_blocked_rows(store: Store) -> None:
    save_report(store, report("R1"))
    plan_and_queue(store, QuickBooksConfig(mode=ReimbursableMode.JOURNAL), today=DAY)
    assert postings_for_report(store, "R1")[0].mode is PostingMode.JOURNAL


def test_every_mapping_change_is_audited_with_who_old_and_new(store: Store) -> None:
    set_mapping(store, "category", "Travel", "Travel:Air", actor="cli:ann")
    set_mapping(store, "category", "Travel", "Travel:Air", actor="cli:ann")  # no change, no row
    set_mapping(store, "category", "Travel", "Travel:Airfare", actor="cli:bob")
    unset_mapping(store, "category", "Travel", actor="cli:bob")
    rows = [r for r in store.audit.rows() if r.event == "mapping_changed"]
    assert [(r.actor, r.detail["old"], r.detail["new"]) for r in rows] == [
        ("cli:ann", None, "Travel:Air"), ("cli:bob", "Travel:Air", "Travel:Airfare"), ("cli:bob", "Travel:Airfare", None)]
    assert all(r.at for r in rows)


@pytest.mark.parametrize(
    ("kind", "source", "target", "problem"),
    [
        ("bogus", "a", "b", "unknown mapping kind"),
        ("employee", "ann", "Ann", "not an email"),
        ("category", " ", "A", "empty"),
        ("category", "A", "", "empty"),
        ("employee", "a@b.c", "V" * 42, "allows 41"),
        ("category", "A", "B\x00", "control characters"),
    ],
)
def test_invalid_mappings_are_refused(store: Store, kind: str, source: str, target: str, problem: str) -> None:
    with pytest.raises(UserError, match=problem):
        set_mapping(store, kind, source, target, actor="t")
    assert list_mappings(store) == []


def test_an_import_is_all_or_nothing(store: Store) -> None:
    with pytest.raises(UserError, match="row 2"):
        import_mappings(store, [("category", "A", "B"), ("employee", "x", "Y")], actor="t")
    assert list_mappings(store) == []
    with pytest.raises(UserError, match="mapped twice"):
        import_mappings(store, [("category", "A", "B"), ("category", "A", "C")], actor="t")


AWKWARD_ROWS = [
    ("category", "Meals, client", 'Meals & "Entertainment"'),
    ("category", "Travel:Air", "Travel:Airfare"),
    ("category", "Café 中文 😀", "Repas, café"),
    ("class", "Sales'; DROP", "Ventes\\Nord"),
    ("customer", "Acme, Inc.", "Acme, Inc.:Project \"X\""),
    ("employee", "ann@example.com", "Ann O'Neil"),
]


@pytest.mark.parametrize("fmt", ["csv", "toml"])
def test_export_and_import_round_trip_exactly(store: Store, fmt: str) -> None:
    import_mappings(store, AWKWARD_ROWS, actor="t")
    exported = [(r.kind.value, r.source, r.target) for r in list_mappings(store)]
    text = dumps(exported, fmt)
    fresh = Store.memory()
    import_mappings(fresh, loads(text, fmt), actor="t")
    assert [(r.kind.value, r.source, r.target) for r in list_mappings(fresh)] == exported
    assert sorted(exported) == sorted(AWKWARD_ROWS)
    assert dumps([(r.kind.value, r.source, r.target) for r in list_mappings(fresh)], fmt) == text


def test_map_check_lists_names_fallbacks_and_the_reports_they_block(store: Store) -> None:
    save_report(store, report("R1"))
    save_report(store, report("R2", expense(1, category="Gifts", tags=())))
    check = check_mappings(store, QB)
    assert check.reports_checked == 2
    (blocking,) = check.blocking
    assert (blocking.kind.value, blocking.source, blocking.reports) == ("employee", "ann@example.com", ("R1", "R2"))
    hows = {(n.kind.value, n.source): n.how.value for n in check.names}
    assert hows[("category", "Gifts")] == "same_name_unchecked" and hows[("class", "Sales")] == "same_name_unchecked"
    set_mapping(store, "employee", "ann@example.com", "Ann", actor="t")
    assert check_mappings(store, QB).blocking == ()


def test_status_counts_reports_and_ranks_blocked_reasons(store: Store) -> None:
    for rid in ("R1", "R2", "R3"):
        save_report(store, report(rid))
    save_report(store, report("R4", submitter_email="bob@example.com"))
    set_mapping(store, "employee", "bob@example.com", "Bob", actor="t")
    plan_and_queue(store, QB, today=DAY)
    assert report_counts(store) == {"queued": 1, "blocked": 3}
    (top,) = top_blocked_reasons(store)
    assert top["reports"] == 3 and top["reason"].startswith("no vendor is mapped to ann@example.com")
