"""Reading settings from the environment: each reader names the variable when its value is malformed.

config/settings.py reads every knob through these; a malformed value stops start-up with a message that
names the variable.
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

ENV = environ.Env()  # django-environ: database and cache URLs
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    """The variable's value, or the contents of the file named by NAME_FILE (for secrets)."""
    if name in os.environ:
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return None


def envstr(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def envbool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false, 1/0, yes/no)")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def envfloat(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in envstr(name, default).split(",") if item.strip()]


def envchoice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = envstr(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def envmapping(name: str) -> dict[str, str]:
    """``a=b,c=d`` → {"a": "b", "c": "d"}."""
    result = {}
    for item in envlist(name):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ImproperlyConfigured(f"{name}: {item!r} is not of the form key=value")
        result[key.strip()] = value.strip()
    return result


def envmoney(name: str, default: str):
    """A non-negative amount with at most 2 decimals as Decimal; empty or "unlimited" gives None."""
    value = (_raw(name) if _raw(name) is not None else default).strip()
    if value.lower() in ("", "none", "unlimited"):
        return None
    try:
        amount = Decimal(value)
        whole_cents = amount.is_finite() and amount == amount.quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name}={value!r} is not an amount (e.g. 1000 or 250.50)") from None
    if not whole_cents or amount < 0:
        raise ImproperlyConfigured(f"{name}={value!r} must be a non-negative amount with at most 2 decimals")
    return amount
