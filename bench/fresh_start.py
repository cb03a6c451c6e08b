"""Fresh start: ``git clone`` of this repository, then ``make demo``, install included.

ours: the Makefile as it is (uv, bootstrapped from pip once into the user's cache folder when it
is not on PATH). anchor: the same clone and command with ``AGENT_KIT_NO_UV=1`` (plain pip, as the
Makefile installed before). Each run starts from a new clone with no ``.venv``; the package
caches (uv's, pip's) are what they are on this machine, as they would be for a developer here.
Goal: well under a minute (<= 60 s) for ours. ``--quick`` runs ours once and the anchor not at all.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from . import Result, report

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 60.0


def fresh_demo(*, uv: bool) -> float:
    """Seconds for ``git clone`` + ``make demo`` in a new folder."""
    where = Path(tempfile.mkdtemp(prefix="agent_kit_fresh_"))
    env = {k: v for k, v in os.environ.items() if k not in ("AGENT_KIT_HOME", "AGENT_KIT_DB_URL", "VIRTUAL_ENV")}
    if uv:
        env.pop("AGENT_KIT_NO_UV", None)
    else:
        env["AGENT_KIT_NO_UV"] = "1"
    try:
        started = time.perf_counter()
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(where / "repo")], check=True, env=env)
        done = subprocess.run(["make", "demo"], cwd=where / "repo", env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0 or "audit chain intact" not in done.stdout:
            raise RuntimeError(f"make demo failed on a fresh clone:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return seconds
    finally:
        shutil.rmtree(where, ignore_errors=True)


def run(quick: bool = False) -> Result:
    rounds = 1 if quick else 3
    ours = [fresh_demo(uv=True) for _ in range(rounds)]
    anchor = [] if quick else [fresh_demo(uv=False)]
    ours_s = statistics.median(ours)
    anchor_s = statistics.median(anchor) if anchor else float("nan")
    result = Result("fresh_start", ours_s, anchor_s, "s", f"<={GOAL_S:.0f}s", ours_s <= GOAL_S,
                    ours_label="git clone + make demo (uv)", anchor_label="same with plain pip",
                    extra={"ours_runs": ours, "anchor_runs": anchor, "load_average": os.getloadavg()})
    return report(result, [f"runs (uv): {', '.join(f'{s:.1f} s' for s in ours)}",
                           f"runs (pip): {', '.join(f'{s:.1f} s' for s in anchor) or 'not run (--quick)'}",
                           f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"])
