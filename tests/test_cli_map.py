from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mlconnector.cli import app
from mlconnector.store import Store
from mlconnector.store.reports import save_report

from .factories import report


@pytest.fixture
def runner(home: Path) -> CliRunner:
    runner = CliRunner()
    result = runner.invoke(app, ["init", "--non-interactive"], env={"MLCONNECTOR_QBWC_PASSWORD": "pw"})
    assert result.exit_code == 0, result.output
    return runner


def _run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, list(args))


def test_map_set_list_and_unset(runner: CliRunner) -> None:
    result = _run(runner, "map", "set", "category", "Meals, client", "Meals & Entertainment")
    assert result.exit_code == 0 and result.output == 'Mapped category "Meals, client" → "Meals & Entertainment"\n'
    result = _run(runner, "map", "set", "category", "Meals, client", "Meals")
    assert result.output == 'Mapped category "Meals, client" → "Meals" (was "Meals & Entertainment")\n'
    listed = json.loads(_run(runner, "map", "list", "--json").output)
    assert [(r["kind"], r["source"], r["target"]) for r in listed] == [("category", "Meals, client", "Meals")]
    table = _run(runner, "map", "list", "--kind", "category").output
    assert "Meals, client" in table
    assert _run(runner, "map", "unset", "category", "Meals, client").exit_code == 0
    assert json.loads(_run(runner, "map", "list", "--json").output) == []


def test_map_set_exits_1_with_one_line_for_an_unknown_kind(runner: CliRunner) -> None:
    result = _run(runner, "map", "set", "bogus", "a", "b")
    assert result.exit_code == 1
    assert result.output == (
        "Error: unknown mapping kind 'bogus' — use one of category, class, customer, employee, card, merchant, item\n"
    )


def test_map_unset_exits_1_for_a_missing_mapping(runner: CliRunner) -> None:
    result = _run(runner, "map", "unset", "class", "Nope")
    assert result.exit_code == 1
    assert result.output == "Error: no class mapping for 'Nope' — see mlconnector map list --kind class\n"


def test_map_without_a_config_exits_1_and_says_to_run_init(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "empty"), "map", "set", "category", "A", "B"])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "mlconnector init" in result.output
    assert result.output.count("\n") == 1


@pytest.mark.parametrize("suffix", [".csv", ".toml"])
def test_map_export_then_import_round_trips(runner: CliRunner, tmp_path: Path, suffix: str) -> None:
    rows = [("category", 'Meals "client", lunch', "Meals:Client"), ("employee", "zoë@example.com", "Zoë Ünal")]
    for kind, source, target in rows:
        assert _run(runner, "map", "set", kind, source, target).exit_code == 0
    out = tmp_path / f"maps{suffix}"
    assert _run(runner, "map", "export", "--output", str(out)).exit_code == 0
    before = _run(runner, "map", "list", "--json").output
    for kind, source, _ in rows:
        _run(runner, "map", "unset", kind, source)
    result = _run(runner, "map", "import", str(out))
    assert result.exit_code == 0 and "2 added" in result.output
    after = json.loads(_run(runner, "map", "list", "--json").output)
    assert [(r["kind"], r["source"], r["target"]) for r in after] == [
        (r["kind"], r["source"], r["target"]) for r in json.loads(before)]
    stdout = _run(runner, "map", "export", "--format", suffix[1:]).output
    assert stdout == out.read_text(encoding="utf-8-sig")  # the file adds only a BOM, for Excel


def test_map_import_refuses_an_unknown_extension(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "maps.xlsx"
    bad.write_text("x")
    result = _run(runner, "map", "import", str(bad))
    assert result.exit_code == 1
    assert result.output == "Error: maps.xlsx: cannot tell the format from the extension — name it .csv or .toml\n"


def test_map_check_exits_4_while_something_blocks_and_0_once_fixed(runner: CliRunner, home: Path) -> None:
    store = Store.open(home / "state.db")
    save_report(store, report("R1"))
    store.close()
    result = _run(runner, "map", "check", "--json")
    assert result.exit_code == 4
    data = json.loads(result.output)
    assert data["blocking"] == 1 and data["names"][0]["reports"] == ["R1"]
    assert _run(runner, "map", "check").exit_code == 4
    fixed = _run(runner, "map", "set", "employee", "ann@example.com", "Ann Smith")
    assert fixed.exit_code == 0
    assert _run(runner, "map", "check").exit_code == 0


def test_a_mapping_change_replans_blocked_reports_and_status_shows_it(runner: CliRunner, home: Path) -> None:
    import datetime as dt

    from mlconnector.config import QuickBooksConfig
    from mlconnector.services.queue import plan_and_queue

    store = Store.open(home / "state.db")
    save_report(store, report("R1"))
    plan_and_queue(store, QuickBooksConfig(), today=dt.date(2026, 4, 1))
    store.close()
    status = json.loads(_run(runner, "status", "--json").output)
    assert status["reports"] == {"queued": 0, "blocked": 1}
    assert status["blocked_reasons"][0]["reason"].startswith("no vendor is mapped to ann@example.com")
    result = _run(runner, "map", "set", "employee", "ann@example.com", "Ann Smith")
    assert "Re-planned: 1 report(s) queued, 0 still blocked" in result.output
    status = json.loads(_run(runner, "status", "--json").output)
    assert status["reports"] == {"queued": 1, "blocked": 0} and status["postings"]["queued"] == 1
    assert "Why reports are blocked" not in _run(runner, "status").output


def test_a_csv_exported_for_excel_and_saved_back_as_cp1252_imports(tmp_path, cli) -> None:  # type: ignore[no-untyped-def]
    from mlconnector.cli import app

    assert cli.invoke(app, ["map", "set", "category", "Café", "Meals"]).exit_code == 0
    out = tmp_path / "m.csv"
    assert cli.invoke(app, ["map", "export", "--output", str(out)]).exit_code == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    out.write_bytes("kind,source,target\ncategory,Café,Meals:Team\n".encode("cp1252"))  # Excel's plain CSV
    result = cli.invoke(app, ["map", "import", str(out)])
    assert result.exit_code == 0, result.output
    assert "Meals:Team" in cli.invoke(app, ["map", "list", "--json"]).output
