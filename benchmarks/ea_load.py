"""A small HTTP/1.1 load generator for the EA benchmarks (asyncio + keep-alive, one process).

Usage (normally started by ea_heartbeat.py): python benchmarks/ea_load.py SPEC.json → prints a JSON result.
SPEC: {"host", "port", "path", "requests": [[headers_and_body_bytes_as_latin1], ...], "concurrency",
       "duration", "warmup"}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def _worker(spec, requests, offset, stats, stop_at, warm_at):
    reader, writer = await asyncio.open_connection(spec["host"], spec["port"])
    i = offset
    n = len(requests)
    while True:
        now = time.perf_counter()
        if now >= stop_at:
            break
        writer.write(requests[i % n])
        i += spec["concurrency"]
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await reader.readexactly(length)
        done = time.perf_counter()
        if now >= warm_at:
            stats["lat"].append(done - now)
            stats["codes"][status] = stats["codes"].get(status, 0) + 1
    writer.close()


async def run(spec) -> dict:
    requests = [r.encode("latin1") for r in spec["requests"]]
    stats = {"lat": [], "codes": {}}
    start = time.perf_counter()
    warm_at = start + spec["warmup"]
    stop_at = warm_at + spec["duration"]
    await asyncio.gather(*[_worker(spec, requests, k, stats, stop_at, warm_at) for k in range(spec["concurrency"])])
    lat = sorted(stats["lat"])
    count = len(lat)

    def pct(p):
        return round(lat[min(count - 1, int(p * count))] * 1000, 2) if count else None

    return {
        "requests": count,
        "per_second": round(count / spec["duration"], 1),
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "status_codes": {str(k): v for k, v in stats["codes"].items()},
    }


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with open(sys.argv[1]) as fh:
        print(json.dumps(asyncio.run(run(json.load(fh)))))
