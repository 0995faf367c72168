"""Content-Security-Policy middleware: django-csp's, with the live pages' WebSocket origin added to connect-src."""

from __future__ import annotations

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.middleware import PolicyParts
from django.core.exceptions import DisallowedHost


class CSPMiddleware(BaseCSPMiddleware):
    """connect-src also names ws(s)://<this host>: 'self' covers same-host WebSockets only in CSP level 3
    browsers, and the host is known per request (one of ALLOWED_HOSTS), not in the settings."""

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()  # validated against ALLOWED_HOSTS
        except DisallowedHost:
            return parts
        sockets = [f"wss://{host}"] if request.is_secure() else [f"ws://{host}", f"wss://{host}"]
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", []), *sockets]
        parts.update = update
        return parts
