"""Planning: reports and mappings in, postings out. Pure: no I/O, no state.

A new transaction kind is one module here (its planning rules, ``KIND``: which account closes it, how
its lines are cut into parts, how a part becomes a posting, registered in ``planner.KINDS``), one
module in ``qbxml/txns/`` (its add request, registered in ``qbxml.txns.TXN_KINDS``), its handling in
the QuickBooks simulator (``sandbox/quickbooks``), a config value that selects it, and a test file.
Nothing else changes: the Web Connector work, recovery (query by RefNumber, checked against the
ExternalGUID or the stored TxnID) and the audit treat every kind alike.
"""

from mlconnector.plan.bill import bill_ref_number
from mlconnector.plan.core import PlanSettings, expense_memo
from mlconnector.plan.credit_card import card_ref_number
from mlconnector.plan.journal import journal_ref_number
from mlconnector.plan.planner import KINDS, plan_report, plan_reports

__all__ = [
    "KINDS", "PlanSettings", "bill_ref_number", "card_ref_number", "expense_memo", "journal_ref_number",
    "plan_report", "plan_reports",
]
