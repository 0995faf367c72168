"""One JSON error format for every API endpoint, and the project's error type.

Every error body is ``{"error": {"code": ..., "message": ..., "details": ...}}``.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.views import defaults
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A business rule refused the request. Services raise it; the edges turn it into a 4xx."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None, details=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.details = details


class NotAllowed(ServiceError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "forbidden"


class Conflict(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


def error_body(code: str, message: str, details=None) -> dict:
    body = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return body


# A dependency briefly out of reach (PostgreSQL restarting, Redis stalled or restarting): the client is told to retry,
# with 503 and Retry-After, instead of a 500 and a traceback per request.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)
UNAVAILABLE_MESSAGE = "A service this request needs is briefly unavailable; retry in a moment."


def unavailable(exc: Exception) -> bool:
    """Whether ``exc`` is a dependency out of reach (answered 503), logged once as a warning without a traceback."""
    if not isinstance(exc, TRANSIENT_ERRORS):
        return False
    logger.warning("dependency unavailable: %s: %s", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    return True


def api_exception_handler(exc, context):
    if unavailable(exc):
        return Response(error_body("unavailable", UNAVAILABLE_MESSAGE), status=503, headers={"Retry-After": "1"})
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django report it as a 500
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid", "The request was not valid.", response.data)
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        body = error_body(str(code), str(detail), getattr(exc, "details", None))
    response.data = body
    return response


def lockout_response(request, credentials, *args, **kwargs):
    """django-axes: too many failed logins. JSON for API clients, plain text for the rest."""
    message = "Too many failed login attempts. Try again later."
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("locked_out", message), status=429)
    return HttpResponse(message, status=429)


def axes_username(request, credentials) -> str | None:
    """django-axes: the login name, whichever way it arrived (API JSON "email", form "username")."""
    if credentials and credentials.get("username"):
        return str(credentials["username"]).strip().lower()
    data = getattr(request, "data", None) or getattr(request, "POST", {})
    for key in ("email", "username"):
        value = data.get(key) if hasattr(data, "get") else None
        if value:
            return str(value).strip().lower()
    return None


def json_400(request, exception=None):
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)


def not_found(request, exception=None):
    """handler404: API paths answer the JSON error body (a path parameter that does not parse never reaches
    a view), web paths Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: API paths answer the JSON error body, web paths Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Server error."), status=500)
    return defaults.server_error(request)
