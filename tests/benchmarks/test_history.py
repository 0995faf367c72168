"""The benchmark history (benchmarks/history.py): a run's figures appended as one line, read back, charted."""

from __future__ import annotations

import json
import os
import time

import pytest

from benchmarks import history


@pytest.fixture
def results(tmp_path, monkeypatch):
    """An empty results folder for the run, as run.sh leaves it."""
    folder = tmp_path / "results"
    folder.mkdir()
    monkeypatch.setattr(history, "RESULTS", folder)
    return folder


def test_a_run_is_appended_with_its_figures_commit_and_load_and_read_back(tmp_path, results, monkeypatch):
    monkeypatch.setenv("BENCH_BURST", "1")
    started = time.time() - 1
    (results / "ws_fanout.json").write_text(
        json.dumps({"p50_ms": 4.8, "p99_ms": 8.4, "publishing": "burst", "load_average": [1.0, 1.1, 1.2]})
    )
    path = tmp_path / "history.jsonl"
    history.append(history.make_entry("seeded", {"p99_ms": 1.0}, load_before=None), path)
    figures, source = history.collect("ws_fanout", since=started)
    history.append(history.make_entry("ws_fanout", figures, load_before=[0.5, 0.6, 0.7], results=source), path)

    first, second = history.read(path)
    assert first["benchmark"] == "seeded"
    assert second["benchmark"] == "ws_fanout" and second["figures"] == {"p50_ms": 4.8, "p99_ms": 8.4}
    assert second["results"].endswith("ws_fanout.json")
    assert second["load_before"] == [0.5, 0.6, 0.7] and len(second["load_after"]) == 3
    assert len(second["commit"]) == 40 and isinstance(second["dirty"], bool)
    assert second["cores"] == os.cpu_count() and second["env"]["BENCH_BURST"] == "1"
    assert second["utc"].endswith("Z")
    assert path.read_text().count("\n") == 2  # one line per run


def test_a_results_file_older_than_the_run_is_not_taken_for_its_figures(results):
    stale = results / "dashboard.json"
    stale.write_text(json.dumps({"dashboard_summary": {"p95_ms": 99.0}}))
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    printed = 'starting\n{\n  "dashboard_summary": {"p95_ms": 7.5, "n": 500},\n  "ok": true\n}\n'
    figures, source = history.collect("dashboard", since=time.time() - 5, output=printed)
    assert (figures, source) == ({"dashboard_summary.p95_ms": 7.5, "dashboard_summary.n": 500}, "stdout")


def test_text_reports_give_figures_per_labelled_line(results):
    printed = (
        "CPU cores: 2; load average 1.0\n"
        "master -> 1 slave(s)         n= 1000  p50=  0.960 ms  p99=  1.860 ms  commands=1030/1030\n"
        "  of which this process's CPU n= 1000  p50=  0.450 ms  SQL statements per heartbeat=1\n"
    )
    figures, _ = history.collect("copy_latency", since=time.time(), output=printed)
    assert figures["master_1_slave_s.p50_ms"] == 0.96 and figures["master_1_slave_s.p99_ms"] == 1.86
    assert figures["master_1_slave_s.of_which_this_process_s_cpu.p50_ms"] == 0.45
    assert figures["master_1_slave_s.of_which_this_process_s_cpu.sql_statements_per_heartbeat"] == 1
    assert not any(key.startswith("master_1_slave_s.commands") for key in figures)


def test_one_chart_per_benchmark_is_written(tmp_path):
    entries = [
        {**history.make_entry("dashboard", {"dashboard_summary.p95_ms": 18.9, "bare.p95_ms": 5.9}, load_before=[1.4]),
         "utc": "2026-12-05T05:35:00Z", "source": "from docs"},
        {**history.make_entry("dashboard", {"dashboard_summary.p95_ms": 9.0, "bare.p95_ms": 4.1}, load_before=[0.9]),
         "utc": "2026-12-06T05:00:00Z"},
        {**history.make_entry("startup", {"seconds_to_first_page": 3.8}, load_before=None), "utc": "2026-12-05T02:21:00Z"},
        {**history.make_entry("empty", {}, load_before=None), "utc": "2026-12-05T02:21:00Z"},
    ]  # fmt: skip
    written = history.render_charts(entries, tmp_path)
    assert sorted(path.name for path in written) == ["trend-dashboard.png", "trend-startup.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


def test_the_history_in_the_repository_reads_back_and_names_known_benchmarks():
    entries = history.read()
    assert entries and all({"benchmark", "utc", "commit", "figures"} <= set(entry) for entry in entries)
    assert any(entry["source"] == "from docs" for entry in entries)
