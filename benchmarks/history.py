"""The benchmark history: one JSON line per benchmark run in benchmarks/history.jsonl, and a trend chart each.

`benchmarks/run.sh` calls ``--record NAME`` after each benchmark. The line holds the benchmark's name, its
figures flattened to dotted keys (``dashboard_summary.p95_ms``), the commit, whether tracked files had
uncommitted changes (``dirty``), the UTC time, the 1-minute load average before and after the run, the core
count and the ``BENCH_*`` variables the run was given (``env``: a run with ``BENCH_BURST=1`` is another series
in the chart). Lines with ``"source": "from docs"`` are figures of record copied from docs/benchmarks*.md.

The figures come from ``benchmarks/results/<file>.json`` when the benchmark wrote it during this run, otherwise
from the last JSON object the benchmark printed, otherwise from ``label  key=value ms`` lines (copy_latency).

``--charts`` draws one small PNG per benchmark into docs/benchmarks/trend-<name>.png (matplotlib).

Usage:
  benchmarks/history.py --record NAME --since EPOCH --load-before "0.5 0.6 0.7" --output benchmarks/results/NAME.out
  benchmarks/history.py --charts
  benchmarks/history.py --show [NAME]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "benchmarks" / "history.jsonl"
RESULTS = ROOT / "benchmarks" / "results"
CHARTS_DIR = ROOT / "docs" / "benchmarks"
MAX_FIGURES = 200  # a results file with long per-run lists keeps its first figures only

# The results file a benchmark writes, where it is not <name>.json.
RESULT_FILES = {"sync": "sync_throughput.json"}

# BENCH_* variables that say where a benchmark runs, not what it measures: no series of their own in the charts.
WHERE_NOT_WHAT = {"BENCH_PORT", "BENCH_PEER_PORT", "BENCH_DB", "BENCH_REDIS_URL", "BENCH_HISTORY", "BENCH_SERVER"}

# What each trend chart shows: figures of one unit, so they share an axis.
CHARTS: dict[str, tuple[str, list[str]]] = {
    "sync": ("account syncs/s", ["first_syncs_per_s", "resyncs_per_s"]),
    "startup": ("seconds to the first page", ["seconds_to_first_page"]),
    "analytics": ("ms (median)", ["statistics_for_account.median_ms", "db_read.median_ms", "pure_compute.median_ms"]),
    "dashboard": ("ms (p95)", ["dashboard_summary.p95_ms", "bare.p95_ms"]),
    "bonus_monitor": ("ms, 1 shard, 10,000 accounts", ["one_shard.0.steady_median_ms", "one_shard.0.steady_p99_ms"]),
    "copy_latency": ("ms", ["master_1_slave_s.p50_ms", "master_100_slave_s.p99_ms"]),
    "ea_heartbeat": ("heartbeats/s", ["heartbeat.per_second", "bare_async_endpoint.per_second"]),
    "ea_to_ea": ("ms, master to slave", ["p50_ms", "p99_ms"]),
    "ws_fanout": ("ms, publish to socket", ["p50_ms", "p99_ms"]),
    "ea_beat_cpu": ("peer CPU / ours", ["peer_cpu_over_ours.min", "peer_cpu_over_ours.max"]),
}


# --- Figures ---------------------------------------------------------------------------------


def flatten(data, prefix: str = "") -> dict[str, float | int]:
    """The numbers in ``data`` under dotted keys; lists of objects by index, lists of numbers and text left out."""
    out: dict[str, float | int] = {}

    def walk(value, key: str) -> None:
        if len(out) >= MAX_FIGURES:
            return
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, int | float):
            out[key] = value
        elif isinstance(value, dict):
            for name, item in value.items():
                walk(item, f"{key}.{name}" if key else str(name))
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for index, item in enumerate(value):
                walk(item, f"{key}.{index}" if key else str(index))

    walk(data, prefix)
    return out


def last_json_object(text: str):
    """The last top-level JSON object printed in ``text`` (one starting with "{" at the start of a line), or None."""
    decoder = json.JSONDecoder()
    found = None
    for match in re.finditer(r"^\{", text, flags=re.MULTILINE):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            found = value
    return found


_PAIR = re.compile(r"([A-Za-z][\w' ]*?)=\s*(-?\d+(?:\.\d+)?)(\s*ms)?(?=\s|$)")
_LABEL_END = re.compile(r"\s[A-Za-z]\w*=")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def figures_from_text(text: str) -> dict[str, float]:
    """Figures from lines like ``master -> 1 slave(s)   n= 1000  p50=  0.960 ms``; an indented line is a part
    of the line above it (``master_1_slave_s.of_which_this_process_s_cpu.p50_ms``)."""
    out: dict[str, float] = {}
    parent = ""
    for line in text.splitlines():
        end = _LABEL_END.search(line)
        if end is None or not line.strip():
            continue
        label = _slug(line[: end.start()])
        if not label:
            continue
        indented = line.startswith(" ")
        if not indented:
            parent = label
        base = f"{parent}.{label}" if indented and parent else label
        for key, number, unit in _PAIR.findall(line[end.start() :]):
            out[f"{base}.{_slug(key)}{'_ms' if unit else ''}"] = float(number)
    return out


def collect(name: str, *, since: float, output: str = "") -> tuple[dict, str]:
    """(figures, where they came from) for one run of benchmark ``name`` that started at ``since`` (epoch s)."""
    path = RESULTS / RESULT_FILES.get(name, f"{name}.json")
    if path.exists() and path.stat().st_mtime >= since:
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = None
        if isinstance(data, dict):
            return flatten(data), str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    printed = last_json_object(output)
    if printed is not None:
        return flatten(printed), "stdout"
    return figures_from_text(output), "stdout (text)"


# --- The history file --------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _load(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(x) for x in text.split()[:3]]
    except ValueError:
        return None


def make_entry(
    name: str,
    figures: dict,
    *,
    load_before: list[float] | None,
    load_after: list[float] | None = None,
    source: str = "run.sh",
    results: str = "",
    when: datetime | None = None,
) -> dict:
    """One history line: the run's figures with the commit, time, load and machine it ran on."""
    when = when or datetime.now(UTC)
    return {
        "benchmark": name,
        "utc": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git("rev-parse", "HEAD"),
        # The history file itself is left out: the runs before this one in the same session wrote to it.
        "dirty": bool(
            _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/history.jsonl")
        ),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after if load_after is not None else [round(x, 2) for x in os.getloadavg()],
        "env": {key: value for key, value in sorted(os.environ.items()) if key.startswith("BENCH_")},
        "source": source,
        "results": results,
        "figures": figures,
    }


