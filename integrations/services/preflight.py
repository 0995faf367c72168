"""The symbol pre-flight on a stored account: run it, keep the result, announce it."""

from __future__ import annotations

from django.db import transaction

from accounts import vault
from config.errors import ServiceError
from mt5bridge import gateway as gw

from ..choices import PreflightStatus, WebhookEvent
from ..models import PreflightResult
from ..preflight import PreflightFailed, options_from_settings, preflight_check
from . import ERROR_LIMIT
from .webhooks import webhook_emit


def preflight_run(*, account, user=None, options=None, gateway=None):
    """Run the pre-flight on a stored account and keep the result on it (a failed run is kept too)."""
    if options is None:
        options = options_from_settings()
        options.s3_prefix = f"{options.s3_prefix}{account.pk}/"  # one folder per account
    try:
        password = vault.decrypt(account.password_encrypted)
    except vault.SecretUnreadable:
        raise ServiceError(
            "The stored MT5 password cannot be decrypted; enter it again.", code="secret_unreadable"
        ) from None
    credentials = gw.Credentials(login=account.login, password=password, server=account.server)
    try:
        gateway = gateway or gw.get_gateway(account.gateway_kind, server=account.server)
        report = preflight_check(gateway, credentials, options)
    except (PreflightFailed, gw.GatewayError) as exc:
        result = PreflightResult.objects.create(
            account=account, created_by=user, status=PreflightStatus.FAILED, error=str(exc)[:ERROR_LIMIT]
        )
        return result
    with transaction.atomic():
        result = PreflightResult.objects.create(
            account=account,
            created_by=user,
            status=PreflightStatus.PARTIAL if report.warnings else PreflightStatus.OK,
            payload=report.payload,
            chart_symbol=report.chart_symbol,
            chart_period=report.chart_period,
            template=report.template,
            startup_ini=report.startup_ini,
            warnings=report.warnings,
            symbols_found=report.symbols_found,
        )
        webhook_emit(
            WebhookEvent.PREFLIGHT_DONE,
            {
                "account_id": str(account.pk),
                "login": account.login,
                "server": account.server,
                "status": result.status,
                "result_id": result.pk,
                "chart_symbol": result.chart_symbol,
                "warnings": report.warnings,
            },
        )
    return result
