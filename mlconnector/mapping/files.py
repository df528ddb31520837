"""Mapping files for ``map import`` / ``map export``: CSV (``kind,source,target``) or TOML (one table per kind).

Both round-trip exactly: commas, quotes, colons, newlines and non-ASCII survive an export and an
import unchanged.

CSV::

    kind,source,target
    category,"Meals, client",Meals & Entertainment

TOML::

    [category]
    "Meals, client" = "Meals & Entertainment"
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlconnector.errors import UserError

FORMATS = ("csv", "toml")
HEADER = ("kind", "source", "target")


def format_for(path: Path) -> str:
    """``csv`` or ``toml`` from a file name.

    Raises:
        UserError: any other extension.
    """
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise UserError(f"{path.name}: cannot tell the format from the extension", hint="name it .csv or .toml")
    return suffix


def dumps(rows: Iterable[tuple[str, str, str]], fmt: str) -> str:
    """Mappings as CSV or TOML text.

    Raises:
        UserError: an unknown format.
    """
    if fmt == "csv":
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
        return out.getvalue()
    if fmt == "toml":
        import tomli_w

        tables: dict[str, dict[str, str]] = {}
        for kind, source, target in rows:
            tables.setdefault(kind, {})[source] = target
        return tomli_w.dumps(tables)
    raise UserError(f"unknown format {fmt!r}", hint=f"use {' or '.join(FORMATS)}")


def loads(text: str, fmt: str, *, name: str = "the file") -> list[tuple[str, str, str]]:
    """``(kind, source, target)`` rows from CSV or TOML text.

    Raises:
        UserError: the text is not valid for the format, or not shaped as mappings.
    """
    if fmt == "csv":
        return _csv_rows(text, name)
    if fmt == "toml":
        return _toml_rows(text, name)
    raise UserError(f"unknown format {fmt!r}", hint=f"use {' or '.join(FORMATS)}")


def _csv_rows(text: str, name: str) -> list[tuple[str, str, str]]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = next(reader, None)
        if header is None or tuple(h.strip().lower() for h in header) != HEADER:
            raise UserError(f"{name}: the first line must be the header kind,source,target")
        rows = []
        for line in reader:
            if not line or all(not cell for cell in line):
                continue
            if len(line) != 3:
                raise UserError(f"{name}: line {reader.line_num} has {len(line)} columns, not 3 (kind,source,target)")
            rows.append((line[0], line[1], line[2]))
        return rows
    except csv.Error as exc:
        raise UserError(f"{name}: not valid CSV: {exc}") from None


def _toml_rows(text: str, name: str) -> list[tuple[str, str, str]]:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{name}: not valid TOML: {exc}") from None
    rows = []
    for kind, table in data.items():
        if not isinstance(table, dict):
            raise UserError(f"{name}: {kind!r} must be a table like [{kind}] of \"source\" = \"target\" lines")
        for source, target in table.items():
            if not isinstance(target, str):
                raise UserError(f"{name}: [{kind}] {source!r} must map to text, not {type(target).__name__}")
            rows.append((kind, source, target))
    return rows


def read_file(path: Path) -> list[tuple[str, str, str]]:
    """Rows from a ``.csv`` or ``.toml`` mapping file.

    Raises:
        UserError: unknown extension, unreadable file, or invalid content.
    """
    fmt = format_for(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError:
        if fmt != "csv":
            raise UserError(f"cannot read {path}: it is not UTF-8 text", hint="save it as UTF-8") from None
        # Excel's plain "CSV" on Windows is cp1252; accept it rather than fail on "Café".
        text = data.decode("cp1252", errors="replace")
    return loads(text, fmt, name=path.name)
