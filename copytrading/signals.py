"""What copy trading announces to the apps above it: the documented port (docs/architecture.md).

Sent after the transaction that stored the change commits (``transaction.on_commit``) with
``sender=CopiedPosition`` and the keyword arguments named below; receivers are called with ``send_robust``.
"""

from __future__ import annotations

from django.dispatch import Signal

#: A copy command was refused or failed on the slave. kwargs: ``copy`` (copytrading.models.CopiedPosition),
#: ``retcode`` (int or None), ``reason`` (str, human readable).
copy_command_failed = Signal()

#: A signal follower's fee for one month is due (sent with ``send_robust`` inside the transaction that holds the
#: fee row). kwargs: ``fee_id`` (int), ``user`` (the follower), ``amount`` (Decimal, > 0), ``currency`` (str),
#: ``description`` (str), ``idempotency_key`` (str, the same for every attempt at this fee). The receiver that
#: charges it (billing, through Stripe) returns ``{"status": "charged", "reference": ...}`` or
#: ``{"status": "failed", "error": ...}``; receivers that do not charge return None.
signal_fee_due = Signal()
