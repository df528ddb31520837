"""The one-file build script, cheaply: its help, the data files it bundles, and that a missing file fails.

The build itself (PyInstaller, a minute) and its smoke tests run in .ci/run, not here.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "build_onefile.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_onefile", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_script_help_exits_0_and_names_its_options() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--use-current-python" in result.stdout
    assert "--smoke-only" in result.stdout


def test_the_build_bundles_the_package_data_the_templates_are_read_from(tmp_path: Path) -> None:
    args = _load_script().pyinstaller_args(tmp_path / "entry.py", tmp_path / "dist")
    assert ["--collect-data", "mlconnector"] == args[args.index("--collect-data"):args.index("--collect-data") + 2]
    assert "--onefile" in args
    templates = sorted(p.name for p in (REPO / "mlconnector" / "expensify" / "templates").glob("*.ftl"))
    assert templates == ["export.ftl", "stamp.ftl"]  # what mlconnector.expensify.template reads


def test_the_spyne_hook_the_build_names_exists() -> None:
    module = _load_script()
    args = module.pyinstaller_args(Path("entry.py"), Path("dist"))
    hooks = Path(args[args.index("--additional-hooks-dir") + 1])
    assert (hooks / "hook-spyne.py").is_file()


def test_smoke_only_exits_1_when_there_is_no_executable_to_test(tmp_path: Path) -> None:
    assert _load_script().main(["--smoke-only", "--dist", str(tmp_path)]) == 1
