"""What the bonus engine announces to the apps above it: the documented port (docs/architecture.md).

Each signal is sent once per change, after the transaction that stored it commits
(``transaction.on_commit``), with ``sender=Bonus`` and the keyword arguments named below.
Receivers must not raise into the sender: a failing receiver is logged by ``send_robust``.
"""

from __future__ import annotations

from django.dispatch import Signal

#: A bonus was granted and its credit posted. kwargs: ``bonus`` (bonuses.models.Bonus).
bonus_granted = Signal()

#: A bonus ended without conversion. kwargs: ``bonus``, ``reason`` (a ``CancelReason`` value).
bonus_cancelled = Signal()

#: A type C bonus reached its lot target and was converted to balance. kwargs: ``bonus``.
bonus_converted = Signal()

#: An MT5 posting of a bonus (credit in or out, a balance correction, a leverage change) was refused or unanswered
#: on every attempt and now waits for a person (bonus monitor page: retry now / mark resolved).
#: kwargs: ``bonus``, ``operation`` (bonuses.models.BonusOperation), ``error`` (str).
bonus_operation_failed = Signal()
