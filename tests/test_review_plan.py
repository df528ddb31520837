"""Review: planning of checks to print next to debit-card checks, and the fixes named in blocks."""

from __future__ import annotations

from mlconnector.models import NonReimbursablePolicy, ReimbursableMode
from mlconnector.plan import PlanSettings, plan_report

from .factories import expense, report
from .test_plan import ANN, DAY


def test_a_debit_card_payment_is_never_a_check_to_print_even_from_the_same_bank_account() -> None:
    # One operating account: employees are paid by printed checks from it, and the company debit card
    # draws on it too. The debit-card purchase is already paid; it must not join the print queue.
    r = report("R00Mix1", expense(1, "100.00"), expense(2, "42.50", reimbursable=False))
    s = PlanSettings(mode=ReimbursableMode.CHECK, check_account="Checking", check_to_print=True,
                     non_reimbursable=NonReimbursablePolicy.DEBIT_CARD, card_account="Checking")
    plan = plan_report(r, ANN, s, posting_day=DAY)
    assert not plan.blocked
    own, card = plan.postings
    assert own.to_be_printed and own.ref_number == ""
    assert not card.to_be_printed and card.ref_number, card  # a debit-card payment has its reference


def test_a_debit_card_check_with_check_to_print_in_bill_mode_keeps_its_reference() -> None:
    # Same accounts, reimbursable expenses as bills: only the debit-card checks are checks at all.
    r = report("R00Mix2", expense(1, "100.00"), expense(2, "42.50", reimbursable=False))
    s = PlanSettings(mode=ReimbursableMode.BILL, check_account="Checking", check_to_print=True,
                     non_reimbursable=NonReimbursablePolicy.DEBIT_CARD, card_account="Checking")
    plan = plan_report(r, ANN, s, posting_day=DAY)
    card = plan.postings[-1]
    assert not card.to_be_printed and card.ref_number, card


def test_a_negative_company_card_bill_names_a_fix_that_applies_to_it() -> None:
    # A company-card refund posted with non_reimbursable = "bill": negative_reports is about reimbursable
    # reports only (and already "vendor_credit"), and quickbooks.mode does not change card expenses.
    r = report("R00Card", expense(1, "-30.00", reimbursable=False))
    s = PlanSettings(non_reimbursable=NonReimbursablePolicy.BILL, card_bill_vendor="Card Issuer",
                     negative_reports="vendor_credit")
    plan = plan_report(r, ANN, s, posting_day=DAY)
    (block,) = plan.blocked
    assert "negative_reports" not in block.fix and "quickbooks.mode" not in block.fix, block.fix


def test_a_negative_debit_card_check_names_a_fix_that_applies_to_it() -> None:
    # A company debit-card refund: quickbooks.mode (bill/check/journal) only books reimbursable expenses.
    r = report("R00Card", expense(1, "100.00"), expense(2, "-30.00", reimbursable=False))
    s = PlanSettings(non_reimbursable=NonReimbursablePolicy.DEBIT_CARD, card_account="Checking")
    plan = plan_report(r, ANN, s, posting_day=DAY)
    (block,) = plan.blocked
    assert "quickbooks.mode" not in block.fix, block.fix
