"""Run every benchmark: ``python -m bench [--quick] [--only NAME ...]``.

Writes ``bench/results/latest.json`` and ``bench/results/bench.png`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from importlib import import_module, metadata
from pathlib import Path
from typing import Any

from . import Result

MODULES = ("auto_allowed", "approval_round_trip", "policy_decision", "aggregate_limit", "inbox", "audit",
           "checkpoint_growth", "scale_out", "fresh_start", "hostile_input")
RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("langgraph", "langgraph-checkpoint", "langgraph-checkpoint-sqlite", "langchain", "cedarpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}", "packages": versions}


def table(results: list[Result], info: dict[str, Any], date: str) -> str:
    rows = [f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, {info['os']}; "
            f"langgraph {info['packages']['langgraph']}, langchain {info['packages']['langchain']}. Date: {date}.",
            "",
            "| benchmark | agent_kit | anchor | unit | ours / anchor | goal | met | load |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.name} ({r.ours_label} vs {r.anchor_label}) | {_fmt(r.ours)} | {_fmt(r.anchor)} | "
                    f"{r.unit} | {r.ratio:.2f} | {r.goal} | {'yes' if r.met else '**no**'} | {r.load:.1f} |")
    return "\n".join(rows)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def plot(results: list[Result], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(3.1 * len(results), 3.6))
    for ax, r in zip(axes if len(results) > 1 else [axes], results):
        bars = ax.bar(["agent_kit", "anchor"], [r.ours, r.anchor], color=["#2b6cb0", "#a0aec0"])
        ax.set_title(r.name, fontsize=9)
        ax.set_ylabel(r.unit + (" (higher is better)" if r.higher_is_better else ""), fontsize=8)
        ax.tick_params(labelsize=8)
        if r.anchor > 20 * r.ours or r.ours > 20 * r.anchor:
            ax.set_yscale("log")
        ax.bar_label(bars, labels=[_fmt(r.ours), _fmt(r.anchor)], fontsize=7)
        ax.set_xlabel(f"ratio {r.ratio:.2f}, goal {r.goal}", fontsize=7,
                      color="#276749" if r.met else "#c53030")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and smaller data: a smoke run")
    parser.add_argument("--only", nargs="*", choices=MODULES, help="run only these benchmarks")
    args = parser.parse_args(argv)
    names = args.only or list(MODULES)
    started = time.perf_counter()
    info = machine()
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    results: list[Result] = []
    load_start = os.getloadavg()
    print(f"load average at start (1, 5, 15 min): {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} "
          f"on {os.cpu_count()} cores", flush=True)
    for name in names:
        print(f"\n== {name}{' (quick)' if args.quick else ''}", flush=True)
        t0 = time.perf_counter()
        got = import_module(f"bench.{name}").run(quick=args.quick)
        results += got if isinstance(got, list) else [got]  # some measure on both backends
        print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
    total = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    load_end = os.getloadavg()
    out = {"date": date, "quick": args.quick, "seconds": total, "machine": info,
           "load_start": load_start, "load_end": load_end, "results": [r.to_json() for r in results]}
    (RESULTS / "latest.json").write_text(json.dumps(out, indent=2) + "\n")
    plot(results, RESULTS / "bench.png", f"agent_kit benchmarks, {date}{' (quick)' if args.quick else ''}")
    print("\n" + table(results, info, date))
    print(f"\nload average at end (1, 5, 15 min): {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    print(f"\n{len(results)} benchmarks in {total:.0f} s; wrote {RESULTS / 'latest.json'} and {RESULTS / 'bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
