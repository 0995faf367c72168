"""Symbol pre-flight: log in, detect the broker's symbols, build the seed's payload, chart template and start-up .ini.

``preflight_check`` needs no database (the management command runs it on a bare login.ini); the optional
parts (servers.dat upload to S3, webhook) each degrade to a warning instead of failing the run.
"""

from __future__ import annotations

import configparser
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PureWindowsPath
from typing import Any

import httpx
from django.conf import settings

from mt5bridge import gateway as gw
from mt5bridge.symbols import BrokerSymbolMap, detect_symbols

logger = logging.getLogger(__name__)

# MT5 start-up Period values and the minutes each spans (the seed's template writes period=60 for H1).
PERIOD_MINUTES = {"M1": 1, "M5": 5, "M15": 15, "M30": 30, "H1": 60, "H4": 240, "D1": 1440, "W1": 10080, "MN1": 43200}
# .tpl period_type/period_size: 0 minutes, 1 hours, 2 days, 3 weeks, 4 months.
PERIOD_TPL = {
    "M1": (0, 1),
    "M5": (0, 5),
    "M15": (0, 15),
    "M30": (0, 30),
    "H1": (1, 1),
    "H4": (1, 4),
    "D1": (2, 1),
    "W1": (3, 1),
    "MN1": (4, 1),
}
FALLBACK_BASES = ("EURUSD", "XAUUSD", "BTCUSD")


class PreflightFailed(Exception):
    """Login or the symbol list failed: there is nothing to build a payload from."""


@dataclass
class PreflightOptions:
    chart_symbol: str = "BTCUSD"
    chart_period: str = "H1"
    ea_name: str = "MT5BackOfficeEA"
    webhook_url: str = ""
    webhook_timeout: float = 10.0
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_region: str = "eu-central-1"
    s3_endpoint_url: str = ""
    terminal_data_path: str = ""


@dataclass
class PreflightReport:
    payload: dict[str, Any]
    symbol_map: BrokerSymbolMap
    chart_symbol: str
    chart_period: str
    template: str
    startup_ini: str
    warnings: list[str] = field(default_factory=list)

    @property
    def symbols_found(self) -> int:
        return len(self.symbol_map.symbols)


# --- Pure builders -------------------------------------------------------------------------------


def chart_template(*, symbol: str, period: str, ea_name: str) -> str:
    """A chart template (.tpl) that opens ``symbol`` on ``period`` with the EA attached (Algo Trading on)."""
    period_type, period_size = PERIOD_TPL[period]
    return "\r\n".join(
        [
            "<chart>",
            f"symbol={symbol}",
            f"period={PERIOD_MINUTES[period]}",
            f"period_type={period_type}",
            f"period_size={period_size}",
            "mode=1",
            "<expert>",
            f"name={ea_name}",
            f"path=Experts\\{ea_name}.ex5",
            "expertmode=1",
            "<inputs>",
            "</inputs>",
            "</expert>",
            "</chart>",
            "",
        ]
    )


def startup_ini(
    *, login: int, server: str, symbol: str, period: str, ea_name: str, template_name: str, password: str | None = None
) -> str:
    """The terminal start-up file (``terminal64.exe /config:<file>``); the password only when given."""
    common = [f"Login={login}"]
    if password is not None:
        common.append(f"Password={password}")
    common += [f"Server={server}", "KeepPrivate=1", "NewsEnable=0"]
    lines = [
        "[Common]",
        *common,
        "",
        "[Experts]",
        "Enabled=1",
        "AllowLiveTrading=1",
        "AllowDllImport=0",
        "",
        "[StartUp]",
        f"Expert={ea_name}",
        f"Symbol={symbol}",
        f"Period={period}",
        f"Template={template_name}",
        "",
    ]
    return "\r\n".join(lines)


# What a downloaded start-up .ini says instead of the MT5 password: the owner types it in, or downloads the file
# with it after re-entering their login password (POST .../preflight/startup.ini).
PASSWORD_PLACEHOLDER = "<your MT5 password>"


def with_password(ini: str, password: str) -> str:
    """A stored .ini with ``Password=`` under [Common], right after Login=, for a download.

    The stored .ini never holds the password; any Password= line it has anyway is replaced, not repeated.
    """
    lines = [line for line in ini.split("\r\n") if not line.startswith("Password=")]
    index = next((i for i, line in enumerate(lines) if line.startswith("Login=")), 0)
    return "\r\n".join([*lines[: index + 1], f"Password={password}", *lines[index + 1 :]])


