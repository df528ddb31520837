"""The company file's settings as the Web Connector last told them (class tracking, closing date, edition)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlconnector.store.db import Store

COMPANY_FILE_KEY = "qb_company_file"


def remember_company_file(store: Store, settings: Mapping[str, Any]) -> None:
    """Keep the settings, with when they were read."""
    store.set_setting(COMPANY_FILE_KEY, json.dumps({**settings, "read_at": store.timestamp()}, sort_keys=True))


def company_file(store: Store) -> dict[str, Any]:
    """The settings as last read (empty before the first Web Connector session)."""
    try:
        data = json.loads(store.get_setting(COMPANY_FILE_KEY) or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
