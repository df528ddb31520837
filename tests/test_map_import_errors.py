"""``map import``: every problem of a file in one run, by physical line, and files as Excel saves them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app

# Line 5 opens a quoted name that runs over two physical lines: later rows keep their real line numbers.
SEVERAL_PROBLEMS = (
    "kind,source,target\n"              # 1
    "category,Travel,Travel:Airfare\n"  # 2
    "catgory,Meals,Meals\n"             # 3
    "\n"                                # 4
    'category,"Meals, client\n'         # 5
    'lunch",Meals\n'                    # 6
    "employee,ann,Ann Smith\n"          # 7
    "class,Sales\n"                     # 8
    "category,Travel,Travel:Rail\n"     # 9
    "category,Fuel,Auto:Fuel,extra\n"   # 10
    "category,Lodging,Travel:Hotel\n"   # 11
)


def _mappings(cli: CliRunner) -> list[tuple[str, str, str]]:
    return [(r["kind"], r["source"], r["target"]) for r in json.loads(cli.invoke(app, ["map", "list", "--json"]).output)]


def test_import_lists_every_problem_by_file_line_and_imports_nothing(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "maps.csv"
    path.write_text(SEVERAL_PROBLEMS, encoding="utf-8")
    result = cli.invoke(app, ["map", "import", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        ("Error: maps.csv line 3: unknown mapping kind 'catgory'"
        " — use one of category, class, customer, employee, card, merchant, item"),
        "Error: maps.csv line 5: 'Meals, client\\nlunch' contains control characters — type the name again without them",
        "Error: maps.csv line 7: employee 'ann' is not an email address — employees are mapped by submitter email",
        ("Error: maps.csv line 8: has 2 columns, not 3 (kind, source, target)"
        " — give kind, source and target, separated by commas"),
        ('Error: maps.csv line 9: category "Travel" is mapped twice, to different names: "Travel:Airfare" on line 2'
        ' and "Travel:Rail" here — keep one of the two lines'),
        ("Error: maps.csv line 10: has 4 columns, not 3 (kind, source, target)"
        ' — put a name that holds a comma in double quotes, like "Meals, client"'),
        "Nothing was imported from maps.csv (6 problem(s)); fix them and run the import again.",
    ]
    assert _mappings(cli) == []


def test_import_json_gives_each_error_with_its_line_problem_and_fix(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "maps.csv"
    path.write_text(SEVERAL_PROBLEMS, encoding="utf-8")
    result = cli.invoke(app, ["map", "import", "--json", str(path)])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["imported"] == 0
    assert [e["line"] for e in data["errors"]] == [3, 5, 7, 8, 9, 10]
    assert data["errors"][2] == {"line": 7, "problem": "employee 'ann' is not an email address",
                                 "fix": "employees are mapped by submitter email"}


def test_import_json_counts_what_it_imported(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "maps.csv"
    path.write_text("kind,source,target\ncategory,Travel,Travel:Airfare\nclass,Sales,Sales\n", encoding="utf-8")
    result = cli.invoke(app, ["map", "import", "--json", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["imported"], data["added"], data["errors"]) == (2, 2, [])


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("kind;source;target\r\ncategory;Café;Repas, café\r\nclass;Ventes;Ventes:Nord\r\n", "cp1252"),  # Excel, fr-FR
        ("\ufeffkind;source;target\r\ncategory;Café;Repas, café\r\nclass;Ventes;Ventes:Nord\r\n", "utf-8"),
        ("sep=;\r\nkind;source;target\r\ncategory;Café;Repas, café\r\nclass;Ventes;Ventes:Nord\r\n", "utf-8"),
        ("kind\tsource\ttarget\r\ncategory\tCafé\tRepas, café\r\nclass\tVentes\tVentes:Nord\r\n", "utf-8"),
        ("\ufeffkind\tsource\ttarget\r\ncategory\tCafé\tRepas, café\r\nclass\tVentes\tVentes:Nord\r\n", "utf-16-le"),
        ("kind,source,target,,\r\ncategory,Café,\"Repas, café\",,\r\nclass,Ventes,Ventes:Nord,,\r\n,,,,\r\n", "utf-8"),
    ],
    ids=["semicolons-cp1252", "semicolons-utf8-bom", "sep-line", "tabs", "utf16-unicode-text", "empty-excel-columns"],
)
def test_import_reads_files_as_excel_saves_them(cli: CliRunner, tmp_path: Path, text: str, encoding: str) -> None:
    path = tmp_path / "maps.csv"
    path.write_bytes(text.encode(encoding))
    result = cli.invoke(app, ["map", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert _mappings(cli) == [("category", "Café", "Repas, café"), ("class", "Ventes", "Ventes:Nord")]


def test_a_semicolon_file_names_its_bad_lines_and_separator(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "maps.csv"
    path.write_text("kind;source;target\ncategory;Travel\ncategory;Meals;Meals\n", encoding="utf-8")
    result = cli.invoke(app, ["map", "import", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        "Error: maps.csv line 2: has 2 columns, not 3 (kind, source, target)"
        " — give kind, source and target, separated by semicolons")


def test_a_missing_header_is_line_1_and_the_rows_are_still_checked(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "maps.csv"
    path.write_text("category,Travel,Travel\nemployee,bob,Bob\n", encoding="utf-8")
    result = cli.invoke(app, ["map", "import", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines()[:2] == [
        ("Error: maps.csv line 1: the header kind,source,target is missing (this line is already a mapping)"
        " — insert a first line kind,source,target"),
        "Error: maps.csv line 2: employee 'bob' is not an email address — employees are mapped by submitter email",
    ]


def test_an_unclosed_quote_is_named_by_the_line_it_opens_on(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "maps.csv"
    path.write_text('kind,source,target\ncategory,Travel,Travel\ncategory,"Meals,Meals\nclass,A,B\n', encoding="utf-8")
    result = cli.invoke(app, ["map", "import", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith("Error: maps.csv line 3: not valid CSV from this line on")


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"PK\x03\x04rest of a workbook", "Error: maps.csv: is an Excel workbook, not a CSV file"),
        (b"kind,source,target\ncategory,\x81\x8d,X\n", "Error: maps.csv line 2: is neither UTF-8 nor Windows-1252 text"),
    ],
)
def test_a_file_that_is_not_csv_text_gets_one_clear_line(cli: CliRunner, tmp_path: Path, data: bytes, line: str) -> None:
    path = tmp_path / "maps.csv"
    path.write_bytes(data)
    result = cli.invoke(app, ["map", "import", str(path)])
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first == line + ' — in Excel use File > Save As > "CSV UTF-8 (Comma delimited) (*.csv)"'


def test_toml_problems_carry_the_line_of_their_key(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "maps.toml"
    path.write_text('[category]\nTravel = "Travel"\n"Meals" = 3\n\n[employee]\n"ann" = "Ann"\n', encoding="utf-8")
    result = cli.invoke(app, ["map", "import", "--json", str(path)])
    assert result.exit_code == 1
    assert [(e["line"], e["problem"]) for e in json.loads(result.output)["errors"]] == [
        (3, "[category] 'Meals' maps to int, not text"),
        (6, "employee 'ann' is not an email address"),
    ]


def test_invalid_toml_names_its_line(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "maps.toml"
    path.write_text('[category]\nTravel = "Travel"\nMeals = \n', encoding="utf-8")
    result = cli.invoke(app, ["map", "import", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith("Error: maps.toml line 3: not valid TOML: Invalid value — ")


def test_an_unknown_extension_under_json_is_a_json_error(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "maps.xlsx"
    path.write_bytes(b"x")
    result = cli.invoke(app, ["map", "import", "--json", str(path)])
    assert result.exit_code == 1
    assert json.loads(result.output) == {"imported": 0, "errors": [
        {"line": None, "problem": "maps.xlsx: cannot tell the format from the extension", "fix": "name it .csv or .toml"}]}


# ------------------------------------------------------------------------------ usage lines of the map commands


@pytest.mark.parametrize(
    ("command", "usage", "options"),
    [
        ("set", "[OPTIONS] {KIND} {SOURCE} {TARGET}", []),
        ("unset", "[OPTIONS] {KIND} {SOURCE}", []),
        ("import", "[OPTIONS] {FILE}", ["--json"]),
        ("export", "[OPTIONS]", ["--format csv|toml", "-o, --output FILE"]),
        ("list", "[OPTIONS]", ["--kind KIND", "--json"]),
    ],
)
def test_map_usage_lines_name_arguments_in_uppercase(command: str, usage: str, options: list[str]) -> None:
    result = CliRunner().invoke(app, ["map", command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    first = next(line for line in result.output.splitlines() if line.startswith("Usage:"))
    assert first.endswith(f" map {command} {usage}")
    assert all(any(line.strip().startswith(o) for line in result.output.splitlines()) for o in options), result.output
