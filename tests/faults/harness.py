"""Fault-injection harness: the system's roles as separate processes around a throwaway PostgreSQL and Redis.

How to use it (a pytest fixture does all of this; see tests/faults/conftest.py)::

    with System.start(source_db_url=..., tmp=tmp_path) as system:   # own PostgreSQL and Redis, schema copied
        info = system.seed()                                          # master, slaves, tokens (tests/faults/seed.py)
        system.start_web("web")                                       # daphne on a port of its own
        system.start_role("worker", system.celery("worker", "-Q", "default,sync", "-c", "1"))
        system.start_role("eas", system.manage("run_ea_client", *logins, "--url", system.web_url("web"), ...))
        system.pg.terminate_backends()                                # or pg.restart(), redis.kill_clients(),
        system.redis.stall(5); system.redis.restart()                 # ... the faults
        system.query("SELECT ...")                                    # read the database with psycopg
    # every process started is killed on leaving the block, on failure too

- :class:`Postgres`: a PostgreSQL cluster of its own (initdb in a temporary folder, run as the ``postgres`` user
  when the tests run as root), with the schema and data of ``source_db_url`` (the migrated test database of
  pytest-django) copied in by pg_dump | pg_restore: far quicker than migrating. Faults: ``terminate_backends()``
  (what a failover does to every connection), ``restart()``, ``stop()``/``start()``.
- :class:`Redis`: a redis-server of its own, nothing saved. Faults: ``kill_clients()`` (CLIENT KILL TYPE normal and
  pubsub), ``stall(seconds)`` (DEBUG SLEEP on a connection of its own; returns when it ends), ``restart()`` (empty).
- :class:`System`: the environment every role gets (DATABASE_URL, REDIS_URL, DEBUG), ``start_role`` (a process in a
  session of its own, its output in ``<tmp>/<name>.log``), ``kill_role`` (SIGKILL of the whole group), ``alive``,
  ``seed``, ``burst`` (tests/faults/burst.py), ``query``, ``wait_until``.

Ports: free ports chosen by the system, or consecutive ports from ``FAULTS_PORT_BASE`` when it is set.
The harness needs PostgreSQL's server binaries (initdb, pg_ctl, pg_dump, pg_restore) and redis-server; without
them ``System.available()`` says why and the tests skip.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
_port_base = os.environ.get("FAULTS_PORT_BASE")
# Parallel test workers (pytest-xdist: gw0, gw1 ...) take 20 ports each from the base.
_worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_ports = itertools.count(int(_port_base) + 20 * _worker) if _port_base else None


def free_port() -> int:
    if _ports is not None:
        return next(_ports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def report(line: str) -> None:
    """A measured figure: printed, and appended to the file named by FAULTS_REPORT (docs/reliability.md's runs)."""
    print(f"\n{line}")
    if os.environ.get("FAULTS_REPORT"):
        with open(os.environ["FAULTS_REPORT"], "a") as fh:
            fh.write(line + "\n")


def wait_until(check: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = "") -> float:
    """Poll ``check`` until it returns a true value; the seconds it took. Errors count as "not yet"."""
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - the thing waited for is allowed to fail until it works
            pass
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not within {timeout:.0f} s: {what or check}")
        time.sleep(interval)


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1."""

    def __init__(self, tmp: Path, port: int | None = None):
        # A folder of its own under the system's temporary folder: the postgres user must reach it (pytest's
        # temporary folders are private to the user running the tests).
        self.dir = Path(tempfile.mkdtemp(prefix="faults-pg-")) / "data"
        self.port = port or free_port()
        self.dbname = "faults"

    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.dbname}"

    def init(self, source_db_url: str) -> None:
        self.dir.parent.chmod(0o755)
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres([_pg_bin("initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.start()
        subprocess.run(
            [_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.dbname], check=True
        )
        dump = subprocess.run(
            [_pg_bin("pg_dump"), "-Fc", "--no-owner", "--no-acl", "-d", source_db_url],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(
            [_pg_bin("pg_restore"), "--no-owner", "--no-acl", "-d", self.url()],
            input=dump,
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.dir), "-o", options, "-l", str(self.dir / "log"), "-w"])
            + ["start"],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.dir), "-m", mode, "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir.parent, ignore_errors=True)

    def terminate_backends(self) -> int:
        """pg_terminate_backend on every connection to the app's database but this one; how many."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        return int(row[0]) if row else 0


class Redis:
    """A throwaway redis-server on 127.0.0.1 (nothing saved: a restart comes back empty)."""

    def __init__(self, tmp: Path, port: int | None = None):
        self.port = port or free_port()
        self.log = tmp / "redis.log"
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--enable-debug-command", "local"]  # DEBUG SLEEP, the stall fault
        self.proc = subprocess.Popen(argv, stdout=open(self.log, "a"), stderr=subprocess.STDOUT)  # noqa: SIM115
        wait_until(lambda: self.client().ping(), timeout=10, what="redis-server to answer")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill_clients(self) -> int:
        client = self.client()
        killed = 0
        for kind in ("normal", "pubsub"):
            killed += int(client.execute_command("CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes") or 0)
        return killed

    def stall(self, seconds: float) -> None:
        """DEBUG SLEEP on a connection of its own: every client waits ``seconds``; returns when the stall ends."""
        redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=seconds + 30).execute_command(
            "DEBUG", "SLEEP", seconds
        )


