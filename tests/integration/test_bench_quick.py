"""`make bench-quick` runs end to end and prints every field of issue 10 for both shapes.

No timed assertion: the figures are the benchmark's business; this checks the JSON's shape."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHAPES = ("embedded", "production")
SCALARS = ("ami_events_per_second", "ami_parse_ceiling_events_per_second", "ami_ratio",
           "calls_per_second_sustained")
DISTRIBUTIONS = ("screen_pop_ms", "agi_command_ms", "case_write_lag_ms")
PROCESSES = {"embedded": {"all"}, "production": {"bridge", "web1", "web2"}}


def number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# Not marked `store`: the bench makes its own SQLite and PostgreSQL stores either way, so a
# second run under CC_TEST_STORE_PG=1 would only repeat it.
def test_quick_bench_prints_every_field() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--no-save"], cwd=ROOT,
        capture_output=True, text=True, timeout=420,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout)  # one JSON object, nothing else on stdout
    assert result["quick"] is True
    for shape in SHAPES:
        fig = result[shape]
        for key in SCALARS:
            assert number(fig[key]), (shape, key, fig.get(key))
        for key in DISTRIBUTIONS:
            assert number(fig[key]["p50"]) and number(fig[key]["p99"]), (shape, key, fig[key])
            assert fig[key]["n"] > 0
        assert set(fig["rss_mb"]) == PROCESSES[shape]
        assert all(number(v) for v in fig["rss_mb"].values())
        assert number(fig["calls_in_progress"])
        assert fig["screen_pop_ms"]["consoles"] == 500
