"""What every benchmark of issue #15 shares: interleaved rounds against a floor, and the verdict table.

The machine these run on is shared and noisy, so no figure is judged alone: each is measured beside a
floor in the same run, in interleaved rounds (floor, product, floor, product, ...), and judged by the
ratio of the medians. Min and median of the rounds are both printed; the verdict uses the medians.

A :class:`Measure` has one of three kinds:

- ``ratio``: value / floor must be <= target;
- ``plus``: value - floor must be <= target (a count, e.g. round trips over the least possible);
- ``limit``: value must be <= target, there is no floor (e.g. peak memory).
"""

from __future__ import annotations

import argparse
import gc
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Figures = Mapping[str, float]


def interleave(rounds: int, floor: Callable[[int], Figures], product: Callable[[int], Figures],
               *, quiet: bool = False) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Run ``floor(n)`` then ``product(n)`` for n in 0..rounds-1; each returns named figures for its round.

    Returns the figures of each side, by name, one value per round. A full collection runs before each
    side so that neither inherits the other's garbage.
    """
    floors: dict[str, list[float]] = defaultdict(list)
    products: dict[str, list[float]] = defaultdict(list)
    for n in range(rounds):
        for side, run, sink in (("floor", floor, floors), ("product", product, products)):
            gc.collect()
            figures = run(n)
            for name, value in figures.items():
                sink[name].append(value)
            if not quiet:
                shown = ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
                print(f"  round {n + 1}/{rounds} {side:7s}: {shown}", flush=True)
    return dict(floors), dict(products)


@dataclass
class Measure:
    """One line of the verdict table."""

    name: str
    values: list[float]
    floors: list[float] = field(default_factory=list)
    target: float = 3.0
    kind: str = "ratio"  # ratio | plus | limit
    unit: str = "ms"
    note: str = ""

    @property
    def value(self) -> float:
        return statistics.median(self.values)

    @property
    def floor(self) -> float:
        return statistics.median(self.floors) if self.floors else float("nan")

    @property
    def ratio(self) -> float:
        if self.kind == "ratio":
            return self.value / self.floor if self.floor else float("inf")
        if self.kind == "plus":
            return self.value - self.floor
        return self.value

    @property
    def ok(self) -> bool:
        return self.ratio <= self.target

    def cells(self) -> list[str]:
        def fig(values: list[float]) -> str:
            if not values:
                return "-"
            if len(values) == 1 or min(values) == statistics.median(values):
                return f"{statistics.median(values):.4g} {self.unit}".strip()
            return f"{min(values):.4g} / {statistics.median(values):.4g} {self.unit}".strip()

        if self.kind == "ratio":
            ratio, target = f"{self.ratio:.2f}×", f"≤ {self.target:g}×"
            if len(self.values) > 1 and self.floors:
                ratio += f" (min/min {min(self.values) / min(self.floors):.2f}×)"
        elif self.kind == "plus":
            ratio, target = f"{self.ratio:+g}", f"≤ +{self.target:g}"
        else:
            ratio, target = "-", f"≤ {self.target:g} {self.unit}"
        return [self.name, fig(self.values), fig(self.floors), ratio, target, "ok" if self.ok else "MISSED"]


def report(measures: list[Measure], *, title: str = "") -> int:
    """Print the verdict table (min / median where there are several rounds); 1 if any measure MISSED."""
    header = ["measure", "value (min / median)", "floor (min / median)", "ratio (of medians)", "target", "verdict"]
    rows = [header] + [m.cells() for m in measures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    if title:
        print(f"\n{title}")
    print()
    for n, row in enumerate(rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if n == 0:
            print("-+-".join("-" * w for w in widths))
    notes = [m for m in measures if m.note]
    if notes:
        print()
        for m in notes:
            print(f"  {m.name}: {m.note}")
    missed = [m for m in measures if not m.ok]
    print()
    if missed:
        print("MISSED: " + "; ".join(f"{m.name} ({m.cells()[3]}, target {m.cells()[4]})" for m in missed))
        return 1
    print("every measure within its target")
    return 0


def rounds_argument(parser: argparse.ArgumentParser, default: int) -> None:
    """The ``--rounds N`` option every benchmark takes."""
    parser.add_argument("--rounds", type=int, default=default,
                        help=f"interleaved rounds of floor and product (default {default}); min and median are shown")


def median_of(values: list[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def peak_rss_mb(pid: int | str = "self") -> float:
    """The peak resident memory of a running process, in MB (Linux ``VmHWM``; NaN elsewhere).

    Not ``ru_maxrss``: on Linux a child's ``ru_maxrss`` keeps the high-water mark of the process it was
    forked from (exec keeps the larger of the two), so a child started by a big benchmark process would
    report the benchmark's memory. ``VmHWM`` belongs to the program the child is running now.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
