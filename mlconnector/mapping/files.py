"""Mapping files for ``map import`` / ``map export``: CSV (``kind,source,target``) or TOML (one table per kind).

Both round-trip exactly: commas, quotes, colons, newlines and non-ASCII survive an export and an
import unchanged.

CSV::

    kind,source,target
    category,"Meals, client",Meals & Entertainment

TOML::

    [category]
    "Meals, client" = "Meals & Entertainment"

Reading a file collects every problem it has, each with the physical line it is on (the header
is line 1), so one run of ``map import`` names them all. Files saved by Excel are read as Excel
writes them: UTF-8 with or without a byte-order mark, UTF-16 ("Unicode Text"), Windows-1252 (plain
"CSV"), and ``;`` or tab between the columns (the list separator of many European locales), with
an optional ``sep=;`` first line.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlconnector.errors import UserError
from mlconnector.mapping.rules import MappingKind

FORMATS = ("csv", "toml")
HEADER = ("kind", "source", "target")
DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}
SAVE_AS_CSV = "in Excel use File > Save As > \"CSV UTF-8 (Comma delimited) (*.csv)\""


@dataclass(frozen=True)
class Row:
    """One mapping as the file gives it, and the physical line it starts on."""

    kind: str
    source: str
    target: str
    line: int | None


@dataclass(frozen=True)
class Problem:
    """One problem of a mapping file: its line (None for the whole file), what is wrong, and the fix."""

    line: int | None
    problem: str
    fix: str

    def where(self, name: str, unit: str = "line") -> str:
        """``FILE line N: problem`` (``FILE: problem`` when it is about the whole file)."""
        where = f"{name} {unit} {self.line}" if self.line is not None else name
        return f"{where.strip()}: {self.problem}"

    def text(self, name: str, unit: str = "line") -> str:
        """``FILE line N: problem — fix``."""
        return self.where(name, unit) + (f" — {self.fix}" if self.fix else "")

    def as_dict(self) -> dict[str, Any]:
        """JSON view."""
        return {"line": self.line, "problem": self.problem, "fix": self.fix}


class MappingFileError(UserError):
    """A mapping file (or a list of rows) has problems; ``problems`` lists every one, by line."""

    def __init__(self, name: str, problems: Sequence[Problem], *, unit: str = "line") -> None:
        self.name = name
        self.unit = unit
        self.problems = tuple(sorted(problems, key=lambda p: -1 if p.line is None else p.line))
        first = self.problems[0] if self.problems else Problem(None, "invalid mapping file", "")
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
        super().__init__(first.where(name, unit) + suffix, hint=first.fix or None)

    def lines(self) -> list[str]:
        """One ``FILE line N: problem — fix`` text per problem, in line order."""
        return [p.text(self.name, self.unit) for p in self.problems]


@dataclass(frozen=True)
class MappingFile:
    """What a mapping file holds: its rows and every problem found while reading them."""

    name: str
    rows: tuple[Row, ...] = ()
    problems: tuple[Problem, ...] = ()


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


def parse(text: str, fmt: str, *, name: str = "the file") -> MappingFile:
    """The rows of CSV or TOML text, and every problem of its shape (validating names is the caller's).

    Raises:
        UserError: an unknown format.
    """
    if fmt == "csv":
        return _parse_csv(text.lstrip("\ufeff"), name)
    if fmt == "toml":
        return _parse_toml(text, name)
    raise UserError(f"unknown format {fmt!r}", hint=f"use {' or '.join(FORMATS)}")


def loads(text: str, fmt: str, *, name: str = "the file") -> list[tuple[str, str, str]]:
    """``(kind, source, target)`` rows from CSV or TOML text.

    Raises:
        MappingFileError: the text is not valid for the format, or not shaped as mappings (every problem).
    """
    parsed = parse(text, fmt, name=name)
    if parsed.problems:
        raise MappingFileError(name, parsed.problems)
    return [(r.kind, r.source, r.target) for r in parsed.rows]


# ------------------------------------------------------------------------------ CSV


def _cells(record: list[str]) -> list[str]:
    # Excel keeps empty columns a sheet once had formatting in ("a,b,c,,"): they hold nothing.
    cells = list(record)
    while len(cells) > len(HEADER) and not cells[-1].strip():
        cells.pop()
    return cells


def _first_record(line: str, delimiter: str) -> list[str]:
    try:
        return _cells(next(csv.reader([line], delimiter=delimiter), []))
    except csv.Error:
        return []


def _is_header(cells: list[str]) -> bool:
    return tuple(c.strip().lower() for c in cells) == HEADER


def _delimiter(first_line: str) -> tuple[str, bool]:
    """The column separator, and whether ``first_line`` is the header."""
    for delimiter in DELIMITERS:
        if _is_header(_first_record(first_line, delimiter)):
            return delimiter, True
    for delimiter in DELIMITERS:
        if len(_first_record(first_line, delimiter)) == len(HEADER):
            return delimiter, False
    return ",", False


def _header_problem(first_line: str, delimiter: str, line: int) -> tuple[Problem, bool]:
    """What is wrong with a first line that is not the header, and whether it is a mapping row itself."""
    cells = _first_record(first_line, delimiter)
    if len(cells) == len(HEADER) and cells[0].strip().lower() in {k.value for k in MappingKind}:
        return Problem(line, "the header kind,source,target is missing (this line is already a mapping)",
                       "insert a first line kind,source,target"), True
    shown = first_line.strip()
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return Problem(line, f'the first line must be the header kind,source,target, not "{shown}"',
                   "put kind,source,target on the first line (as mlconnector map export writes it)"), False


def _parse_csv(text: str, name: str) -> MappingFile:
    if not text.strip():
        return MappingFile(name, (), (Problem(None, "the file is empty",
                                              "start from the file mlconnector map export -o mappings.csv writes"),))
    first = text.partition("\n")[0].rstrip("\r")
    offset = 0  # physical lines before the text the reader sees
    sep = re.fullmatch(r"sep=(.)", first)
    if sep:  # Excel's own "this file uses ;" first line
        offset, text = 1, text.partition("\n")[2]
        first = text.partition("\n")[0].rstrip("\r")
        delimiter, has_header = sep.group(1), _is_header(_first_record(first, sep.group(1)))
    else:
        delimiter, has_header = _delimiter(first)
    problems: list[Problem] = []
    skip_first = has_header
    if not has_header:
        problem, is_row = _header_problem(first, delimiter, 1 + offset)
        problems.append(problem)
        skip_first = not is_row
    rows: list[Row] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    try:
        for record in reader:
            line, start = start + offset, reader.line_num + 1
            cells = _cells(record)
            if (skip_first and line == 1 + offset) or not any(c.strip() for c in cells):
                continue
            if len(cells) != len(HEADER):
                problems.append(_columns_problem(line, len(cells), delimiter))
                continue
            rows.append(Row(cells[0], cells[1], cells[2], line))
    except csv.Error as exc:
        problems.append(Problem(start + offset, f"not valid CSV from this line on ({exc})",
                                'close the double quote opened here; a quote inside a name is written twice ("")'))
    return MappingFile(name, tuple(rows), tuple(problems))


def _columns_problem(line: int, count: int, delimiter: str) -> Problem:
    separated = DELIMITERS[delimiter]
    if count > len(HEADER):
        fix = f'put a name that holds a {separated[:-1]} in double quotes, like "Meals, client"'
    else:
        fix = f"give kind, source and target, separated by {separated}"
    return Problem(line, f"has {count} column{'s' if count != 1 else ''}, not 3 (kind, source, target)", fix)


# ------------------------------------------------------------------------------ TOML

_TOML_AT = re.compile(r"\s*\(at line (\d+), column \d+\)$")
_TOML_TABLE = re.compile(r"^\s*\[(?!\[)(.+)\]\s*(#.*)?$")
TOML_FIX = "write one [kind] table of \"source\" = \"target\" lines (see mlconnector map export --format toml)"


def _toml_key_lines(text: str) -> dict[tuple[str, str | None], int]:
    """Best-effort physical lines of ``[table]`` headers and of ``key = value`` lines, by (table, key)."""
    found: dict[tuple[str, str | None], int] = {}
    table: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TOML_TABLE.match(line)
        try:
            if header:
                table = next(iter(tomllib.loads(f"{header.group(1)} = 0")))
                found.setdefault((table, None), number)
            elif "=" in line:
                key = next(iter(tomllib.loads(line)))
                found.setdefault((table, key) if table is not None else (key, None), number)
        except (tomllib.TOMLDecodeError, StopIteration):
            continue  # a multi-line value or an odd line: its problems fall back to the table's line
    return found


def _parse_toml(text: str, name: str) -> MappingFile:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _TOML_AT.search(message)
        line = int(at.group(1)) if at else None
        return MappingFile(name, (), (Problem(line, f"not valid TOML: {_TOML_AT.sub('', message)}", TOML_FIX),))
    lines = _toml_key_lines(text)
    rows: list[Row] = []
    problems: list[Problem] = []
    for kind, table in data.items():
        if not isinstance(table, dict):
            problems.append(Problem(lines.get((kind, None)), f"{kind!r} must be a table like [{kind}]", TOML_FIX))
            continue
        for source, target in table.items():
            line = lines.get((kind, source), lines.get((kind, None)))
            if not isinstance(target, str):
                problems.append(Problem(line, f"[{kind}] {source!r} maps to {type(target).__name__}, not text",
                                        f'write it as "{source}" = "QuickBooks name"'))
                continue
            rows.append(Row(kind, source, target, line))
    return MappingFile(name, tuple(rows), tuple(problems))


# ------------------------------------------------------------------------------ files


def _decode(data: bytes, fmt: str) -> tuple[str | None, Problem | None]:
    if data.startswith(b"PK\x03\x04"):
        return None, Problem(None, "is an Excel workbook, not a CSV file", SAVE_AS_CSV)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode Text": UTF-16 with a byte-order mark
        try:
            return data.decode("utf-16"), None
        except UnicodeDecodeError:
            return None, Problem(None, "is not valid UTF-16 text", SAVE_AS_CSV)
    if b"\x00" in data:
        return None, Problem(None, "is not a text file", SAVE_AS_CSV)
    try:
        return data.decode("utf-8-sig"), None  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        if fmt == "csv":
            try:  # Excel's plain "CSV" on Windows is Windows-1252 ("Café" as one byte é)
                return data.decode("cp1252"), None
            except UnicodeDecodeError:
                return None, Problem(line, "is neither UTF-8 nor Windows-1252 text", SAVE_AS_CSV)
        return None, Problem(line, "is not UTF-8 text", "save it as UTF-8")


def read(path: Path) -> MappingFile:
    """Rows and problems of a ``.csv`` or ``.toml`` mapping file.

    Raises:
        UserError: unknown extension.
        MappingFileError: the file cannot be read, or is not text.
    """
    fmt = format_for(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MappingFileError(path.name, [Problem(None, f"cannot be read: {exc.strerror or exc}",
                                                   "check the path, and close the file in Excel")]) from None
    text, problem = _decode(data, fmt)
    if text is None:
        raise MappingFileError(path.name, [problem] if problem else [])
    return parse(text, fmt, name=path.name)


def read_file(path: Path) -> list[tuple[str, str, str]]:
    """``(kind, source, target)`` rows from a ``.csv`` or ``.toml`` mapping file.

    Raises:
        UserError: unknown extension.
        MappingFileError: unreadable file or invalid content (every problem, by line).
    """
    parsed = read(path)
    if parsed.problems:
        raise MappingFileError(parsed.name, parsed.problems)
    return [(r.kind, r.source, r.target) for r in parsed.rows]