class FailoverProxy:
    """A TCP proxy in front of several web nodes, as a load balancer is: each connection goes to the first node
    that accepts it, so a dead node is skipped. Runs in threads of the test process."""

    def __init__(self, backends: list[int], port: int | None = None):
        self.backends = backends
        self.port = port or free_port()
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        for port in self.backends:
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
                break
            except OSError:
                continue
        else:
            client.close()
            return
        upstream.settimeout(None)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def stop(self) -> None:
        self.stopped.set()
        self.server.close()


class System:
    """The roles of the system as processes around one throwaway PostgreSQL and one Redis."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.pg = Postgres(tmp)
        self.redis = Redis(tmp)
        self.roles: dict[str, subprocess.Popen] = {}
        self.web_ports: dict[str, int] = {}
        self.extra_env: dict[str, str] = {}

    @staticmethod
    def available() -> str | None:
        """None when the harness can run here, else what is missing."""
        missing = [n for n in ("initdb", "pg_ctl", "pg_dump", "pg_restore", "createdb") if not _pg_bin(n)]
        if not shutil.which("redis-server"):
            missing.append("redis-server")
        return f"missing {', '.join(missing)}" if missing else None

    @classmethod
    @contextlib.contextmanager
    def start(cls, *, source_db_url: str, tmp: Path, env: dict[str, str] | None = None) -> Iterator[System]:
        system = cls(tmp)
        system.extra_env = dict(env or {})
        try:
            system.pg.init(source_db_url)
            system.redis.start()
            yield system
        finally:
            system.stop_all()
            system.redis.stop()
            system.pg.remove()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_", "DATABASE_", "REDIS_"))}
        return {
            **env,
            "DEBUG": "true",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.pg.url(),
            "REDIS_URL": self.redis.url(),
            "CACHE_KEY_PREFIX": "faults",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    # --- roles ---

    def manage(self, *args: str) -> list[str]:
        return [PYTHON, "manage.py", *args]

    def celery(self, *args: str) -> list[str]:
        return [PYTHON, "-m", "celery", "-A", "config", *args]

    def start_role(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "a")  # noqa: SIM115 - the child holds it
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.roles[name] = proc
        return proc

    def start_web(self, name: str = "web", port: int | None = None) -> int:
        port = port or self.web_ports.get(name) or free_port()
        self.web_ports[name] = port
        self.start_role(
            name, [PYTHON, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
        )
        return port

    def web_url(self, name: str = "web") -> str:
        return f"http://127.0.0.1:{self.web_ports[name]}"

    def web_answers(self, name: str = "web") -> bool:
        """The EA endpoint answers (401 without a token: the web process and its database path are up)."""
        import httpx

        response = httpx.get(f"{self.web_url(name)}/api/ea/commands", timeout=2)
        return response.status_code < 500

    def alive(self) -> dict[str, int | None]:
        """Each role's exit code; None while it runs."""
        return {name: proc.poll() for name, proc in self.roles.items()}

    def kill_role(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.roles[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.roles.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.roles.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- data ---

    def seed(self, slaves: int = 3) -> dict:
        return self.run_json("tests.faults.seed", str(slaves))

    def run_json(self, module: str, *args: str):
        """Run ``python -m module args`` against this system and return the JSON of its last output line."""
        out = subprocess.run(
            [PYTHON, "-m", module, *args],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])

    def burst(self, login: int, *, tag: str, count: int, every: float) -> subprocess.Popen:
        """Open ``count`` positions on ``login``, one every ``every`` s, each with the comment ``<tag>:<i>``."""
        return self.start_role(
            f"burst-{tag}",
            [
                PYTHON,
                "-m",
                "tests.faults.burst",
                str(login),
                "--tag",
                tag,
                "--count",
                str(count),
                "--every",
                str(every),
            ],
        )

    def wait_for_eas(self, logins: list[int], *, timeout: float = 120) -> None:
        """Until the web process has taken a beat of each login's EA: a master's first beat is its baseline (what
        it holds then is not copied), so a burst must start after it."""
        wait_until(
            lambda: (
                self.query(
                    "SELECT count(*) FROM mt5bridge_eaconnection e JOIN accounts_tradingaccount a ON a.id = e.account_id "
                    "WHERE a.login = ANY(%s) AND e.first_seen_at IS NOT NULL",
                    (list(logins),),
                )[0][0]
                == len(set(logins))
            ),
            timeout=timeout,
            interval=0.25,
            what="the first beat of every EA",
        )

    def query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """Rows of ``sql`` on the system's database (a new connection each time: faults break old ones)."""
        with psycopg.connect(self.pg.url(), autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()
