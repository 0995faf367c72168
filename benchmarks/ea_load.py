"""A small HTTP/1.1 load generator for the EA benchmarks (asyncio + keep-alive, one process), and the lean
keep-alive client (``Connection``) the EA-to-EA benchmark's simulated EAs speak through.

Usage (normally started by ea_heartbeat.py): python benchmarks/ea_load.py SPEC.json → prints a JSON result.
SPEC: {"host", "port", "path", "requests": [[headers_and_body_bytes_as_latin1], ...], "concurrency",
       "duration", "warmup"}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


class Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time, like an EA's WebRequest.

    A general-purpose client (httpx) costs about a millisecond of CPU a request; on a small machine shared with the
    server, that CPU comes out of the latency being measured.
    """

    def __init__(self, host: str, port: int, token: str):
        self.host, self.port = host, port
        self.auth = f"Host: {host}\r\nAuthorization: Bearer {token}\r\n".encode()
        self.reader = self.writer = None

    async def request(self, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {target} HTTP/1.1\r\n".encode() + self.auth
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.writer.write(head + b"\r\n" + (body or b""))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, length, chunked = int(head[9:12]), 0, False
        for line in head.split(b"\r\n"):
            name = line[:18].lower()
            if name.startswith(b"content-length:"):
                length = int(line[15:])
            elif name.startswith(b"transfer-encoding:") and b"chunked" in line.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length) if length else b""
        parts = []
        while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
        await self.reader.readuntil(b"\r\n")
        return status, b"".join(parts)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


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
