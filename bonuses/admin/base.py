"""What the bonus admin pages share: read-only admins, page context, error messages."""

from __future__ import annotations

from django.contrib import admin, messages
from unfold.admin import ModelAdmin

from mt5bridge import gateway as gw

MAX_LOGIN = 2**63 - 1


class ReadOnlyAdmin(ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def admin_context(model_admin: admin.ModelAdmin, request, title: str, **extra) -> dict:
    return {**model_admin.admin_site.each_context(request), "title": title, "opts": model_admin.model._meta, **extra}


def report_error(model_admin, request, exc: Exception) -> None:
    if isinstance(exc, gw.GatewayError):
        model_admin.message_user(request, f"MT5 did not answer: {exc}", messages.ERROR)
    else:
        model_admin.message_user(request, getattr(exc, "message", str(exc)), messages.ERROR)
