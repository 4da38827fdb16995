"""bench/hub_cost.py keeps working: a short run over two channels, every answer checked by its drivers."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "hub_cost.py"


def test_hub_cost_runs_and_prints_its_figures():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--requests", "400", "--window", "32", "--channels", "2", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = re.search(r"round 1: +([\d,]+) infer/s +serving CPU +([\d.]+) µs/inf .* batch +([\d.]+)", proc.stdout)
    assert row is not None, proc.stdout
    assert float(row.group(2)) > 0 and float(row.group(3)) >= 1.0
    assert "median serving CPU" in proc.stdout
