"""A smoke run of the benchmark (`make bench` itself is not part of the tests): a 40-story
synthetic corpus, built, analysed from empty caches and re-run after one new story."""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_smoke_runs_and_reports(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sys.modules.pop("bench", None)
    import bench

    assert bench.main(["--smoke", "--processes", "1"]) == 0
    out = capsys.readouterr().out
    row = re.search(r"^\| 40 stories \| (\d+) \| (\d+) \| ([\d.]+) \|.*\| ([\d.]+) \(([\d.]+)\) \|$", out, re.M)
    assert row, out
    assert int(row.group(1)) == 40 and int(row.group(2)) > 10_000  # stories, words
    assert float(row.group(4)) > 0 and row.group(4) == row.group(5)  # one re-run: the median is that run
    for stage in ("ingest", "parse", "train", "themes", "factors", "cluster", "draft", "write"):
        assert re.search(rf"^\| {stage} \| [\d.]+ \|", out, re.M), stage
