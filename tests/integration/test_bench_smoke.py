"""`python -m bench --quick` (issue #11 §5): one table, every row with its figure and same-run baseline.

Figures only: nothing here judges how fast anything was.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = {
    "intake_rate", "intake_p99", "step_rate", "step_rate_vs_concurrent_floor", "audit_cost",
    "timer_lateness_p50", "timer_lateness_p99", "timer_lateness_max", "tray_p99",
    "rss_referrals", "rss_workflow", "rss_scheduler", "rss_allocation", "rss_broker", "rss_postgres", "sign_verify_us",
    "step_rate_signed", "step_rate_two_replicas", "timer_set_rate", "relay_rate", "desk_team_work_p99",
    "desk_person_page_p99",
    "dashboard_p99", "clock_lateness_p50", "clock_lateness_p99", "rss_clocks",
}


def _number(cell: str) -> float:
    return float(cell.strip().replace(",", ""))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("bench-results")
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                            timeout=480)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, out


@pytest.mark.timeout(520)
def test_quick_bench_prints_every_row_with_a_figure_and_a_same_run_baseline(quick_run: tuple[str, Path]) -> None:
    stdout, out = quick_run
    document = json.loads((out / "latest.json").read_text())
    assert {row["key"] for row in document["rows"]} == ROWS
    printed = {line.split(" | ")[0].removeprefix("| "): line.split(" | ") for line in stdout.splitlines()
               if line.startswith("| ")}
    for row in document["rows"]:
        assert isinstance(row["value"], float) and math.isfinite(row["value"]), row
        assert isinstance(row["baseline"], float) and math.isfinite(row["baseline"]), row
        cells = printed[row["figure"]]
        assert cells[1] == row["unit"], cells
        assert all(math.isfinite(_number(cell)) for cell in cells[2:4]), cells


@pytest.mark.timeout(520)
def test_quick_bench_records_when_where_and_on_what_machine_it_ran(quick_run: tuple[str, Path]) -> None:
    stdout, out = quick_run
    document = json.loads((out / "latest.json").read_text())
    assert document["mode"] == "quick"
    assert len(document["commit"]) == 40 or document["commit"] == "unknown"
    assert document["machine"]["cores"] == os.cpu_count()
    assert len(document["machine"]["load_average_at_start"]) == 3
    table = (out / "latest.md").read_text()
    assert table.strip() in stdout
    assert document["date"] in table and document["commit"] in table
