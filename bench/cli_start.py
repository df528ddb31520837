"""Benchmark: CPU time of starting the command line, beside a bare Python start (#15).

    python bench/cli_start.py [--rounds 5]

Each figure is the CPU time (user + sys) of one child process, from ``resource.getrusage(RUSAGE_CHILDREN)``
before and after it, in interleaved rounds (floor, product, floor, product, ...):

- ``python -m mlconnector --help`` beside ``python -c pass`` (target <= 3x);
- ``python -m mlconnector status --json`` on a fresh home made with ``init --non-interactive`` beside
  ``python -c "import typer"`` (target <= 2x).

The children run with ``PYTHONPATH`` set to this checkout, so the package measured is the one here.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _floor import Measure, interleave, report, rounds_argument  # noqa: E402


def cpu_ms(argv: list[str], env: dict[str, str]) -> float:
    """User + sys CPU time of one child running ``argv``, in ms (it must exit 0)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(ROOT))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    rounds_argument(parser, 5)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MLCONNECTOR_HOME": home,
               "MLCONNECTOR_QBWC_PASSWORD": "Pw123456"}
        subprocess.run([python, "-m", "mlconnector", "init", "--non-interactive"], env=env, check=True,
                       capture_output=True)
        cpu_ms([python, "-m", "mlconnector", "status", "--json"], env)  # warm the file cache and .pyc files
        pairs = {
            "help": ([python, "-c", "pass"], [python, "-m", "mlconnector", "--help"]),
            "status": ([python, "-c", "import typer"], [python, "-m", "mlconnector", "status", "--json"]),
        }
        print(f"CPU ms per child process, {args.rounds} interleaved rounds", flush=True)
        floors, products = interleave(
            args.rounds,
            lambda n: {name: cpu_ms(floor, env) for name, (floor, _) in pairs.items()},
            lambda n: {name: cpu_ms(product, env) for name, (_, product) in pairs.items()})
    return report([
        Measure("mlconnector --help, CPU ms (floor: python -c pass)", products["help"], floors["help"], target=3),
        Measure("mlconnector status --json, CPU ms (floor: python -c 'import typer')", products["status"],
                floors["status"], target=2),
    ], title="bench/cli_start.py — command-line start-up")


if __name__ == "__main__":
    sys.exit(main())
