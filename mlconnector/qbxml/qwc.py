"""The ``.qwc`` document that registers an application with the QuickBooks Web Connector (QBWC.md §6)."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

APP_NAME = "ml-connector"
APP_DESCRIPTION = "Posts approved Expensify expense reports into QuickBooks Desktop"


@dataclass(frozen=True)
class QwcUrls:
    """AppURL and AppSupport, on the same host as QBWC requires (QBWC1000)."""

    app_url: str
    support_url: str


def build_qwc(urls: QwcUrls, *, username: str, owner_id: str, file_id: str, run_every_minutes: int) -> bytes:
    """The ``.qwc`` document (UTF-8 XML)."""
    root = etree.Element("QBWCXML")

    def add(name: str, text: str) -> etree._Element:
        element = etree.SubElement(root, name)
        element.text = text
        return element

    add("AppName", APP_NAME)
    add("AppID", "")
    add("AppURL", urls.app_url)
    add("AppDescription", APP_DESCRIPTION)
    add("AppSupport", urls.support_url)
    add("UserName", username)
    add("OwnerID", owner_id)
    add("FileID", file_id)
    add("QBType", "QBFS")
    scheduler = etree.SubElement(root, "Scheduler")
    etree.SubElement(scheduler, "RunEveryNMinutes").text = str(run_every_minutes)
    add("IsReadOnly", "false")
    add("Style", "Document")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True))
