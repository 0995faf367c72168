"""Choices shared by the accounts models, API and admin."""

from django.db import models


class Role(models.TextChoices):
    SUPER_ADMIN = "Super Admin"
    CAMPAIGN_MANAGER = "Campaign Manager"
    SUPPORT_AGENT = "Support Agent"
    READ_ONLY = "Read-Only"
    TRADER = "Trader"


class AccountCategory(models.TextChoices):
    DEMO = "demo", "Demo"
    FUNDED = "funded", "Funded"
    CHALLENGE = "challenge", "Challenge"
    REAL = "real", "Real"


class GatewayKind(models.TextChoices):
    SIMULATED = "simulated", "Simulated MT5"
    TERMINAL = "terminal", "MT5 terminal"
    MANAGER = "manager", "MT5 Manager bridge"


class SyncStatus(models.TextChoices):
    PENDING = "pending", "Waiting for first sync"
    OK = "ok", "Synced"
    ERROR = "error", "Last sync failed"
    AUTH_FAILED = "auth_failed", "Password refused"
    PAUSED = "paused", "Paused after repeated errors"


class SyncOutcome(models.TextChoices):
    OK = "ok", "Succeeded"
    ERROR = "error", "Gateway error"
    UNAVAILABLE = "unavailable", "Gateway unreachable"
    AUTH_FAILED = "auth_failed", "Password refused"


class PositionSide(models.IntegerChoices):
    BUY = 0, "Buy"
    SELL = 1, "Sell"


class SecurityAction(models.TextChoices):
    MT5_PASSWORD_REVEALED = "mt5_password_revealed", "MT5 password given out"
    MT5_PASSWORD_REFUSED = "mt5_password_refused", "MT5 password refused"
    EMAIL_VERIFIED = "email_verified", "Email address confirmed"
    DATA_EXPORTED = "data_exported", "Personal data exported"
    ERASE_REFUSED = "erase_refused", "Account deletion refused"
    ACCOUNT_ERASED = "account_erased", "Account deleted (personal data erased)"


class ConsentSource(models.TextChoices):
    SIGNUP = "signup", "Sign-up form"
    WEB = "web", "Web settings"
    API = "api", "API"
    ADMIN = "admin", "Admin"
    ERASURE = "erasure", "Account deletion"


class PasswordKind(models.TextChoices):
    MASTER = "master", "Master (trading) password"
    INVESTOR = "investor", "Investor (read-only) password"


class OwnershipProof(models.TextChoices):
    NONE = "", "Not checked (connected before the check existed)"
    STAFF = "staff", "Added by staff in the admin"
    TRADING_LOGIN = "trading_login", "MT5 accepted the password"
    INVESTOR_DETAILS = "investor_details", "MT5 accepted the investor password and the typed details matched"
