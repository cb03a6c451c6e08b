"""agent_kit's benchmarks: each runs our path and an anchor in the same process, interleaved.

``python -m bench`` runs them all (``--quick`` for a smoke run, ``--only NAME`` for one) and
writes ``bench/results/latest.json`` and ``bench/results/bench.png``. Every benchmark prints one
machine-readable line::

    BENCH <name> ours=<median> anchor=<median> unit=<unit> ratio=<ours/anchor> goal=<goal> load=<1-min load>

``load`` is the machine's one-minute load average (``os.getloadavg``) when the measurement ended:
on a shared machine it says how much else ran meanwhile.

Timings are medians over many rounds after a warm-up, ours and the anchor alternating round by
round, so drift (CPU frequency, page cache, other load) hits both alike. Compare ratios within
one run only.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Result", "interleave", "median", "report"]


@dataclass
class Result:
    """One benchmark's outcome (one row of the table, one BENCH line)."""

    name: str
    ours: float
    anchor: float
    unit: str
    goal: str
    met: bool
    ours_label: str = "agent_kit"
    anchor_label: str = "anchor"
    higher_is_better: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    load: float = field(default_factory=lambda: os.getloadavg()[0])
    """The machine's one-minute load average when the result was made."""

    @property
    def ratio(self) -> float:
        return self.ours / self.anchor if self.anchor else float("inf")

    def line(self) -> str:
        return (f"BENCH {self.name} ours={_num(self.ours)} anchor={_num(self.anchor)} unit={self.unit} "
                f"ratio={self.ratio:.2f} goal={self.goal} load={self.load:.2f}")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def _num(x: float) -> str:
    if x >= 1000:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def interleave(ours: Callable[[int], Any], anchor: Callable[[int], Any], *, rounds: int, warmup: int,
               scale: float = 1e6) -> tuple[list[float], list[float]]:
    """Time ``ours(i)`` and ``anchor(i)`` alternately (which goes first alternates too).

    Returns the two lists of timings, in ``scale`` units per call (default µs). The garbage
    collector runs between rounds, never inside a timed call.
    """
    for i in range(warmup):
        ours(-1 - 2 * i)
        anchor(-2 - 2 * i)
    a: list[float] = []
    b: list[float] = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for i in range(rounds):
            pair = ((ours, a), (anchor, b)) if i % 2 == 0 else ((anchor, b), (ours, a))
            for fn, out in pair:
                t0 = time.perf_counter()
                fn(i)
                out.append((time.perf_counter() - t0) * scale)
            if i % 16 == 15:
                gc.collect()
    finally:
        if gc_was:
            gc.enable()
    return a, b


def report(result: Result, readable: list[str]) -> Result:
    """Print the readable lines, then the BENCH line."""
    for line in readable:
        print(f"  {line}")
    print(f"  goal {result.goal}: {'met' if result.met else 'MISSED'}")
    print(result.line(), flush=True)
    return result
