"""Run a Procfile under supervisord: a process that exits is restarted with backoff, and the others go on.

scripts/run.sh starts the local system with it (``python scripts/supervise.py Procfile.dev``). supervisord reads
its own configuration format, so this writes one from the Procfile (var/supervisord.conf) and runs supervisord in
the foreground; Ctrl-C stops everything. Each line of output is prefixed with its process's name, as honcho did.

Restart policy (docs/reliability.md): a process that exits after running ``START_SECONDS`` is started again at
once (the background lines of Procfile.dev wait a few seconds before they start, which spaces the restarts);
one that exits sooner is retried after 1, 2, 3 ... seconds, up to ``START_RETRIES`` times. See the state with
``.venv/bin/supervisorctl -c var/supervisord.conf status``, restart one with ``... restart <name>``.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 10
START_RETRIES = 100


def procfile_entries(path: Path) -> list[tuple[str, str]]:
    entries = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        name, command = line.split(":", 1)
        entries.append((name.strip(), command.strip()))
    return entries


def supervisord_conf(entries: list[tuple[str, str]], var: Path) -> str:
    width = max(len(name) for name, _ in entries)
    lines = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={var / 'supervisord.log'}",
        f"pidfile={var / 'supervisord.pid'}",
        "loglevel=warn",
        "",
        "[unix_http_server]",
        f"file={var / 'supervisor.sock'}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{var / 'supervisor.sock'}",
    ]
    for name, command in entries:
        prefix = f"{name.ljust(width)} | "
        # bash runs the Procfile line as honcho did ($VARIABLES, &&, exec); sed prefixes each line with the name.
        script = f"set -o pipefail; ( {command} ) 2>&1 | sed -u 's/^/{prefix}/'"
        lines += [
            "",
            f"[program:{name}]",
            f"command=bash -c {shlex.quote(script)}".replace("%", "%%"),
            f"directory={ROOT}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={START_SECONDS}",
            f"startretries={START_RETRIES}",
            "stopasgroup=true",
            "killasgroup=true",
            "stopwaitsecs=20",
            "redirect_stderr=true",
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    """supervise.py [PROCFILE [STATE_DIR]]: STATE_DIR (default var/) holds the configuration, log and socket."""
    procfile = Path(argv[1] if len(argv) > 1 else "Procfile.dev")
    var = Path(argv[2]).resolve() if len(argv) > 2 else ROOT / "var"
    var.mkdir(exist_ok=True)
    conf = var / "supervisord.conf"
    conf.write_text(supervisord_conf(procfile_entries(procfile), var))
    supervisord = str(Path(sys.executable).parent / "supervisord")
    os.execv(supervisord, [supervisord, "-c", str(conf)])


if __name__ == "__main__":
    main(sys.argv)