def append(entry: dict, path: Path = HISTORY) -> None:
    """Add one line to the history (locked: two runs finishing together do not interleave)."""
    line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.write(line)
            handle.flush()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read(path: Path = HISTORY) -> list[dict]:
    """Every line of the history, oldest first as written (a line that is not JSON is reported and skipped)."""
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            print(f"{path.name}:{number}: not JSON, skipped", file=sys.stderr)
    return entries


# --- Charts ------------------------------------------------------------------------------


def _series_keys(name: str, entries: list[dict]) -> tuple[str, list[str]]:
    if name in CHARTS:
        return CHARTS[name]
    keys: list[str] = []
    for entry in entries:
        for key in entry["figures"]:
            if key.endswith(("p99_ms", "median_ms", "per_second")) and key not in keys:
                keys.append(key)
    return "", keys[:3]


def _variant(entry: dict) -> str:
    """What tells one series from another besides the figure: the BENCH_* settings of the run."""
    env = entry.get("env") or {}
    return ", ".join(f"{key}={value}" for key, value in env.items() if key not in WHERE_NOT_WHAT)


def render_charts(entries: Iterable[dict], out_dir: Path = CHARTS_DIR) -> list[Path]:
    """One PNG per benchmark: its chosen figures over time; hollow markers are figures copied from the docs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    by_name: dict[str, list[dict]] = {}
    for entry in entries:
        by_name.setdefault(entry["benchmark"], []).append(entry)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, runs in sorted(by_name.items()):
        unit, keys = _series_keys(name, runs)
        runs = sorted(runs, key=lambda e: e["utc"])
        series: dict[tuple[str, str], list[tuple[datetime, float, bool]]] = {}
        for entry in runs:
            when = datetime.strptime(entry["utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            for key in keys:
                value = entry["figures"].get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    series.setdefault((key, _variant(entry)), []).append(
                        (when, value, entry.get("source") == "from docs")
                    )
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(5.2, 2.4), dpi=100, layout="constrained")
        values = []
        for index, ((key, variant), points) in enumerate(sorted(series.items())):
            color = f"C{index % 10}"
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            values += ys
            ax.plot(xs, ys, color=color, linewidth=1, label=key + (f" ({variant})" if variant else ""))
            for when, value, from_docs in points:
                ax.plot(
                    [when], [value], "o", markersize=4, color=color, markerfacecolor="white" if from_docs else color
                )
        positive = [v for v in values if v > 0]
        if positive and max(positive) / min(positive) > 30:
            ax.set_yscale("log")
        ax.set_title(f"{name} (hollow: from docs)", fontsize=8)
        ax.set_ylabel(unit, fontsize=7)
        ax.tick_params(which="both", labelsize=6)
        times = [when for points in series.values() for when, _, _ in points]
        if max(times) - min(times) < timedelta(hours=6):  # one run, or runs minutes apart: a day around them
            ax.set_xlim(min(times) - timedelta(hours=12), max(times) + timedelta(hours=12))
        locator = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.xaxis.get_offset_text().set_fontsize(6)
        ax.grid(True, linewidth=0.3)
        ax.legend(fontsize=5, loc="best", frameon=False)
        path = out_dir / f"trend-{name}.png"
        fig.savefig(path, metadata={"Software": None})
        plt.close(fig)
        written.append(path)
    return written


# --- Command line ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", metavar="NAME", help="append the figures of benchmark NAME's run just finished")
    parser.add_argument("--since", type=float, default=0.0, help="when the run started (epoch seconds)")
    parser.add_argument("--load-before", default="", help="/proc/loadavg's first three fields at the start")
    parser.add_argument("--output", type=Path, help="the benchmark's captured standard output")
    parser.add_argument("--charts", action="store_true", help="draw docs/benchmarks/trend-<name>.png")
    parser.add_argument("--show", nargs="?", const="", metavar="NAME", help="print the history (of NAME)")
    args = parser.parse_args(argv)
    if not (args.record or args.charts or args.show is not None):
        parser.error("nothing to do: --record NAME, --charts or --show")
    if args.record:
        output = args.output.read_text(errors="replace") if args.output and args.output.exists() else ""
        figures, results = collect(args.record, since=args.since, output=output)
        entry = make_entry(args.record, figures, load_before=_load(args.load_before), results=results)
        append(entry)
        print(
            f"==> history: {args.record}, {len(figures)} figures, load {entry['load_before']} -> {entry['load_after']}"
        )
    if args.charts:
        for path in render_charts(read()):
            print(path.relative_to(ROOT))
    if args.show is not None:
        for entry in read():
            if not args.show or entry["benchmark"] == args.show:
                print(json.dumps(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
