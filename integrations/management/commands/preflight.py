"""`manage.py preflight`: the seed's symbol pre-flight on our gateways (login.ini in, symbols JSON out)."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import vault
from accounts.models import TradingAccount
from mt5bridge import gateway as gw
from mt5bridge.symbols import CATEGORIES, BrokerSymbolMap

from ...preflight import (
    PERIOD_MINUTES,
    PreflightFailed,
    PreflightReport,
    options_from_settings,
    parse_login_ini,
    preflight_check,
    template_file_name,
    with_password,
)
from ...services.preflight import preflight_run


class Command(BaseCommand):
    help = (
        "Log in, detect the broker's symbol names and suffixes, upload servers.dat to S3, post the JSON to a "
        "webhook and write the chart template and start-up .ini. Optional parts degrade to warnings."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--config", help="login.ini with login=, password=, server= (or broker=)")
        source.add_argument("--account", help="UUID of a stored trading account (its result is stored on it)")
        parser.add_argument("--server", help="MT5 server name (overrides login.ini)")
        parser.add_argument("--gateway", choices=gw.GATEWAY_KINDS, help="gateway kind (default: configured)")
        parser.add_argument("--webhook-url", help="POST the JSON payload here")
        parser.add_argument("--webhook-timeout", type=float, default=None, help="seconds (default 10)")
        parser.add_argument("--s3-bucket", help="bucket for servers.dat")
        parser.add_argument("--s3-prefix", help="key prefix, e.g. customer-123/")
        parser.add_argument("--s3-region", help="AWS region (default eu-central-1)")
        parser.add_argument("--output-json", help="write the payload to this file")
        parser.add_argument("--terminal-data-path", help="terminal data folder holding Config/servers.dat")
        parser.add_argument("--symbol", help="base symbol of the chart template (default BTCUSD)")
        parser.add_argument("--period", choices=list(PERIOD_MINUTES), help="chart period (default H1)")
        parser.add_argument("--template-out", help="write the chart template (.tpl) here")
        parser.add_argument("--ini-out", help="write the terminal start-up .ini here")
        parser.add_argument(
            "--include-password", action="store_true", help="write the password into the .ini (off by default)"
        )

    def handle(self, *args, **opts):
        options = options_from_settings(
            webhook_url=opts["webhook_url"],
            webhook_timeout=opts["webhook_timeout"],
            s3_bucket=opts["s3_bucket"],
            s3_prefix=opts["s3_prefix"],
            s3_region=opts["s3_region"],
            terminal_data_path=opts["terminal_data_path"],
            chart_symbol=opts["symbol"],
            chart_period=opts["period"],
        )
        if opts["account"]:
            report, password = self._run_for_account(opts["account"], options)
        else:
            report, password = self._run_for_config(opts, options)

        for warning in report.warnings:
            self.stderr.write(self.style.WARNING(f"WARNING: {warning}"))
        counts = ", ".join(
            f"{category}: {len(report.payload[category])}" for category in CATEGORIES if category in report.payload
        )
        self.stdout.write(f"Symbols: {report.symbols_found} ({counts or 'none recognised'})")
        self.stdout.write(f"Chart: {report.chart_symbol or '-'} {report.chart_period}")
        if opts["output_json"]:
            Path(opts["output_json"]).write_text(json.dumps(report.payload, indent=2, ensure_ascii=False))
            self.stdout.write(f"JSON written to {opts['output_json']}")
        if opts["template_out"] and report.template:
            Path(opts["template_out"]).write_text(report.template, newline="")
            self.stdout.write(f"Template written to {opts['template_out']}")
        if opts["ini_out"] and report.startup_ini:
            ini = with_password(report.startup_ini, password) if opts["include_password"] else report.startup_ini
            Path(opts["ini_out"]).write_text(ini, newline="")
            self.stdout.write(
                f"Start-up .ini written to {opts['ini_out']} (template {template_file_name(options.ea_name)})"
            )
        webhook = report.payload.get("webhook")
        if webhook:
            self.stdout.write(
                f"Webhook: {'ok' if webhook['ok'] else 'FAILED'} {webhook.get('status_code') or ''} "
                f"{webhook.get('error', '')}".rstrip()
            )
        s3 = report.payload.get("servers_dat_s3")
        if s3:
            self.stdout.write(
                f"servers.dat S3: {'uploaded' if s3['uploaded'] else 'not uploaded'} s3://{s3['bucket']}/{s3['key']}"
            )
        self.stdout.write(
            self.style.SUCCESS("Pre-flight done." if not report.warnings else "Pre-flight done with warnings.")
        )

    def _run_for_config(self, opts, options):
        path = Path(opts["config"])
        try:
            values = parse_login_ini(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        except Exception as exc:  # configparser's several error types
            raise CommandError(f"{path} is not an ini file: {exc}") from None
        server = opts["server"] or values.get("server") or values.get("broker") or ""
        try:
            login = int(values.get("login", ""))
        except ValueError:
            raise CommandError(f"{path}: login= must be the MT5 login number") from None
        password = values.get("password", "")
        if not server or not password:
            raise CommandError(f"{path}: password= and server= (or --server) are required")
        kind = opts["gateway"] or settings.MT5_SERVER_GATEWAYS.get(server) or settings.MT5_GATEWAY
        try:
            gateway = gw.get_gateway(kind, server=server)
            report = preflight_check(gateway, gw.Credentials(login=login, password=password, server=server), options)
        except (PreflightFailed, gw.GatewayError) as exc:
            raise CommandError(f"pre-flight failed: {exc}") from None
        return report, password

    def _run_for_account(self, account_id, options):
        try:
            account = TradingAccount.objects.get(pk=account_id)
        except (TradingAccount.DoesNotExist, ValidationError):
            raise CommandError(f"no trading account {account_id}") from None
        if options.s3_prefix == settings.PREFLIGHT_S3_PREFIX:
            options.s3_prefix = f"{options.s3_prefix}{account.pk}/"
        result = preflight_run(account=account, options=options)
        if result.status == "failed":
            raise CommandError(f"pre-flight failed: {result.error}")
        report = PreflightReport(
            payload=result.payload,
            symbol_map=BrokerSymbolMap.from_payload(result.payload),
            chart_symbol=result.chart_symbol,
            chart_period=result.chart_period,
            template=result.template,
            startup_ini=result.startup_ini,
            warnings=result.warnings,
        )
        report_symbols = result.symbols_found
        self.stdout.write(f"Stored as pre-flight result {result.pk} ({report_symbols} symbols)")
        return report, vault.decrypt(account.password_encrypted)