def template_file_name(ea_name: str) -> str:
    return f"{ea_name}.tpl"


def pick_chart_symbol(symbol_map: BrokerSymbolMap, wanted_base: str) -> tuple[str | None, str | None]:
    """The broker's name for the chart's base symbol, else a common fallback; and a warning when it fell back."""
    found = symbol_map.get(wanted_base)
    if found is not None:
        return found.full_symbol, None
    for base in FALLBACK_BASES:
        found = symbol_map.get(base)
        if found is not None:
            return found.full_symbol, f"{wanted_base} is not offered by this broker; the chart uses {found.full_symbol}"
    first = next(iter(symbol_map.symbols), None)
    if first is None:
        return None, "the broker lists no symbols"
    return first.full_symbol, f"{wanted_base} is not offered; the chart uses {first.full_symbol}"


def parse_login_ini(text: str) -> dict[str, str]:
    """The seed's login.ini (bare ``login=``/``password=``/``broker=`` lines) or an MT5 [Common] section."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str.lower  # type: ignore[assignment,method-assign]
    parser.read_string("[root]\n" + text)
    values: dict[str, str] = {}
    for section in parser.sections():
        for key, value in parser.items(section):
            values.setdefault(key, value.strip())
    return values


def servers_dat_candidates(data_path: str) -> list[Path]:
    """Config/servers.dat under a terminal data folder (MT5 writes "Config"; the seed shows "config")."""
    root = Path(data_path)
    return [root / "Config" / "servers.dat", root / "config" / "servers.dat"]


# --- The run -------------------------------------------------------------------------------------


def preflight_check(
    gateway: gw.MT5Gateway, credentials: gw.Credentials, options: PreflightOptions, *, now: datetime | None = None
) -> PreflightReport:
    """Log in, read and detect the symbols, locate/upload servers.dat, build the files, call the webhook."""
    warnings: list[str] = []
    try:
        info = gateway.login(credentials)
        symbols = gateway.symbols(credentials.login)
    except gw.AuthenticationFailed as exc:
        raise PreflightFailed(f"the MT5 server refused the login: {exc}") from None
    except gw.GatewayError as exc:
        raise PreflightFailed(f"MT5 error: {exc}") from None
    symbol_map = detect_symbols(symbols)
    payload: dict[str, Any] = symbol_map.to_payload()
    payload["broker_info"] = {
        "server": info.server or credentials.server,
        "company": info.company,
        "currency": info.currency,
        "login": credentials.login,
        "leverage": info.leverage,
    }

    servers_dat = _locate_servers_dat(gateway, options, warnings)
    payload["servers_dat"] = {"path": str(servers_dat) if servers_dat else None, "found": servers_dat is not None}
    if options.s3_bucket:
        payload["servers_dat_s3"] = upload_servers_dat(servers_dat, options, credentials.login, warnings)
    payload["timestamp"] = (now or datetime.now(UTC)).isoformat()

    symbol, warning = pick_chart_symbol(symbol_map, options.chart_symbol)
    if warning:
        warnings.append(warning)
    template = chart_template(symbol=symbol, period=options.chart_period, ea_name=options.ea_name) if symbol else ""
    ini = (
        startup_ini(
            login=credentials.login,
            server=info.server or credentials.server,
            symbol=symbol or "",
            period=options.chart_period,
            ea_name=options.ea_name,
            template_name=template_file_name(options.ea_name),
        )
        if symbol
        else ""
    )
    payload["chart"] = {
        "symbol": symbol,
        "period": options.chart_period,
        "expert": options.ea_name,
        "template": template_file_name(options.ea_name),
    }
    if options.webhook_url:
        payload_for_hook = dict(payload)
        payload["webhook"] = send_to_webhook(options.webhook_url, payload_for_hook, options.webhook_timeout, warnings)
    return PreflightReport(
        payload=payload,
        symbol_map=symbol_map,
        chart_symbol=symbol or "",
        chart_period=options.chart_period,
        template=template,
        startup_ini=ini,
        warnings=warnings,
    )


def _locate_servers_dat(gateway: Any, options: PreflightOptions, warnings: list[str]) -> Path | None:
    if getattr(gateway, "kind", "") != "terminal":
        return None  # only a terminal keeps a servers.dat; other gateways talk to the server directly
    data_path = options.terminal_data_path
    terminal_info = getattr(gateway, "terminal_info", None)
    if not data_path and callable(terminal_info):
        try:
            data_path = str(getattr(terminal_info(), "data_path", "") or "")
        except gw.GatewayError as exc:
            warnings.append(f"terminal_info() failed: {exc}")
    if not data_path:
        warnings.append("servers.dat not located: set PREFLIGHT_TERMINAL_DATA_PATH (the terminal's data folder)")
        return None
    for candidate in servers_dat_candidates(data_path):
        if candidate.is_file():
            return candidate
    windows = PureWindowsPath(data_path) / "Config" / "servers.dat"
    warnings.append(
        f"servers.dat not found under {data_path} (expected {windows}); it is written after the first successful login"
    )
    return None


def upload_servers_dat(path: Path | None, options: PreflightOptions, login: int, warnings: list[str]) -> dict:
    """Upload servers.dat to S3-compatible storage; every failure is a warning and ``uploaded: false``."""
    key = f"{options.s3_prefix}{'' if not options.s3_prefix or options.s3_prefix.endswith('/') else '/'}servers.dat"
    result: dict[str, Any] = {"bucket": options.s3_bucket, "key": key, "region": options.s3_region, "uploaded": False}
    if path is None:
        result["error"] = "servers.dat not available"
        warnings.append("S3 upload skipped: no servers.dat to upload")
        return result
    try:
        # Imported here: boto3 is optional (only the S3 upload needs it), and its absence is a warning, not a crash.
        import boto3  # noqa: PLC0415  optional package (see above)
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415  comes with boto3
    except ImportError:
        result["error"] = "boto3 not installed"
        warnings.append("S3 upload skipped: boto3 is not installed")
        return result
    session = boto3.session.Session(region_name=options.s3_region)
    if session.get_credentials() is None:
        result["error"] = "no AWS credentials"
        warnings.append(
            "S3 upload skipped: no AWS credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profile or role)"
        )
        return result
    try:
        client = session.client("s3", endpoint_url=options.s3_endpoint_url or None)
        client.upload_file(str(path), options.s3_bucket, key, ExtraArgs={"Metadata": {"mt5-login": str(login)}})
    except (BotoCoreError, ClientError, OSError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"[:300]
        warnings.append(f"S3 upload failed: {result['error']}")
        return result
    result["uploaded"] = True
    return result


def send_to_webhook(url: str, payload: dict, timeout: float, warnings: list[str]) -> dict:
    """POST the payload; a timeout, refusal or non-2xx answer is reported, never raised."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    outcome: dict[str, Any] = {"url": url, "ok": False, "status_code": None, "bytes": len(body)}
    try:
        response = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=timeout)
    except httpx.TimeoutException:
        outcome["error"] = f"timed out after {timeout:g}s"
    except httpx.HTTPError as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"[:300]
    else:
        outcome["status_code"] = response.status_code
        outcome["ok"] = 200 <= response.status_code < 300
        if not outcome["ok"]:
            outcome["error"] = f"HTTP {response.status_code}"
    if not outcome["ok"]:
        warnings.append(f"webhook {url} failed: {outcome['error']}")
    return outcome


def options_from_settings(**overrides: Any) -> PreflightOptions:
    values = {
        "chart_symbol": settings.PREFLIGHT_CHART_SYMBOL,
        "chart_period": settings.PREFLIGHT_CHART_PERIOD,
        "ea_name": settings.PREFLIGHT_EA_NAME,
        "webhook_url": settings.PREFLIGHT_WEBHOOK_URL,
        "webhook_timeout": settings.PREFLIGHT_WEBHOOK_TIMEOUT,
        "s3_bucket": settings.PREFLIGHT_S3_BUCKET,
        "s3_prefix": settings.PREFLIGHT_S3_PREFIX,
        "s3_region": settings.PREFLIGHT_S3_REGION,
        "s3_endpoint_url": settings.AWS_S3_ENDPOINT_URL,
        "terminal_data_path": settings.PREFLIGHT_TERMINAL_DATA_PATH,
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    return PreflightOptions(**values)
