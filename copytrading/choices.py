"""Choices of the copytrading app: sizing modes, link states, rule kinds and actions."""

from __future__ import annotations

from django.db import models


class SizingMode(models.TextChoices):
    MULTIPLIER = "multiplier", "Lot multiplier"
    FIXED = "fixed", "Fixed lot"
    BALANCE_RATIO = "balance_ratio", "Balance ratio"
    EQUITY_RATIO = "equity_ratio", "Equity ratio"
    FREE_MARGIN_RATIO = "free_margin_ratio", "Free-margin ratio"
    RISK_PERCENT = "risk_percent", "Risk % of equity (from SL distance)"


class NoStopLoss(models.TextChoices):
    SKIP = "skip", "Skip the trade"
    DEFAULT = "default", "Use the default SL distance"


class CopyStatus(models.TextChoices):
    PENDING = "pending", "Sent, not executed yet"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    CLOSED_ON_SLAVE = "closed_on_slave", "Closed by hand on the slave"
    FAILED = "failed", "Failed"


class CopyKind(models.TextChoices):
    POSITION = "position", "Position"
    ORDER = "order", "Pending order"


class AccountMode(models.TextChoices):
    NORMAL = "normal", "Copying"
    PAUSED = "paused", "Copying paused"
    CLOSE_ONLY = "close_only", "Close-only"


class RuleKind(models.TextChoices):
    EQUITY_STOP = "equity_stop", "Equity stop"
    DAILY_LOSS = "daily_loss", "Daily loss limit"
    MAX_OPEN_TRADES = "max_open_trades", "Max open trades"
    SYMBOL_FILTER = "symbol_filter", "Symbol allow/deny list"
    TRADING_HOURS = "trading_hours", "Trading-hours window"


class RuleAction(models.TextChoices):
    PAUSE = "pause", "Pause copying"
    CLOSE_ONLY = "close_only", "Close-only"
    CLOSE_ALL_AND_PAUSE = "close_all_and_pause", "Close all and pause"


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"
