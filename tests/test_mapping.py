from __future__ import annotations

import pytest

from mlconnector.mapping.rules import (
    How,
    MappingKind,
    Mappings,
    QbLists,
    QbRecord,
    command,
)
from mlconnector.models import ListKind

from .factories import expense, report

LISTS = QbLists.of([
    QbRecord(ListKind.ACCOUNT, "Travel"),
    QbRecord(ListKind.ACCOUNT, "Travel:Airfare"),
    QbRecord(ListKind.ACCOUNT, "Old Meals", is_active=False),
    QbRecord(ListKind.VENDOR, "Ann Smith", email="Ann@Example.com"),
    QbRecord(ListKind.VENDOR, "Bob One", email="bob@example.com"),
    QbRecord(ListKind.VENDOR, "Bob Two", email="bob@example.com"),
    QbRecord(ListKind.VENDOR, "Gone", email="gone@example.com", is_active=False),
])


def test_a_mapped_category_resolves_to_its_account() -> None:
    m = Mappings.compile([("category", "Flights", "travel:airfare")], LISTS)
    r = m.resolve(MappingKind.CATEGORY, "Flights")
    assert (r.target, r.how) == ("Travel:Airfare", How.MAPPED)


def test_an_unmapped_category_falls_back_to_the_account_of_the_same_name() -> None:
    m = Mappings.compile([], LISTS)
    assert (m.resolve(MappingKind.CATEGORY, "travel").target, m.resolve(MappingKind.CATEGORY, "travel").how) == (
        "Travel", How.SAME_NAME)
    unknown = m.resolve(MappingKind.CATEGORY, "Gifts")
    assert unknown.blocks and "does not exist" in unknown.problem
    assert 'mlconnector map set category Gifts "ACCOUNT FULL NAME"' in unknown.fix


def test_without_a_cached_account_list_the_same_name_is_used_unchecked() -> None:
    r = Mappings.compile([]).resolve(MappingKind.CATEGORY, "Gifts")
    assert (r.target, r.how) == ("Gifts", How.SAME_NAME_UNCHECKED)


def test_a_mapping_to_an_inactive_or_missing_account_is_dangling() -> None:
    m = Mappings.compile([("category", "Meals", "Old Meals"), ("category", "Fun", "Nowhere")], LISTS)
    inactive, missing = m.resolve(MappingKind.CATEGORY, "Meals"), m.resolve(MappingKind.CATEGORY, "Fun")
    assert inactive.blocks and "inactive" in inactive.problem and "reactivate" in inactive.fix
    assert missing.blocks and "not in QuickBooks" in missing.problem


def test_an_employee_matches_the_vendor_with_the_same_email_case_insensitively() -> None:
    r = Mappings.compile([], LISTS).resolve(MappingKind.EMPLOYEE, "ann@EXAMPLE.com")
    assert (r.target, r.how) == ("Ann Smith", How.EMAIL_MATCH)


@pytest.mark.parametrize(
    ("email", "problem"),
    [
        ("bob@example.com", "several QuickBooks vendors"),
        ("gone@example.com", "no QuickBooks vendor has the email gone@example.com"),
        ("zed@example.com", "no QuickBooks vendor has the email zed@example.com"),
    ],
)
def test_an_employee_without_a_single_active_vendor_blocks_naming_the_email(email: str, problem: str) -> None:
    r = Mappings.compile([], LISTS).resolve(MappingKind.EMPLOYEE, email)
    assert r.blocks and problem in r.problem
    assert r.fix.startswith(f'run mlconnector map set employee {email} "VENDOR NAME"')


def test_an_employee_mapping_wins_over_the_email_match() -> None:
    m = Mappings.compile([("employee", "BOB@example.com", "Bob Two")], LISTS)
    assert m.resolve(MappingKind.EMPLOYEE, "bob@example.com").target == "Bob Two"


def test_without_a_vendor_list_an_unmapped_employee_blocks_and_says_so() -> None:
    r = Mappings.compile([]).resolve(MappingKind.EMPLOYEE, "ann@example.com")
    assert r.blocks and "has not been fetched yet" in r.problem


def test_tags_feed_class_and_customer_by_the_configured_levels() -> None:
    m = Mappings.compile([("class", "Sales", "Sales Dept"), ("customer", "Acme:Project X", "Acme Corp:Project X")])
    e = expense(1)
    assert (m.klass(e).target, m.customer(e).target) == ("Sales Dept", "Acme Corp:Project X")  # type: ignore[union-attr]
    swapped = Mappings.compile([], class_tag_level=2, customer_tag_level=0)
    assert swapped.klass(e).target == "Acme:Project X" and swapped.customer(e) is None  # type: ignore[union-attr]
    assert Mappings.compile([]).klass(expense(1, tags=())) is None


def test_names_used_lists_vendor_accounts_classes_and_customers() -> None:
    used = Mappings.compile([]).names_used(report("R1"))
    assert [(u.kind.value, u.source) for u in used] == [
        ("employee", "ann@example.com"), ("category", "Travel"), ("class", "Sales"), ("customer", "Acme:Project X"),
        ("category", "Travel"), ("class", "Sales"), ("customer", "Acme:Project X")]


def test_commands_in_fixes_quote_what_needs_quoting() -> None:
    assert command("map", "set", "category", 'Meals "client"', "A:B") == 'mlconnector map set category "Meals \\"client\\"" A:B'


def test_an_unmapped_name_quickbooks_cannot_store_blocks_instead_of_failing_later() -> None:
    r = Mappings.compile([]).resolve(MappingKind.CATEGORY, "Party 🎉")
    assert r.blocks and "cannot store" in r.problem
    assert Mappings.compile([]).resolve(MappingKind.CATEGORY, " Travel ").target == "Travel"
