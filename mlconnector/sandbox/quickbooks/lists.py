"""Account, vendor, class and customer queries (by name, ListID or ActiveStatus, paged with iterators)."""

from __future__ import annotations

from lxml import etree

from mlconnector.sandbox.quickbooks.base import SimulatorBase
from mlconnector.sandbox.quickbooks.records import (
    NO_MATCH,
    ListItem,
    RequestFailed,
    Status,
    add_child,
    add_ref,
    child_text,
    qb_time,
)


class ListQueries(SimulatorBase):
    """Account, vendor, class and customer queries (by name, ListID or ActiveStatus, paged with iterators)."""

    def _page(self, request: etree._Element, selected: list[ListItem]) -> tuple[list[ListItem], str, int]:
        """One page of an iterator: Start keeps the rest under a new iteratorID, Continue hands out more."""
        size = int(child_text(request, "MaxReturned") or 0) or len(selected) or 1
        if request.get("iterator") == "Start":
            iterator_id = "{%08X-0000-4000-8000-000000000000}" % next(self._iterator_count)
            remaining = selected
        else:
            iterator_id = request.get("iteratorID") or ""
            if iterator_id not in self._iterators:
                raise RequestFailed(3000, f'The given object ID "{iterator_id}" in the field "iteratorID" is invalid.')
            remaining = self._iterators.pop(iterator_id)
        page, rest = remaining[:size], remaining[size:]
        if rest:
            self._iterators[iterator_id] = rest
        return page, iterator_id, len(rest)

    def _list_query(self, request: etree._Element, rs: etree._Element, kind: str) -> Status | None:
        items = list(self.lists[kind].values())
        by_id = [e.text or "" for e in request.findall("ListID")]
        by_name = [e.text or "" for e in request.findall("FullName")]
        missing: list[str] = []
        if by_id or by_name:
            found = []
            for list_id in by_id:
                match = next((i for i in items if i.list_id == list_id), None)
                found.append(match) if match else missing.append(list_id)
            for name in by_name:
                match = self.lists[kind].get(name.casefold())
                found.append(match) if match else missing.append(name)
            selected = [i for i in found if i is not None]
        else:
            filters = request.find("ListFilter")
            scope = filters if filters is not None else request
            status = child_text(scope, "ActiveStatus") or "ActiveOnly"
            types = [e.text for e in scope.findall("AccountType")]
            selected = [i for i in items
                        if (status == "All" or (status == "ActiveOnly") == i.is_active)
                        and (not types or i.account_type in types)]
            name_filter = scope.find("NameFilter")
            if name_filter is not None:
                how, text = child_text(name_filter, "MatchCriterion"), (child_text(name_filter, "Name") or "").casefold()
                test = {"StartsWith": str.startswith, "Contains": str.__contains__, "EndsWith": str.endswith}
                selected = [i for i in selected if test.get(how or "StartsWith", str.startswith)(
                    i.full_name.casefold(), text)]
            max_returned = child_text(scope, "MaxReturned")
            if max_returned and request.get("iterator") is None:
                selected = selected[: int(max_returned)]
        if request.get("iterator") in ("Start", "Continue"):
            selected, iterator_id, remaining = self._page(request, selected)
            rs.set("iteratorRemainingCount", str(remaining))
            rs.set("iteratorID", iterator_id)
        if not selected:
            raise RequestFailed(1, NO_MATCH)
        for item in selected:
            rs.append(self._list_ret(item))
        if missing:
            return Status(500, "The query request has not been fully completed. There was a required element "
                                f'("{missing[0]}") that could not be found in QuickBooks.')
        return None

    def _list_ret(self, item: ListItem) -> etree._Element:
        tag = {"account": "AccountRet", "vendor": "VendorRet", "class": "ClassRet", "customer": "CustomerRet",
               "item": "ItemServiceRet"}[item.kind]
        ret = etree.Element(tag)
        add_child(ret, "ListID", item.list_id)
        add_child(ret, "TimeCreated", qb_time(item.created))
        add_child(ret, "TimeModified", qb_time(item.created))
        add_child(ret, "EditSequence", item.edit_sequence)
        add_child(ret, "Name", item.name)
        if item.kind != "vendor":
            add_child(ret, "FullName", item.full_name)
        add_child(ret, "IsActive", "true" if item.is_active else "false")
        if item.kind != "vendor":
            if ":" in item.full_name:
                parent = self.lists[item.kind].get(item.full_name.rsplit(":", 1)[0].casefold())
                if parent is not None:
                    add_ref(ret, "ParentRef", parent)
            add_child(ret, "Sublevel", item.full_name.count(":"))
        if item.kind == "account":
            add_child(ret, "AccountType", item.account_type)
        if item.email and item.kind in ("vendor", "customer"):
            add_child(ret, "Email", item.email)
        return ret

