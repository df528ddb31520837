"""Report-level class and customer:job: a report field fills what the tags leave empty."""

from __future__ import annotations

import dataclasses
import datetime as dt

from mlconnector.mapping.rules import Mappings
from mlconnector.plan import PlanSettings, plan_report
from mlconnector.store import Store
from mlconnector.store.reports import load_report, save_report

from .factories import expense, report

DAY = dt.date(2026, 4, 1)
MAPS = Mappings.compile([("employee", "ann@example.com", "Ann Smith"), ("class", "Sales", "Sales"),
                         ("class", "Engineering", "Engineering"),
                         ("customer", "Acme", "Acme Corp:Project X")])
FIELDS = PlanSettings(class_report_field="Department", customer_report_field="Client Code")


def test_lines_without_tags_take_the_report_fields_and_tags_still_win() -> None:
    r = dataclasses.replace(
        report("R1", expense(1, "40.00", tags=()), expense(2, "10.00", tags=("Sales",))),
        report_fields=(("Client_Code", "Acme"), ("Department", "Engineering")))
    (bill,) = plan_report(r, MAPS, FIELDS, posting_day=DAY).postings
    assert [(ln.klass, ln.customer) for ln in bill.lines] == [
        ("Engineering", "Acme Corp:Project X"), ("Sales", "Acme Corp:Project X")]
    (plain,) = plan_report(r, MAPS, PlanSettings(), posting_day=DAY).postings
    assert [(ln.klass, ln.customer) for ln in plain.lines] == [(None, None), ("Sales", None)]


def test_an_unmapped_report_field_value_is_taken_as_the_quickbooks_name_like_a_tag() -> None:
    # Same fallback as a tag: the QuickBooks class of that name, which the Web Connector check confirms.
    r = dataclasses.replace(report("R1", expense(1, "40.00", tags=())), report_fields=(("Department", "Legal"),))
    (bill,) = plan_report(r, Mappings.compile([("employee", "ann@example.com", "Ann Smith")]), FIELDS,
                          posting_day=DAY).postings
    assert [ln.klass for ln in bill.lines] == ["Legal"]


def test_report_fields_are_stored_and_change_the_fingerprint_only_when_present(store: Store) -> None:
    plain = report("R1")
    with_fields = dataclasses.replace(plain, report_fields=(("Department", "Sales"),))
    assert with_fields.fingerprint() != plain.fingerprint()
    assert dataclasses.replace(plain, report_fields=()).fingerprint() == plain.fingerprint()
    save_report(store, with_fields)
    assert load_report(store, "R1").report_fields == (("Department", "Sales"),)


def test_map_check_names_the_report_field_values_it_will_use() -> None:
    r = dataclasses.replace(report("R1", expense(1, "40.00", tags=())), report_fields=(("Department", "Sales"),))
    used = MAPS.names_used(r, report_fields=("Department", ""))
    assert ("class", "Sales", "Sales") in [(u.kind.value, u.source, u.target) for u in used]
