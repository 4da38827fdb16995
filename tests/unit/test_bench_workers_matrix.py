"""bench/workers_matrix.py's table: PyTriton's rows and the lite/PyTriton ratios (the GPU side by side)."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))

import workers_matrix as wm


def _row(workers: int, case: str, infer_per_s: float, p50_ms: float) -> dict:
    return {"case": case, "workers": workers, "infer_per_s": infer_per_s, "p50_ms": p50_ms, "cpu_us_per_inf": 100.0}


def test_pytriton_rows_come_first_and_every_row_has_its_ratio_to_them():
    case = wm.Case("id16_http_c256", "identity_fp32", "http", "INPUT_1:16", 256)
    rows = [_row(0, case.name, 4000.0, 50.0), _row(8, case.name, 24000.0, 8.0), _row(wm.PYT, case.name, 3000.0, 80.0)]
    table = wm.render(rows, [case], [wm.PYT, 0, 8])
    lines = [line for line in table.splitlines() if line.startswith(f"| {case.name} |")]
    assert [line.split(" | ")[1] for line in lines] == ["PyTriton", "0", "8"]
    cells = lines[2].strip("| ").split(" | ")
    assert cells[-5] == "6.00×"  # infer/s against workers=0, the baseline (not PyTriton)
    assert cells[-2:] == ["8.00×", "0.10×"]  # infer/s and p50 against PyTriton
    assert "against PyTriton 0.7" in table


def test_without_pytriton_the_table_has_no_pytriton_columns():
    case = wm.Case("id16_http_c1", "identity_fp32", "http", "INPUT_1:16", 1)
    table = wm.render([_row(0, case.name, 2000.0, 0.4), _row(2, case.name, 1800.0, 0.5)], [case], [0, 2])
    assert "PyTriton" not in table
    assert table.splitlines()[0].count("|") == 14  # 13 columns
    assert wm.label(wm.PYT) == "PyTriton" and wm.label(8) == "8"
